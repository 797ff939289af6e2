//! Reconciling a million ids through the HTTP API, against the raw ClickHouse
//! insert of the same ids in the same run:
//!
//! ```text
//! cargo bench -p hypercare-tests --bench reconcile [-- --ids 1000000 --runs 3]
//! ```
//!
//! Stores N events (N - 137 of the source's ids and 12 others, RowBinary
//! straight into `events`), then times `POST /v1/reconcile` of the N ids as CSV
//! (parse, load into ClickHouse, both anti-joins, drop), and, as the baseline,
//! the raw RowBinary insert of the same N ids into a Memory table (ids as
//! strings: the first step of a reconciliation alone).

use std::time::{Duration, Instant};

use bytes::BytesMut;
use hypercare_storage::rowbinary::RowBinaryExt;
use hypercare_tests::bench::option;
use hypercare_tests::{ADMIN_KEY, spawn_app_with};
use uuid::Uuid;

fn id(i: u64) -> Uuid {
    Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 | u128::from(i))
}

fn median(times: &mut [Duration]) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ids = option(&args, "ids", 1_000_000);
    let runs = option(&args, "runs", 3) as usize;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let app = spawn_app_with(|s| s.ingest.reconcile.max_ids = ids as usize).await;
        let mut rows = BytesMut::new();
        for i in (0..ids)
            .filter(|i| i % 7_001 != 3 || i / 7_001 >= 137)
            .chain(ids + 10..ids + 22)
        {
            rows.put_rb_uuid(&id(i));
            rows.put_rb_str("lead_created");
            let at = 1_795_132_800 + (i % 3) as u32 * 86_400;
            rows.put_rb_datetime(at);
            rows.put_rb_datetime(at);
        }
        let mut insert = app.db.insert_formatted_with(
            "INSERT INTO events (event_id, event, timestamp, received_at) FORMAT RowBinary",
        );
        insert.send(rows.freeze()).await?;
        insert.end().await?;

        let mut csv = String::new();
        let mut raw = BytesMut::new();
        for i in 0..ids {
            let text = id(i).to_string();
            csv.push_str(&text);
            csv.push('\n');
            raw.put_rb_str("lead_created");
            raw.put_rb_str(&text);
            raw.extend_from_slice(&[0, 0]);
        }
        let raw = raw.freeze();
        println!(
            "command: cargo bench -p hypercare-tests --bench reconcile -- --ids {ids} --runs {runs}"
        );

        let (mut baseline, mut reconcile) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let table = format!("bench_ids_{run}");
            app.db
                .query(&format!(
                    "CREATE TABLE {table} (event String, id String, day Date) ENGINE = Memory"
                ))
                .execute()
                .await?;
            let started = Instant::now();
            let mut insert = app.db.insert_formatted_with(format!(
                "INSERT INTO {table} (event, id, day) FORMAT RowBinary"
            ));
            insert.send(raw.clone()).await?;
            insert.end().await?;
            baseline.push(started.elapsed());
            app.db
                .query(&format!("DROP TABLE {table}"))
                .execute()
                .await?;

            let started = Instant::now();
            let response = app
                .post(
                    "/v1/reconcile?event=lead_created&limit=1000",
                    ADMIN_KEY,
                    "text/csv",
                    csv.clone(),
                )
                .await;
            let status = response.status();
            let answer: serde_json::Value = response.json().await?;
            reconcile.push(started.elapsed());
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["missing"]["total"], 137);
            assert_eq!(answer["extra"]["total"], 12);
        }
        let (base, full) = (median(&mut baseline), median(&mut reconcile));
        println!("{:<52} {:>9} {:>12}", "median of runs", "seconds", "ids/s");
        println!(
            "{:<52} {:>9.2} {:>12.0}",
            "baseline: raw RowBinary insert of the ids",
            base,
            ids as f64 / base
        );
        println!(
            "{:<52} {:>9.2} {:>12.0}",
            "POST /v1/reconcile (CSV, HTTP -> answer)",
            full,
            ids as f64 / full
        );
        println!("ratio reconcile / raw insert: {:.1}x", full / base);
        app.stop().await?;
        anyhow::Ok(())
    })
}
