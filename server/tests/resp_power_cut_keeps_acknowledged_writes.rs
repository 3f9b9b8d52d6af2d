//! Power cuts at random points under the RESP service, for each `appendfsync` policy, on
//! the fault-injecting file system that drops what a real power failure drops (unsynced
//! bytes, unsynced directory entries, unsynced pages out of order).
//!
//! Each cycle starts the service on what the last cut left, checks what it recovered,
//! schedules a cut before the n-th next file-system change, and runs random SADD / SREM /
//! DEL / EXPIRE / PERSIST / SUNIONSTORE writes one round trip at a time, with AOF rewrites in between;
//! then it shuts down (the shutdown snapshot), so a cut lands inside an AOF append or fsync,
//! a rewrite, the snapshot, or (with a cut scheduled before start) the recovery itself.
//! Checked at the next start:
//! - the service always starts;
//! - the recovered state is the state after some prefix of the writes sent: the lost writes
//!   form a suffix, and nothing that was never written appears (a rewrite or snapshot cut
//!   half-way leaves the old or the new state, never neither);
//! - `always`: every acknowledged write is there;
//! - `everysec` and `no`: every write acknowledged before the last completed fsync (or
//!   rewrite, or snapshot) is there.
//!
//! CI: 150 cycles per policy, one seed. `SPEEDLAYER_LONG=1` runs 1,500 cycles for each of
//! three seeds, `POWER_CUTS=<cycles>` sets the count; `POWER_CUT_SEED=<n>` replays one seed
//! (the cut points also depend on the writer task's timing, so a replay is close, not
//! exact).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use common::Raw;
use speedlayer_server::resp::aof::FlushMode;
use speedlayer_server::resp::frame::Frame;
use speedlayer_server::resp::{AppendFsync, RespConfig, RespServer};
use speedlayer_vfs::{CutMode, FaultFs};

/// Key → (members, whether it has a TTL), as the protocol shows it.
type State = BTreeMap<String, (BTreeSet<String>, bool)>;

const OPS: u64 = 40;

#[derive(Clone, Debug)]
enum Op {
    Sadd(String, Vec<String>),
    Srem(String, Vec<String>),
    Del(String),
    Expire(String),
    ExpireNow(String),
    Persist(String),
    /// SUNIONSTORE dst a b: two AOF commands (DEL + SADD) that must land together.
    UnionStore(String, String, String),
}

impl Op {
    fn args(&self) -> Vec<String> {
        let mut v: Vec<String> = match self {
            Op::Sadd(k, ms) => [vec!["SADD".into(), k.clone()], ms.clone()].concat(),
            Op::Srem(k, ms) => [vec!["SREM".into(), k.clone()], ms.clone()].concat(),
            Op::Del(k) => vec!["DEL".into(), k.clone()],
            Op::Expire(k) => vec!["EXPIRE".into(), k.clone(), "100000".into()],
            Op::ExpireNow(k) => vec!["EXPIRE".into(), k.clone(), "0".into()],
            Op::Persist(k) => vec!["PERSIST".into(), k.clone()],
            Op::UnionStore(d, a, b) => vec!["SUNIONSTORE".into(), d.clone(), a.clone(), b.clone()],
        };
        v.shrink_to_fit();
        v
    }

    fn apply(&self, s: &mut State) {
        match self {
            Op::Sadd(k, ms) => {
                let e = s.entry(k.clone()).or_default();
                e.0.extend(ms.iter().cloned());
            }
            Op::Srem(k, ms) => {
                if let Some(e) = s.get_mut(k) {
                    for m in ms {
                        e.0.remove(m);
                    }
                    if e.0.is_empty() {
                        s.remove(k);
                    }
                }
            }
            Op::Del(k) | Op::ExpireNow(k) => {
                s.remove(k);
            }
            Op::Expire(k) => {
                if let Some(e) = s.get_mut(k) {
                    e.1 = true;
                }
            }
            Op::Persist(k) => {
                if let Some(e) = s.get_mut(k) {
                    e.1 = false;
                }
            }
            Op::UnionStore(d, a, b) => {
                let mut u = BTreeSet::new();
                for k in [a, b] {
                    if let Some(e) = s.get(k) {
                        u.extend(e.0.iter().cloned());
                    }
                }
                if u.is_empty() {
                    s.remove(d);
                } else {
                    s.insert(d.clone(), (u, false));
                }
            }
        }
    }
}

