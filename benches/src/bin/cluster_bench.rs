//! Cluster mode's costs (issue 12), with real servers on Debian's real etcd, release build:
//!
//! 1. **Overhead on batched puts**: the same load (batches of `--batch` rows, `sync`
//!    durability, one client) against a single server and against a one-member cluster
//!    (hosted regions, lease fence, `FENCE` checked per write batch), alternated
//!    `--rounds` times; the ratio of the medians, same run.
//! 2. **Failover unavailability**: three servers, a table pre-split in six; `--kills`
//!    times, `kill -9` of a server holding regions while a prober writes to each of its
//!    regions, one `sync` row at a time; a kill's unavailability is the time from the kill
//!    until every one of its regions has acknowledged a write again. The victim is
//!    restarted (a new member; the balancer gives it regions) before the next kill.
//! 3. **Graceful moves**: `--moves` operator moves (`admin move`), each reporting how long
//!    the region was not open (meta polled every 10 ms), and the client's call time.
//!
//! The servers run `--balance manual` (an automatic balancer would undo the moves being
//! measured); the bench asks for a balance after restarting each victim.
//!
//! `cargo run --release -p speedlayer-benches --bin cluster_bench -- --kills 20 --moves 20`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use speedlayer_client::proto::Durability;
use speedlayer_client::{Client, put_row};
use speedlayer_tests::cluster::{CLUSTER, member, status};
use speedlayer_tests::etcd::Etcd;
use speedlayer_tests::server::ServerProcess;

