//! The real `speedlayer-ingest worker` on a slow stream (one event every 100 ms over four
//! partitions, so it reaches the end of a partition again and again) against a real tansu
//! broker and a real `speedlayer-server`, stderr on a pipe. Reaching a partition's end is
//! normal: it must not be logged at ERROR (rdkafka's default did, once per event or so).
//! Text logs carry no ANSI colour codes; `--log-format json` lines each parse as JSON.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use speedlayer_tests::bins::bin_path;
use speedlayer_tests::server::ServerProcess;
use speedlayer_tests::tansu::Tansu;

const TOPIC: &str = "SmartCar-Topic";
const EVENTS: usize = 30;

struct WorkerProcess {
    child: Child,
    http: SocketAddr,
    stderr: std::thread::JoinHandle<String>,
}

fn start_worker(
    tansu: &Tansu,
    server: &ServerProcess,
    rules: &Path,
    group: &str,
    format: &str,
) -> WorkerProcess {
    let mut child = Command::new(bin_path("speedlayer-ingest"))
        .args(["--log-format", format, "worker", "--brokers"])
        .arg(tansu.brokers())
        .args(["--topic", TOPIC, "--group", group, "--server"])
        .arg(server.url())
        .arg("--resp")
        .arg(server.resp.expect("RESP on").to_string())
        .arg("--rules")
        .arg(rules)
        .args(["--http-addr", "127.0.0.1:0", "--idle-flush", "1s"])
        // The consumer context's trace line proves partition ends were seen (and demoted).
        .env("RUST_LOG", "info,speedlayer_ingest::worker::consumer=trace")
        .env_remove("NO_COLOR")
        .env_remove("SPEEDLAYER_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn worker");
    let mut err = child.stderr.take().expect("stderr");
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read READY");
    let http = line
        .trim()
        .strip_prefix("READY http=")
        .unwrap_or_else(|| panic!("not a READY line: {line:?}"))
        .parse()
        .expect("READY address");
    WorkerProcess {
        child,
        http,
        stderr,
    }
}

impl WorkerProcess {
    fn stored(&self) -> u64 {
        let mut s = std::net::TcpStream::connect(self.http).expect("connect /metrics");
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        // One sample per topic (`ingest_stored_total{topic="…"} N`): their sum.
        text.lines()
            .filter_map(|l| l.strip_prefix("ingest_stored_total"))
            .filter(|rest| rest.starts_with([' ', '{']))
            .filter_map(|rest| rest.rsplit(' ').next()?.trim().parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// Waits until every event is stored, SIGTERMs, returns stderr.
    fn drain_and_stop(mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.stored() < EVENTS as u64 {
            assert!(
                Instant::now() < deadline,
                "worker stored {} of {EVENTS}",
                self.stored()
            );
            std::thread::sleep(Duration::from_millis(100)); // polling /metrics
        }
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
        let status = self.child.wait().expect("wait worker");
        let log = self.stderr.join().unwrap_or_default();
        assert!(status.success(), "worker exited with {status}:\n{log}");
        log
    }
}

/// One valid driving event every 100 ms: a slow stream.
fn produce_slowly(brokers: &str) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for i in 0..EVENTS {
        let car = format!("V{:04}", i % 7);
        let line = format!("202611221430{:02},{car},3,0,-12,N,70,A07", i % 60);
        p.send(BaseRecord::to(TOPIC).key(&car).payload(&line))
            .map_err(|(e, _)| e)
            .expect("enqueue");
        p.flush(Duration::from_secs(10)).expect("flush");
        std::thread::sleep(Duration::from_millis(100)); // the stream is slow on purpose
    }
}

#[test]
fn partition_ends_are_not_errors_and_logs_have_no_colour_or_bad_json() {
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, 4);
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_pinned(&dir.path().join("data"), &[]);
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules.toml");

    let text_worker = start_worker(&tansu, &server, &rules, "g-text", "text");
    produce_slowly(&tansu.brokers());
    let text = text_worker.drain_and_stop();
    assert!(
        !text.contains("\x1b["),
        "ANSI escape in a piped log:\n{text:?}"
    );
    let errors: Vec<&str> = text.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(
        errors.is_empty(),
        "ERROR lines from a healthy worker:\n{}",
        errors.join("\n")
    );
    assert!(
        text.contains("partition end reached"),
        "the stream should have hit partition ends:\n{text}"
    );

    // A second group reads the same events from the start, logging JSON.
    let json_worker = start_worker(&tansu, &server, &rules, "g-json", "json");
    let json = json_worker.drain_and_stop();
    let mut eofs = 0;
    for line in json.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\nwhole log:\n{json}"));
        assert_ne!(v["level"], "ERROR", "ERROR from a healthy worker: {line}");
        if v["fields"]["message"] == "partition end reached" {
            eofs += 1;
        }
    }
    assert!(eofs > 0, "no partition end seen:\n{json}");
}
