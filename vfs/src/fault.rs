//! [`FaultFs`]: a fault-injecting file system over a real directory, for power-cut and
//! full-disk tests (RocksDB's `FaultInjectionTestFS`, leveldb's `fault_injection_test`).
//!
//! Every operation reaches the real file system, except `fsync`, which is only recorded:
//! the model, not the disk, decides what a power cut keeps, so thousands of cuts run in
//! seconds. What the model remembers:
//! - per file, the length made durable by its last successful `sync_data`/`sync_all`
//!   (files that existed before the first operation through this value count as durable);
//! - every create, rename and remove (and directory create) not yet made durable by a sync
//!   of the directory holding the entry, in the order they happened.
//!
//! [`FaultFs::power_cut`] turns the power off: every later operation, through any handle,
//! fails with `EIO` until [`FaultFs::power_on`], and handles opened before the cut stay dead
//! for ever. The cut itself rewrites the directory to what a disk could hold afterwards:
//! - [`CutMode::Strict`]: every unsynced byte and every unsynced directory operation is
//!   lost (undone newest first);
//! - [`CutMode::Random`]: a random prefix of the unsynced directory operations survives
//!   (metadata is journaled in order), and each unsynced 4 KiB page of each file survives
//!   or reads back as zeros independently (data pages reach the disk in any order), with
//!   the file length anywhere from the synced length to the end of the last page kept.
//!
//! [`FaultFs::inject`] makes chosen operations fail with an errno (`EIO`, `ENOSPC`, ...): the
//! next one, the n-th, a number of them, or each with a probability. A failed append may
//! have written a prefix of its buffer first, as a real `write` on a full disk does.
//!
//! It is not a sandbox: paths are used as given.

use std::collections::HashMap;
use std::fs::{File as StdFile, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::real::open_std;
use crate::{File, Fs, OpenMode};

/// Size of the unit of data a power cut keeps or loses in [`CutMode::Random`].
pub const PAGE_BYTES: u64 = 4096;

/// The operations a [`FaultRule`] can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Opening a file that does not exist yet (create).
    Create,
    /// Opening an existing file (read or append).
    Open,
    /// `File::append`.
    Append,
    /// `File::sync_data` / `File::sync_all`.
    Sync,
    /// `File::set_len`.
    SetLen,
    /// `File::read_at` and `Fs::read`.
    Read,
    /// `Fs::rename`.
    Rename,
    /// `Fs::remove_file` / `Fs::remove_dir_all`.
    Remove,
    /// `Fs::sync_dir`.
    SyncDir,
    /// `Fs::create_dir_all`.
    CreateDir,
}

/// Which operations fail, how and how often. Build with [`FaultRule::new`] and the
/// setters; install with [`FaultFs::inject`].
#[derive(Clone, Debug)]
pub struct FaultRule {
    op: Op,
    errno: i32,
    path_contains: Option<String>,
    skip: u64,
    times: Option<u64>,
    per_million: u32,
    seen: u64,
    fired: u64,
}

impl FaultRule {
    /// Every `op` fails with `errno` (e.g. `libc::ENOSPC`) until the rule is cleared.
    pub fn new(op: Op, errno: i32) -> FaultRule {
        FaultRule {
            op,
            errno,
            path_contains: None,
            skip: 0,
            times: None,
            per_million: 1_000_000,
            seen: 0,
            fired: 0,
        }
    }

    /// Only operations on a path containing `s`.
    pub fn path_contains(mut self, s: &str) -> FaultRule {
        self.path_contains = Some(s.to_string());
        self
    }

    /// Let the first `n` matching operations succeed.
    pub fn skip(mut self, n: u64) -> FaultRule {
        self.skip = n;
        self
    }

    /// Fail at most `n` operations, then let everything through.
    pub fn times(mut self, n: u64) -> FaultRule {
        self.times = Some(n);
        self
    }

    /// Fail each matching operation with probability `p` (0.0–1.0).
    pub fn probability(mut self, p: f64) -> FaultRule {
        self.per_million = (p.clamp(0.0, 1.0) * 1_000_000.0) as u32;
        self
    }
}

/// What a power cut keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutMode {
    /// Nothing that was not synced.
    Strict,
    /// A random prefix of the unsynced directory operations, and random unsynced pages.
    Random,
}

