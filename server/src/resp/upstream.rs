//! Our link to a master when we are a replica (`REPLICAOF host port`,
//! `server/docs/replication.md`, "As a replica"): Redis's handshake (PING, AUTH with
//! `masterauth`, REPLCONF
//! listening-port and capa, PSYNC), the master's RDB loaded in place of our keyspace (only
//! sets: anything else stops the link, with the reason in `master_link_error`), then its
//! command stream applied through the ordinary dispatch by a client marked as the master
//! link, `REPLCONF ACK` every second and on `GETACK`. What we apply goes to our AOF and our
//! own replicas like any write. This module is the connection side; the state is in
//! `repl`, the command in `cmd::repl`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::aof::FlushMode;
use super::cmd;
use super::config::Limits;
use super::frame::{FrameError, RequestParser};
use super::keyspace::encode_command;
use super::rdb;
use super::reply::Out;
use super::state::{Client, Shared};

/// How long to wait before connecting again after the link failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Largest RDB we accept from a master (as `proto-max-bulk-len` bounds a bulk string).
const MAX_RDB: u64 = 4 * 1024 * 1024 * 1024;

/// Follows `repl.master_of_us`: keeps a link to the master it names, reconnecting after a
/// failure, until it changes or the server shuts down.
pub async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut target_rx = shared.repl.master_of_us.subscribe();
    // The master's replid and the offset we applied, kept across a lost link so the next
    // one can ask for a partial resync.
    // A restarted replica starts from what its shutdown snapshot recorded, if anything.
    let mut cached: Option<(String, u64)> = shared.repl.resume.lock().clone();
    loop {
        let target = target_rx.borrow_and_update().clone();
        if target.is_none() {
            keep(&shared, &mut cached, None);
        }
        let Some((host, port)) = target else {
            tokio::select! {
                _ = shutdown.changed() => return,
                r = target_rx.changed() => if r.is_err() { return },
            }
            continue;
        };
        let outcome = tokio::select! {
            _ = shutdown.changed() => return,
            r = target_rx.changed() => if r.is_err() { return } else { keep(&shared, &mut cached, None); continue },
            r = link(&shared, &host, port, &mut cached) => r,
        };
        if let Err(e) = outcome {
            tracing::warn!(%host, port, error = %e, "link to master down");
            shared.repl.set_upstream("connect", Some(e));
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            r = target_rx.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(RETRY_AFTER) => {}
        }
    }
}

/// Records where in the master's stream our keyspace stands: in `cached` (what the next
/// link asks for) and in `repl.resume` (what the shutdown snapshot records).
// IMPORTANT: called before every await after the keyspace changed, so that when the task
// stops (shutdown) the recorded position matches the keys exactly.
fn keep(shared: &Shared, cached: &mut Option<(String, u64)>, pos: Option<(String, u64)>) {
    shared.repl.resume.lock().clone_from(&pos);
    *cached = pos;
}

struct Conn {
    s: TcpStream,
    buf: BytesMut,
}

impl Conn {
    async fn send(&mut self, args: &[&[u8]]) -> Result<(), String> {
        let mut out = Vec::new();
        encode_command(&mut out, args);
        self.s
            .write_all(&out)
            .await
            .map_err(|e| format!("write to master: {e}"))
    }

    async fn fill(&mut self) -> Result<(), String> {
        self.buf.reserve(64 * 1024);
        match self.s.read_buf(&mut self.buf).await {
            Ok(0) => Err("master closed the connection".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("read from master: {e}")),
        }
    }

    /// One line, without its CRLF; empty lines (the master's keepalive newlines while it
    /// prepares the RDB) are skipped.
    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(nl + 1);
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                if text.is_empty() {
                    continue;
                }
                return Ok(text);
            }
            if self.buf.len() > 64 * 1024 {
                return Err("master sent a line past 64 KiB".into());
            }
            self.fill().await?;
        }
    }

    async fn exact(&mut self, n: usize) -> Result<BytesMut, String> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        Ok(self.buf.split_to(n))
    }
}

