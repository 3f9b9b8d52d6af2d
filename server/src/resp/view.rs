//! What the web console and `/metrics` show of the TTL set service, read from the state
//! it already keeps: keys, members, memory, clients, connections accepted and rejected,
//! expired keys, the AOF's size, rewrite and write status and its fsync lag; and the
//! binding of the service's series into the server's process registry.
//!
//! Members and the memory estimate walk the keyspace under its lock (O(members), as INFO
//! memory does), at most once per [`super::stats::WALK_EVERY`]; between walks the last
//! result is shown. Keys, clients and every counter are read fresh. No evictions exist (`maxmemory`
//! is not supported), so `speedlayer_resp_evicted_keys_total` is 0 by construction. It
//! changes no data and does not serve HTTP.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use serde::Serialize;
use speedlayer_metrics::{Registry, Snapshot};

use super::state::Shared;

/// Includes the service's command series in `process` and copies the state-derived
/// series of `shared` in before each rendering (through a weak reference: the registry
/// does not keep a stopped service alive).
pub fn attach(shared: &Arc<Shared>, process: &Registry) {
    process.include(shared.metrics.registry().clone());
    let weak: Weak<Shared> = Arc::downgrade(shared);
    process.on_render(Arc::new(move |out: &mut Snapshot<'_>| {
        if let Some(shared) = weak.upgrade() {
            export(&view(&shared), out);
        }
    }));
}

/// What the console and `/metrics` show of the service at one moment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RespView {
    /// Bound address.
    pub addr: String,
    /// Live and expired-but-not-yet-reclaimed keys.
    pub keys: u64,
    /// Keys with a TTL.
    pub volatile_keys: u64,
    /// Members of all sets.
    pub members: u64,
    /// Approximate bytes of keys and members (as INFO's estimate).
    pub memory_bytes: u64,
    /// Connected clients.
    pub clients: u64,
    /// maxclients.
    pub max_clients: u64,
    /// Connections accepted so far.
    pub connections_received: u64,
    /// Connections refused (maxclients, protected mode).
    pub rejected_connections: u64,
    /// Keys removed by expiry.
    pub expired_keys: u64,
    /// Commands executed.
    pub commands_processed: u64,
    /// `appendfsync` setting.
    pub appendfsync: String,
    /// AOF size in bytes.
    pub aof_size: u64,
    /// AOF size after the last rewrite (or at start).
    pub aof_base_size: u64,
    /// Rewrites since start.
    pub aof_rewrites: u64,
    /// Whether the last rewrite failed.
    pub aof_last_rewrite_failed: bool,
    /// Rewrites that failed in a row.
    pub aof_rewrite_failures: u64,
    /// When the last rewrite was seen done (Unix s; by the console's and scrapes' readings).
    pub aof_last_rewrite_seen: Option<f64>,
    /// Whether writes to the AOF are failing now.
    pub aof_write_failing: bool,
    /// Seconds since the AOF last became durable while writes wait for it.
    pub aof_fsync_lag_seconds: f64,
}

/// Reads the service's state into a [`RespView`] (see the module doc for what walks the keyspace).
pub fn view(shared: &Shared) -> RespView {
    let (keys, volatile_keys, (members, memory_bytes), expired_keys) = {
        let ks = shared.ks.lock();
        let walked = shared.metrics.walked(|| {
            let members: usize = ks.iter().map(|(_, e)| e.set.len()).sum();
            (members as u64, ks.approx_bytes() as u64)
        });
        (ks.len(), ks.volatile_len(), walked, ks.stats.expired_keys)
    };
    let info = shared.aof.as_ref().map(|a| a.info()).unwrap_or_default();
    let lag = shared.metrics.fsync_lag(info.durable_points, info.size);
    let st = &shared.stats;
    RespView {
        addr: shared.local_addr.to_string(),
        keys: keys as u64,
        volatile_keys: volatile_keys as u64,
        members,
        memory_bytes,
        clients: shared.client_count() as u64,
        max_clients: shared.config.maxclients as u64,
        connections_received: st.total_connections_received.load(Ordering::Relaxed),
        rejected_connections: st.rejected_connections.load(Ordering::Relaxed),
        expired_keys,
        commands_processed: st.total_commands_processed.load(Ordering::Relaxed),
        appendfsync: shared.config.appendfsync.as_str().to_owned(),
        aof_size: info.size,
        aof_base_size: info.base_size,
        aof_rewrites: info.rewrites,
        aof_last_rewrite_failed: info.last_rewrite_failed,
        aof_rewrite_failures: info.rewrite_failures,
        aof_last_rewrite_seen: shared.metrics.last_rewrite_seen(info.rewrites),
        aof_write_failing: info.write_errno.is_some(),
        aof_fsync_lag_seconds: lag,
    }
}