/// What one power cut did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Unsynced directory operations undone.
    pub dir_ops_undone: u64,
    /// Unsynced directory operations that survived.
    pub dir_ops_kept: u64,
    /// Unsynced bytes that were cut from file ends.
    pub bytes_dropped: u64,
    /// Unsynced pages that survived (Random mode).
    pub pages_kept: u64,
    /// Unsynced pages that read back as zeros (Random mode).
    pub pages_zeroed: u64,
}

#[derive(Debug)]
enum DirOp {
    /// A file was created at `path`.
    Create { path: PathBuf },
    /// A directory was created at `path`.
    CreateDir { path: PathBuf },
    /// `from` was renamed to `to`, whose durable contents were `replaced`.
    Rename {
        from: PathBuf,
        to: PathBuf,
        replaced: Option<Vec<u8>>,
    },
    /// `path`, whose durable contents were `content`, was removed.
    Remove { path: PathBuf, content: Vec<u8> },
}

#[derive(Debug)]
struct Pending {
    /// Directories whose sync has not happened yet; the op is durable when this is empty.
    dirs: Vec<PathBuf>,
    op: DirOp,
}

#[derive(Debug)]
struct Node {
    path: PathBuf,
    synced_len: u64,
}

#[derive(Debug)]
struct State {
    generation: u64,
    down: bool,
    next_id: u64,
    by_path: HashMap<PathBuf, u64>,
    nodes: HashMap<u64, Node>,
    pending: Vec<Pending>,
    rules: Vec<FaultRule>,
    rng: u64,
    injected: u64,
    cuts: u64,
    /// A cut scheduled before the n-th next mutating operation.
    scheduled: Option<(u64, CutMode)>,
    last_report: Option<CutReport>,
    /// Why a scheduled cut could not rewrite the directory, if it could not.
    model_error: Option<String>,
}

/// The fault-injecting file system (see the module docs). Share it as an `Arc`.
///
/// The value [`FaultFs::new`] returns outlives power cuts: after [`FaultFs::power_on`] it
/// works again. A *process view* ([`FaultFs::process`]) models one process's use of the
/// disk: once the power fails, every operation through it fails for ever, path operations
/// included, so a thread of the "dead" process that lingers in a test can never touch the
/// files of the next one.
#[derive(Debug)]
pub struct FaultFs {
    state: Arc<Mutex<State>>,
    /// `Some(generation)` for a process view: it dies with that generation.
    process: Option<u64>,
}

/// `EIO`, what a real device answers once it has lost power. `_why` documents the call
/// site: the errno alone is what callers see, as with a real disk.
fn eio(_why: &str) -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

fn parent(p: &Path) -> PathBuf {
    crate::durable::parent_dir(p).to_path_buf()
}

