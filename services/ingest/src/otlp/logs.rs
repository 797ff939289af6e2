//! OTLP log records into `logs` rows (see `migrations/0004_logs.sql`).

use bytes::BytesMut;
use hypercare_storage::rowbinary::RowBinaryExt;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use xxhash_rust::xxh3::Xxh3;

use super::metrics::{
    Attributes, Encoded, Values, any_value_text, attributes, check_attributes, check_shared,
    resource_and_service,
};
use crate::event::RequestContext;
use crate::fields;
use crate::records::Rejection;

pub const TABLE: &str = "logs";

pub const INSERT_SQL: &str = "INSERT INTO logs (log_id, timestamp, timestamp_ns, \
    observed_timestamp, received_at, service, severity_number, severity_text, body, event_name, \
    attribute_keys, attribute_values, resource_keys, resource_values, scope_name, scope_version, \
    trace_id, span_id, flags, api_key) FORMAT RowBinary";

/// Encodes every log record of the request, stopping once the rows pass `max_bytes`.
pub fn encode(
    request: &ExportLogsServiceRequest,
    ctx: &RequestContext,
    max_bytes: usize,
) -> Encoded {
    let mut out = Encoded::within(max_bytes);
    for (r, resource_logs) in request.resource_logs.iter().enumerate() {
        let (resource, service) = resource_and_service(resource_logs.resource.as_ref());
        let service = service.as_deref().unwrap_or("");
        for (s, scope_logs) in resource_logs.scope_logs.iter().enumerate() {
            let (scope_name, scope_version) = scope_logs
                .scope
                .as_ref()
                .map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()));
            let shared = check_shared(&resource, scope_name, scope_version, ctx.limits);
            for (l, record) in scope_logs.log_records.iter().enumerate() {
                if out.over {
                    return out;
                }
                if let Err(rejection) = &shared {
                    out.reject(
                        format!("resourceLogs[{r}].scopeLogs[{s}].logRecords[{l}]"),
                        rejection.clone(),
                    );
                    continue;
                }
                let row = LogRow {
                    record,
                    resource: &resource,
                    service,
                    scope_name,
                    scope_version,
                };
                match row.write(ctx, &mut out.data) {
                    Ok(()) => {
                        out.wrote_row();
                    }
                    Err(rejection) => out.reject(
                        format!("resourceLogs[{r}].scopeLogs[{s}].logRecords[{l}]"),
                        rejection,
                    ),
                }
            }
        }
    }
    out
}

struct LogRow<'a> {
    record: &'a LogRecord,
    resource: &'a Attributes,
    service: &'a str,
    scope_name: &'a str,
    scope_version: &'a str,
}

impl LogRow<'_> {
    fn write(&self, ctx: &RequestContext, out: &mut BytesMut) -> Result<(), Rejection> {
        let record = self.record;
        let limits = ctx.limits;
        // 2 bytes on the wire; a row of its own would be mostly the resource.
        if record.body.is_none()
            && record.attributes.is_empty()
            && record.event_name.is_empty()
            && record.severity_text.is_empty()
            && record.severity_number == 0
        {
            return Err(Rejection::new(
                "body",
                "missing",
                "the record has no body, attributes, event name or severity: nothing to store",
            ));
        }
        // The record's time, else when the SDK observed it, else now.
        let (field, nanos) = if record.time_unix_nano != 0 {
            ("timeUnixNano", record.time_unix_nano)
        } else {
            ("observedTimeUnixNano", record.observed_time_unix_nano)
        };
        let time_ms = fields::unix_nanos_ms(field, nanos, ctx.received_ms, limits)?;
        let observed_ms = fields::unix_nanos_ms(
            "observedTimeUnixNano",
            record.observed_time_unix_nano,
            ctx.received_ms,
            limits,
        )?;
        let sub_second_ns = if nanos == 0 {
            (time_ms.rem_euclid(1000) as u32) * 1_000_000
        } else {
            (nanos % 1_000_000_000) as u32
        };
        let severity = u8::try_from(record.severity_number).map_err(|_| {
            Rejection::new(
                "severityNumber",
                "invalid_value",
                "must be between 0 and 24",
            )
        })?;
        let body = any_value_text(record.body.as_ref());
        let labels = attributes(&record.attributes);
        check_attributes("attributes", &labels, limits, Values::Unchecked)?;
        let trace_id = hex::encode(&record.trace_id);
        let span_id = hex::encode(&record.span_id);

        // Everything the record carries, so that an exporter's retry folds into
        // the first copy and two different records never do.
        let mut hasher = Xxh3::new();
        for part in [
            &nanos.to_le_bytes()[..],
            &record.observed_time_unix_nano.to_le_bytes(),
            &[severity],
            record.severity_text.as_bytes(),
            body.as_bytes(),
            record.event_name.as_bytes(),
            &record.trace_id,
            &record.span_id,
            self.service.as_bytes(),
            self.scope_name.as_bytes(),
        ] {
            hasher.update(part);
            hasher.update(&[0xff]);
        }
        for (key, value) in labels.iter().chain(self.resource.iter()) {
            hasher.update(key.as_bytes());
            hasher.update(&[0xfe]);
            hasher.update(value.as_bytes());
            hasher.update(&[0xff]);
        }

        let (seconds, _) = fields::split_ms(time_ms);
        let (observed_seconds, _) = fields::split_ms(observed_ms);
        let (received_seconds, _) = fields::split_ms(ctx.received_ms);
        out.extend_from_slice(&hasher.digest().to_le_bytes());
        out.put_rb_datetime(seconds);
        out.extend_from_slice(&sub_second_ns.to_le_bytes());
        out.put_rb_datetime(observed_seconds);
        out.put_rb_datetime(received_seconds);
        out.put_rb_str(self.service);
        out.extend_from_slice(&[severity]);
        out.put_rb_str(&record.severity_text);
        out.put_rb_str(&body);
        out.put_rb_str(&record.event_name);
        out.put_rb_str_array(labels.iter().map(|(k, _)| k.as_str()));
        out.put_rb_str_array(labels.iter().map(|(_, v)| v.as_str()));
        out.put_rb_str_array(self.resource.iter().map(|(k, _)| k.as_str()));
        out.put_rb_str_array(self.resource.iter().map(|(_, v)| v.as_str()));
        out.put_rb_str(self.scope_name);
        out.put_rb_str(self.scope_version);
        out.put_rb_str(&trace_id);
        out.put_rb_str(&span_id);
        out.extend_from_slice(&record.flags.to_le_bytes());
        out.put_rb_str(ctx.api_key);
        Ok(())
    }
}
