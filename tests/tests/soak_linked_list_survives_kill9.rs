//! HBase's IntegrationTestBigLinkedList (ITBLL) against the real server: concurrent writers
//! each grow a linked list with `sync` durability while the server flushes, compacts and
//! splits; the server is killed with SIGKILL at a random moment and restarted on the same
//! data directory, again and again; at the end every list is walked from its last
//! acknowledged head back to the sentinel, and every acknowledged row must be there.
//!
//! Each row carries a pointer to the previous row *its writer had acknowledged*. A write
//! that failed because of the kill is not acknowledged: it may or may not exist (then it is
//! "unreferenced", which is allowed and reported), but the writer's next row points past it
//! to the last acknowledged one. So a missing link is a lost acknowledged write.
//!
//! Row keys are a hash of writer and counter, so every list is spread over the whole key
//! space and over every region that splits from it.
//!
//! Knobs (environment):
//! - `SPEEDLAYER_LONG=1`: 100 cycles instead of 3, regions split at 256 KiB (CI: 128 KiB).
//! - `SOAK_CYCLES=N`: N cycles (wins over `SPEEDLAYER_LONG`).
//! - `SOAK_SEED=N`: the seed of the kill moments (printed at the start, so a failure can be
//!   replayed).
//! - `SOAK_MAX_WRITE_MS=N`: the longest a cycle writes before its kill (default 1200; the
//!   kill moment is drawn between half of it and all of it).
//!
//! Flush, compaction and split counts come from the RegionStats RPC (per region, since the
//! process started), sampled during every cycle, and from the number of regions at the end
//! (regions are only ever split, never merged). They are lower bounds: whatever happened in
//! the last sample interval before a kill is not seen.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use speedlayer_client::proto::{self, Durability, GetRequest, ScanRequest};
use speedlayer_client::{Client, ClientOptions, RetryPolicy, put_row};
use speedlayer_tests::server::ServerProcess;

const TABLE: &str = "itbll";
const FAMILY: &str = "cf1";
const WRITERS: u64 = 4;
/// What the first row of every list points at.
const SENTINEL: &[u8] = b"sentinel";
/// Small memstores: a cycle of about a second flushes every region several times, and
/// three flushes of a store make a compaction.
const MEMSTORE_FLUSH_BYTES: &str = "32768";
/// Small regions, so splits happen: in CI mode a few within three short cycles even on a
/// loaded machine; in long mode twice as large, so the table ends with about a hundred
/// regions rather than several hundred.
const REGION_SPLIT_BYTES: u64 = 128 * 1024;
const REGION_SPLIT_BYTES_LONG: u64 = 256 * 1024;
const SPLIT_CHECK_MILLIS: &str = "50";
/// How often RegionStats is sampled while writers run.
const STATS_EVERY: Duration = Duration::from_millis(100);
/// A cycle fails if its writers acknowledged nothing within this time.
const PROGRESS_DEADLINE: Duration = Duration::from_secs(60);

/// The run's shape, from the environment.
struct Params {
    cycles: usize,
    seed: u64,
    max_write: Duration,
    split_bytes: u64,
}

impl Params {
    fn from_env() -> Params {
        let var = |name: &str| -> Option<u64> {
            std::env::var(name).ok().map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
            })
        };
        let long = std::env::var("SPEEDLAYER_LONG").is_ok_and(|v| v == "1");
        let cycles = var("SOAK_CYCLES").unwrap_or(if long { 100 } else { 3 }) as usize;
        let seed = var("SOAK_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
        let max_write = Duration::from_millis(var("SOAK_MAX_WRITE_MS").unwrap_or(1200));
        Params {
            cycles,
            seed,
            max_write,
            split_bytes: if long {
                REGION_SPLIT_BYTES_LONG
            } else {
                REGION_SPLIT_BYTES
            },
        }
    }
}

/// splitmix64: a bijection, so distinct (writer, counter) pairs give distinct keys.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn row_key(writer: u64, counter: u64) -> Vec<u8> {
    format!("{:016x}", mix((writer << 48) | counter)).into_bytes()
}

