//! The file_roll sink: appends event bodies (one per line) to a file that is rolled when it
//! reaches `roll_size` bytes or has been open for `roll_interval`, so many small events
//! become few large files (the seeds' 1 MB–1 GB advice). Like Flume's `hdfs.rollInterval`,
//! the interval is a timer, not only a check on the next delivery: the runner's idle
//! [`Sink::tick`] rolls a due file, so an idle pipeline's data is published within the
//! interval instead of waiting for the next batch or for shutdown. The open file is
//! `.events-<start ms>-<seq>.log.inprogress`; a rolled file is fsynced and renamed to
//! `events-<start ms>-<seq>.log`, so readers only ever see complete files.
//! `deliver` fsyncs before returning: the channel commits only what is on disk.
//! Dead letters are written with a `#dead-letter reason=…` line before them.
//!
//! Every file operation goes through the file-system seam ([`FileRollOptions::fs`]): the
//! in-progress file's name is synced with the directory when it is created, so the first
//! `deliver` into it is durable too; the publishing rename is synced before the next file.
//! Not a reader of what it wrote: nothing here parses the output files.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use speedlayer_vfs::{AppendWriter, OpenMode, SharedFs, durable};

use super::Sink;
use crate::collect::Event;
use crate::error::{Error, Result};

/// file_roll options.
#[derive(Debug, Clone)]
pub struct FileRollOptions {
    /// Output directory.
    pub dir: PathBuf,
    /// Roll when a file reaches this many bytes.
    pub roll_size: u64,
    /// Roll when a file has been open this long (checked on delivery and on every idle
    /// tick of the sink runner, so within ~100 ms of the deadline).
    pub roll_interval: Duration,
    /// The file system the output goes through. Default: the real one.
    pub fs: SharedFs,
}

struct Current {
    w: BufWriter<AppendWriter>,
    tmp: PathBuf,
    done: PathBuf,
    len: u64,
    opened: Instant,
}

/// The file_roll sink.
pub struct FileRollSink {
    name: String,
    opts: FileRollOptions,
    cur: Option<Current>,
    seq: u64,
}

impl FileRollSink {
    /// Creates the sink (and its directory).
    ///
    /// # Errors
    /// If the directory cannot be created.
    pub fn new(name: &str, opts: FileRollOptions) -> Result<Self> {
        let fs = &*opts.fs;
        durable::create_dir_synced(fs, &opts.dir)?;
        // A file left in progress by a crash holds delivered events: publish it.
        let mut published = false;
        for path in fs
            .read_dir(&opts.dir)
            .map_err(|e| Error::io("list", &opts.dir, e))?
        {
            let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            if let Some(base) = name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".inprogress"))
            {
                let to = opts.dir.join(base);
                fs.rename(&path, &to)
                    .map_err(|err| Error::io("rename", &path, err))?;
                published = true;
            }
        }
        if published {
            durable::sync_dir(fs, &opts.dir)?;
        }
        Ok(FileRollSink {
            name: name.to_owned(),
            opts,
            cur: None,
            seq: 0,
        })
    }

    /// Rolls the open file if it has been open for the roll interval.
    fn roll_if_due(&mut self) -> Result<()> {
        if self
            .cur
            .as_ref()
            .is_some_and(|c| c.opened.elapsed() >= self.opts.roll_interval)
        {
            self.roll()?;
        }
        Ok(())
    }

    fn roll(&mut self) -> Result<()> {
        if let Some(mut c) = self.cur.take() {
            c.w.flush().map_err(|e| Error::io("write", &c.tmp, e))?;
            c.w.get_ref()
                .file()
                .sync_all()
                .map_err(|e| Error::io("fsync", &c.tmp, e))?;
            self.opts
                .fs
                .rename(&c.tmp, &c.done)
                .map_err(|e| Error::io("rename", &c.tmp, e))?;
            durable::sync_dir(&*self.opts.fs, &self.opts.dir)?;
            tracing::debug!(sink = %self.name, file = %c.done.display(), bytes = c.len, "rolled");
        }
        Ok(())
    }

    fn open(&mut self) -> Result<&mut Current> {
        if self.cur.is_none() {
            self.seq += 1;
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let base = format!("events-{ms}-{:06}.log", self.seq);
            let tmp = self.opts.dir.join(format!(".{base}.inprogress"));
            let f = self
                .opts
                .fs
                .open(&tmp, OpenMode::CreateTruncate)
                .map_err(|e| Error::io("create", &tmp, e))?;
            // IMPORTANT: `deliver` syncs only the file's data; its name must already be
            // durable, or a power cut forgets delivered (and committed) events.
            durable::sync_dir(&*self.opts.fs, &self.opts.dir)?;
            self.cur = Some(Current {
                w: BufWriter::with_capacity(1 << 20, AppendWriter::new(f)),
                tmp,
                done: self.opts.dir.join(base),
                len: 0,
                opened: Instant::now(),
            });
        }
        self.cur.as_mut().ok_or_else(|| unreachable!("just opened"))
    }
}

