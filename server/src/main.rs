//! Thin entry point of `speedlayer-server`: parse flags, start the enabled services, print
//! the `READY` line, wait for SIGINT/SIGTERM, shut down gracefully. Logic lives in the
//! library.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use speedlayer_server::config::ServerArgs;
use speedlayer_server::resp::RespServer;
use speedlayer_server::resp::memory::CountingAlloc;
use tokio::signal::unix::{SignalKind, signal};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() -> ExitCode {
    CountingAlloc::activate();
    let args = ServerArgs::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let settings = match args.resolve() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let resp = match settings.resp.clone() {
            Some(cfg) => match RespServer::start(cfg).await {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::error!("RESP service failed to start: {e}");
                    return ExitCode::from(1);
                }
            },
            None => None,
        };
        let mut ready = String::from("READY");
        if let Some(h) = &resp {
            ready.push_str(&format!(" resp={}", h.local_addr()));
        }
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{ready}");
            let _ = out.flush();
        }
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return ExitCode::from(1);
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        if let Some(h) = resp
            && let Err(e) = h.shutdown().await
        {
            tracing::error!("RESP shutdown failed: {e}");
            return ExitCode::from(1);
        }
        ExitCode::SUCCESS
    })
}