/// 256 bytes that do not compress away (the split size counts compressed files).
fn padding(key: &[u8]) -> Vec<u8> {
    let mut x = key
        .iter()
        .fold(0u64, |h, b| h.rotate_left(8) ^ u64::from(*b));
    (0..32)
        .flat_map(|_| {
            x = mix(x);
            x.to_le_bytes()
        })
        .collect()
}

/// One acknowledged row, as its writer remembers it.
#[derive(Debug, Clone)]
struct Acked {
    key: Vec<u8>,
    counter: u64,
    cycle: usize,
}

/// One writer's list: what survives a kill of the server (the task does not).
#[derive(Debug, Default)]
struct WriterState {
    /// Counter of the next row; advanced by every attempt, acknowledged or not, so an
    /// unacknowledged write is never overwritten by a later one.
    next_counter: u64,
    /// Acknowledged rows, oldest first; the last one is the list's head.
    acked: Vec<Acked>,
    /// Writes that failed before the kill (e.g. too busy during a split, after retries).
    errors_before_kill: u64,
    first_error: Option<String>,
}

impl WriterState {
    fn head(&self) -> Vec<u8> {
        self.acked
            .last()
            .map_or_else(|| SENTINEL.to_vec(), |a| a.key.clone())
    }
}

async fn client(url: &str) -> Client {
    // A few quick retries ride over a split's short TooBusy; after the kill they fail fast
    // on the closed port, and a failed write is simply not acknowledged.
    let opts = ClientOptions {
        retry: RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(200),
        },
        request_timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    };
    Client::connect_with(url, opts).await.unwrap()
}