/// A client that applies the master's stream: authenticated, exempt from READONLY.
fn master_client(shared: &Shared, addr: std::net::SocketAddr) -> Client {
    Client {
        id: 0,
        addr,
        laddr: shared.local_addr,
        authed: true,
        out: Out::default(),
        close: false,
        created: Instant::now(),
        tx: None,
        watched: Vec::new(),
        replica: None,
        repl_port: 0,
        wait: None,
        woff: 0,
        in_exec: false,
        master_link: true,
        subs: Default::default(),
    }
}

/// One link: handshake, full or partial resync, then the stream until it fails. `cached`
/// is what a partial resync asks for; it is kept current while the stream is applied and
/// cleared when the master sent something we refuse (continuing would meet it again).
async fn link(
    shared: &Arc<Shared>,
    host: &str,
    port: u16,
    cached: &mut Option<(String, u64)>,
) -> Result<(), String> {
    let r = link_inner(shared, host, port, cached).await;
    if matches!(&r, Err(e) if e.starts_with(REFUSED)) {
        keep(shared, cached, None);
    }
    r
}

/// The start of errors after which the link must not resume where it stopped.
const REFUSED: &str = "refused: ";

async fn link_inner(
    shared: &Arc<Shared>,
    host: &str,
    port: u16,
    cached: &mut Option<(String, u64)>,
) -> Result<(), String> {
    let repl = &shared.repl;
    repl.set_upstream("connecting", None);
    let s = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect to {host}:{port}: {e}"))?;
    let addr = s.peer_addr().map_err(|e| e.to_string())?;
    let mut c = Conn {
        s,
        buf: BytesMut::new(),
    };
    c.send(&[b"PING"]).await?;
    let pong = c.line().await?;
    // Redis accepts an authentication error here too (the master wants AUTH we lack).
    if !pong.starts_with("+PONG") && !pong.starts_with("-NOAUTH") {
        return Err(format!("master replied {pong:?} to PING"));
    }
    // `masterauth` / `masteruser`, as a Redis replica sends them: after PING, before
    // REPLCONF. Read at every connect, so CONFIG SET applies to the next link.
    let auth = shared.runtime.lock().clone();
    if let Some(pass) = &auth.masterauth {
        match &auth.masteruser {
            Some(user) => {
                c.send(&[b"AUTH", user.as_bytes(), pass.as_bytes()]).await?;
            }
            None => c.send(&[b"AUTH", pass.as_bytes()]).await?,
        }
        let reply = c.line().await?;
        if !reply.starts_with("+OK") {
            return Err(format!("master refused AUTH: {reply}"));
        }
    }
    let our_port = shared.local_addr.port().to_string();
    c.send(&[b"REPLCONF", b"listening-port", our_port.as_bytes()])
        .await?;
    c.line().await?;
    c.send(&[b"REPLCONF", b"capa", b"psync2"]).await?;
    c.line().await?;
    match cached.as_ref() {
        Some((id, off)) => {
            let next = (off + 1).to_string();
            c.send(&[b"PSYNC", id.as_bytes(), next.as_bytes()]).await?;
        }
        None => c.send(&[b"PSYNC", b"?", b"-1"]).await?,
    }
    let reply = c.line().await?;
    let mut words = reply.split(' ');
    let (kind, id, off) = (words.next(), words.next(), words.next());
    if let (Some("+CONTINUE"), Some((old_id, offset))) = (kind, cached.clone()) {
        // The backlog still held what we need: no RDB, the stream goes on.
        let replid = id.map_or(old_id, str::to_owned);
        tracing::info!(%host, port, offset, "partial resync from master");
        return stream(shared, &mut c, addr, replid, offset, cached).await;
    }
    let (Some("+FULLRESYNC"), Some(replid), Some(offset)) = (kind, id, off) else {
        return Err(format!("master replied {reply:?} to PSYNC"));
    };
    let replid = replid.to_owned();
    let offset: u64 = offset
        .parse()
        .map_err(|_| format!("bad offset in {reply:?}"))?;
    repl.set_upstream("sync", None);
    let head = c.line().await?;
    let len: u64 = head
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .filter(|&n| n <= MAX_RDB)
        .ok_or_else(|| format!("master sent {head:?} where the RDB length belongs"))?;
    let bytes = c.exact(len as usize).await?;
    let path = std::path::PathBuf::from(format!("master {host}:{port}"));
    // Replicas keep keys past their expiry: the master's DEL removes them.
    let decoded = rdb::decode(&bytes, &path, i64::MIN).map_err(|e| format!("{REFUSED}{e}"))?;
    let keys = decoded.keys.len();
    {
        let mut ks = shared.ks.lock();
        ks.clear();
        ks.propagate(&[b"FLUSHALL"]);
        for (key, set, expire) in decoded.keys {
            let mut args: Vec<&[u8]> = vec![b"SADD", &key];
            args.extend(set.iter().map(|m| m.as_bytes()));
            ks.propagate(&args);
            if let Some(at) = expire {
                ks.propagate(&[b"PEXPIREAT", &key, at.to_string().as_bytes()]);
            }
            ks.insert(&key, set, expire);
        }
    }
    shared
        .flush_aof(FlushMode::Write)
        .map_err(|e| format!("AOF: {e}"))?;
    tracing::info!(%host, port, keys, offset, "full sync from master done");
    stream(shared, &mut c, addr, replid, offset, cached).await
}

