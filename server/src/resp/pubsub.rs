//! Pub/sub with Redis 7.0's semantics: channels and glob patterns, who subscribes to what,
//! and each subscriber's bounded outbox of messages (`server/docs/resp.md`, "Pub/sub").
//!
//! PUBLISH encodes the message once per receiving subscriber into that subscriber's
//! [`Outbox`] (RESP2 arrays or RESP3 pushes, as the subscriber speaks) and wakes its
//! connection, which writes it between its own replies. The outbox is bounded as Redis
//! bounds a pub/sub client's output buffer (`client-output-buffer-limit pubsub 32mb 8mb
//! 60`): past the hard limit, or past the soft limit for 60 s without falling under it,
//! the subscriber is disconnected, logged and counted (`pubsub_disconnections` in INFO
//! stats), and the publisher is never slowed. This module does no I/O; the commands are in
//! `cmd::pubsub`, the writing in `connection`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::glob;

/// Redis's default hard `client-output-buffer-limit` for pub/sub clients.
pub const HARD_LIMIT: usize = 32 * 1024 * 1024;
/// Redis's default soft limit for pub/sub clients ...
pub const SOFT_LIMIT: usize = 8 * 1024 * 1024;
/// ... and how long a subscriber may stay over it.
pub const SOFT_SECONDS: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    over_soft_since: Option<Instant>,
}

/// The messages one subscriber has not been sent yet.
#[derive(Debug)]
pub struct Outbox {
    pending: Mutex<Pending>,
    /// Woken when a message (or the disconnection) arrives.
    pub ready: Notify,
    resp3: AtomicBool,
    dropped: AtomicBool,
}

impl Outbox {
    /// An empty outbox for a client speaking RESP3 (`resp3`) or RESP2.
    pub fn new(resp3: bool) -> Arc<Outbox> {
        Arc::new(Outbox {
            pending: Mutex::new(Pending::default()),
            ready: Notify::new(),
            resp3: AtomicBool::new(resp3),
            dropped: AtomicBool::new(false),
        })
    }

    /// The subscriber switched protocol (HELLO): later messages use it.
    pub fn set_resp3(&self, resp3: bool) {
        self.resp3.store(resp3, Ordering::Relaxed);
    }

    /// Moves what is waiting to the end of `out`.
    pub fn take_into(&self, out: &mut Vec<u8>) {
        let mut p = self.pending.lock();
        out.extend_from_slice(&p.bytes);
        p.bytes.clear();
        p.over_soft_since = None;
    }

