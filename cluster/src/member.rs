//! Membership and master election: one background task per member.
//!
//! A *session* is one etcd lease: granted, then the member's key `servers/<id>` is put with
//! it and the member campaigns for master with it (etcd's election API, whose candidate key
//! is bound to the same lease). Keepalives every TTL/4 extend the [`Fence`]. When etcd says
//! the lease is gone (a keepalive answered with TTL 0) the session is over: the fence is
//! revoked at once (it had already closed by itself if etcd was unreachable), and a new
//! session starts with a new lease and a new member id, because the master may already have
//! given everything of the old one away. Leaving (shutdown) revokes the lease, so the key and
//! the candidacy disappear at once and another member becomes master without waiting for a
//! TTL.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper, PutOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{bounded, connect, connect_for_waiting};
use crate::config::ClusterConfig;
use crate::error::{Error, Result};
use crate::fence::Fence;
use crate::info::ServerInfo;
use crate::keys::Keys;
use crate::meta::MasterGuard;

/// The addresses a member publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    /// gRPC listener.
    pub grpc: SocketAddr,
    /// HTTP listener.
    pub http: SocketAddr,
    /// RESP listener, if the TTL set service runs.
    pub resp: Option<SocketAddr>,
}

/// Counters and state of a member, for metrics and the status page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberStats {
    /// The current member id (changes with every new session).
    pub id: String,
    /// The current lease (hex, as etcd prints it).
    pub lease: String,
    /// Whether this member is the master now.
    pub master: bool,
    /// Sessions started (1 after the first join).
    pub sessions: u64,
    /// Leases etcd reported gone while this process lived.
    pub leases_lost: u64,
    /// Confirmed keepalives.
    pub keepalives: u64,
    /// Keepalives that failed or went unanswered in time.
    pub keepalive_failures: u64,
    /// Times this member became master.
    pub master_terms: u64,
}

#[derive(Debug, Default)]
struct Shared {
    id: Mutex<String>,
    guard: Mutex<Option<MasterGuard>>,
    lease: AtomicU64,
    master: AtomicBool,
    sessions: AtomicU64,
    leases_lost: AtomicU64,
    keepalives: AtomicU64,
    keepalive_failures: AtomicU64,
    master_terms: AtomicU64,
}

/// A joined member. Dropping it stops the task without revoking the lease (as a crash
/// would); [`Member::leave`] is the graceful way out.
#[derive(Debug)]
pub struct Member {
    shared: Arc<Shared>,
    fence: Arc<Fence>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(t) = lock(&self.task).take() {
            t.abort();
        }
    }
}

struct Session {
    lease: i64,
    id: String,
}

struct Ctx {
    cfg: ClusterConfig,
    keys: Keys,
    addrs: Addresses,
    version: String,
    fence: Arc<Fence>,
    shared: Arc<Shared>,
}

