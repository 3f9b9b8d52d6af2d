//! Pub/sub commands (`server/docs/resp.md`, "Pub/sub"): SUBSCRIBE, UNSUBSCRIBE,
//! PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH and PUBSUB CHANNELS|NUMSUB|NUMPAT|HELP, with Redis
//! 7.0's replies (pushes in RESP3, arrays in RESP2). The registry and the outboxes are
//! `crate::resp::pubsub`; a subscribed RESP2 connection's command restrictions are checked
//! in dispatch (`super::checked`).

use bytes::Bytes;

use crate::resp::pubsub::Outbox;
use crate::resp::state::{Client, Shared};

fn outbox(c: &mut Client) -> std::sync::Arc<Outbox> {
    let resp3 = c.out.resp3;
    c.subs
        .outbox
        .get_or_insert_with(|| Outbox::new(resp3))
        .clone()
}

/// `[kind, name | null, count]`, as Redis confirms each (un)subscription.
fn confirm(c: &mut Client, kind: &[u8], name: Option<&[u8]>) {
    let count = c.subs.count();
    c.out.push_len(3);
    c.out.bulk(kind);
    match name {
        Some(n) => c.out.bulk(n),
        None => c.out.null(),
    }
    c.out.int(count as i64);
}

/// Records for CLIENT LIST / CLIENT KILL TYPE what the connection subscribes to: a client
/// with any subscription is of Redis's `pubsub` type.
fn update_meta(s: &Shared, c: &Client) {
    if let Some(m) = s.clients.lock().get_mut(&c.id) {
        m.sub = c.subs.channels.len();
        m.psub = c.subs.patterns.len();
        if m.kind == "normal" || m.kind == "pubsub" {
            m.kind = if c.subs.count() > 0 {
                "pubsub"
            } else {
                "normal"
            };
        }
    }
}

/// SUBSCRIBE channel [channel ...]
pub fn subscribe(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let ob = outbox(c);
    for ch in &args[1..] {
        if c.subs.channels.insert(ch.clone()) {
            s.pubsub.subscribe(c.id, ch, &ob);
        }
        confirm(c, b"subscribe", Some(ch));
    }
    update_meta(s, c);
}

/// UNSUBSCRIBE [channel ...]: the channels named, or all; with none at all, one reply with
/// a null channel.
pub fn unsubscribe(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        c.subs.channels.iter().cloned().collect()
    };
    if names.is_empty() {
        confirm(c, b"unsubscribe", None);
    }
    for ch in names {
        if c.subs.channels.remove(&ch) {
            s.pubsub.unsubscribe(c.id, &ch);
        }
        confirm(c, b"unsubscribe", Some(&ch));
    }
    update_meta(s, c);
}

/// PSUBSCRIBE pattern [pattern ...]
pub fn psubscribe(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let ob = outbox(c);
    for p in &args[1..] {
        if !c.subs.patterns.contains(p) {
            c.subs.patterns.push(p.clone());
            s.pubsub.psubscribe(c.id, p, &ob);
        }
        confirm(c, b"psubscribe", Some(p));
    }
    update_meta(s, c);
}

/// PUNSUBSCRIBE [pattern ...]
pub fn punsubscribe(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        c.subs.patterns.clone()
    };
    if names.is_empty() {
        confirm(c, b"punsubscribe", None);
    }
    for p in names {
        if let Some(i) = c.subs.patterns.iter().position(|q| *q == p) {
            c.subs.patterns.remove(i);
            s.pubsub.punsubscribe(c.id, &p);
        }
        confirm(c, b"punsubscribe", Some(&p));
    }
    update_meta(s, c);
}

/// Drops every subscription of a closing (or RESET) connection, without replies.
pub fn forget(s: &Shared, c: &mut Client) {
    for ch in std::mem::take(&mut c.subs.channels) {
        s.pubsub.unsubscribe(c.id, &ch);
    }
    for p in std::mem::take(&mut c.subs.patterns) {
        s.pubsub.punsubscribe(c.id, &p);
    }
    c.subs.outbox = None;
    update_meta(s, c);
}

/// PUBLISH channel message: the number of receivers.
pub fn publish(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let n = s.pubsub.publish(&args[1], &args[2]);
    // A subscriber publishing to itself (RESP3) gets the message before the count.
    if let Some(ob) = &c.subs.outbox {
        ob.take_into(&mut c.out.buf);
    }
    c.out.int(n as i64);
}

/// PUBSUB CHANNELS [pattern]
pub fn pubsub_channels(s: &Shared, c: &mut Client, args: &[Bytes]) {
    if args.len() > 3 {
        c.out.error_bytes(&super::quoting(
            "ERR unknown subcommand or wrong number of arguments for '",
            &args[1],
            128,
            "'. Try PUBSUB HELP.",
        ));
        return;
    }
    let list = s.pubsub.channels(args.get(2).map(|p| &p[..]));
    c.out.array_len(list.len());
    for ch in list {
        c.out.bulk(&ch);
    }
}

/// PUBSUB NUMSUB [channel ...]: `[channel, count, ...]`
pub fn pubsub_numsub(s: &Shared, c: &mut Client, args: &[Bytes]) {
    c.out.array_len((args.len() - 2) * 2);
    for ch in &args[2..] {
        c.out.bulk(ch);
        c.out.int(s.pubsub.numsub(ch) as i64);
    }
}

/// PUBSUB NUMPAT
pub fn pubsub_numpat(s: &Shared, c: &mut Client, _: &[Bytes]) {
    c.out.int(s.pubsub.numpat() as i64);
}

/// PUBSUB HELP
pub fn pubsub_help(_: &Shared, c: &mut Client, _: &[Bytes]) {
    let lines = [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "HELP",
        "    Prints this help.",
    ];
    c.out.help(&lines);
}

/// Whether a subscribed RESP2 connection may run `name` (Redis's list in
/// `processCommand`).
pub fn allowed_while_subscribed(name: &str) -> bool {
    matches!(
        name,
        "ping" | "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "quit" | "reset"
    )
}
