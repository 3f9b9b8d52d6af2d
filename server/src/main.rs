//! Thin entry point of `speedlayer-server`: parse flags, lock the data directory, start the
//! enabled services, print the `READY` line, wait for SIGINT/SIGTERM, shut down gracefully.
//! Logic lives in the library.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use speedlayer_cluster::{Addresses, Fence, Member};
use speedlayer_server::RegionServer;
use speedlayer_server::config::ServerArgs;
use speedlayer_server::data_dir;
use speedlayer_server::grpc::cluster::ClusterNode;
use speedlayer_server::grpc::cluster_split::SplitPolicy;
use speedlayer_server::http::ConsoleConfig;
use speedlayer_server::resp::memory::CountingAlloc;
use speedlayer_server::resp::start_on_own_runtime;
use tokio::signal::unix::{SignalKind, signal};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// What the web console shows about this server: settings as given, listeners as bound.
fn console_config(
    settings: &speedlayer_server::config::Settings,
    region: &speedlayer_server::RegionConfig,
    resp: Option<&speedlayer_server::resp::RespHandle>,
) -> ConsoleConfig {
    let e = &region.engine;
    let mut about = vec![
        (
            "data directory".to_owned(),
            settings.data_dir.display().to_string(),
        ),
        ("gRPC listen".to_owned(), region.grpc_addr.to_string()),
        ("HTTP listen".to_owned(), region.http_addr.to_string()),
        (
            "RESP listen".to_owned(),
            resp.map_or_else(|| "off".to_owned(), |h| h.local_addr().to_string()),
        ),
        (
            "WAL".to_owned(),
            format!(
                "sync per request (durability flag); async writes synced every {} ms",
                e.wal_async_interval_ms
            ),
        ),
        (
            "memstore flush at".to_owned(),
            format!("{} MiB", e.memstore_flush_bytes / (1024 * 1024)),
        ),
        (
            "write stall".to_owned(),
            format!(
                "after {} frozen memstores, refused after {} ms",
                e.max_frozen_memstores, e.write_stall_ms
            ),
        ),
        ("recovery".to_owned(), format!("{:?}", e.recovery)),
    ];
    if let Some(h) = resp {
        about.push((
            "RESP appendfsync".to_owned(),
            h.shared.config.appendfsync.as_str().to_owned(),
        ));
    }
    if let Some(c) = settings.cluster_mode() {
        about.push((
            "cluster".to_owned(),
            format!("{} at {}", c.name, c.endpoints.join(",")),
        ));
    }
    ConsoleConfig {
        resp: resp.map(|h| h.shared.clone()),
        about,
        split_bytes: match settings.cluster_mode() {
            Some(_) => None,
            None => Some(e.region_split_bytes),
        },
    }
}

