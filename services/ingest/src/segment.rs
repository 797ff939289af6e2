//! Segment's tracking API: `POST /v1/segment/v1/{track,identify,page,screen,group,alias,batch}`,
//! so that a Segment SDK with its host set to `http://<hypercare>/v1/segment` sends
//! business events unchanged.
//!
//! ```text
//! body (JSON, gzip or not, <= max_segment_body_bytes)
//!   -> key: Authorization header (Basic `<writeKey>:`, Bearer, X-API-Key) or `writeKey` in the body
//!   -> each call mapped to an event record of /v1/events (see `to_event`)
//!   -> IngestState::admit (the key's byte rate)
//!   -> event::encode (the one encoder and validation of `events` rows)
//!   -> IngestState::store (events writer, ack after insert) -> 200 {"success": true, ...}
//! ```
//!
//! Mapping: `track` keeps its `event` name; the other calls become `$identify`,
//! `$page`, `$screen`, `$group` and `$alias`. The user is `userId`, else
//! `anonymousId` (also kept as the `anonymousId` property). `messageId` is the
//! idempotency key: a UUID is used as the event id as it is, any other text
//! gives a UUID v5 of the key's name and the text, so that a retry of the same
//! call folds whatever the SDK's id format. The time is `originalTimestamp`
//! (else `timestamp`) corrected by `sentAt` (the call's, else the batch's) as
//! Segment does: `received − (sentAt − time)`. Nested properties are flattened
//! with dotted keys; arrays are kept as JSON text.
//!
//! Answers: 200 `{"success": true, "accepted": n, "rejected": [...]}` (rejected
//! calls listed with their index, as on /v1/events); 400 for a body that is not a
//! JSON object or when every call is rejected; 413 over the Segment limits.

use std::borrow::Cow;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::Map;
use serde_json::Value as Json;
use uuid::Uuid;

use hypercare_http::auth::{AuthError, Caller, OptionalCaller, Scope};
use hypercare_http::body::read_body;

use hypercare_http::ApiError;

use crate::budget::{Budget, OverBudget};
use crate::error::IngestError;
use crate::event::{self, RequestContext};
use crate::records::{BodyRefused, EncodedBatch, Framing, Rejection, Value};
use crate::state::{IngestState, Table};

/// The `signal` label of this protocol's records in the ingest metrics.
pub const SIGNAL: &str = "segment_event";

/// The namespace of event ids derived from `messageId`s that are not UUIDs.
const MESSAGE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1c_2f4e_9a37_4d8e_b5a0_3c71_e2d9_4f16);

/// The context fields kept as `context.*` properties; the others (library, app)
/// fill columns or are left out to stay within `max_properties`.
const CONTEXT_PROPERTIES: [&[&str]; 8] = [
    &["ip"],
    &["userAgent"],
    &["locale"],
    &["timezone"],
    &["page", "path"],
    &["page", "url"],
    &["page", "referrer"],
    &["library", "version"],
];

/// The calls of Segment's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Track,
    Identify,
    Page,
    Screen,
    Group,
    Alias,
}

impl Call {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "track" => Call::Track,
            "identify" => Call::Identify,
            "page" => Call::Page,
            "screen" => Call::Screen,
            "group" => Call::Group,
            "alias" => Call::Alias,
            _ => return None,
        })
    }

    /// The event name of calls other than `track`.
    fn event_name(self) -> &'static str {
        match self {
            Call::Track => "",
            Call::Identify => "$identify",
            Call::Page => "$page",
            Call::Screen => "$screen",
            Call::Group => "$group",
            Call::Alias => "$alias",
        }
    }

    /// Where the call's own map of values is.
    fn properties_field(self) -> &'static str {
        match self {
            Call::Identify | Call::Group => "traits",
            _ => "properties",
        }
    }
}

#[derive(Debug, Serialize)]
struct Success<'a> {
    success: bool,
    accepted: usize,
    rejected: &'a [Rejection],
}

