//! Transactions: MULTI, EXEC, DISCARD, WATCH and UNWATCH, with Redis 7.0's semantics.
//!
//! Between MULTI and EXEC, requests that pass the dispatch checks are queued and answered
//! `+QUEUED`; one that fails them (unknown command, wrong arity, NOAUTH, MISCONF, a full
//! queue) makes EXEC reply `-EXECABORT` and run nothing. EXEC runs the queue with the
//! keyspace held exclusively ([`KeyspaceLock::exclusive`]) and the time frozen, so no other
//! client's command, no active expiry and no AOF rewrite comes in between; errors of single
//! commands are returned in its array and undo nothing. Its writes reach the AOF as one
//! append, wrapped in `MULTI` ... `EXEC` when there is more than one.
//!
//! WATCH makes EXEC reply a null array if a watched key changed (by anyone, including the
//! watcher, by expiry, or by a flush) after it was watched. This module is not the
//! bookkeeping of who watches what (`crate::resp::watch`), nor the dispatch checks
//! (`super::execute`).
//!
//! The queue is bounded by the client query buffer limit (1 GiB by default), counting each
//! argument's bytes plus [`Transaction::ARG_OVERHEAD`]: a request that would pass it is not
//! queued, gets `-ERR` and dooms the transaction like any request that fails to queue.
//! Redis has no limit of its own there.
//!
//! [`KeyspaceLock::exclusive`]: crate::resp::keyspace_lock::KeyspaceLock::exclusive

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{Spec, resolve};
use crate::resp::state::{Client, Shared, Transaction};

/// Whether `spec` acts on the transaction instead of being queued inside MULTI (Redis's
/// list in `processCommand`).
pub fn acts_on_transaction(spec: &Spec) -> bool {
    matches!(
        spec.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// Whether `spec` is an EXEC whose queue holds a write.
pub fn exec_writes(spec: &Spec, client: &Client) -> bool {
    spec.name == "exec" && client.tx.as_ref().is_some_and(|t| t.writes)
}

/// Queues `args` (already checked) in `client`'s transaction and replies `+QUEUED`, or
/// dooms the transaction if the queue would pass its limit.
pub fn queue(shared: &Shared, client: &mut Client, spec: &Spec, args: &[Bytes]) {
    let limit = shared.config.limits.query_buffer_limit;
    let Some(tx) = &mut client.tx else { return };
    let size: usize = args
        .iter()
        .map(|a| a.len() + Transaction::ARG_OVERHEAD)
        .sum();
    if tx.bytes.saturating_add(size) > limit {
        tx.failed = true;
        client.out.error(&format!(
            "ERR MULTI queue would exceed the client query buffer limit ({limit} bytes)"
        ));
        return;
    }
    tx.bytes += size;
    tx.writes |= spec.is_write();
    tx.queued.push(args.to_vec());
    let queued = tx.queued.len();
    set_multi(shared, client.id, queued as i64);
    shared
        .stats
        .multi_queued_bytes
        .fetch_add(size as u64, Ordering::Relaxed);
    client.out.simple("QUEUED");
}

/// Ends `client`'s transaction, if any, and its watches (DISCARD, EXEC, RESET, and a
/// closed connection).
pub fn forget(shared: &Shared, client: &mut Client) {
    if let Some(tx) = client.tx.take() {
        shared
            .stats
            .multi_queued_bytes
            .fetch_sub(tx.bytes as u64, Ordering::Relaxed);
        set_multi(shared, client.id, -1);
    }
    unwatch_all(shared, client);
}

/// Records what CLIENT LIST shows as `multi=`: the queued count, or -1 outside MULTI.
fn set_multi(shared: &Shared, id: u64, n: i64) {
    if let Some(m) = shared.clients.lock().get_mut(&id) {
        m.multi = n;
    }
}

fn unwatch_all(shared: &Shared, client: &mut Client) {
    if client.watched.is_empty() {
        return;
    }
    let keys = std::mem::take(&mut client.watched);
    shared.ks.lock().watches.unwatch(client.id, &keys);
}

/// Discards the transaction (and the watches) because EXEC itself was refused with
/// `err` (arity, NOAUTH, MISCONF): Redis's `-EXECABORT Transaction discarded because of:
/// <err>`, without the `ERR` of the error. In MULTI or not, as Redis does.
pub fn abort(shared: &Shared, client: &mut Client, err: &[u8]) {
    forget(shared, client);
    let mut msg = b"EXECABORT Transaction discarded because of: ".to_vec();
    msg.extend_from_slice(err.strip_prefix(b"ERR ").unwrap_or(err));
    client.out.error_bytes(&msg);
}

/// MULTI
pub fn multi(s: &Shared, c: &mut Client, _: &[Bytes]) {
    if c.tx.is_some() {
        // Not a queueing error: the transaction goes on.
        c.out.error("ERR MULTI calls can not be nested");
        return;
    }
    c.tx = Some(Transaction::default());
    set_multi(s, c.id, 0);
    c.out.ok();
}

/// DISCARD
pub fn discard(s: &Shared, c: &mut Client, _: &[Bytes]) {
    if c.tx.is_none() {
        c.out.error("ERR DISCARD without MULTI");
        return;
    }
    forget(s, c);
    c.out.ok();
}

/// WATCH key [key ...]
pub fn watch(s: &Shared, c: &mut Client, args: &[Bytes]) {
    if c.tx.is_some() {
        c.out.error("ERR WATCH inside MULTI is not allowed");
        return;
    }
    let mut ks = s.ks.lock();
    for k in &args[1..] {
        if ks.watch(c.id, k) {
            c.watched.push(k.clone());
        }
    }
    drop(ks);
    c.out.ok();
}

/// UNWATCH
pub fn unwatch(s: &Shared, c: &mut Client, _: &[Bytes]) {
    unwatch_all(s, c);
    c.out.ok();
}

/// EXEC
pub fn exec(s: &Shared, c: &mut Client, _: &[Bytes]) {
    let Some(tx) = c.tx.take() else {
        c.out.error("ERR EXEC without MULTI");
        return;
    };
    s.stats
        .multi_queued_bytes
        .fetch_sub(tx.bytes as u64, Ordering::Relaxed);
    if tx.failed {
        set_multi(s, c.id, -1);
        unwatch_all(s, c);
        c.out
            .error("EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    // IMPORTANT: from the watch check to the last queued command, nobody else touches
    // the keyspace: that is what makes the transaction atomic and WATCH sound.
    let exclusive = s.ks.exclusive();
    let keys = std::mem::take(&mut c.watched);
    {
        let mut ks = s.ks.lock();
        let broken = ks.watch_broken(c.id, &keys);
        ks.watches.unwatch(c.id, &keys);
        if broken {
            drop(ks);
            drop(exclusive);
            set_multi(s, c.id, -1);
            c.out.null_array();
            return;
        }
        ks.freeze_time();
        ks.begin_atomic();
    }
    c.out.array_len(tx.queued.len());
    c.in_exec = true;
    for args in &tx.queued {
        // Checked when queued; resolving again cannot fail, but would reply its error.
        match resolve(args) {
            Ok(spec) => (spec.handler)(s, c, args),
            Err(msg) => c.out.error_bytes(&msg),
        }
    }
    c.in_exec = false;
    let mut ks = s.ks.lock();
    ks.end_atomic();
    ks.unfreeze_time();
    drop(ks);
    drop(exclusive);
    // Like Redis, CLIENT LIST inside the EXEC still saw the transaction (`flags=x`,
    // `multi=<queued>`); it ends here.
    set_multi(s, c.id, -1);
}