/// Appends rows to one list until `killed` is set and a write fails (or the loop sees it).
async fn write_list(
    c: Client,
    w: u64,
    cycle: usize,
    mut st: WriterState,
    killed: Arc<AtomicBool>,
    acks: Arc<AtomicU64>,
) -> WriterState {
    while !killed.load(Ordering::SeqCst) {
        let counter = st.next_counter;
        st.next_counter += 1;
        let key = row_key(w, counter);
        let prev = st.head();
        let id = format!("{w}:{counter}:{cycle}");
        let put = put_row(
            &key,
            &[
                (FAMILY, "prev", &prev),
                (FAMILY, "id", id.as_bytes()),
                (FAMILY, "pad", &padding(&key)),
            ],
        );
        match c.mutate(TABLE, vec![put], Durability::Sync).await {
            Ok(_) => {
                st.acked.push(Acked {
                    key,
                    counter,
                    cycle,
                });
                acks.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                if killed.load(Ordering::SeqCst) {
                    break;
                }
                st.errors_before_kill += 1;
                st.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    st
}

/// Flushes and compactions per region of one server process, largest value seen.
#[derive(Default)]
struct Incarnation {
    per_region: HashMap<u64, (u64, u64)>,
}

impl Incarnation {
    fn observe(&mut self, stats: &proto::RegionStatsResponse) {
        for r in &stats.regions {
            let Some(loc) = &r.location else { continue };
            let e = self.per_region.entry(loc.region_id).or_default();
            e.0 = e.0.max(r.flushes);
            e.1 = e.1.max(r.compactions);
        }
    }

    fn totals(&self) -> (u64, u64) {
        self.per_region
            .values()
            .fold((0, 0), |(f, c), (rf, rc)| (f + rf, c + rc))
    }
}

/// Samples RegionStats until `stop` is set; errors (the server is being killed) end it.
async fn sample_stats(c: Client, stop: Arc<AtomicBool>) -> Incarnation {
    let mut inc = Incarnation::default();
    while !stop.load(Ordering::SeqCst) {
        match c.region_stats(Some(TABLE)).await {
            Ok(s) => inc.observe(&s),
            Err(_) => break,
        }
        tokio::time::sleep(STATS_EVERY).await;
    }
    inc
}

/// Totals over the whole run.
#[derive(Default)]
struct Totals {
    flushes: u64,
    compactions: u64,
}

impl Totals {
    fn add(&mut self, inc: &Incarnation) {
        let (f, c) = inc.totals();
        self.flushes += f;
        self.compactions += c;
    }
}

/// Gets one row's `prev` pointer, or `None` if the row is missing.
async fn get_prev(c: &Client, key: &[u8]) -> Option<Vec<u8>> {
    let row = c
        .get(GetRequest {
            table: TABLE.into(),
            row: Bytes::copy_from_slice(key),
            ..Default::default()
        })
        .await
        .unwrap()?;
    row.cells
        .iter()
        .find(|cell| cell.qualifier.as_ref() == b"prev")
        .map(|cell| cell.value.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_linked_list_survives_kill9() {
    let params = Params::from_env();
    println!(
        "soak: seed {} (SOAK_SEED to replay), {} cycles, writes up to {} ms per cycle, \
         split size {} bytes",
        params.seed,
        params.cycles,
        params.max_write.as_millis(),
        params.split_bytes
    );
    let split_bytes = params.split_bytes.to_string();
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(params.seed);
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(
        dir.path(),
        &[
            "--memstore-flush-bytes",
            MEMSTORE_FLUSH_BYTES,
            "--region-split-bytes",
            &split_bytes,
            "--split-check-millis",
            SPLIT_CHECK_MILLIS,
        ],
    );
    client(&server.url())
        .await
        .create_table(proto::TableSchema {
            name: TABLE.into(),
            families: vec![proto::FamilySchema {
                name: FAMILY.into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();

    let mut writers: Vec<WriterState> = (0..WRITERS).map(|_| WriterState::default()).collect();
    let mut totals = Totals::default();
    let lo = params.max_write / 2;
    let mut regions = 1;
    let mut cycles_with_split = 0;
    for cycle in 0..params.cycles {
        let c = client(&server.url()).await;
        let killed = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = std::mem::take(&mut writers)
            .into_iter()
            .zip(0..)
            .map(|(st, w)| {
                tokio::spawn(write_list(
                    c.clone(),
                    w,
                    cycle,
                    st,
                    killed.clone(),
                    acks.clone(),
                ))
            })
            .collect();
        let sampler = tokio::spawn(sample_stats(c.clone(), killed.clone()));

        // The kill moment: a seeded draw, then (rarely needed on a loaded machine) more
        // time until this cycle has acknowledged something, so every cycle makes progress.
        let pause = rng.random_range(lo..=params.max_write);
        tokio::time::sleep(pause).await;
        let deadline = Instant::now() + PROGRESS_DEADLINE;
        while acks.load(Ordering::SeqCst) == 0 {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: no write acknowledged in {PROGRESS_DEADLINE:?}:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // IMPORTANT: the flag goes up before the kill, so a write that fails afterwards is
        // known to have failed because of it; a write acknowledged before is recorded.
        killed.store(true, Ordering::SeqCst);
        server.kill9();
        for t in tasks {
            writers.push(t.await.unwrap());
        }
        let inc = sampler.await.unwrap();
        totals.add(&inc);
        server.restart();

        // Every head survives the restart (the full walk is at the end; this names the
        // cycle that lost something).
        let c = client(&server.url()).await;
        let now_regions = c.region_stats(Some(TABLE)).await.unwrap().regions.len();
        let split = now_regions.saturating_sub(regions);
        regions = now_regions;
        cycles_with_split += usize::from(split > 0);
        let (flushes, compactions) = inc.totals();
        println!(
            "soak: cycle {cycle}: killed after {} ms, {} acknowledged, {flushes} flushes, \
             {compactions} compactions, {split} splits, {regions} regions",
            pause.as_millis(),
            acks.load(Ordering::SeqCst),
        );
        for (w, st) in writers.iter().enumerate() {
            if let Some(head) = st.acked.last() {
                assert!(
                    get_prev(&c, &head.key).await.is_some(),
                    "seed {}: cycle {cycle}: writer {w}'s last acknowledged row {} \
                     (counter {}) is missing after kill -9 and restart",
                    params.seed,
                    String::from_utf8_lossy(&head.key),
                    head.counter
                );
            }
        }
    }

    let report = verify(&server, &writers, params.seed).await;
    let c = client(&server.url()).await;
    let stats = c.region_stats(Some(TABLE)).await.unwrap();
    let mut last = Incarnation::default();
    last.observe(&stats);
    totals.add(&last);
    let splits = stats.regions.len() as u64 - 1;
    let errors: u64 = writers.iter().map(|w| w.errors_before_kill).sum();
    println!(
        "soak summary: cycles {} rows_acked {} rows_found {} unreferenced {} lost {} \
         flushes {} compactions {} splits {} (in {} cycles) regions {} write_errors_before_kill {} \
         elapsed {:.1}s seed {}",
        params.cycles,
        report.acked,
        report.found,
        report.unreferenced,
        report.lost.len(),
        totals.flushes,
        totals.compactions,
        splits,
        cycles_with_split,
        stats.regions.len(),
        errors,
        started.elapsed().as_secs_f64(),
        params.seed
    );
    if let Some(e) = writers.iter().find_map(|w| w.first_error.as_ref()) {
        println!("soak: first write error before a kill: {e}");
    }
    assert!(
        report.lost.is_empty(),
        "seed {}: {} acknowledged rows lost; first: {}",
        params.seed,
        report.lost.len(),
        report.lost[..report.lost.len().min(5)].join("; ")
    );
    assert!(totals.flushes > 0, "no memstore flush during the soak");
    assert!(totals.compactions > 0, "no compaction during the soak");
    assert!(splits > 0, "no region split during the soak");
    let status = server.terminate();
    assert!(status.success(), "{}", server.log());
}

/// What the final walk found.
struct Report {
    acked: usize,
    found: usize,
    unreferenced: usize,
    /// One line per lost acknowledged row: writer, key, counter, cycle.
    lost: Vec<String>,
}

/// Scans the table and walks every list from its head back to the sentinel: each
/// acknowledged row must be present and point at its writer's previous acknowledged row
/// (the first at the sentinel), which is the walk with every missing link reported rather
/// than only the first.
async fn verify(server: &ServerProcess, writers: &[WriterState], seed: u64) -> Report {
    let c = client(&server.url()).await;
    let rows = c
        .scan_all(ScanRequest {
            table: TABLE.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let prev_of: HashMap<Vec<u8>, Vec<u8>> = rows
        .iter()
        .map(|r| {
            let prev = r
                .cells
                .iter()
                .find(|cell| cell.qualifier.as_ref() == b"prev")
                .map(|cell| cell.value.to_vec())
                .unwrap_or_default();
            (r.row.to_vec(), prev)
        })
        .collect();
    assert_eq!(
        prev_of.len(),
        rows.len(),
        "a row came twice out of one scan"
    );

    let mut referenced: HashSet<&[u8]> = HashSet::new();
    let mut lost = Vec::new();
    for (w, st) in writers.iter().enumerate() {
        // Walk from the head; every pointer must be exactly the writer's previous
        // acknowledged row, and every row on the way must be there.
        for (i, a) in st.acked.iter().enumerate().rev() {
            let want_prev = if i == 0 {
                SENTINEL
            } else {
                &st.acked[i - 1].key[..]
            };
            match prev_of.get(&a.key) {
                None => lost.push(format!(
                    "writer {w} row {} (counter {}, acknowledged in cycle {}, {} of {} in its \
                     list), seed {seed}",
                    String::from_utf8_lossy(&a.key),
                    a.counter,
                    a.cycle,
                    i + 1,
                    st.acked.len()
                )),
                Some(prev) => {
                    assert_eq!(
                        prev.as_slice(),
                        want_prev,
                        "seed {seed}: writer {w} row {} points at the wrong row",
                        String::from_utf8_lossy(&a.key)
                    );
                    referenced.insert(&a.key);
                }
            }
        }
    }
    // A row nobody references must be a write that was tried and not acknowledged; any
    // other row came from nowhere.
    let unacked: HashSet<Vec<u8>> = writers
        .iter()
        .zip(0..)
        .flat_map(|(st, w)| {
            let acked: HashSet<u64> = st.acked.iter().map(|a| a.counter).collect();
            (0..st.next_counter)
                .filter(move |n| !acked.contains(n))
                .map(move |n| row_key(w, n))
        })
        .collect();
    for r in &rows {
        let key = r.row.as_ref();
        assert!(
            referenced.contains(key) || unacked.contains(key),
            "seed {seed}: row {} was never written by a writer",
            String::from_utf8_lossy(key)
        );
    }
    let acked = writers.iter().map(|w| w.acked.len()).sum();
    Report {
        acked,
        found: rows.len(),
        unreferenced: rows.len() - referenced.len(),
        lost,
    }
}
