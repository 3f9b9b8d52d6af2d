//! Bulk load vs batched gRPC puts, in the same run, on the same real server
//! (`storage/docs/bulk_load.md`): a status file of `--status-mb` MB from the simulator's
//! car model (100 cars, one record per car per 3 s, as SPEC §1 describes the daily files)
//! is stored twice into two `car_status`-shaped tables of one `speedlayer-server`:
//!
//! 1. **puts**: the file read and parsed (timed too: a put-based loader parses as well)
//!    into the same 13-column rows the loader makes, sent as `Mutate` batches of `--batch`
//!    rows by `--writers` concurrent writers with `sync` durability (each batch
//!    acknowledged only once durable), timed from opening the file to the last
//!    acknowledgement, then a flush (timed separately);
//! 2. **bulk load**: the real `speedlayer bulkload` binary as a child process with
//!    `--memory-mb` (below the input size, so it sorts through spill files), timed from
//!    spawn to exit (durable and visible on exit); its peak RSS as the loader reports it
//!    (its own `VmHWM`; a parent's `wait4` would also count the pages the child shared
//!    with the parent before `exec`).
//!
//! Both tables are then counted (rows) and must hold every line. Prints the ratio
//! (puts time / bulk-load time). Build everything in release first:
//! `cargo build --release -p speedlayer-server -p speedlayer-client -p speedlayer-benches --bins`,
//! then `target/release/bulkload_bench --status-mb 100`. It measures; the ratio is not
//! asserted.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use speedlayer_client::bulk::LineFormat;
use speedlayer_client::proto::{self, Durability, MutationOp, Put, RowMutation, mutation_op::Op};
use speedlayer_client::{Client, ClientOptions};
use speedlayer_ingest::simulate::car::Car;
use speedlayer_tests::bins::bin_path;
use speedlayer_tests::server::ServerProcess;

/// Flags of the bulk-load benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Size of the generated status file in MB.
    #[arg(long, default_value_t = 100)]
    status_mb: usize,
    /// Rows per Mutate request of the put phase.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Concurrent writers of the put phase.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// The loader's memory budget (MiB); below the input's in-memory size, it spills.
    #[arg(long, default_value_t = 64)]
    memory_mb: usize,
    /// Working directory (default: a temporary one in the current directory).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

fn status_file(path: &Path, mb: usize) -> (u64, u64) {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    let cars: Vec<Car> = (0..100).map(|i| Car::new(i, &mut rng)).collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let (mut n, mut written) = (0u64, 0usize);
    let mut s = String::new();
    while written < mb * 1_000_000 {
        // One record per car every 3 s, over as many days as the size needs.
        let sec = (n / 100) * 3;
        let day = 22 + (sec / 86_400) % 7;
        let time = format!(
            "202611{day:02}{:02}{:02}{:02}",
            (sec / 3600) % 24,
            (sec / 60) % 60,
            sec % 60
        );
        s.clear();
        cars[(n % 100) as usize].status_line(&time, &mut rng, &mut s);
        f.write_all(s.as_bytes()).unwrap();
        written += s.len();
        n += 1;
    }
    f.flush().unwrap();
    (n, written as u64)
}

fn schema(name: &str) -> proto::TableSchema {
    proto::TableSchema {
        name: name.into(),
        families: vec![proto::FamilySchema {
            name: "cf1".into(),
            ..Default::default()
        }],
    }
}

/// Reads and parses the file into `Mutate` batches of `batch` rows (the loader's own
/// cells, grouped by row), handing each to `tx`.
fn parse_batches(path: &Path, batch: usize, tx: &tokio::sync::mpsc::Sender<Vec<RowMutation>>) {
    use std::io::BufRead;
    let f = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut rows = Vec::with_capacity(batch);
    let mut cells = Vec::new();
    for line in f.split(b'\n') {
        let line = line.unwrap();
        if line.is_empty() {
            continue;
        }
        cells.clear();
        LineFormat::Status.cells(&line, 0, &mut cells).unwrap();
        rows.push(RowMutation {
            row: cells[0].row.clone(),
            ops: cells
                .drain(..)
                .map(|c| MutationOp {
                    op: Some(Op::Put(Put {
                        family: bytes::Bytes::from(c.family),
                        qualifier: c.qualifier,
                        timestamp: Some(c.timestamp),
                        value: c.value,
                    })),
                })
                .collect(),
        });
        if rows.len() == batch && tx.blocking_send(std::mem::take(&mut rows)).is_err() {
            return;
        }
    }
    if !rows.is_empty() {
        let _ = tx.blocking_send(rows);
    }
}