/// Segment's tracking API; the write key may come as the Basic user, in a header,
/// or in the body's `writeKey`.
#[utoipa::path(post, path = "/v1/segment/v1/{call}", tag = "ingest",
    security((), ("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("call" = String, Path, description = "`track`, `identify`, `page`, `screen`, `group`, `alias` or `batch`",
        pattern = "^(track|identify|page|screen|group|alias|batch)$")),
    request_body(content((crate::schema::SegmentBody = "application/json"))),
    responses(
        (status = 200, description = "The accepted calls are stored; bad ones are listed", body = crate::schema::SegmentSuccess),
        (status = 400, description = "Not JSON, or no call is valid (all listed)", body = crate::schema::IngestRefusal),
        (status = 404, description = "Not a Segment call", body = hypercare_http::ErrorBody),
        hypercare_http::openapi::KeyChecks, hypercare_http::openapi::BodyChecks, crate::schema::WriteChecks,
    ))]
#[tracing::instrument(name = "ingest.segment", skip_all, fields(call = %call.as_str()))]
pub(crate) async fn post_call(
    req: HttpRequest,
    call: web::Path<String>,
    payload: web::Payload,
    caller: OptionalCaller,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let batch_call = call.as_str() == "batch";
    let single = Call::parse(call.as_str());
    if !batch_call && single.is_none() {
        return Err(ApiError::not_found(format!(
            "`{}` is not a Segment call: use track, identify, page, screen, group, alias or batch",
            call.as_str()
        )));
    }
    Ok(store_calls(req, single, payload, caller, state).await?)
}

async fn store_calls(
    req: HttpRequest,
    single: Option<Call>,
    payload: web::Payload,
    caller: OptionalCaller,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, IngestError> {
    // A key in the headers is checked before the body is read; a key in the body
    // (Segment's `writeKey`) only after.
    if let Some(caller) = &caller.0 {
        caller.authorize(Scope::Ingest)?;
    }
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if Framing::from_content_type(content_type) != Some(Framing::Json) {
        return Err(IngestError::UnsupportedContentType {
            found: content_type.unwrap_or("").to_owned(),
            expected: "application/json",
        });
    }
    let limit = state.limits.body(state.limits.max_segment_body_bytes);
    let body = read_body(&req, payload, limit).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyRefused::Empty.into());
    }
    // A key in the body is found by a scan that skips every other value
    // without building it, so that a body with no valid key is never parsed.
    let caller = match caller.0 {
        Some(caller) => caller,
        None => {
            let key = write_key(&body).ok_or(AuthError::Missing)?;
            let caller = Caller::from_body_key(&req, &key)?;
            caller.authorize(Scope::Ingest)?;
            caller
        }
    };
    let admission = state.admit(&req, &caller, body.len())?;
    let root: Json =
        serde_json::from_slice(&body).map_err(|e| BodyRefused::Syntax(format!("{e}")))?;
    let body_len = body.len();
    drop(body);
    let Json::Object(root) = root else {
        return Err(BodyRefused::Syntax("a Segment call must be a JSON object".into()).into());
    };
    let limits = admission.limits();
    let ctx = admission.context();
    let batch = encode_calls(
        &root,
        single,
        &ctx,
        caller.name(),
        limits.max_segment_batch_events,
    )?;
    Budget::for_request(limits, body_len, state.events.max_request_bytes())
        .check_encoded(batch.data.len())
        .map_err(BodyRefused::OverBudget)?;
    let stored = state
        .store(&admission, &ctx, Table::Events, SIGNAL, batch)
        .await?;
    Ok(HttpResponse::Ok().json(Success {
        success: true,
        accepted: stored.accepted,
        rejected: &stored.rejected,
    }))
}

/// Maps and encodes the call (`single`) or the `batch` of calls of a request
/// body, refusing more than `max_calls` calls before mapping any.
pub fn encode_calls(
    root: &Map<String, Json>,
    single: Option<Call>,
    ctx: &RequestContext,
    key_name: &str,
    max_calls: usize,
) -> Result<EncodedBatch, BodyRefused> {
    let envelope = Envelope {
        context: root.get("context").and_then(Json::as_object),
        sent_at: root.get("sentAt").filter(|v| !v.is_null()),
        key_name,
    };
    let mut batch = EncodedBatch::default();
    match single {
        Some(call) => take(&mut batch, 0, Some(call), root, &envelope, ctx),
        None => {
            let Some(Json::Array(calls)) = root.get("batch") else {
                return Err(BodyRefused::Syntax(
                    "`batch` must be an array of calls, each with its `type`".into(),
                ));
            };
            if calls.len() > max_calls {
                return Err(BodyRefused::OverBudget(OverBudget::Calls {
                    limit: max_calls,
                }));
            }
            for (index, item) in calls.iter().enumerate() {
                match item {
                    Json::Object(message) => {
                        let call = message
                            .get("type")
                            .and_then(Json::as_str)
                            .and_then(Call::parse);
                        take(&mut batch, index, call, message, &envelope, ctx);
                    }
                    other => batch.rejected.push(Rejection {
                        index,
                        ..Rejection::new(
                            "record",
                            "invalid_type",
                            format!("must be a JSON object, not {}", json_kind(other)),
                        )
                    }),
                }
            }
        }
    }
    Ok(batch)
}

