//! Counters of accepted and rejected records.

use prometheus::{IntCounterVec, Opts, Registry};

use hypercare_telemetry::metric_name;

use crate::records::EncodedBatch;

#[derive(Clone)]
pub struct IngestMetrics {
    accepted: IntCounterVec,
    rejected: IntCounterVec,
    skipped: IntCounterVec,
}

impl IngestMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let accepted = IntCounterVec::new(
            Opts::new(
                metric_name("ingest_records_accepted_total"),
                "Records that passed validation, by signal (event, metric, segment_event, prometheus_sample).",
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
        let skipped = IntCounterVec::new(
            Opts::new(
                metric_name("ingest_records_skipped_total"),
                "Records a protocol allows but that are not stored, by signal and reason \
                 (Prometheus stale markers: stale_marker; NaN and infinite samples: not_finite).",
            ),
            &["signal", "reason"],
        )?;
        registry.register(Box::new(accepted.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        registry.register(Box::new(skipped.clone()))?;
        Ok(Self {
            accepted,
            rejected,
            skipped,
        })
    }

    pub fn skipped(&self, signal: &str, reason: &str, n: u64) {
        if n > 0 {
            self.skipped.with_label_values(&[signal, reason]).inc_by(n);
        }
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