async fn count(client: &Client, table: &str) -> u64 {
    let mut s = client
        .scan(proto::ScanRequest {
            table: table.into(),
            batch_rows: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut n = 0;
    while s.next().await.unwrap().is_some() {
        n += 1;
    }
    n
}

/// Runs the loader; (wall time, its peak RSS in MiB as it reports it, its stdout).
fn run_loader(url: &str, file: &Path, memory_mb: usize) -> (Duration, f64, String) {
    let started = Instant::now();
    let out = std::process::Command::new(bin_path("speedlayer"))
        .args(["--addr", url, "bulkload", "status_bulk"])
        .arg(file)
        .args([
            "--memory-mb",
            &memory_mb.to_string(),
            "--no-progress",
            "--spill-dir",
        ])
        // Spill beside the input (the bench's directory), not in the system temp.
        .arg(file.parent().unwrap_or(Path::new(".")))
        .output()
        .unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the loader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rss = text
        .split("peak RSS ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN);
    (took, rss, text)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let tmp = match &args.dir {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir_in(".").unwrap(),
    };
    let file = tmp.path().join("status-20261122.csv");
    let (lines, bytes) = status_file(&file, args.status_mb);
    println!(
        "input: {lines} status lines, {:.1} MB ({} cells)",
        bytes as f64 / 1e6,
        lines * 13
    );
    let server = ServerProcess::start(&tmp.path().join("data"), &[]);
    let client = Client::connect_with(&server.url(), ClientOptions::default())
        .await
        .unwrap();
    client.create_table(schema("status_put")).await.unwrap();
    client.create_table(schema("status_bulk")).await.unwrap();

    // 1. Batched puts, parsing included.
    let started = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<RowMutation>>(args.writers * 2);
    let parser = {
        let (file, batch) = (file.clone(), args.batch);
        tokio::task::spawn_blocking(move || parse_batches(&file, batch, &tx))
    };
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
    let mut tasks = Vec::new();
    for _ in 0..args.writers {
        let (client, rx) = (client.clone(), std::sync::Arc::clone(&rx));
        tasks.push(tokio::spawn(async move {
            let mut cells = 0u64;
            loop {
                let Some(b) = rx.lock().await.recv().await else {
                    break;
                };
                cells += client
                    .mutate("status_put", b, Durability::Sync)
                    .await
                    .unwrap();
            }
            cells
        }));
    }
    let mut put_cells = 0;
    for t in tasks {
        put_cells += t.await.unwrap();
    }
    parser.await.unwrap();
    let put_time = started.elapsed();
    let f0 = Instant::now();
    client.flush("status_put").await.unwrap();
    let flush_time = f0.elapsed();
    println!(
        "batched puts: {put_cells} cells in {:.2} s = {:.0} cells/s (batch {}, {} writers, sync); flush after: {:.2} s",
        put_time.as_secs_f64(),
        put_cells as f64 / put_time.as_secs_f64(),
        args.batch,
        args.writers,
        flush_time.as_secs_f64()
    );

    // 2. Bulk load through the real CLI.
    let (bulk_time, rss_mib, out) = run_loader(&server.url(), &file, args.memory_mb);
    println!(
        "bulk load: {} in {:.2} s = {:.0} cells/s; loader peak RSS {rss_mib:.1} MiB (budget {} MiB, input {:.1} MB)",
        out.trim(),
        bulk_time.as_secs_f64(),
        (lines * 13) as f64 / bulk_time.as_secs_f64(),
        args.memory_mb,
        bytes as f64 / 1e6
    );

    let (a, b) = (
        count(&client, "status_put").await,
        count(&client, "status_bulk").await,
    );
    assert_eq!((a, b), (lines, lines), "every line stored by both paths");
    println!(
        "ratio: bulk load is {:.2}x the batched puts ({:.2} s vs {:.2} s; {:.2}x counting the puts' flush)",
        put_time.as_secs_f64() / bulk_time.as_secs_f64(),
        bulk_time.as_secs_f64(),
        put_time.as_secs_f64(),
        (put_time + flush_time).as_secs_f64() / bulk_time.as_secs_f64()
    );
}