impl State {
    /// Counts down a scheduled cut; cuts the power when it is due.
    fn tick(&mut self) -> io::Result<()> {
        match self.scheduled {
            Some((0, mode)) => {
                self.scheduled = None;
                if let Err(e) = self.cut(mode) {
                    // A fault of the model, not of the code under test: kept for
                    // `power_on` to report loudly (this thread may be a background one
                    // that only logs I/O errors).
                    self.model_error = Some(e.to_string());
                }
                Err(eio("the power failed"))
            }
            Some((n, mode)) => {
                self.scheduled = Some((n - 1, mode));
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn cut(&mut self, mode: CutMode) -> io::Result<CutReport> {
        let s = self;
        s.down = true;
        s.cuts += 1;
        let mut report = CutReport::default();
        let pending = std::mem::take(&mut s.pending);
        let keep = match mode {
            CutMode::Strict => 0,
            CutMode::Random => (s.rand() % (pending.len() as u64 + 1)) as usize,
        };
        report.dir_ops_kept = keep as u64;
        let mut undo: Vec<Pending> = pending.into_iter().skip(keep).collect();
        report.dir_ops_undone = undo.len() as u64;
        while let Some(p) = undo.pop() {
            s.undo(p.op)?;
        }
        let files: Vec<(PathBuf, u64)> = s
            .nodes
            .values()
            .map(|n| (n.path.clone(), n.synced_len))
            .collect();
        for (path, synced) in files {
            s.cut_file(&path, synced, mode, &mut report)?;
        }
        // Everything on disk now is what survived: the next generation starts durable.
        s.nodes.clear();
        s.by_path.clear();
        s.last_report = Some(report);
        Ok(report)
    }

    fn rand(&mut self) -> u64 {
        // splitmix64: deterministic for a seed, good enough to pick cut points.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn check_alive(&self, generation: u64) -> io::Result<()> {
        if self.down {
            return Err(eio("the power is off"));
        }
        if generation != self.generation {
            return Err(eio("handle opened before a power cut"));
        }
        Ok(())
    }

    /// The injected error for `op` on `path`, if a rule fires.
    fn fault(&mut self, op: Op, path: &Path) -> Option<io::Error> {
        let roll = self.rand();
        for r in &mut self.rules {
            if r.op != op {
                continue;
            }
            if let Some(s) = &r.path_contains
                && !path.to_string_lossy().contains(s.as_str())
            {
                continue;
            }
            r.seen += 1;
            if r.seen <= r.skip || r.times.is_some_and(|t| r.fired >= t) {
                continue;
            }
            if (roll % 1_000_000) as u32 >= r.per_million {
                continue;
            }
            r.fired += 1;
            self.injected += 1;
            return Some(io::Error::from_raw_os_error(r.errno));
        }
        None
    }

    fn node_for(&mut self, path: &Path, synced_len: u64) -> u64 {
        if let Some(id) = self.by_path.get(path) {
            return *id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.by_path.insert(path.to_path_buf(), id);
        self.nodes.insert(
            id,
            Node {
                path: path.to_path_buf(),
                synced_len,
            },
        );
        id
    }

    /// The contents of `path` a power cut now would leave (its synced prefix).
    fn durable_content(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut data = std::fs::read(path)?;
        if let Some(n) = self.by_path.get(path).and_then(|id| self.nodes.get(id)) {
            data.truncate(n.synced_len as usize);
        }
        Ok(data)
    }

    fn forget_path(&mut self, path: &Path) {
        if let Some(id) = self.by_path.remove(path) {
            self.nodes.remove(&id);
        }
    }

    fn forget_under(&mut self, dir: &Path) {
        let gone: Vec<PathBuf> = self
            .by_path
            .keys()
            .filter(|p| p.starts_with(dir))
            .cloned()
            .collect();
        for p in gone {
            self.forget_path(&p);
        }
    }

    /// Drops the pending operations made moot by the removal of the whole of `dir`.
    fn forget_pending_under(&mut self, dir: &Path) {
        let pending = std::mem::take(&mut self.pending);
        for mut p in pending {
            p.dirs.retain(|d| !d.starts_with(dir));
            let op = match p.op {
                DirOp::Create { path } | DirOp::CreateDir { path } if path.starts_with(dir) => {
                    continue;
                }
                DirOp::Remove { path, .. } if path.starts_with(dir) => continue,
                // Moved into the removed directory: gone whichever way the cut goes.
                DirOp::Rename { to, .. } if to.starts_with(dir) => continue,
                // Moved out of it: undoing it can only take the file away from `to`
                // (and bring back what it replaced there).
                DirOp::Rename { from, to, replaced } if from.starts_with(dir) => match replaced {
                    Some(content) => DirOp::Remove { path: to, content },
                    None => DirOp::Create { path: to },
                },
                op => op,
            };
            p.op = op;
            self.pending.push(p);
        }
    }

    fn undo(&mut self, op: DirOp) -> io::Result<()> {
        match op {
            DirOp::Create { path } => {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                self.forget_path(&path);
            }
            DirOp::CreateDir { path } => {
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                self.forget_under(&path);
            }
            DirOp::Rename { from, to, replaced } => {
                std::fs::rename(&to, &from)?;
                if let Some(id) = self.by_path.remove(&to) {
                    self.by_path.insert(from.clone(), id);
                    if let Some(n) = self.nodes.get_mut(&id) {
                        n.path = from;
                    }
                }
                if let Some(content) = replaced {
                    std::fs::write(&to, content)?;
                }
            }
            DirOp::Remove { path, content } => {
                std::fs::write(&path, content)?;
                self.forget_path(&path);
            }
        }
        Ok(())
    }

    /// Cuts or scrambles the unsynced tail of the file at `path`.
    fn cut_file(
        &mut self,
        path: &Path,
        synced_len: u64,
        mode: CutMode,
        report: &mut CutReport,
    ) -> io::Result<()> {
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if len <= synced_len {
            return Ok(());
        }
        let f = OpenOptions::new().write(true).open(path)?;
        let new_len = match mode {
            CutMode::Strict => synced_len,
            CutMode::Random => {
                let first_page = synced_len / PAGE_BYTES;
                let last_page = (len - 1) / PAGE_BYTES;
                let mut end = synced_len;
                for p in first_page..=last_page {
                    let start = (p * PAGE_BYTES).max(synced_len);
                    let stop = ((p + 1) * PAGE_BYTES).min(len);
                    if self.rand().is_multiple_of(2) {
                        report.pages_kept += 1;
                        end = stop;
                    } else {
                        report.pages_zeroed += 1;
                        let zeros = vec![0u8; (stop - start) as usize];
                        f.write_all_at(&zeros, start)?;
                    }
                }
                end
            }
        };
        f.set_len(new_len)?;
        report.bytes_dropped += len - new_len;
        Ok(())
    }
}

impl FaultFs {
    /// A fault-injecting file system whose random choices follow `seed`.
    pub fn new(seed: u64) -> Arc<FaultFs> {
        Arc::new(FaultFs {
            state: Arc::new(Mutex::new(State {
                generation: 0,
                down: false,
                next_id: 1,
                by_path: HashMap::new(),
                nodes: HashMap::new(),
                pending: Vec::new(),
                rules: Vec::new(),
                rng: seed,
                injected: 0,
                cuts: 0,
                scheduled: None,
                last_report: None,
                model_error: None,
            })),
            process: None,
        })
    }

    /// A view for one process: the same disk, dead once the power fails (see the type's
    /// docs). Give each "process" (each open of a database in a test) its own.
    pub fn process(&self) -> Arc<FaultFs> {
        let generation = self.state.lock().generation;
        Arc::new(FaultFs {
            state: self.state.clone(),
            process: Some(generation),
        })
    }

    /// The generation this handle may operate in.
    fn generation(&self, s: &State) -> u64 {
        self.process.unwrap_or(s.generation)
    }

    /// Installs a fault rule (rules are tried in the order installed).
    pub fn inject(&self, rule: FaultRule) {
        self.state.lock().rules.push(rule);
    }

    /// Removes every fault rule: operations succeed again (a disk with space again).
    pub fn clear_faults(&self) {
        self.state.lock().rules.clear();
    }

    /// How many operations failed by injection so far.
    pub fn injected(&self) -> u64 {
        self.state.lock().injected
    }

    /// How many power cuts so far.
    pub fn cuts(&self) -> u64 {
        self.state.lock().cuts
    }

    /// Unsynced directory operations now pending.
    pub fn pending_dir_ops(&self) -> usize {
        self.state.lock().pending.len()
    }

    /// Whether the power is off.
    pub fn is_down(&self) -> bool {
        self.state.lock().down
    }

    /// A random number from this file system's seeded generator (for tests that want their
    /// choices to replay with the seed).
    pub fn random(&self) -> u64 {
        self.state.lock().rand()
    }

    /// Cuts the power: the directory now holds only what a disk could after a real power
    /// failure (see [`CutMode`]), and every operation fails until [`FaultFs::power_on`].
    ///
    /// # Errors
    /// A real I/O error while rewriting the directory.
    pub fn power_cut(&self, mode: CutMode) -> io::Result<CutReport> {
        self.state.lock().cut(mode)
    }

    /// Schedules a power cut right before the `n`-th next operation that changes anything
    /// (create, append, sync, truncate, rename, remove, directory sync or create; `n = 0`
    /// is the very next one), whichever thread performs it. That operation and all later
    /// ones fail; [`FaultFs::last_cut`] tells what the cut did.
    pub fn schedule_cut(&self, n: u64, mode: CutMode) {
        self.state.lock().scheduled = Some((n, mode));
    }

    /// Cancels a scheduled cut that has not fired yet.
    pub fn cancel_cut(&self) {
        self.state.lock().scheduled = None;
    }

    /// The report of the last cut, if any.
    pub fn last_cut(&self) -> Option<CutReport> {
        self.state.lock().last_report
    }

    /// Turns the power back on: new operations succeed; handles from before stay dead.
    ///
    /// # Panics
    /// If a scheduled cut failed to rewrite the directory (a fault of the model or of the
    /// real disk under it): the disk no longer matches any power cut, so the test cannot
    /// go on.
    pub fn power_on(&self) {
        let mut s = self.state.lock();
        if let Some(e) = s.model_error.take() {
            panic!("FaultFs: a scheduled power cut failed half-way: {e}");
        }
        s.down = false;
        s.generation += 1;
    }

    fn record_dir_op(s: &mut State, dirs: Vec<PathBuf>, op: DirOp) {
        s.pending.push(Pending { dirs, op });
    }
}

impl Fs for FaultFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn File>> {
        let mut s = self.state.lock();
        s.check_alive(self.generation(&s))?;
        if mode != OpenMode::Read {
            s.tick()?;
        }
        let existed = path.exists();
        let op = if existed || mode == OpenMode::Read || mode == OpenMode::Append {
            Op::Open
        } else {
            Op::Create
        };
        if let Some(e) = s.fault(op, path) {
            return Err(e);
        }
        let real = open_std(path, mode)?;
        let id = match mode {
            OpenMode::Read => 0,
            OpenMode::Append => {
                let len = real.metadata()?.len();
                s.node_for(path, len)
            }
            OpenMode::CreateNew | OpenMode::CreateTruncate => {
                if existed {
                    // Truncating an existing file: its old bytes are not promised any more.
                    let id = s.node_for(path, 0);
                    if let Some(n) = s.nodes.get_mut(&id) {
                        n.synced_len = 0;
                    }
                    id
                } else {
                    s.forget_path(path);
                    let id = s.node_for(path, 0);
                    FaultFs::record_dir_op(
                        &mut s,
                        vec![parent(path)],
                        DirOp::Create {
                            path: path.to_path_buf(),
                        },
                    );
                    id
                }
            }
        };
        Ok(Box::new(FaultFile {
            state: self.state.clone(),
            generation: self.generation(&s),
            id,
            path: path.to_path_buf(),
            real,
        }))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive(self.generation(&s))?;
        s.tick()?;
        if let Some(e) = s.fault(Op::CreateDir, dir) {
            return Err(e);
        }
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(p) = at.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
            missing.push(p.to_path_buf());
            at = p.parent();
        }
        std::fs::create_dir_all(dir)?;
        for m in missing.into_iter().rev() {
            let dirs = vec![parent(&m)];
            FaultFs::record_dir_op(&mut s, dirs, DirOp::CreateDir { path: m });
        }
        Ok(())
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut s = self.state.lock();
        s.check_alive(self.generation(&s))?;
        if let Some(e) = s.fault(Op::Read, dir) {
            return Err(e);
        }
        std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive(self.generation(&s))?;
        s.tick()?;
        if let Some(e) = s.fault(Op::Rename, to) {
            return Err(e);
        }
        let replaced = if to.exists() {
            Some(s.durable_content(to)?)
        } else {
            None
        };
        if !s.by_path.contains_key(from) {
            let len = std::fs::metadata(from)?.len();
            s.node_for(from, len);
        }
        std::fs::rename(from, to)?;
        s.forget_path(to);
        if let Some(id) = s.by_path.remove(from) {
            s.by_path.insert(to.to_path_buf(), id);
            if let Some(n) = s.nodes.get_mut(&id) {
                n.path = to.to_path_buf();
            }
        }
        let mut dirs = vec![parent(to)];
        if parent(from) != parent(to) {
            dirs.push(parent(from));
        }
        FaultFs::record_dir_op(
            &mut s,
            dirs,
            DirOp::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                replaced,
            },
        );
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive(self.generation(&s))?;
        s.tick()?;
        if let Some(e) = s.fault(Op::Remove, path) {
            return Err(e);
        }
        let content = s.durable_content(path)?;
        std::fs::remove_file(path)?;
        s.forget_path(path);
        FaultFs::record_dir_op(
            &mut s,
            vec![parent(path)],
            DirOp::Remove {
                path: path.to_path_buf(),
                content,
            },
        );
        Ok(())
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive(self.generation(&s))?;
        s.tick()?;
        if let Some(e) = s.fault(Op::Remove, dir) {
            return Err(e);
        }
        // Modelled as durable at once: the engine only removes whole directories that no
        // recovery needs any more (a dropped table's after its catalog edit is durable, a
        // split parent's or an unlisted one's, which the next open removes again if they
        // came back). Unsynced operations inside it are moot now; one that moved a file
        // out of it can still be undone, as the loss of the file it left at its target.
        std::fs::remove_dir_all(dir)?;
        s.forget_under(dir);
        s.forget_pending_under(dir);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive(self.generation(&s))?;
        s.tick()?;
        if let Some(e) = s.fault(Op::SyncDir, dir) {
            return Err(e);
        }
        if !dir.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        for p in &mut s.pending {
            p.dirs.retain(|d| d != dir);
        }
        // An op is durable once every directory it touched was synced, and every op before
        // it in the same directory was (metadata reaches the journal in order).
        let mut still = Vec::with_capacity(s.pending.len());
        let mut blocked: Vec<PathBuf> = Vec::new();
        for p in std::mem::take(&mut s.pending) {
            let touches_blocked = op_dirs(&p.op).iter().any(|d| blocked.contains(d));
            if p.dirs.is_empty() && !touches_blocked {
                continue;
            }
            blocked.extend(op_dirs(&p.op));
            still.push(p);
        }
        s.pending = still;
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let s = self.state.lock();
        s.check_alive(self.generation(&s))?;
        path.try_exists()
    }

    fn is_dir(&self, path: &Path) -> io::Result<bool> {
        let s = self.state.lock();
        s.check_alive(self.generation(&s))?;
        is_dir(path)
    }
}

fn op_dirs(op: &DirOp) -> Vec<PathBuf> {
    match op {
        DirOp::Create { path } | DirOp::CreateDir { path } | DirOp::Remove { path, .. } => {
            vec![parent(path)]
        }
        DirOp::Rename { from, to, .. } => vec![parent(from), parent(to)],
    }
}

fn is_dir(path: &Path) -> io::Result<bool> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.is_dir()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A file opened through [`FaultFs`].
#[derive(Debug)]
struct FaultFile {
    state: Arc<Mutex<State>>,
    generation: u64,
    /// The model's node (0 for read-only handles, which the model does not track).
    id: u64,
    /// The path at open, for fault rules when the node is gone.
    path: PathBuf,
    real: StdFile,
}

impl FaultFile {
    fn path(&self, s: &State) -> PathBuf {
        s.nodes
            .get(&self.id)
            .map_or_else(|| self.path.clone(), |n| n.path.clone())
    }
}

impl File for FaultFile {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive(self.generation)?;
        s.tick()?;
        let path = self.path(&s);
        if let Some(e) = s.fault(Op::Append, &path) {
            // A full disk may take part of the write before refusing the rest.
            if !buf.is_empty() && e.raw_os_error() == Some(libc::ENOSPC) {
                let part = (s.rand() % buf.len() as u64) as usize;
                (&self.real).write_all(&buf[..part])?;
            }
            return Err(e);
        }
        (&self.real).write_all(buf)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        {
            let mut s = self.state.lock();
            s.check_alive(self.generation)?;
            let path = self.path(&s);
            if let Some(e) = s.fault(Op::Read, &path) {
                return Err(e);
            }
        }
        self.real.read_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive(self.generation)?;
        s.tick()?;
        let path = self.path(&s);
        if let Some(e) = s.fault(Op::Sync, &path) {
            return Err(e);
        }
        // No real fsync: the model decides what a cut keeps (see the module docs).
        let len = self.real.metadata()?.len();
        if let Some(n) = s.nodes.get_mut(&self.id) {
            n.synced_len = len;
        }
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        {
            let s = self.state.lock();
            s.check_alive(self.generation)?;
        }
        Ok(self.real.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive(self.generation)?;
        s.tick()?;
        let path = self.path(&s);
        if let Some(e) = s.fault(Op::SetLen, &path) {
            return Err(e);
        }
        self.real.set_len(len)?;
        if let Some(n) = s.nodes.get_mut(&self.id) {
            n.synced_len = n.synced_len.min(len);
        }
        Ok(())
    }
}