/// Applies the master's stream from `offset` on, until the link fails.
async fn stream(
    shared: &Arc<Shared>,
    c: &mut Conn,
    addr: std::net::SocketAddr,
    replid: String,
    mut offset: u64,
    cached: &mut Option<(String, u64)>,
) -> Result<(), String> {
    let repl = &shared.repl;
    if let Some(u) = repl.upstream.lock().as_mut() {
        u.offset = offset;
    }
    repl.set_upstream("connected", None);
    keep(shared, cached, Some((replid.clone(), offset)));
    let mut client = master_client(shared, addr);
    let mut parser = RequestParser::default();
    let mut args: Vec<Bytes> = Vec::new();
    let limits = Limits {
        query_buffer_limit: usize::MAX,
        ..Limits::default()
    };
    let mut ack = tokio::time::interval(Duration::from_secs(1));
    loop {
        let mut wrote = false;
        loop {
            let before = c.buf.len();
            match parser.parse(&mut c.buf, &limits, true, &mut args) {
                Ok(true) => {}
                Ok(false) | Err(FrameError::Incomplete) => break,
                Err(e) => return Err(format!("bad bytes in the master's stream: {e}")),
            }
            let used = (before - c.buf.len()) as u64;
            if args.is_empty() {
                offset += used;
                continue;
            }
            if args.len() >= 2
                && args[0].eq_ignore_ascii_case(b"replconf")
                && args[1].eq_ignore_ascii_case(b"getack")
            {
                offset += used;
                keep(shared, cached, Some((replid.clone(), offset)));
                let n = offset.to_string();
                c.send(&[b"REPLCONF", b"ACK", n.as_bytes()]).await?;
                continue;
            }
            wrote |= cmd::execute(shared, &mut client, &args);
            offset += used;
            if client.out.buf.first() == Some(&b'-') {
                let e = String::from_utf8_lossy(&client.out.buf)
                    .trim_end()
                    .to_owned();
                return Err(format!(
                    "{REFUSED}master sent {:?}, which a sets-only replica cannot apply: {e}",
                    String::from_utf8_lossy(&args[0])
                ));
            }
            client.out.buf.clear();
        }
        if wrote {
            shared
                .flush_aof(FlushMode::Write)
                .map_err(|e| format!("AOF: {e}"))?;
        }
        if let Some(u) = repl.upstream.lock().as_mut() {
            u.offset = offset;
            u.last_io = Instant::now();
        }
        keep(shared, cached, Some((replid.clone(), offset)));
        tokio::select! {
            r = c.fill() => r?,
            _ = ack.tick() => {
                let n = offset.to_string();
                c.send(&[b"REPLCONF", b"ACK", n.as_bytes()]).await?;
            }
        }
    }
}
