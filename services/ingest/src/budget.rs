//! What one request may cost: records, JSON values per record, and encoded
//! bytes, checked while decoding and encoding rather than after.
//!
//! A budget is made once per request from the limits, the decoded body size and
//! the writer's queue capacity ([`Budget::for_request`]); decoders ask it before
//! they hold more. Exceeding it refuses the whole request with 413 and names the
//! limit, since a partial answer would store an arbitrary prefix.
//!
//! Encoded bytes are bounded twice: by `max_encode_amplification` times the
//! decoded body (plus [`SLACK_BYTES`], so that a tiny request with the per-row
//! columns of a few rows is never refused), because shared fields (series
//! labels, OTLP resources) are copied into every row; and by the writer's queue
//! capacity, since a request larger than the queue could never be queued and a
//! 503 would make its sender retry it for ever.

use crate::config::Limits;

/// Encoded bytes every request may use whatever its size.
pub const SLACK_BYTES: usize = 1 << 20;

/// JSON values (objects, arrays, scalars) one record may hold: the record's own
/// fields, `max_properties` properties or labels, and histogram arrays.
pub fn max_values_per_record(limits: &Limits) -> usize {
    2 * limits.max_properties + 2 * limits.max_histogram_buckets + 64
}

/// What a request may cost.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max_records: usize,
    pub max_values_per_record: usize,
    pub max_encoded_bytes: usize,
    /// Which limit sets `max_encoded_bytes`, for the answer.
    pub encoded_limit: EncodedLimit,
}

/// Where the encoded-bytes bound comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodedLimit {
    /// `max_encode_amplification` times the decoded body.
    Amplification { factor: usize, decoded: usize },
    /// The writer's queue capacity: more could never be queued.
    Queue { capacity: usize },
}

/// Why a request was refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    #[error(
        "the request holds more than {limit} records; the limit is max_records_per_request = {limit}"
    )]
    Records { limit: usize },
    #[error(
        "the batch holds more than {limit} calls; the limit is max_segment_batch_events = {limit}"
    )]
    Calls { limit: usize },
    #[error(
        "a record holds more than {limit} JSON values (objects, arrays and scalars); the limit follows max_properties and max_histogram_buckets"
    )]
    Values { limit: usize },
    #[error("{0}")]
    Encoded(EncodedOver),
    #[error(
        "the request would decode to about {estimate} bytes of messages, more than max_decode_amplification = {factor} times its {decoded} bytes; send fewer, fuller records"
    )]
    Decoded {
        estimate: usize,
        factor: usize,
        decoded: usize,
    },
}

/// The encoded rows would be over their bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedOver {
    pub at_least: usize,
    pub limit: EncodedLimit,
}

impl std::fmt::Display for EncodedOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.limit {
            EncodedLimit::Amplification { factor, decoded } => write!(
                f,
                "the request's rows would take at least {} bytes, more than max_encode_amplification = {factor} times its {decoded} decoded bytes (plus {SLACK_BYTES}): labels or resource attributes shared by many points are copied into each row; send fewer points per series or smaller label sets",
                self.at_least
            ),
            EncodedLimit::Queue { capacity } => write!(
                f,
                "the request's rows would take at least {} bytes, more than one API key may hold in the write queue (queue_capacity_bytes x max_queue_share_per_key = {capacity}); it can never be stored: split it",
                self.at_least
            ),
        }
    }
}

impl Budget {
    /// The budget of a request whose body decoded to `decoded` bytes, written to
    /// a queue of `queue_capacity` bytes.
    pub fn for_request(limits: &Limits, decoded: usize, queue_capacity: usize) -> Self {
        let factor = limits.max_encode_amplification;
        let amplified = decoded.saturating_mul(factor).saturating_add(SLACK_BYTES);
        let (max_encoded_bytes, encoded_limit) = if amplified <= queue_capacity {
            (amplified, EncodedLimit::Amplification { factor, decoded })
        } else {
            (
                queue_capacity,
                EncodedLimit::Queue {
                    capacity: queue_capacity,
                },
            )
        };
        Self {
            max_records: limits.max_records_per_request,
            max_values_per_record: max_values_per_record(limits),
            max_encoded_bytes,
            encoded_limit,
        }
    }

    /// A budget of `max_records` records and nothing else (tests, benches).
    pub fn records(max_records: usize) -> Self {
        Self {
            max_records,
            max_values_per_record: usize::MAX,
            max_encoded_bytes: usize::MAX,
            encoded_limit: EncodedLimit::Queue {
                capacity: usize::MAX,
            },
        }
    }

    /// Refuses `records` records.
    pub fn check_records(&self, records: usize) -> Result<(), OverBudget> {
        if records > self.max_records {
            return Err(OverBudget::Records {
                limit: self.max_records,
            });
        }
        Ok(())
    }

    /// Refuses `bytes` encoded bytes.
    pub fn check_encoded(&self, bytes: usize) -> Result<(), OverBudget> {
        if bytes > self.max_encoded_bytes {
            return Err(self.over_encoded(bytes));
        }
        Ok(())
    }

    /// The refusal of an encoder that stopped at `bytes` because the next row
    /// would not have fit: at least one byte over the budget.
    pub fn over_encoded(&self, bytes: usize) -> OverBudget {
        OverBudget::Encoded(EncodedOver {
            at_least: bytes.max(self.max_encoded_bytes.saturating_add(1)),
            limit: self.encoded_limit,
        })
    }
}

/// Refuses decoded message structures estimated at `estimate` bytes for a body
/// of `decoded` bytes (protobuf decoders, before they allocate).
pub fn check_decoded(limits: &Limits, estimate: usize, decoded: usize) -> Result<(), OverBudget> {
    let factor = limits.max_decode_amplification;
    if estimate > decoded.saturating_mul(factor).saturating_add(SLACK_BYTES) {
        return Err(OverBudget::Decoded {
            estimate,
            factor,
            decoded,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoded_bound_is_the_amplified_body_or_the_queue_whichever_is_less() {
        let limits = Limits::default();
        let small = Budget::for_request(&limits, 1000, 256 << 20);
        assert_eq!(
            small.max_encoded_bytes,
            1000 * limits.max_encode_amplification + SLACK_BYTES
        );
        let large = Budget::for_request(&limits, 10 << 20, 256 << 20);
        assert_eq!(large.max_encoded_bytes, 256 << 20);
        let err = large.check_encoded((256 << 20) + 1).unwrap_err();
        assert!(err.to_string().contains("queue_capacity_bytes"), "{err}");
        let err = small
            .check_encoded(small.max_encoded_bytes + 1)
            .unwrap_err();
        assert!(
            err.to_string().contains("max_encode_amplification"),
            "{err}"
        );
        assert!(small.check_records(limits.max_records_per_request).is_ok());
        assert!(
            small
                .check_records(limits.max_records_per_request + 1)
                .is_err()
        );
    }
}