#[derive(Parser)]
struct Args {
    /// Kills for the failover figure.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Operator moves for the move figure.
    #[arg(long, default_value_t = 20)]
    moves: usize,
    /// Lease TTL of the servers, seconds.
    #[arg(long, default_value_t = 2)]
    ttl: u64,
    /// Rows per batch in the overhead figure.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Batches per overhead round.
    #[arg(long, default_value_t = 400)]
    batches: usize,
    /// Alternated overhead rounds per side.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{name}: n={} p50={:.0} ms p99={:.0} ms max={:.0} ms min={:.0} ms",
        v.len(),
        percentile(&v, 0.5).as_secs_f64() * 1e3,
        percentile(&v, 0.99).as_secs_f64() * 1e3,
        v.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        v.first().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

/// Every region open on a live member.
fn settled(s: &serde_json::Value) -> bool {
    let live: Vec<&str> = s["servers"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    s["regions"].as_array().is_some_and(|rs| {
        rs.iter().all(|r| {
            r["state"] == "open" && r["server"].as_str().is_some_and(|x| live.contains(&x))
        })
    })
}

async fn batched_puts(url: &str, table: &str, batch: usize, batches: usize, round: usize) -> f64 {
    let c = Client::connect(url).await.expect("connect");
    let value = [b'v'; 100];
    let t0 = Instant::now();
    for b in 0..batches {
        let rows: Vec<_> = (0..batch)
            .map(|i| {
                let k = format!(
                    "{:08x}",
                    ((round * batches + b) * batch + i).wrapping_mul(2_654_435_761) as u32
                );
                put_row(k.as_bytes(), &[("f", "q", &value[..])])
            })
            .collect();
        c.mutate(table, rows, Durability::Sync)
            .await
            .expect("batch");
    }
    (batch * batches) as f64 / t0.elapsed().as_secs_f64()
}

async fn overhead(args: &Args, dir: &std::path::Path) {
    let single = ServerProcess::start(&dir.join("single"), &[]);
    let etcd = Etcd::start(&dir.join("etcd-o"));
    let url = etcd.url();
    let shared = dir.join("shared-o");
    let member = ServerProcess::start(
        &dir.join("member"),
        &[
            "--etcd",
            &url,
            "--cluster",
            "o",
            "--storage-root",
            shared.to_str().expect("utf-8 path"),
        ],
    );
    for s in [&single, &member] {
        assert!(
            s.cli(&["create-table", "t", "--family", "f"])
                .ok()
                .contains("created")
        );
    }
    // The member's region opens asynchronously; wait for one write to pass.
    let c = Client::connect(&member.url()).await.expect("connect");
    let t0 = Instant::now();
    while c
        .mutate(
            "t",
            vec![put_row(b"warm", &[("f", "q", b"1")])],
            Durability::Sync,
        )
        .await
        .is_err()
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "cluster table never opened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Wall-clock rows/s of each side, and the server's own CPU time per 1,000 rows (from
    // /proc/<pid>/stat): the CPU figure is what the cluster's per-batch work costs, and it
    // holds up on a machine that other work keeps busy, where wall time does not.
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cpu_a, mut cpu_b) = (Vec::new(), Vec::new());
    let rows = (args.batch * args.batches) as f64;
    for round in 0..args.rounds {
        let t = single.cpu_ticks();
        a.push(batched_puts(&single.url(), "t", args.batch, args.batches, round).await);
        let ca = cpu_ms_per_krows(t, single.cpu_ticks(), rows);
        let t = member.cpu_ticks();
        b.push(batched_puts(&member.url(), "t", args.batch, args.batches, round).await);
        let cb = cpu_ms_per_krows(t, member.cpu_ticks(), rows);
        ratios.push(b[round] / a[round]);
        cpu_a.push(ca);
        cpu_b.push(cb);
        println!(
            "overhead round {round}: single {:.0} rows/s ({ca:.1} ms CPU/1k rows), one-member cluster {:.0} rows/s ({cb:.1} ms CPU/1k rows), ratio {:.3}",
            a[round], b[round], ratios[round]
        );
    }
    let (ma, mb, mr) = (median(&mut a), median(&mut b), median(&mut ratios));
    let (mca, mcb) = (median(&mut cpu_a), median(&mut cpu_b));
    println!(
        "overhead: batched sync puts ({} rows x {} batches, {} rounds): single server {ma:.0} rows/s, one-member cluster {mb:.0} rows/s, ratio of medians cluster/single {:.3}, median of per-round ratios {mr:.3} (min {:.3}, max {:.3}); server CPU per 1,000 rows: single {mca:.1} ms, cluster {mcb:.1} ms, ratio {:.3}",
        args.batch,
        args.batches,
        args.rounds,
        mb / ma,
        ratios[0],
        ratios[ratios.len() - 1],
        mcb / mca
    );
}

/// Server CPU milliseconds per 1,000 rows between two `cpu_ticks` readings (10 ms each).
fn cpu_ms_per_krows(before: Option<u64>, after: Option<u64>, rows: f64) -> f64 {
    match (before, after) {
        (Some(b), Some(a)) => (a.saturating_sub(b) * 10) as f64 / rows * 1000.0,
        _ => f64::NAN,
    }
}

/// Sorts `v` and returns its middle element (NaN when empty).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn failover_and_moves(args: &Args, dir: &std::path::Path) {
    let etcd = Etcd::start(&dir.join("etcd"));
    let url = etcd.url();
    let shared = dir.join("shared");
    let ttl = args.ttl.to_string();
    let flags = [
        "--etcd",
        &url,
        "--cluster",
        CLUSTER,
        "--lease-ttl-secs",
        &ttl,
        // The balancer runs when asked (after each restart), so it never undoes a move
        // being measured.
        "--balance",
        "manual",
        "--storage-root",
        shared.to_str().expect("utf-8 path"),
    ];
    let mut servers: Vec<ServerProcess> = (0..3)
        .map(|i| ServerProcess::start(&dir.join(format!("s{i}")), &flags))
        .collect();
    let mut create = vec!["create-table", "t", "--family", "f"];
    let splits = ["c", "f", "i", "l", "o"];
    for s in &splits {
        create.extend(["--split", s]);
    }
    assert!(servers[0].cli(&create).ok().contains("created"));
    // A key in each region: its start (or "a" for the first).
    let region_key = |start: &str| -> Vec<u8> {
        if start.is_empty() {
            b"a".to_vec()
        } else {
            speedlayer_cluster_unhex(start)
        }
    };
    let wait_settled = |want_members: usize| {
        let t0 = Instant::now();
        loop {
            let s = status(&url);
            if settled(&s) && s["servers"].as_array().map_or(0, Vec::len) == want_members {
                return s;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "not settled: {s:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_settled(3);
    // The prober talks to server 0, which is never killed.
    let prober = Client::connect(&servers[0].url()).await.expect("connect");
    let mut failovers = Vec::new();
    let mut per_region = Vec::new();
    for k in 0..args.kills {
        let victim = 1 + k % 2;
        // Wait until the victim holds regions (after a restart the balancer moves some).
        let t0 = Instant::now();
        let (s, victim_id) = loop {
            let s = wait_settled(3);
            let id = member(&s, &servers[victim]).expect("victim is a member");
            let holds = s["regions"]
                .as_array()
                .expect("regions")
                .iter()
                .filter(|r| r["server"] == id.as_str())
                .count();
            if holds > 0 && !balancing(&s) {
                break (s, id);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "victim holds nothing: {s:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let keys: Vec<Vec<u8>> = s["regions"]
            .as_array()
            .expect("regions")
            .iter()
            .filter(|r| r["server"] == victim_id.as_str())
            .map(|r| region_key(r["start"].as_str().unwrap_or("")))
            .collect();
        let killed = Instant::now();
        servers[victim].kill9();
        let mut back: BTreeMap<usize, Duration> = BTreeMap::new();
        while back.len() < keys.len() {
            for (i, key) in keys.iter().enumerate() {
                if back.contains_key(&i) {
                    continue;
                }
                let mut k = key.clone();
                k.extend_from_slice(format!("-{i}-{}", killed.elapsed().as_nanos()).as_bytes());
                let r = prober
                    .mutate(
                        "t",
                        vec![put_row(&k, &[("f", "q", b"1")])],
                        Durability::Sync,
                    )
                    .await;
                if r.is_ok() {
                    back.insert(i, killed.elapsed());
                }
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "regions never came back"
            );
        }
        let worst = back.values().max().copied().unwrap_or_default();
        println!(
            "kill {k}: {} region(s) of the victim back in {:?} (all), per region {:?}",
            keys.len(),
            worst,
            back.values().collect::<Vec<_>>()
        );
        failovers.push(worst);
        per_region.extend(back.values().copied());
        servers[victim].restart();
        wait_settled(3);
        prober.balance().await.expect("balance");
    }
    summary(
        &format!("failover unavailability per kill (TTL {} s)", args.ttl),
        failovers,
    );
    summary("failover unavailability per region", per_region);

    let mut reported = Vec::new();
    let mut calls = Vec::new();
    for m in 0..args.moves {
        let s = wait_settled(3);
        let regions = s["regions"].as_array().expect("regions");
        let r = &regions[m % regions.len()];
        let id = r["id"].as_u64().expect("id");
        let from = r["server"].as_str().expect("server").to_owned();
        let to = s["servers"]
            .as_array()
            .expect("servers")
            .iter()
            .filter_map(|x| x["id"].as_str())
            .find(|x| *x != from)
            .expect("another server")
            .to_owned();
        let t0 = Instant::now();
        let out = prober.move_region("t", id, &to).await.expect("move");
        calls.push(t0.elapsed());
        reported.push(Duration::from_micros(out.unavailable_micros));
    }
    summary("graceful move unavailability (reported)", reported);
    summary("graceful move call time", calls);
}

/// Whether a move is under way (a region closing with a target).
fn balancing(s: &serde_json::Value) -> bool {
    s["regions"]
        .as_array()
        .is_some_and(|rs| rs.iter().any(|r| !r["target"].is_null()))
}

fn speedlayer_cluster_unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .filter_map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "cluster_bench: {} kills, {} moves, TTL {} s",
        args.kills, args.moves, args.ttl
    );
    overhead(&args, dir.path()).await;
    failover_and_moves(&args, dir.path()).await;
}