/// The top-level `writeKey` of a JSON object body, read without building any
/// other value; `None` when there is none or the body is not a JSON object.
pub fn write_key(body: &[u8]) -> Option<String> {
    use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
    struct Find;
    impl<'de> Visitor<'de> for Find {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key == "writeKey" && found.is_none() {
                    found = map.next_value::<Option<String>>().ok().flatten();
                    if found.is_none() {
                        return Ok(None);
                    }
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    de.deserialize_map(Find).ok().flatten()
}

/// What the calls of one request share: the batch's `context` and `sentAt`.
struct Envelope<'a> {
    context: Option<&'a Map<String, Json>>,
    sent_at: Option<&'a Json>,
    key_name: &'a str,
}

/// Maps and encodes one call, or records why it is rejected.
fn take(
    batch: &mut EncodedBatch,
    index: usize,
    call: Option<Call>,
    message: &Map<String, Json>,
    envelope: &Envelope,
    ctx: &RequestContext,
) {
    let has = |key: &str| message.get(key).is_some_and(|v| !v.is_null() && *v != "");
    let outcome = match call {
        Some(_) if !has("userId") && !has("anonymousId") => Err(Rejection::new(
            "userId",
            "missing",
            "userId or anonymousId is required",
        )),
        Some(call) => {
            let (record, names) = to_event(call, message, envelope);
            event::encode(&record, ctx, &mut batch.data).map_err(|mut r| {
                r.field = names.segment_field(&r.field);
                r
            })
        }
        None => Err(Rejection::new(
            "type",
            "invalid_value",
            "must be one of track, identify, page, screen, group, alias",
        )),
    };
    match outcome {
        Ok(()) => batch.rows += 1,
        Err(mut rejection) => {
            rejection.index = index;
            batch.rejected.push(rejection);
        }
    }
}

/// Which Segment field each event field came from, to name it in rejections.
struct FieldNames {
    properties: &'static str,
    value: &'static str,
    timestamp: &'static str,
}

impl FieldNames {
    fn segment_field(&self, field: &str) -> String {
        match field {
            "event_id" => "messageId".into(),
            "user_id" => "userId".into(),
            "sent_at" => "sentAt".into(),
            "source" => "context.library.name".into(),
            "release" => "context.app.version".into(),
            "value" => self.value.into(),
            "timestamp" => self.timestamp.into(),
            "properties" => self.properties.into(),
            other => match other.strip_prefix("properties.") {
                Some(key) => format!("{}.{key}", self.properties),
                None => other.into(),
            },
        }
    }
}

/// The /v1/events record of a Segment call.
fn to_event(
    call: Call,
    message: &Map<String, Json>,
    envelope: &Envelope,
) -> (Value<'static>, FieldNames) {
    let get = |key: &str| message.get(key).filter(|v| !v.is_null() && *v != "");
    let own_context = message.get("context").and_then(Json::as_object);
    let context =
        |path: &[&str]| lookup(own_context, path).or_else(|| lookup(envelope.context, path));
    let mut record: Vec<(Cow<'static, str>, Value<'static>)> = Vec::with_capacity(10);
    let mut put =
        |key: &'static str, value: Value<'static>| record.push((Cow::Borrowed(key), value));

    let event = match call {
        Call::Track => get("event").map_or(Value::Null, to_value),
        other => Value::Str(Cow::Borrowed(other.event_name())),
    };
    put("event", event);
    if let Some(id) = get("messageId") {
        let text = match id {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        let uuid = Uuid::parse_str(&text).unwrap_or_else(|_| {
            let name = format!("{}\n{text}", envelope.key_name);
            Uuid::new_v5(&MESSAGE_ID_NAMESPACE, name.as_bytes())
        });
        put("event_id", Value::Str(Cow::Owned(uuid.to_string())));
    }
    let timestamp_field = if get("originalTimestamp").is_some() {
        "originalTimestamp"
    } else {
        "timestamp"
    };
    if let Some(time) = get(timestamp_field) {
        put("timestamp", to_value(time));
        if let Some(sent_at) = get("sentAt").or(envelope.sent_at) {
            put("sent_at", to_value(sent_at));
        }
    }
    if let Some(source) = context(&["library", "name"]) {
        put("source", to_value(source));
    }
    if let Some(release) = context(&["app", "version"]) {
        put("release", to_value(release));
    }
    let user = get("userId").or_else(|| get("anonymousId"));
    if let Some(user) = user {
        put("user_id", to_value(user));
    }

    let own = call.properties_field();
    let mut properties = Vec::new();
    match get(own) {
        Some(map @ Json::Object(_)) => flatten("", map, &mut properties),
        // Not an object: passed on as it is, for the event checks to name it.
        Some(other) => {
            put("properties", to_value(other));
            return (
                Value::Object(record),
                field_names(own, None, timestamp_field),
            );
        }
        None => {}
    }
    let value_field = ["revenue", "value"].into_iter().find(|k| {
        message
            .get(own)
            .and_then(|p| p.get(k))
            .is_some_and(Json::is_number)
    });
    if let Some(key) = value_field.filter(|_| call == Call::Track) {
        put("value", to_value(&message[own][key]));
    }
    let mut extra = |key: &str, value: Option<&Json>| {
        if let Some(value) = value
            && !properties.iter().any(|(k, _)| k == key)
        {
            properties.push((Cow::Owned(key.to_owned()), scalar_value(value)));
        }
    };
    extra("anonymousId", get("anonymousId"));
    match call {
        Call::Page | Call::Screen => {
            extra("name", get("name"));
            extra("category", get("category"));
        }
        Call::Group => extra("groupId", get("groupId")),
        Call::Alias => extra("previousId", get("previousId")),
        Call::Track | Call::Identify => {}
    }
    for path in CONTEXT_PROPERTIES {
        extra(&format!("context.{}", path.join(".")), context(path));
    }
    if !properties.is_empty() {
        put("properties", Value::Object(properties));
    }
    (
        Value::Object(record),
        field_names(own, value_field, timestamp_field),
    )
}

fn field_names(
    properties: &'static str,
    value_field: Option<&str>,
    timestamp: &'static str,
) -> FieldNames {
    FieldNames {
        properties,
        value: match value_field {
            Some("revenue") => "properties.revenue",
            _ => "properties.value",
        },
        timestamp,
    }
}

/// The value at `path` in a context object, if any.
fn lookup<'a>(root: Option<&'a Map<String, Json>>, path: &[&str]) -> Option<&'a Json> {
    let mut at = root?.get(path[0])?;
    for key in &path[1..] {
        at = at.get(key)?;
    }
    Some(at).filter(|v| !v.is_null())
}