/// splitmix64, so a seed replays the same writes.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }

    fn op(&mut self) -> Op {
        let key = format!("2026112{}", self.below(5));
        let members = |r: &mut Rng| -> Vec<String> {
            (0..=r.below(3))
                .map(|_| format!("V{:04}", r.below(12)))
                .collect()
        };
        match self.below(21) {
            20 => Op::UnionStore(
                key,
                format!("2026112{}", self.below(5)),
                format!("2026112{}", self.below(5)),
            ),
            0..=8 => Op::Sadd(key, members(self)),
            9..=12 => Op::Srem(key, members(self)),
            13 => Op::Del(key),
            14..=16 => Op::Expire(key),
            17 => Op::ExpireNow(key),
            _ => Op::Persist(key),
        }
    }
}

fn read_state(addr: SocketAddr) -> State {
    let mut c = Raw::connect(addr);
    let Frame::Array(keys) = c.cmd(&[b"KEYS", b"*"]) else {
        panic!("KEYS is an array")
    };
    let mut out = State::new();
    for k in keys {
        let Frame::Bulk(k) = k else {
            panic!("keys are bulk strings")
        };
        let Frame::Array(ms) = c.cmd(&[b"SMEMBERS", &k]) else {
            panic!("SMEMBERS is an array")
        };
        let ms = ms
            .into_iter()
            .map(|m| match m {
                Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
                other => panic!("member {other:?}"),
            })
            .collect();
        let Frame::Integer(ttl) = c.cmd(&[b"TTL", &k]) else {
            panic!("TTL is an integer")
        };
        assert!(ttl == -1 || ttl > 0, "TTL {ttl}");
        out.insert(String::from_utf8(k.to_vec()).unwrap(), (ms, ttl > 0));
    }
    out
}

fn config(dir: &Path, policy: AppendFsync, fs: &Arc<FaultFs>) -> RespConfig {
    let mut cfg = RespConfig::new("127.0.0.1:0".parse().unwrap(), dir.to_path_buf());
    cfg.appendfsync = policy;
    // Rewrites are started by the test, at random points between writes.
    cfg.auto_aof_rewrite_percentage = 0;
    cfg.fs = fs.clone();
    cfg
}