    /// Whether the output limit disconnected this subscriber (its connection must close).
    pub fn dropped(&self) -> bool {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Appends one message; true if that put the subscriber past its limits (it is then
    /// dropped: its pending bytes are freed and its connection woken to close). A dropped
    /// subscriber gets nothing more.
    fn push(&self, parts: &[&[u8]], now: Instant) -> bool {
        if self.dropped() {
            return false;
        }
        let mut p = self.pending.lock();
        let kind = if self.resp3.load(Ordering::Relaxed) {
            b'>'
        } else {
            b'*'
        };
        let start = p.bytes.len();
        p.bytes.push(kind);
        p.bytes
            .extend_from_slice(format!("{}\r\n", parts.len()).as_bytes());
        for part in parts {
            p.bytes
                .extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
            p.bytes.extend_from_slice(part);
            p.bytes.extend_from_slice(b"\r\n");
        }
        let len = p.bytes.len();
        let over_soft = len > SOFT_LIMIT;
        let since = *p.over_soft_since.get_or_insert(now);
        if !over_soft {
            p.over_soft_since = None;
        }
        if len > HARD_LIMIT || (over_soft && now.duration_since(since) >= SOFT_SECONDS) {
            p.bytes.truncate(start);
            tracing::warn!(
                pending = len,
                "disconnecting a slow subscriber: pub/sub output buffer limit reached"
            );
            p.bytes = Vec::new();
            self.dropped.store(true, Ordering::Relaxed);
            drop(p);
            self.ready.notify_one();
            return true;
        }
        drop(p);
        self.ready.notify_one();
        false
    }
}

/// One connection's subscriptions (the registry holds the other direction).
#[derive(Debug, Default)]
pub struct Subscriptions {
    /// Channels subscribed to.
    pub channels: std::collections::BTreeSet<Bytes>,
    /// Patterns subscribed to, in the order given (Redis keeps them in a list).
    pub patterns: Vec<Bytes>,
    /// Where this connection's messages wait, from its first subscription on.
    pub outbox: Option<Arc<Outbox>>,
}

impl Subscriptions {
    /// Channels plus patterns: what SUBSCRIBE and UNSUBSCRIBE replies count.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

type Subscribers = BTreeMap<u64, Arc<Outbox>>;

#[derive(Debug, Default)]
struct Registry {
    channels: HashMap<Bytes, Subscribers>,
    patterns: HashMap<Bytes, Subscribers>,
}

/// Every subscription of one server.
#[derive(Debug, Default)]
pub struct PubSub {
    reg: Mutex<Registry>,
    /// Subscribers disconnected by the output limit.
    pub disconnections: AtomicU64,
}

fn add(map: &mut HashMap<Bytes, Subscribers>, name: &Bytes, id: u64, ob: &Arc<Outbox>) {
    map.entry(name.clone()).or_default().insert(id, ob.clone());
}

fn remove(map: &mut HashMap<Bytes, Subscribers>, name: &[u8], id: u64) {
    if let Some(subs) = map.get_mut(name) {
        subs.remove(&id);
        if subs.is_empty() {
            map.remove(name);
        }
    }
}

impl PubSub {
    /// Client `id` receives messages of `channel` in `ob`.
    pub fn subscribe(&self, id: u64, channel: &Bytes, ob: &Arc<Outbox>) {
        add(&mut self.reg.lock().channels, channel, id, ob);
    }

    /// Client `id` no longer receives messages of `channel`.
    pub fn unsubscribe(&self, id: u64, channel: &[u8]) {
        remove(&mut self.reg.lock().channels, channel, id);
    }

    /// Client `id` receives messages of every channel matching `pattern` in `ob`.
    pub fn psubscribe(&self, id: u64, pattern: &Bytes, ob: &Arc<Outbox>) {
        add(&mut self.reg.lock().patterns, pattern, id, ob);
    }

    /// Client `id` no longer receives messages through `pattern`.
    pub fn punsubscribe(&self, id: u64, pattern: &[u8]) {
        remove(&mut self.reg.lock().patterns, pattern, id);
    }

    /// Sends `message` to the subscribers of `channel` and of every pattern matching
    /// it (one message per subscription, as Redis); the number of receivers.
    pub fn publish(&self, channel: &[u8], message: &[u8]) -> usize {
        let now = Instant::now();
        let reg = self.reg.lock();
        let mut receivers = 0;
        let mut dropped = 0;
        if let Some(subs) = reg.channels.get(channel) {
            for ob in subs.values() {
                receivers += 1;
                if ob.push(&[b"message", channel, message], now) {
                    dropped += 1;
                }
            }
        }
        for (pattern, subs) in &reg.patterns {
            if !glob::matches(pattern, channel, false) {
                continue;
            }
            for ob in subs.values() {
                receivers += 1;
                if ob.push(&[b"pmessage", pattern, channel, message], now) {
                    dropped += 1;
                }
            }
        }
        drop(reg);
        if dropped > 0 {
            self.disconnections.fetch_add(dropped, Ordering::Relaxed);
        }
        receivers
    }

    /// Channels with at least one subscriber, matching `pattern` if given (PUBSUB
    /// CHANNELS).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.reg
            .lock()
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob::matches(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel` (PUBSUB NUMSUB).
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.reg.lock().channels.get(channel).map_or(0, |s| s.len())
    }

    /// Distinct patterns subscribed to (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        self.reg.lock().patterns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_reaches_channel_and_pattern_subscribers_once_each() {
        let ps = PubSub::default();
        let a = Outbox::new(false);
        let b = Outbox::new(true);
        ps.subscribe(1, &Bytes::from_static(b"news"), &a);
        ps.psubscribe(2, &Bytes::from_static(b"n*"), &b);
        ps.psubscribe(2, &Bytes::from_static(b"x*"), &b);
        assert_eq!(ps.publish(b"news", b"hi"), 2);
        let mut out = Vec::new();
        a.take_into(&mut out);
        assert_eq!(out, b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
        out.clear();
        b.take_into(&mut out);
        assert_eq!(
            out,
            b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert_eq!(ps.numpat(), 2);
        assert_eq!(ps.numsub(b"news"), 1);
        ps.unsubscribe(1, b"news");
        assert_eq!(ps.numsub(b"news"), 0);
        assert!(ps.channels(None).is_empty());
    }

    #[test]
    fn a_subscriber_past_the_hard_limit_is_dropped_and_counted() {
        let ps = PubSub::default();
        let slow = Outbox::new(false);
        ps.subscribe(1, &Bytes::from_static(b"c"), &slow);
        let big = vec![b'x'; 1024 * 1024];
        for _ in 0..31 {
            ps.publish(b"c", &big);
        }
        assert!(!slow.dropped());
        ps.publish(b"c", &big);
        ps.publish(b"c", &big);
        ps.publish(b"c", &big);
        assert!(slow.dropped());
        assert_eq!(ps.disconnections.load(Ordering::Relaxed), 1);
        let mut out = Vec::new();
        slow.take_into(&mut out);
        assert!(out.is_empty(), "a dropped subscriber's bytes are freed");
    }

    #[test]
    fn a_subscriber_over_the_soft_limit_for_too_long_is_dropped() {
        let slow = Outbox::new(false);
        let t0 = Instant::now();
        let big = vec![b'x'; 9 * 1024 * 1024];
        assert!(!slow.push(&[b"message", b"c", &big], t0));
        assert!(!slow.push(&[b"message", b"c", b"1"], t0 + Duration::from_secs(59)));
        assert!(slow.push(&[b"message", b"c", b"2"], t0 + SOFT_SECONDS));
        assert!(slow.dropped());
        assert!(!slow.push(&[b"message", b"c", b"3"], t0 + SOFT_SECONDS));
    }
}