/// Nested objects become dotted keys (`{"a": {"b": 1}}` -> `a.b`), arrays JSON text.
fn flatten(prefix: &str, value: &Json, out: &mut Vec<(Cow<'static, str>, Value<'static>)>) {
    match value {
        Json::Object(map) => {
            for (key, value) in map {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match value {
                    Json::Object(_) => flatten(&key, value, out),
                    other => out.push((Cow::Owned(key), scalar_value(other))),
                }
            }
        }
        other => out.push((Cow::Owned(prefix.to_owned()), scalar_value(other))),
    }
}

/// A property value: scalars as they are, arrays and objects as JSON text.
fn scalar_value(value: &Json) -> Value<'static> {
    match value {
        Json::Array(_) | Json::Object(_) => Value::Str(Cow::Owned(value.to_string())),
        other => to_value(other),
    }
}

fn to_value(value: &Json) -> Value<'static> {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::UInt(u),
            (None, Some(i)) => Value::Int(i),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Str(Cow::Owned(s.clone())),
        Json::Array(items) => Value::Array(items.iter().map(to_value).collect()),
        Json::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (Cow::Owned(k.clone()), to_value(v)))
                .collect(),
        ),
    }
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a bool",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;
    use serde_json::json;

    fn map(value: Json) -> Map<String, Json> {
        match value {
            Json::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn record(call: Call, message: Json) -> Vec<(String, Value<'static>)> {
        let envelope = Envelope {
            context: None,
            sent_at: Some(&Json::Null),
            key_name: "web",
        };
        let (Value::Object(fields), _) = to_event(call, &map(message), &envelope) else {
            unreachable!()
        };
        fields
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v))
            .collect()
    }

    fn field<'a>(fields: &'a [(String, Value<'static>)], key: &str) -> Option<&'a Value<'static>> {
        fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    #[test]
    fn a_track_call_maps_to_an_event_record() {
        let fields = record(
            Call::Track,
            json!({"event": "Order Completed", "userId": "u1", "anonymousId": "a1",
                   "messageId": "m-1", "timestamp": "2026-11-22T09:00:00Z",
                   "properties": {"revenue": 12.5, "cart": {"items": 3, "tags": ["a", "b"]}},
                   "context": {"library": {"name": "analytics-python", "version": "2.4.0"},
                               "app": {"version": "3.1.0"}}}),
        );
        assert_eq!(
            field(&fields, "event"),
            Some(&Value::Str("Order Completed".into()))
        );
        assert_eq!(field(&fields, "user_id"), Some(&Value::Str("u1".into())));
        assert_eq!(field(&fields, "value"), Some(&Value::Float(12.5)));
        assert_eq!(
            field(&fields, "source"),
            Some(&Value::Str("analytics-python".into()))
        );
        assert_eq!(field(&fields, "release"), Some(&Value::Str("3.1.0".into())));
        let Some(Value::Object(props)) = field(&fields, "properties") else {
            panic!("no properties")
        };
        let keys: Vec<&str> = props.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(
            keys,
            [
                "cart.items",
                "cart.tags",
                "revenue",
                "anonymousId",
                "context.library.version"
            ]
        );
        assert_eq!(props[1].1, Value::Str(r#"["a","b"]"#.into()));
    }

    #[test]
    fn message_ids_give_stable_uuids() {
        let id = |message_id: Json| {
            let fields = record(
                Call::Track,
                json!({"event": "a", "userId": "u", "messageId": message_id}),
            );
            field(&fields, "event_id").cloned()
        };
        let uuid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
        assert_eq!(id(json!(uuid)), Some(Value::Str(uuid.into())));
        assert_eq!(id(json!("retry-me")), id(json!("retry-me")));
        assert_ne!(id(json!("retry-me")), id(json!("other")));
    }

    #[test]
    fn rejections_name_the_segment_field() {
        let limits = Limits::default();
        let ctx = RequestContext {
            limits: &limits,
            received_ms: 1_795_341_600_000,
            api_key: "web",
            late_hours: Default::default(),
        };
        let envelope = Envelope {
            context: None,
            sent_at: None,
            key_name: "web",
        };
        let mut batch = EncodedBatch::default();
        let message = map(json!({"userId": "u", "traits": {"deep": [1]}, "timestamp": "soon"}));
        take(
            &mut batch,
            3,
            Some(Call::Identify),
            &message,
            &envelope,
            &ctx,
        );
        take(
            &mut batch,
            4,
            Some(Call::Track),
            &map(json!({"userId": "u"})),
            &envelope,
            &ctx,
        );
        take(
            &mut batch,
            5,
            None,
            &map(json!({"userId": "u"})),
            &envelope,
            &ctx,
        );
        let not_a_map = map(json!({"userId": "u", "traits": "vip"}));
        take(
            &mut batch,
            6,
            Some(Call::Group),
            &not_a_map,
            &envelope,
            &ctx,
        );
        let got: Vec<(usize, &str)> = batch
            .rejected
            .iter()
            .map(|r| (r.index, r.field.as_str()))
            .collect();
        assert_eq!(
            got,
            [(3, "timestamp"), (4, "event"), (5, "type"), (6, "traits")]
        );
    }
}