fn main() -> ExitCode {
    CountingAlloc::activate();
    let args = ServerArgs::parse();
    if let Err(e) = speedlayer_logging::init(args.log_format, "info") {
        eprintln!("speedlayer-server: cannot set up logging: {e}");
        return ExitCode::from(1);
    }
    let settings = match args.resolve().and_then(|s| s.check_startable().map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    // IMPORTANT: the data directory's lock comes before anything reads or writes under it,
    // in every mode; a second server stops here having touched nothing. Declared before
    // the runtime so that it is released only after the runtime (and any blocking task
    // still writing the AOF or snapshot) is gone.
    let _data_dir_lock = match data_dir::lock(&settings.data_dir) {
        Ok(lock) => lock,
        Err(e) => {
            tracing::error!("{e}; not starting");
            return ExitCode::from(1);
        }
    };
    tracing::info!(data_dir = %settings.data_dir.display(), "data directory locked");
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
        // Handlers first: a SIGTERM sent right after READY must still shut down cleanly.
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return ExitCode::from(1);
        };
        let resp = match settings.resp.clone() {
            Some(cfg) => match start_on_own_runtime(cfg).await {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::error!("RESP service failed to start: {e}");
                    return ExitCode::from(1);
                }
            },
            None => None,
        };
        // Cluster mode: the fence exists before the listeners, so nothing is served until
        // etcd has granted this member its lease.
        let fence = settings.cluster_mode().map(|_| Arc::new(Fence::new()));
        // One Prometheus registry for the process: the region server's series, the RESP
        // service's (included here), build info and uptime.
        let registry = speedlayer_metrics::Registry::for_binary("speedlayer-server");
        if let Some((h, _)) = &resp {
            speedlayer_server::resp::view::attach(&h.shared, &registry);
        }
        let region_cfg = settings.region.clone().map(|mut cfg| {
            cfg.registry = registry.clone();
            cfg.console = console_config(&settings, &cfg, resp.as_ref().map(|(h, _)| h));
            cfg.fence = fence.clone();
            if settings.cluster_mode().is_some() {
                cfg.hosted_root = settings.cluster.storage_root.clone();
            }
            cfg
        });
        let region = match region_cfg {
            Some(cfg) => match RegionServer::start(cfg).await {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::error!("region server failed to start: {e}");
                    if let Some((h, thread)) = resp {
                        let _ = h.shutdown().await;
                        thread.stop().await;
                    }
                    return ExitCode::from(1);
                }
            },
            None => None,
        };
        let split_policy = settings.region.as_ref().map_or(
            SplitPolicy {
                bytes: u64::MAX,
                every: std::time::Duration::from_secs(1),
            },
            |r| SplitPolicy {
                bytes: r.engine.region_split_bytes,
                every: r.split_check_interval,
            },
        );
        let member = match (settings.cluster_mode(), &region, fence) {
            (Some(cluster), Some(h), Some(fence)) => {
                let addrs = Addresses {
                    grpc: h.grpc_addr(),
                    http: h.http_addr(),
                    resp: resp.as_ref().map(|(r, _)| r.local_addr()),
                };
                let joined =
                    match Member::join(cluster.clone(), addrs, env!("CARGO_PKG_VERSION"), fence)
                        .await
                    {
                        Ok(m) => {
                            let m = Arc::new(m);
                            ClusterNode::start(
                                cluster.clone(),
                                m.clone(),
                                h.backend().db.clone(),
                                h.backend().advertise_addr.to_string(),
                                split_policy,
                            )
                            .await
                            .map(|node| (m, node))
                        }
                        Err(e) => Err(e.into()),
                    };
                match joined {
                    Ok((_, node)) => {
                        let node = Arc::new(node);
                        let _ = h.backend().cluster.set(node.clone());
                        Some(node)
                    }
                    Err(e) => {
                        tracing::error!(
                            "cannot join cluster {:?} at {}: {e}",
                            cluster.name,
                            cluster.endpoints.join(",")
                        );
                        if let Some(h) = region {
                            let _ = h.shutdown().await;
                        }
                        if let Some((h, thread)) = resp {
                            let _ = h.shutdown().await;
                            thread.stop().await;
                        }
                        return ExitCode::from(1);
                    }
                }
            }
            _ => None,
        };
        let mut ready = String::from("READY");
        if let Some((h, _)) = &resp {
            ready.push_str(&format!(" resp={}", h.local_addr()));
        }
        if let Some(h) = &region {
            ready.push_str(&format!(" grpc={} http={}", h.grpc_addr(), h.http_addr()));
        }
        if let Some(n) = &member {
            ready.push_str(&format!(" member={}", n.member().id()));
        }
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{ready}");
            let _ = out.flush();
        }
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        let mut code = ExitCode::SUCCESS;
        // Leave the cluster first: serving stops and the lease is revoked, so another
        // member becomes master at once instead of after a TTL.
        if let Some(n) = member
            && tokio::time::timeout(speedlayer_server::grpc::cluster::LEAVE_LIMIT, n.leave())
                .await
                .is_err()
        {
            tracing::warn!("leaving the cluster took too long; the lease ends by itself");
        }
        if let Some(h) = region
            && let Err(e) = h.shutdown().await
        {
            tracing::error!("region server shutdown failed: {e}");
            code = ExitCode::from(1);
        }
        if let Some((h, thread)) = resp {
            if let Err(e) = h.shutdown().await {
                tracing::error!("RESP shutdown failed: {e}");
                code = ExitCode::from(1);
            }
            thread.stop().await;
        }
        code
    })
}
