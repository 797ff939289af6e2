//! CPU cost of turning request bodies into RowBinary rows, on one core:
//! `cargo bench -p hypercare-ingest --bench parse`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hypercare_ingest::Limits;
use hypercare_ingest::event::{self, RequestContext};
use hypercare_ingest::records::{Framing, encode_body};

fn ndjson_events(n: usize) -> Vec<u8> {
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!(
            r#"{{"event":"order_placed","event_id":"{}","timestamp":"2026-11-22T09:{:02}:{:02}Z","source":"checkout","release":"2.4.0","user_id":"u-{}","session_id":"s-{}","value":{}.5,"properties":{{"plan":"pro","items":{},"first_order":true}}}}"#,
            uuid::Uuid::new_v4(),
            i / 60 % 60,
            i % 60,
            i % 977,
            i % 131,
            i % 300,
            i % 7
        ));
        body.push('\n');
    }
    body.into_bytes()
}

fn encode_events(c: &mut Criterion) {
    let limits = Limits::default();
    let body = ndjson_events(1000);
    let ctx = RequestContext {
        limits: &limits,
        received_ms: 1_795_341_600_000,
        api_key: "bench",
        late_hours: Default::default(),
    };
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("1000 events, NDJSON", |b| {
        b.iter(|| {
            let batch = encode_body(
                black_box(&body),
                Framing::Ndjson,
                &hypercare_ingest::budget::Budget::records(10_000),
                |record, out| event::encode(record, &ctx, out),
            )
            .unwrap();
            assert_eq!(batch.rows, 1000);
            batch
        })
    });
    group.finish();
}

criterion_group!(benches, encode_events);
criterion_main!(benches);
