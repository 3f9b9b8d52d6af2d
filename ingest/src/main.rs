//! Thin entry point of `speedlayer-ingest`: parses flags and wires the library's
//! `simulate`, `collect` and `worker`.
//!
//! `speedlayer-ingest worker --brokers HOST:PORT --topic T --group G --server URL
//! --resp HOST:PORT --rules FILE --http-addr ADDR` runs the ingest worker; it prints
//! `READY http=ADDR` once `/metrics` is bound and stops cleanly on SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use speedlayer_ingest::collect::{agent, config::AgentConfig};
use speedlayer_ingest::metrics::{self, Registry};
use speedlayer_ingest::simulate::{self, SimOptions};
use speedlayer_ingest::worker::{GrpcStore, MemoryStore, Worker, WorkerArgs, WorkerConfig};
use speedlayer_logging::LogFormat;

#[derive(Parser)]
#[command(
    name = "speedlayer-ingest",
    version,
    about = "Speedlayer ingest: simulator, collector agent, worker"
)]
struct Cli {
    /// Log lines on stderr: `text` (coloured only when stderr is a terminal) or `json` (one
    /// object per line, for log shippers).
    #[arg(
        long,
        global = true,
        value_name = "text|json",
        value_enum,
        default_value_t = LogFormat::Text,
        env = "SPEEDLAYER_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

/// `worker --help` epilogue: a region server on its default ports (`speedlayer-server`
/// with no flags) and a local Kafka.
const WORKER_EXAMPLE: &str = "Example, against `speedlayer-server` on its default ports:
  speedlayer-ingest worker --brokers 127.0.0.1:9092 --topic SmartCar-Topic \\
    --server http://127.0.0.1:16020 --resp 127.0.0.1:6380 --rules config/rules.toml";

#[derive(Subcommand)]
enum Cmd {
    /// Write smart-car driving logs and status spool files (SPEC §1).
    Simulate {
        /// Number of cars.
        #[arg(long, default_value_t = 100)]
        cars: u32,
        /// Simulated seconds.
        #[arg(long)]
        duration: u64,
        /// Simulated seconds per wall second (0 = as fast as possible).
        #[arg(long, default_value_t = 1.0)]
        speedup: f64,
        /// RNG seed (default: from the clock).
        #[arg(long)]
        seed: Option<u64>,
        /// Fraction of malformed driving lines.
        #[arg(long, default_value_t = 0.0)]
        garbage_rate: f64,
        /// Live driving log file.
        #[arg(long)]
        driving_log: PathBuf,
        /// Spool directory for daily status files.
        #[arg(long)]
        status_spool: PathBuf,
        /// First simulated time, yyyyMMddHHmmss (default: now, UTC).
        #[arg(long)]
        start: Option<String>,
        /// Rotate the driving log at this many MiB instead of daily.
        #[arg(long)]
        rotate_size_mb: Option<u64>,
    },
    /// Consume the driving topic: store every event, run the rules, flag the sets.
    #[command(after_help = WORKER_EXAMPLE)]
    Worker(WorkerArgs),
    /// Run the collector agent described by a TOML file.
    Collect {
        /// Agent configuration (every key, commented: `config/agent.toml`).
        #[arg(long)]
        config: PathBuf,
        /// Serve /metrics here (overrides `[agent] http_addr`).
        #[arg(long)]
        http_addr: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = speedlayer_logging::init(cli.log_format, "info") {
        eprintln!("speedlayer-ingest: cannot set up logging: {e}");
        return ExitCode::FAILURE;
    }
    match cli.cmd {
        Cmd::Simulate {
            cars,
            duration,
            speedup,
            seed,
            garbage_rate,
            driving_log,
            status_spool,
            start,
            rotate_size_mb,
        } => {
            let start = match start {
                None => chrono::Utc::now().naive_utc(),
                Some(s) => match chrono::NaiveDateTime::parse_from_str(&s, "%Y%m%d%H%M%S") {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("speedlayer-ingest simulate: --start {s:?}: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            let seed = seed.unwrap_or_else(|| chrono::Utc::now().timestamp_micros() as u64);
            let opts = SimOptions {
                cars,
                duration_secs: duration,
                speedup,
                seed,
                garbage_rate,
                driving_log,
                status_spool,
                start,
                rotate_size: rotate_size_mb.map(|m| m * 1024 * 1024),
                progress: true,
            };
            let t0 = std::time::Instant::now();
            match simulate::run(&opts) {
                Ok(s) => {
                    let secs = t0.elapsed().as_secs_f64();
                    println!(
                        "simulate: seed={seed} cars={cars} seconds={duration} driving_lines={} garbage_lines={} status_records={} rotations={} spool_files={} elapsed_s={secs:.2} rate={:.0}/s",
                        s.driving_lines,
                        s.garbage_lines,
                        s.status_records,
                        s.rotations,
                        s.spool_files,
                        s.driving_lines as f64 / secs.max(1e-9)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("speedlayer-ingest simulate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Worker(args) => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("speedlayer-ingest worker: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(worker(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("speedlayer-ingest worker: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Collect { config, http_addr } => match collect(&config, http_addr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("speedlayer-ingest collect: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn collect(config: &std::path::Path, http_addr: Option<String>) -> speedlayer_ingest::Result<()> {
    let cfg = AgentConfig::load(config)?;
    let registry = Registry::for_binary("speedlayer-ingest collect");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| speedlayer_ingest::Error::io("start runtime", "tokio", e))?;
    let addr = http_addr.or_else(|| cfg.agent.http_addr.clone());
    let bound = match addr {
        Some(a) => Some(rt.block_on(metrics::serve(registry.clone(), &a))?),
        None => None,
    };
    // Handlers before READY: a SIGTERM sent right after it must still stop cleanly
    // (without them the default action kills the process mid-delivery).
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        let _rt = rt.enter();
        signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)))
    };
    let (mut term, mut int) =
        signals.map_err(|e| speedlayer_ingest::Error::io("listen for", "SIGTERM/SIGINT", e))?;
    let handle = agent::start(&cfg, &registry)?;
    tracing::info!(pipelines = cfg.pipeline.len(), "collector agent started");
    // The READY line is what scripts and tests wait on.
    match bound {
        Some(a) => println!("speedlayer-ingest collect: ready, metrics on http://{a}/metrics"),
        None => println!("speedlayer-ingest collect: ready"),
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    rt.spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        s2.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        if let Some(name) = handle.failed() {
            tracing::error!(component = %name, "component stopped; shutting down");
            break;
        }
        std::thread::sleep(Duration::from_millis(50)); // signal/failure poll
    }
    let r = handle.stop();
    tracing::info!(clean = r.is_ok(), "collector agent stopped");
    println!("speedlayer-ingest collect: stopped");
    r
}

async fn worker(args: WorkerArgs) -> speedlayer_ingest::Result<()> {
    let cfg = WorkerConfig::resolve(&args)?;
    let registry = Registry::for_binary("speedlayer-ingest worker");
    let addr = metrics::serve(registry.clone(), &cfg.http_addr).await?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    // Handlers now, before READY: a SIGTERM sent right after it must still stop cleanly.
    let (mut term, mut int) = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate())
            .and_then(|t| Ok((t, signal(SignalKind::interrupt())?)))
            .map_err(|e| speedlayer_ingest::Error::io("listen for", "SIGTERM/SIGINT", e))?
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = tx.send(true);
    });
    if let Some(rest) = cfg.server.strip_prefix("mem://") {
        // An in-process, non-durable store for demos without a region server.
        tracing::warn!(name = rest, "using the in-memory store: nothing is durable");
        let w = Worker::connect(cfg, MemoryStore::new(), Arc::clone(&registry)).await?;
        println!("READY http={addr}");
        return w.run(rx).await;
    }
    let mut opts = speedlayer_client::ClientOptions::default();
    let read = |p: &std::path::Path, what: &'static str| {
        std::fs::read(p).map_err(|e| speedlayer_ingest::Error::io(what, p, e))
    };
    if let Some(p) = &cfg.server_tls_ca {
        opts.tls_ca_pem = Some(read(p, "read the server's CA certificate")?);
    }
    if let Some(p) = &cfg.server_token_file {
        let token = read(p, "read the server's token file")?;
        opts.token = Some(String::from_utf8_lossy(&token).trim().to_owned());
    }
    // The region server may start after us: retry the connection with capped backoff.
    let mut delay = std::time::Duration::from_millis(100);
    let store = loop {
        match GrpcStore::connect_with(&cfg.server, opts.clone()).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "region server not reachable");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stopped(rx.clone()) => return Ok(()),
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
        }
    };
    let w = Worker::connect(cfg, store, Arc::clone(&registry)).await?;
    println!("READY http={addr}");
    w.run(rx).await
}

async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}
