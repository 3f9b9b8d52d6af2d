//! Thin entry point of `speedlayer-ingest`; the logic lives in the library.
//!
//! `speedlayer-ingest worker --brokers HOST:PORT --topic T --group G --server URL
//! --resp HOST:PORT --rules FILE --http-addr ADDR` runs the ingest worker; it prints
//! `READY http=ADDR` once `/metrics` is bound and stops cleanly on SIGINT/SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use speedlayer_ingest::metrics::{self, Registry};
use speedlayer_ingest::worker::{GrpcStore, MemoryStore, Worker, WorkerArgs, WorkerConfig};

#[derive(Parser)]
#[command(name = "speedlayer-ingest", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Consume the driving topic: store every event, run the rules, flag the sets.
    Worker(WorkerArgs),
}

async fn worker(args: WorkerArgs) -> speedlayer_ingest::Result<()> {
    let cfg = WorkerConfig::resolve(&args)?;
    let registry = Registry::new();
    let addr = metrics::serve(registry.clone(), &cfg.http_addr).await?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    if let Some(rest) = cfg.server.strip_prefix("mem://") {
        // An in-process, non-durable store for demos without a region server.
        tracing::warn!(name = rest, "using the in-memory store: nothing is durable");
        let w = Worker::connect(cfg, MemoryStore::new(), Arc::clone(&registry)).await?;
        println!("READY http={addr}");
        return w.run(rx).await;
    }
    // The region server may start after us: retry the connection with capped backoff.
    let mut delay = std::time::Duration::from_millis(100);
    let store = loop {
        match GrpcStore::connect(&cfg.server).await {
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

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Worker(args) => worker(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("speedlayer-ingest: {e}");
            ExitCode::FAILURE
        }
    }
}