fn cycles() -> u64 {
    if let Some(n) = std::env::var("POWER_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    let long = std::env::var("SPEEDLAYER_LONG").is_ok_and(|v| v == "1");
    if long { 1500 } else { 150 }
}

#[derive(Debug, Default)]
struct Summary {
    cuts: u64,
    cuts_in_recovery: u64,
    /// Before the shutdown: in an AOF append or fsync, or in a rewrite (counted again below).
    cuts_in_writes: u64,
    cuts_in_rewrite: u64,
    cuts_in_shutdown: u64,
    cuts_after_clean_shutdown: u64,
    acknowledged: u64,
    acknowledged_checked_durable: u64,
    acknowledged_lost: u64,
    cycles_with_loss: u64,
}

/// What the next start may recover: the state after `ops[..k]` for `k` in `lo..=hi`.
struct Expect {
    states: Vec<State>,
    lo: usize,
    acked: usize,
    /// What the last cycle did, for a failure message: writes, rewrites, where it was cut.
    story: Vec<String>,
}

fn run(policy: AppendFsync, seed: u64) -> Summary {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("resp");
    let fs = FaultFs::new(seed);
    let mut rng = Rng(seed);
    let mut sum = Summary::default();
    let mut expect = Expect {
        states: vec![State::new()],
        lo: 0,
        acked: 0,
        story: Vec::new(),
    };
    let n = cycles();
    for cycle in 0..=n {
        let ctx = format!("{policy:?} seed {seed} cycle {cycle}");
        fs.power_on();
        if rng.below(5) == 0 {
            fs.schedule_cut(rng.below(8), CutMode::Random);
        }
        let h = match rt.block_on(RespServer::start(config(&data, policy, &fs))) {
            Ok(h) => h,
            Err(e) => {
                assert!(fs.is_down(), "{ctx}: start failed with no power cut: {e}");
                sum.cuts_in_recovery += 1;
                fs.power_on();
                rt.block_on(RespServer::start(config(&data, policy, &fs)))
                    .unwrap_or_else(|e| panic!("{ctx}: no start after a cut in recovery: {e}"))
            }
        };
        fs.cancel_cut();
        let got = read_state(h.local_addr());
        let Some(k) = expect.states.iter().rposition(|s| *s == got) else {
            panic!(
                "{ctx}: recovered {got:?}, which no prefix of the writes sent produces (allowed: {:?})",
                expect.states
            );
        };
        assert!(
            k >= expect.lo,
            "{ctx}: only {k} writes survived; {} were acknowledged as durable; last cycle: {:?}",
            expect.lo,
            expect.story
        );
        if k < expect.acked {
            sum.acknowledged_lost += (expect.acked - k) as u64;
            sum.cycles_with_loss += 1;
        }
        if cycle == n {
            let _ = rt.block_on(h.shutdown());
            break;
        }

        let shared = h.shared.clone();
        let aof = shared.aof.as_ref().expect("the AOF is on");
        let mode = if rng.below(2) == 0 {
            CutMode::Strict
        } else {
            CutMode::Random
        };
        let per_write = if policy == AppendFsync::Always { 2 } else { 1 };
        fs.schedule_cut(rng.below(per_write * OPS + 40), mode);
        let mut ops: Vec<Op> = Vec::new();
        let mut acked_at: Vec<u64> = Vec::new();
        let mut story = vec![format!("{mode:?} cut scheduled")];
        let mut c = Raw::connect(h.local_addr());
        for _ in 0..OPS {
            if fs.is_down() {
                break;
            }
            if rng.below(12) == 0 {
                let r = aof.rewrite(&shared.ks);
                story.push(format!("rewrite {:?}", r.map_err(|e| e.to_string())));
                if fs.is_down() {
                    sum.cuts_in_rewrite += 1;
                }
                continue;
            }
            if policy == AppendFsync::Everysec && rng.below(6) == 0 {
                // The writer task's once-a-second fsync, at a random point of a cycle
                // shorter than a second.
                let r = shared.flush_aof(FlushMode::Sync);
                story.push(format!("fsync {:?}", r.map_err(|e| e.to_string())));
                continue;
            }
            let op = rng.op();
            let args = op.args();
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            story.push(format!("{:?}", op));
            ops.push(op);
            match c.try_cmd(&args) {
                Some(Frame::Error(e)) => {
                    // Refused before it ran: the AOF failed when the power went.
                    assert!(e.starts_with("MISCONF "), "{ctx}: {e}");
                    ops.pop();
                    break;
                }
                Some(_) => {
                    acked_at.push(aof.info().durable_points);
                    story.push("acknowledged".into());
                }
                // Closed without a reply: not acknowledged, maybe applied.
                None => break,
            }
        }
        drop(c);
        let down_before_shutdown = fs.is_down();
        let shut = rt.block_on(h.shutdown());
        story.push(format!(
            "down before shutdown: {down_before_shutdown}; shutdown {:?}; cut {:?}",
            shut.map_err(|e| e.to_string()),
            fs.last_cut()
        ));
        if !fs.is_down() {
            sum.cuts_after_clean_shutdown += 1;
            fs.power_cut(mode).unwrap();
        } else if !down_before_shutdown {
            sum.cuts_in_shutdown += 1;
        } else {
            sum.cuts_in_writes += 1;
        }
        sum.cuts += 1;
        // `always` acknowledges after the fsync; otherwise a write is durable once a
        // durable point (fsync, rewrite, snapshot) completed after its acknowledgement.
        let durable = aof.info().durable_points;
        let lo = if policy == AppendFsync::Always {
            acked_at.len()
        } else {
            acked_at.iter().take_while(|&&dp| dp < durable).count()
        };
        let mut states = vec![got];
        for op in &ops {
            let mut s = states[states.len() - 1].clone();
            op.apply(&mut s);
            states.push(s);
        }
        sum.acknowledged += acked_at.len() as u64;
        sum.acknowledged_checked_durable += lo as u64;
        expect = Expect {
            states,
            lo,
            acked: acked_at.len(),
            story,
        };
    }
    sum
}

fn seeds() -> Vec<u64> {
    match std::env::var("POWER_CUT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(s) => vec![s],
        None if std::env::var("SPEEDLAYER_LONG").is_ok_and(|v| v == "1") => vec![1, 2, 3],
        None => vec![1],
    }
}

fn check(policy: AppendFsync) {
    for seed in seeds() {
        let sum = run(policy, seed);
        eprintln!("{policy:?} seed {seed}: {sum:?}");
        assert!(sum.cuts_in_writes > 0 && sum.cuts_in_shutdown > 0 && sum.cuts_in_rewrite > 0);
        if policy == AppendFsync::Always {
            assert_eq!(sum.acknowledged_lost, 0);
        }
    }
}

#[test]
fn appendfsync_always_loses_no_acknowledged_write_at_any_power_cut() {
    check(AppendFsync::Always);
}

#[test]
fn appendfsync_everysec_loses_only_a_suffix_after_the_last_fsync() {
    check(AppendFsync::Everysec);
}

#[test]
fn appendfsync_no_loses_only_a_suffix_of_the_writes() {
    check(AppendFsync::No);
}