impl Member {
    /// Joins the cluster: the first session must start within the call timeouts, so a
    /// wrong endpoint fails the start with a clear error rather than a server that never
    /// serves. Later sessions are retried for as long as the process lives.
    ///
    /// # Errors
    /// [`Error::Config`], or the etcd error of the first session.
    pub async fn join(
        cfg: ClusterConfig,
        addrs: Addresses,
        version: &str,
        fence: Arc<Fence>,
    ) -> Result<Member> {
        cfg.validate()?;
        let mut client = connect(&cfg).await?;
        let waiting = connect_for_waiting(&cfg).await?;
        let ctx = Ctx {
            keys: Keys::new(&cfg.name),
            cfg,
            addrs,
            version: version.to_owned(),
            fence: fence.clone(),
            shared: Arc::new(Shared::default()),
        };
        let session = start_session(&ctx, &mut client).await?;
        let shared = ctx.shared.clone();
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(ctx, client, waiting, session, stop_rx));
        Ok(Member {
            shared,
            fence,
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    /// The current member id.
    pub fn id(&self) -> String {
        lock(&self.shared.id).clone()
    }

    /// Whether this member is master now: elected, and its lease still confirmed.
    pub fn is_master(&self) -> bool {
        self.shared.master.load(Ordering::Acquire) && self.fence.serving()
    }

    /// The master's write guard while this member is master (see [`MasterGuard`]).
    pub fn master_guard(&self) -> Option<MasterGuard> {
        if !self.is_master() {
            return None;
        }
        lock(&self.shared.guard).clone()
    }

    /// The fence this member extends.
    pub fn fence(&self) -> &Arc<Fence> {
        &self.fence
    }

    /// State and counters.
    pub fn stats(&self) -> MemberStats {
        let s = &self.shared;
        MemberStats {
            id: self.id(),
            lease: format!("{:x}", s.lease.load(Ordering::Acquire)),
            master: self.is_master(),
            sessions: s.sessions.load(Ordering::Relaxed),
            leases_lost: s.leases_lost.load(Ordering::Relaxed),
            keepalives: s.keepalives.load(Ordering::Relaxed),
            keepalive_failures: s.keepalive_failures.load(Ordering::Relaxed),
            master_terms: s.master_terms.load(Ordering::Relaxed),
        }
    }

    /// Leaves the cluster: stops serving, then revokes the lease, which deletes the
    /// member's key and candidacy at once.
    pub async fn leave(&self) {
        let _ = self.stop.send(true);
        let task = lock(&self.task).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Grants a lease, adopts it in the fence and publishes the member's key with it.
async fn start_session(ctx: &Ctx, client: &mut Client) -> Result<Session> {
    let limit = ctx.cfg.call_timeout;
    let sent = Instant::now();
    let grant = bounded(
        "lease grant",
        limit,
        client.lease_grant(ctx.cfg.ttl_secs(), None),
    )
    .await?;
    let lease = grant.id();
    let started_ms = now_ms();
    let id = ServerInfo::make_id(&ctx.cfg.advertise_host, ctx.addrs.grpc.port(), started_ms);
    let info = ServerInfo {
        id: id.clone(),
        grpc: advertised(&ctx.cfg.advertise_host, ctx.addrs.grpc),
        http: advertised(&ctx.cfg.advertise_host, ctx.addrs.http),
        resp: ctx
            .addrs
            .resp
            .map(|a| advertised(&ctx.cfg.advertise_host, a)),
        started_ms,
        version: ctx.version.clone(),
    };
    let value = serde_json::to_vec(&info).map_err(|e| Error::BadValue {
        key: ctx.keys.server(&id),
        reason: e.to_string(),
    })?;
    bounded(
        "put member key",
        limit,
        client.put(
            ctx.keys.server(&id),
            value,
            Some(PutOptions::new().with_lease(lease)),
        ),
    )
    .await?;
    ctx.fence.adopt(lease);
    ctx.fence.confirm(
        lease,
        sent,
        Duration::from_secs(grant.ttl().max(0) as u64),
        margin(&ctx.cfg),
    );
    *lock(&ctx.shared.id) = id.clone();
    ctx.shared.lease.store(lease as u64, Ordering::Release);
    ctx.shared.sessions.fetch_add(1, Ordering::Relaxed);
    tracing::info!(member = %id, lease = format!("{lease:x}"), ttl_s = grant.ttl(), cluster = %ctx.cfg.name, "joined the cluster");
    Ok(Session { lease, id })
}

fn advertised(host: &str, addr: SocketAddr) -> String {
    if host.contains(':') {
        format!("[{host}]:{}", addr.port())
    } else {
        format!("{host}:{}", addr.port())
    }
}

/// The design's margin: a third of the TTL.
fn margin(cfg: &ClusterConfig) -> Duration {
    Duration::from_secs(cfg.ttl_secs() as u64) / 3
}

fn keepalive_every(cfg: &ClusterConfig) -> Duration {
    Duration::from_secs(cfg.ttl_secs() as u64) / 4
}

enum SessionEnd {
    Stopped,
    LeaseLost,
}

async fn run(
    ctx: Ctx,
    mut client: Client,
    waiting: Client,
    first: Session,
    mut stop: watch::Receiver<bool>,
) {
    let mut session = first;
    loop {
        match run_session(&ctx, &mut client, &waiting, &session, &mut stop).await {
            SessionEnd::Stopped => {
                ctx.fence.revoke();
                ctx.shared.master.store(false, Ordering::Release);
                *lock(&ctx.shared.guard) = None;
                match bounded(
                    "lease revoke",
                    ctx.cfg.call_timeout,
                    client.lease_revoke(session.lease),
                )
                .await
                {
                    Ok(_) => tracing::info!(member = %session.id, "left the cluster"),
                    Err(e) => {
                        tracing::warn!(member = %session.id, "leaving: {e}; the lease ends by itself")
                    }
                }
                return;
            }
            SessionEnd::LeaseLost => {
                ctx.fence.revoke();
                ctx.shared.master.store(false, Ordering::Release);
                *lock(&ctx.shared.guard) = None;
                ctx.shared.leases_lost.fetch_add(1, Ordering::Relaxed);
                tracing::error!(member = %session.id, "etcd ended this member's lease: it serves nothing until it joins again as a new member");
            }
        }
        // Join again, as a new member, for as long as it takes.
        let mut backoff = Duration::from_millis(200);
        session = loop {
            if *stop.borrow() {
                return;
            }
            match start_session(&ctx, &mut client).await {
                Ok(s) => break s,
                Err(e) => {
                    tracing::warn!("joining the cluster again: {e}; retrying in {backoff:?}");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(keepalive_every(&ctx.cfg));
                }
            }
        };
    }
}

/// Keeps one lease alive and campaigns with it until etcd ends it or the member stops.
async fn run_session(
    ctx: &Ctx,
    client: &mut Client,
    waiting: &Client,
    session: &Session,
    stop: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let campaign = tokio::spawn(campaign(
        waiting.clone(),
        ctx.keys.election(),
        session.id.clone(),
        session.lease,
        ctx.shared.clone(),
        keepalive_every(&ctx.cfg),
    ));
    let _abort = AbortOnDrop(campaign);
    let every = keepalive_every(&ctx.cfg);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut keeper: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
    loop {
        tokio::select! {
            _ = stop.changed() => return SessionEnd::Stopped,
            _ = tick.tick() => {}
        }
        if *stop.borrow() {
            return SessionEnd::Stopped;
        }
        let sent = Instant::now();
        match keepalive_once(client, session.lease, &mut keeper, every).await {
            Ok(ttl) if ttl > 0 => {
                ctx.fence.confirm(
                    session.lease,
                    sent,
                    Duration::from_secs(ttl as u64),
                    margin(&ctx.cfg),
                );
                ctx.shared.keepalives.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => return SessionEnd::LeaseLost,
            Err(e) => {
                // A stream that failed or timed out is dropped: a late answer on it must
                // never be matched with a later send time.
                keeper = None;
                ctx.shared
                    .keepalive_failures
                    .fetch_add(1, Ordering::Relaxed);
                match ctx.fence.remaining() {
                    Some(left) => {
                        tracing::warn!(member = %session.id, "lease keepalive: {e}; still serving for {left:?}")
                    }
                    None => {
                        // Opening a keepalive stream on a lease etcd no longer has fails
                        // (etcd-client turns the TTL-0 answer into an error); ask etcd
                        // plainly whether the lease still exists.
                        if lease_gone(client, session.lease, every).await {
                            return SessionEnd::LeaseLost;
                        }
                        tracing::warn!(member = %session.id, "lease keepalive: {e}; not serving until etcd confirms the lease")
                    }
                }
            }
        }
    }
}

/// Whether etcd says the lease no longer exists (a TTL of -1 or 0 from LeaseTimeToLive).
/// No answer is not "gone": only etcd may say so.
async fn lease_gone(client: &mut Client, lease: i64, limit: Duration) -> bool {
    matches!(
        bounded("lease time-to-live", limit, client.lease_time_to_live(lease, None)).await,
        Ok(r) if r.ttl() <= 0
    )
}

/// One keepalive round trip on the (re-)opened stream: the TTL etcd granted, 0 if the
/// lease no longer exists.
async fn keepalive_once(
    client: &mut Client,
    lease: i64,
    keeper: &mut Option<(LeaseKeeper, LeaseKeepAliveStream)>,
    limit: Duration,
) -> Result<i64> {
    let fut = async {
        if keeper.is_none() {
            *keeper = Some(client.lease_keep_alive(lease).await?);
        }
        let Some((k, stream)) = keeper.as_mut() else {
            return Err(etcd_client::Error::LeaseKeepAliveError(
                "no keepalive stream".into(),
            ));
        };
        k.keep_alive().await?;
        match stream.message().await? {
            Some(resp) => Ok(resp.ttl()),
            None => Err(etcd_client::Error::LeaseKeepAliveError(
                "keepalive stream closed".into(),
            )),
        }
    };
    bounded("lease keepalive", limit, fut).await
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Campaigns until elected (etcd answers when every earlier candidate's key is gone), then
/// holds the office for the rest of the session: the candidate key lives and dies with the
/// lease, so the session's end is the term's end.
async fn campaign(
    mut client: Client,
    election: String,
    id: String,
    lease: i64,
    shared: Arc<Shared>,
    retry: Duration,
) {
    loop {
        match client.campaign(election.clone(), id.clone(), lease).await {
            Ok(resp) => {
                let Some(leader) = resp.leader() else {
                    tracing::warn!(member = %id, "campaign answered without a leader key; retrying");
                    tokio::time::sleep(retry).await;
                    continue;
                };
                *lock(&shared.guard) = Some(MasterGuard {
                    key: leader.key().to_vec(),
                    create_revision: leader.rev(),
                });
                shared.master.store(true, Ordering::Release);
                shared.master_terms.fetch_add(1, Ordering::Relaxed);
                tracing::info!(member = %id, "elected master");
                return;
            }
            Err(e) => {
                tracing::warn!(member = %id, "master campaign: {e}; retrying in {retry:?}");
                tokio::time::sleep(retry).await;
            }
        }
    }
}