impl Sink for FileRollSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver(&mut self, events: &[&Event]) -> Result<()> {
        self.roll_if_due()?;
        for e in events {
            let roll_size = self.opts.roll_size;
            let c = self.open()?;
            let mut n = e.body.len() as u64 + 1;
            if let Some(r) = &e.dead_letter {
                let line = format!("#dead-letter reason={r:?}\n");
                n += line.len() as u64;
                c.w.write_all(line.as_bytes())
                    .map_err(|err| Error::io("write", &c.tmp, err))?;
            }
            c.w.write_all(&e.body)
                .and_then(|()| c.w.write_all(b"\n"))
                .map_err(|err| Error::io("write", &c.tmp, err))?;
            c.len += n;
            if c.len >= roll_size {
                self.roll()?;
            }
        }
        if let Some(c) = self.cur.as_mut() {
            c.w.flush().map_err(|e| Error::io("write", &c.tmp, e))?;
            // IMPORTANT: the channel commits this batch once we return.
            c.w.get_ref()
                .file()
                .sync_data()
                .map_err(|e| Error::io("fsync", &c.tmp, e))?;
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<()> {
        self.roll_if_due()
    }

    fn close(&mut self) -> Result<()> {
        self.roll()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn sink(dir: &std::path::Path, roll_size: u64, roll_interval: Duration) -> FileRollSink {
        FileRollSink::new(
            "archive",
            FileRollOptions {
                dir: dir.to_path_buf(),
                roll_size,
                roll_interval,
                fs: speedlayer_vfs::real(),
            },
        )
        .unwrap()
    }

    /// (completed file names, in-progress file names), sorted.
    fn files(dir: &std::path::Path) -> (Vec<String>, Vec<String>) {
        let mut done = Vec::new();
        let mut open = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            if n.ends_with(".inprogress") {
                open.push(n);
            } else {
                done.push(n);
            }
        }
        done.sort();
        open.sort();
        (done, open)
    }

    fn deliver(s: &mut FileRollSink, lines: impl Iterator<Item = String>) {
        let events: Vec<Event> = lines.map(|l| Event::new(l.into_bytes())).collect();
        let refs: Vec<&Event> = events.iter().collect();
        s.deliver(&refs).unwrap();
    }

    fn read_all(dir: &std::path::Path, names: &[String]) -> Vec<String> {
        names
            .iter()
            .flat_map(|n| {
                fs::read_to_string(dir.join(n))
                    .unwrap()
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn rolls_by_size_into_complete_files_holding_every_line_once() {
        let d = tempfile::tempdir().unwrap();
        // "line-0000" + '\n' = 10 bytes: a 100-byte roll size makes files of 10 lines.
        let mut s = sink(d.path(), 100, Duration::from_secs(3600));
        let lines: Vec<String> = (0..35).map(|i| format!("line-{i:04}")).collect();
        deliver(&mut s, lines.iter().take(20).cloned());
        deliver(&mut s, lines.iter().skip(20).cloned());
        let (done, open) = files(d.path());
        assert_eq!(done.len(), 3, "{done:?}");
        assert_eq!(open.len(), 1, "the last 5 lines are still in progress");
        for n in &done {
            assert_eq!(fs::metadata(d.path().join(n)).unwrap().len(), 100, "{n}");
        }
        s.close().unwrap();
        let (done, open) = files(d.path());
        assert_eq!((done.len(), open.len()), (4, 0));
        assert_eq!(read_all(d.path(), &done), lines);
    }

    #[test]
    fn rolls_by_time_on_the_next_delivery() {
        let d = tempfile::tempdir().unwrap();
        let mut s = sink(d.path(), u64::MAX, Duration::from_millis(50));
        deliver(&mut s, (0..3).map(|i| format!("a{i}")));
        assert_eq!(
            files(d.path()).0.len(),
            0,
            "nothing rolled before the interval"
        );
        // The interval is measured on a real clock: let it pass.
        std::thread::sleep(Duration::from_millis(60));
        deliver(&mut s, (0..2).map(|i| format!("b{i}")));
        let (done, open) = files(d.path());
        assert_eq!(done.len(), 1, "the file older than the interval was rolled");
        assert_eq!(read_all(d.path(), &done), ["a0", "a1", "a2"]);
        assert_eq!(open.len(), 1);
        s.close().unwrap();
        let (done, _) = files(d.path());
        assert_eq!(read_all(d.path(), &done), ["a0", "a1", "a2", "b0", "b1"]);
    }

    #[test]
    fn a_tick_past_the_interval_rolls_without_a_new_delivery() {
        let d = tempfile::tempdir().unwrap();
        let mut s = sink(d.path(), u64::MAX, Duration::from_millis(50));
        s.tick().unwrap();
        assert_eq!(
            files(d.path()),
            (vec![], vec![]),
            "nothing open, nothing to roll"
        );
        deliver(&mut s, (0..3).map(|i| format!("a{i}")));
        s.tick().unwrap();
        assert_eq!(files(d.path()).0.len(), 0, "not due yet");
        // The interval is measured on a real clock: let it pass.
        std::thread::sleep(Duration::from_millis(60));
        s.tick().unwrap();
        let (done, open) = files(d.path());
        assert!(open.is_empty(), "{open:?}");
        assert_eq!(read_all(d.path(), &done), ["a0", "a1", "a2"]);
    }

    #[test]
    fn a_file_left_in_progress_by_a_crash_is_published_on_start() {
        let d = tempfile::tempdir().unwrap();
        let mut s = sink(d.path(), u64::MAX, Duration::from_secs(3600));
        deliver(&mut s, (0..4).map(|i| format!("x{i}")));
        drop(s); // no close: as if the process died after `deliver` returned (fsynced)
        assert_eq!(files(d.path()).1.len(), 1);
        let _restarted = sink(d.path(), u64::MAX, Duration::from_secs(3600));
        let (done, open) = files(d.path());
        assert!(open.is_empty());
        assert_eq!(read_all(d.path(), &done), ["x0", "x1", "x2", "x3"]);
    }

    #[test]
    fn a_delivered_batch_survives_a_power_cut_before_any_roll() {
        let d = tempfile::tempdir().unwrap();
        let fault = speedlayer_vfs::FaultFs::new(1);
        let opts = FileRollOptions {
            dir: d.path().join("out"),
            roll_size: u64::MAX,
            roll_interval: Duration::from_secs(3600),
            fs: fault.clone(),
        };
        let mut s = FileRollSink::new("archive", opts.clone()).unwrap();
        deliver(&mut s, (0..3).map(|i| format!("p{i}")));
        drop(s);
        fault.power_cut(speedlayer_vfs::CutMode::Strict).unwrap();
        fault.power_on();
        let _restarted = FileRollSink::new("archive", opts).unwrap();
        let (done, open) = files(&d.path().join("out"));
        assert!(open.is_empty());
        assert_eq!(read_all(&d.path().join("out"), &done), ["p0", "p1", "p2"]);
    }

    #[test]
    fn dead_letters_carry_their_reason() {
        let d = tempfile::tempdir().unwrap();
        let mut s = sink(d.path(), u64::MAX, Duration::from_secs(3600));
        let mut bad = Event::new(b"garbage".to_vec());
        bad.dead_letter = Some("field 7 (speed): not a number".into());
        s.deliver(&[&bad]).unwrap();
        s.close().unwrap();
        let (done, _) = files(d.path());
        assert_eq!(
            read_all(d.path(), &done),
            [
                "#dead-letter reason=\"field 7 (speed): not a number\"",
                "garbage"
            ]
        );
    }
}