fn export(v: &RespView, out: &mut Snapshot<'_>) {
    let g = |out: &mut Snapshot<'_>, name: &str, help: &str, value: u64| {
        out.gauge(name, help, &[], value as i64);
    };
    g(
        out,
        "speedlayer_resp_keys",
        "Keys in the TTL set service.",
        v.keys,
    );
    g(
        out,
        "speedlayer_resp_volatile_keys",
        "Keys with a TTL.",
        v.volatile_keys,
    );
    g(
        out,
        "speedlayer_resp_members",
        "Members of all sets.",
        v.members,
    );
    g(
        out,
        "speedlayer_resp_memory_bytes",
        "Approximate bytes held by keys and members.",
        v.memory_bytes,
    );
    g(
        out,
        "speedlayer_resp_connected_clients",
        "Connected RESP clients.",
        v.clients,
    );
    g(
        out,
        "speedlayer_resp_max_clients",
        "The RESP connection cap (maxclients).",
        v.max_clients,
    );
    let c = |out: &mut Snapshot<'_>, name: &str, help: &str, value: u64| {
        out.counter(name, help, &[], value);
    };
    c(
        out,
        "speedlayer_resp_connections_received_total",
        "RESP connections accepted.",
        v.connections_received,
    );
    c(
        out,
        "speedlayer_resp_rejected_connections_total",
        "RESP connections refused (maxclients reached, protected mode).",
        v.rejected_connections,
    );
    c(
        out,
        "speedlayer_resp_expired_keys_total",
        "Keys removed because their TTL passed.",
        v.expired_keys,
    );
    c(
        out,
        "speedlayer_resp_evicted_keys_total",
        "Keys evicted for memory (always 0: no maxmemory policy evicts).",
        0,
    );
    g(
        out,
        "speedlayer_resp_aof_size_bytes",
        "AOF size.",
        v.aof_size,
    );
    c(
        out,
        "speedlayer_resp_aof_rewrites_total",
        "AOF rewrites done since start.",
        v.aof_rewrites,
    );
    g(
        out,
        "speedlayer_resp_aof_last_rewrite_failed",
        "1 if the last AOF rewrite failed.",
        u64::from(v.aof_last_rewrite_failed),
    );
    g(
        out,
        "speedlayer_resp_aof_write_failing",
        "1 while writes or fsyncs of the AOF fail (write commands get -MISCONF).",
        u64::from(v.aof_write_failing),
    );
    out.float_gauge(
        "speedlayer_resp_aof_fsync_lag_seconds",
        "Seconds since the AOF last became durable while newer writes wait for an fsync (0: all durable).",
        &[],
        v.aof_fsync_lag_seconds,
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_table_fits_the_stats_slots() {
        use super::super::cmd::{COMMANDS, index};
        assert!(COMMANDS.len() < super::super::stats::SLOTS);
        for (i, spec) in COMMANDS.iter().enumerate() {
            assert_eq!(
                index(spec.name.to_ascii_uppercase().as_bytes()),
                Some((i, spec.name))
            );
        }
        assert_eq!(index(b"nosuch"), None);
    }
}
