//! Counters of accepted and rejected records.

use prometheus::{IntCounterVec, Opts, Registry};

use hypercare_telemetry::metric_name;

use crate::records::EncodedBatch;

#[derive(Clone)]
pub struct IngestMetrics {
    accepted: IntCounterVec,
    rejected: IntCounterVec,
}

impl IngestMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let accepted = IntCounterVec::new(
            Opts::new(
                metric_name("ingest_records_accepted_total"),
                "Records that passed validation, by signal (event, metric).",
            ),
            &["signal"],
        )?;
        let rejected = IntCounterVec::new(
            Opts::new(
                metric_name("ingest_records_rejected_total"),
                "Records rejected by validation, by signal and reason \
                 (missing, invalid_type, invalid_value, too_long, too_many, out_of_range, unknown_field, invalid_json).",
            ),
            &["signal", "reason"],
        )?;
        registry.register(Box::new(accepted.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        Ok(Self { accepted, rejected })
    }

    pub fn record(&self, signal: &str, batch: &EncodedBatch) {
        self.count(signal, batch.rows, batch.rejected.iter().map(|r| r.code));
    }

    /// Counts `accepted` records and one rejection per reason code given.
    pub fn count<'a>(
        &self,
        signal: &str,
        accepted: usize,
        rejected: impl Iterator<Item = &'a str>,
    ) {
        self.accepted
            .with_label_values(&[signal])
            .inc_by(accepted as u64);
        for code in rejected {
            self.rejected.with_label_values(&[signal, code]).inc();
        }
    }
}
