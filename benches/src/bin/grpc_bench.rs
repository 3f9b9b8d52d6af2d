//! gRPC benchmark of a running region server: batched puts of 8-column driving rows
//! (cells/s), single-put latency per durability (p50/p99), and scan throughput (rows/s).
//!
//! Start a server first (release build), then point this at it:
//!
//! ```text
//! cargo run --release -p speedlayer-server -- --data-dir /tmp/sl-bench --resp-addr off &
//! cargo run --release -p speedlayer-benches --bin grpc_bench -- --addr http://127.0.0.1:16020
//! ```
//!
//! It creates (and at the end drops) a table named `grpc_bench_<pid>`; it measures, it
//! does not assert.

use std::time::Instant;

use clap::Parser;
use hdrhistogram::Histogram;
use speedlayer_client::proto::{self, Durability};
use speedlayer_client::{Client, put_row};

/// Flags of the gRPC benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Region server gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:16020")]
    addr: String,
    /// Rows written by the batched-put phase (8 cells each).
    #[arg(long, default_value_t = 200_000)]
    rows: usize,
    /// Rows per Mutate request.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Concurrent batched writers.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Durability of the batched puts: skip, async or sync.
    #[arg(long, default_value = "async")]
    durability: String,
    /// Single puts measured per durability mode.
    #[arg(long, default_value_t = 2_000)]
    single: usize,
}

fn durability(name: &str) -> Durability {
    match name {
        "skip" => Durability::SkipWal,
        "sync" => Durability::Sync,
        _ => Durability::Async,
    }
}

/// One driving event as 8 cells, like the ingest worker writes them.
fn driving_row(i: usize) -> proto::RowMutation {
    let car = format!("V{:04}", i % 100);
    let key = format!("{car}-{:014}", 20_261_122_000_000u64 + i as u64);
    let speed = (i % 150).to_string();
    let steer = ((i % 1081) as i64 - 540).to_string();
    let accel = (i % 10).to_string();
    let brake = ((i / 10) % 10).to_string();
    let time = format!("{:014}", 20_261_122_000_000u64 + i as u64);
    put_row(
        key.as_bytes(),
        &[
            ("cf1", "event_time", time.as_bytes()),
            ("cf1", "car_number", car.as_bytes()),
            ("cf1", "accel_pedal", accel.as_bytes()),
            ("cf1", "brake_pedal", brake.as_bytes()),
            ("cf1", "steer_angle", steer.as_bytes()),
            ("cf1", "turn_signal", b"N"),
            ("cf1", "speed", speed.as_bytes()),
            ("cf1", "area_number", b"A07"),
        ],
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let client = Client::connect(&args.addr).await?;
    let table = format!("grpc_bench_{}", std::process::id());
    client
        .create_table(proto::TableSchema {
            name: table.clone(),
            families: vec![proto::FamilySchema {
                name: "cf1".into(),
                ..Default::default()
            }],
        })
        .await?;

    // Phase 1: batched puts.
    let started = Instant::now();
    let per_writer = args.rows.div_ceil(args.writers.max(1));
    let mut tasks = Vec::new();
    for w in 0..args.writers.max(1) {
        let (client, table) = (client.clone(), table.clone());
        let (batch, d) = (args.batch.max(1), durability(&args.durability));
        let range = (w * per_writer)..((w + 1) * per_writer).min(args.rows);
        tasks.push(tokio::spawn(async move {
            let rows: Vec<usize> = range.collect();
            for chunk in rows.chunks(batch) {
                let muts = chunk.iter().map(|i| driving_row(*i)).collect();
                client.mutate(&table, muts, d).await?;
            }
            Ok::<_, speedlayer_client::ClientError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let cells = args.rows * 8;
    println!(
        "batched puts ({} durability, {} rows x 8 cells, batch {}, {} writers): {:.0} cells/s ({:.2} s)",
        args.durability,
        args.rows,
        args.batch,
        args.writers,
        cells as f64 / secs,
        secs
    );

    // Phase 2: single-put latency per durability.
    for (name, d) in [
        ("skip", Durability::SkipWal),
        ("async", Durability::Async),
        ("sync", Durability::Sync),
    ] {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        for i in 0..args.single {
            let m = driving_row(args.rows + i);
            let t = Instant::now();
            client.mutate(&table, vec![m], d).await?;
            h.record(t.elapsed().as_micros().max(1) as u64)?;
        }
        println!(
            "single put ({name}): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {} puts",
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.max() as f64 / 1000.0,
            args.single
        );
    }

    // Phase 3: full scan.
    let t = Instant::now();
    let rows = client
        .scan_all(proto::ScanRequest {
            table: table.clone(),
            batch_rows: 1_000,
            ..Default::default()
        })
        .await?;
    let secs = t.elapsed().as_secs_f64().max(1e-6);
    println!(
        "scan: {:.0} rows/s ({} rows in {:.2} s)",
        rows.len() as f64 / secs,
        rows.len(),
        secs
    );

    client.drop_table(&table).await?;
    Ok(())
}
