//! The RESP listener: accepting clients, the connection cap, protected mode, starting the
//! background tasks, and graceful shutdown.
//!
//! [`RespServer::start`] loads the persisted state, binds, and returns a [`RespHandle`];
//! [`RespHandle::shutdown`] stops accepting, closes connections, flushes the AOF and writes
//! the shutdown snapshot. Shared state lives in `state` ([`Shared`]), the background loops
//! in `tasks`; one tokio task serves each connection and the keyspace mutex is never held
//! across an `.await`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::aof::Aof;
use super::clock::{Clock, SystemClock};
use super::config::RespConfig;
use super::connection;
use super::keyspace::Keyspace;
pub use super::state::{ClientMeta, Shared, Stats};
use crate::error::ServerError;

/// A started RESP server.
#[derive(Debug)]
pub struct RespHandle {
    /// The shared state (for in-process tests and INFO).
    pub shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    accept: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

/// Entry point of the RESP service.
#[derive(Debug)]
pub struct RespServer;

impl RespServer {
    /// Loads persisted state from `config.dir`, binds `config.addr`, and starts serving.
    ///
    /// # Errors
    /// Persistence errors (corrupted AOF or snapshot, I/O) and bind errors.
    pub async fn start(config: RespConfig) -> Result<RespHandle, ServerError> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Like [`RespServer::start`], with the clock expiry reads (tests pass a manual clock).
    ///
    /// # Errors
    /// As [`RespServer::start`].
    pub async fn start_with_clock(
        config: RespConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<RespHandle, ServerError> {
        let mut ks = Keyspace::new(clock);
        let repl = Arc::new(super::repl::Replication::new(super::repl::DEFAULT_BACKLOG));
        let mut aof = Aof::open(&config.dir, config.appendfsync, config.fs.clone(), &mut ks)?;
        // A replica restarted after a clean shutdown resumes its master's stream there.
        *repl.resume.lock() = aof.take_resume();
        let aof = aof.with_replication(repl.clone());
        ks.set_propagate(true);
        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.addr,
            source,
        })?;
        let shared = Arc::new(Shared::new(ks, config, Some(aof), repl, local_addr));
        if let Some((host, port)) = shared.config.replicaof.clone() {
            super::cmd::repl::follow(&shared, host, port);
        }
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(shared.clone(), listener, shutdown_rx.clone()));
        let background = vec![
            tokio::spawn(super::tasks::active_expire_loop(
                shared.clone(),
                shutdown_rx.clone(),
            )),
            tokio::spawn(super::tasks::aof_writer_loop(
                shared.clone(),
                shutdown_rx.clone(),
            )),
            tokio::spawn(super::replica_link::ping_loop(
                shared.clone(),
                shutdown_rx.clone(),
            )),
            tokio::spawn(super::upstream::run(shared.clone(), shutdown_rx)),
        ];
        tracing::info!(addr = %local_addr, "RESP service listening");
        Ok(RespHandle {
            shared,
            shutdown_tx,
            accept,
            background,
        })
    }
}

impl RespHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Stops accepting, closes every connection, flushes the AOF and writes the snapshot.
    ///
    /// # Errors
    /// Persistence errors while writing the final snapshot.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.shutdown_tx.send(true);
        let _ = self.accept.await;
        for h in self.background {
            let _ = h.await;
        }
        // Connections see the signal and leave; give them a bounded moment to flush.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            // Registered before the count is read, so a last leave in between still wakes it.
            let gone = self.shared.clients_gone.notified();
            if self.shared.client_count() == 0
                || tokio::time::timeout_at(deadline, gone).await.is_err()
            {
                break;
            }
        }
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || match &shared.aof {
            Some(aof) => aof.snapshot(&shared.ks),
            None => Ok(()),
        })
        .await
        .map_err(|e| ServerError::Task {
            what: "final snapshot at shutdown",
            reason: e.to_string(),
        })?
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

/// Redis's protected-mode refusal, sent to non-loopback clients when no password is set.
pub const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Protected mode as Redis has it: with protection on, no password, and a listener that
/// is not loopback-only, a client from a non-loopback address is refused with [`DENIED`].
pub fn protected_refuses(protected: bool, has_password: bool, bind: IpAddr, peer: IpAddr) -> bool {
    protected && !has_password && !is_loopback(bind) && !is_loopback(peer)
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (mut stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        shared
            .stats
            .total_connections_received
            .fetch_add(1, Ordering::Relaxed);
        if protected_refuses(
            shared.config.protected_mode,
            shared.config.requirepass.is_some(),
            shared.local_addr.ip(),
            addr.ip(),
        ) {
            shared
                .stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let _ = stream.write_all(DENIED.as_bytes()).await;
            });
            continue;
        }
        if shared.client_count() >= shared.config.maxclients {
            shared
                .stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
            });
            continue;
        }
        let laddr = stream.local_addr().unwrap_or(shared.local_addr);
        let id = shared.register_client(addr, laddr);
        tokio::spawn(connection::serve(
            shared.clone(),
            stream,
            addr,
            id,
            shutdown.clone(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_refuses_only_remote_clients_of_an_open_unprotected_bind() {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let remote: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped_lo: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(protected_refuses(true, false, any, remote));
        assert!(!protected_refuses(true, false, any, lo));
        assert!(!protected_refuses(true, false, any, mapped_lo));
        assert!(
            !protected_refuses(true, true, any, remote),
            "a password lifts protection"
        );
        assert!(
            !protected_refuses(false, false, any, remote),
            "protected-mode no"
        );
        assert!(!protected_refuses(true, false, lo, remote), "loopback bind");
    }
}
