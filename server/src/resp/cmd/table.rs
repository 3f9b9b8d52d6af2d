//! The command table: every command we serve with its arity, flags, key positions and the
//! documentation COMMAND INFO/DOCS report, sorted by name for binary search.
//!
//! Data only; dispatch and the checks live in `cmd`.

use bytes::Bytes;

use super::{Spec, conn, expire, keys, multi, pubsub, repl, setops, sets, system};
use crate::resp::state::Client;
use crate::resp::state::Shared;

pub(super) fn nop(_: &Shared, _: &mut Client, _: &[Bytes]) {}

macro_rules! spec {
    ($name:literal, $arity:expr, [$($flag:literal),*], ($f:expr, $l:expr, $s:expr), $group:literal,
     $since:literal, $cx:literal, $summary:literal, $handler:expr) => {
        Spec { name: $name, arity: $arity, flags: &[$($flag),*], keys: ($f, $l, $s), group: $group, summary: $summary, since: $since, complexity: $cx, handler: $handler, subs: &[] }
    };
}

#[rustfmt::skip]
pub(super) const CLIENT_SUBS: &[Spec] = &[
    spec!("getname", 2, ["noscript", "loading", "stale"], (0, 0, 0), "connection", "2.6.9", "O(1)", "Returns the name of the connection.", conn::client_getname),
    spec!("help", 2, ["loading", "stale"], (0, 0, 0), "connection", "5.0.0", "O(1)", "Returns helpful text about the different subcommands.", conn::client_help),
    spec!("id", 2, ["noscript", "loading", "stale"], (0, 0, 0), "connection", "5.0.0", "O(1)", "Returns the unique client ID of the connection.", conn::client_id),
    spec!("info", 2, ["noscript", "loading", "stale"], (0, 0, 0), "connection", "6.2.0", "O(1)", "Returns information about the connection.", conn::client_info),
    spec!("kill", -3, ["admin", "noscript", "loading", "stale"], (0, 0, 0), "connection", "2.4.0", "O(N)", "Terminates open connections.", conn::client_kill),
    spec!("list", -2, ["admin", "noscript", "loading", "stale"], (0, 0, 0), "connection", "2.4.0", "O(N)", "Lists open connections.", conn::client_list),
    spec!("setinfo", 4, ["noscript", "loading", "stale"], (0, 0, 0), "connection", "7.2.0", "O(1)", "Sets information specific to the client or connection.", conn::client_setinfo),
    spec!("setname", 3, ["noscript", "loading", "stale"], (0, 0, 0), "connection", "2.6.9", "O(1)", "Sets the connection name.", conn::client_setname),
];

#[rustfmt::skip]
pub(super) const COMMAND_SUBS: &[Spec] = &[
    spec!("count", 2, ["loading", "stale"], (0, 0, 0), "server", "2.8.13", "O(1)", "Returns a count of commands.", system::command_count),
    spec!("docs", -2, ["loading", "stale"], (0, 0, 0), "server", "7.0.0", "O(N)", "Returns documentary information about one, multiple or all commands.", system::command_docs),
    spec!("getkeys", -4, ["loading", "stale"], (0, 0, 0), "server", "2.8.13", "O(N)", "Extracts the key names from an arbitrary command.", system::command_getkeys),
    spec!("getkeysandflags", -4, ["loading", "stale"], (0, 0, 0), "server", "7.0.0", "O(N)", "Extracts the key names and access flags for an arbitrary command.", system::command_getkeysandflags),
    spec!("help", 2, ["loading", "stale"], (0, 0, 0), "server", "5.0.0", "O(1)", "Returns helpful text about the different subcommands.", system::command_help),
    spec!("info", -2, ["loading", "stale"], (0, 0, 0), "server", "2.8.13", "O(N)", "Returns information about one, multiple or all commands.", system::command_info),
    spec!("list", -2, ["loading", "stale"], (0, 0, 0), "server", "7.0.0", "O(N)", "Returns a list of command names.", system::command_list),
];

#[rustfmt::skip]
pub(super) const CONFIG_SUBS: &[Spec] = &[
    spec!("get", -3, ["admin", "noscript", "loading", "stale"], (0, 0, 0), "server", "2.0.0", "O(N)", "Returns the effective values of configuration parameters.", super::config::config_get),
    spec!("help", 2, ["loading", "stale"], (0, 0, 0), "server", "5.0.0", "O(1)", "Returns helpful text about the different subcommands.", super::config::config_help),
    spec!("rewrite", 2, ["admin", "noscript", "loading", "stale"], (0, 0, 0), "server", "2.8.0", "O(1)", "Persists the effective configuration to file.", super::config::rewrite),
    spec!("set", -4, ["admin", "noscript", "loading", "stale"], (0, 0, 0), "server", "2.0.0", "O(N) when N is the number of configuration parameters provided", "Sets configuration parameters in-flight.", super::config::set),
];

#[rustfmt::skip]
pub(super) const PUBSUB_SUBS: &[Spec] = &[
    spec!("channels", -2, ["pubsub", "loading", "stale"], (0, 0, 0), "pubsub", "2.8.0", "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)", "Returns the active channels.", pubsub::pubsub_channels),
    spec!("help", 2, ["loading", "stale"], (0, 0, 0), "pubsub", "6.2.0", "O(1)", "Returns helpful text about the different subcommands.", pubsub::pubsub_help),
    spec!("numpat", 2, ["pubsub", "loading", "stale"], (0, 0, 0), "pubsub", "2.8.0", "O(1)", "Returns a count of unique pattern subscriptions.", pubsub::pubsub_numpat),
    spec!("numsub", -2, ["pubsub", "loading", "stale"], (0, 0, 0), "pubsub", "2.8.0", "O(N) for the NUMSUB subcommand, where N is the number of requested channels", "Returns a count of subscribers to channels.", pubsub::pubsub_numsub),
];

/// Every command we serve, sorted by name.
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec!("auth", -2, [ "noscript", "loading", "stale", "fast", "no_auth", "allow_busy" ], (0, 0, 0), "connection", "1.0.0", "O(N)", "Authenticates the connection.", conn::auth),
    spec!("bgsave", -1, ["admin", "noscript", "no_async_loading"], (0, 0, 0), "server", "1.0.0", "O(1)", "Asynchronously saves the database(s) to disk.", system::bgsave),
    Spec { name: "client", arity: -2, flags: &[], keys: (0, 0, 0), group: "connection", summary: "A container for client connection commands.", since: "2.4.0", complexity: "Depends on subcommand.", handler: nop, subs: CLIENT_SUBS, },
    Spec { name: "command", arity: -1, flags: &["loading", "stale"], keys: (0, 0, 0), group: "server", summary: "Returns detailed information about all commands.", since: "2.8.13", complexity: "O(N)", handler: system::command, subs: COMMAND_SUBS, },
    Spec { name: "config", arity: -2, flags: &[], keys: (0, 0, 0), group: "server", summary: "A container for server configuration commands.", since: "2.0.0", complexity: "Depends on subcommand.", handler: nop, subs: CONFIG_SUBS, },
    spec!("copy", -3, ["write", "denyoom"], (1, 2, 1), "generic", "6.2.0", "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.", "Copies the value of a key to a new key.", keys::copy),
    spec!("dbsize", 1, ["readonly", "fast"], (0, 0, 0), "server", "1.0.0", "O(1)", "Returns the number of keys in the database.", system::dbsize),
    spec!("del", -2, ["write"], (1, -1, 1), "generic", "1.0.0", "O(N)", "Deletes one or more keys.", keys::del),
    spec!("discard", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], (0, 0, 0), "transactions", "2.0.0", "O(N), when N is the number of queued commands", "Discards a transaction.", multi::discard),
    spec!("echo", 2, ["loading", "stale", "fast"], (0, 0, 0), "connection", "1.0.0", "O(1)", "Returns the given string.", conn::echo),
    spec!("exec", 1, ["noscript", "loading", "stale", "skip_slowlog"], (0, 0, 0), "transactions", "1.2.0", "Depends on commands in the transaction", "Executes all commands in a transaction.", multi::exec),
    spec!("exists", -2, ["readonly", "fast"], (1, -1, 1), "generic", "1.0.0", "O(N)", "Determines whether one or more keys exist.", keys::exists),
    spec!("expire", -3, ["write", "fast"], (1, 1, 1), "generic", "1.0.0", "O(1)", "Sets the expiration time of a key in seconds.", expire::expire),
    spec!("expireat", -3, ["write", "fast"], (1, 1, 1), "generic", "1.2.0", "O(1)", "Sets the expiration time of a key to a Unix timestamp.", expire::expireat),
    spec!("expiretime", 2, ["readonly", "fast"], (1, 1, 1), "generic", "7.0.0", "O(1)", "Returns the expiration time of a key as a Unix timestamp.", expire::expiretime),
    spec!("flushall", -1, ["write"], (0, 0, 0), "server", "1.0.0", "O(N)", "Removes all keys from all databases.", system::flushall),
    spec!("flushdb", -1, ["write"], (0, 0, 0), "server", "1.0.0", "O(N)", "Remove all keys from the current database.", system::flushall),
    spec!("hello", -1, [ "noscript", "loading", "stale", "fast", "no_auth", "allow_busy" ], (0, 0, 0), "connection", "6.0.0", "O(1)", "Handshakes with the Redis server.", conn::hello),
    spec!("info", -1, ["loading", "stale"], (0, 0, 0), "server", "1.0.0", "O(1)", "Returns information and statistics about the server.", system::info),
    spec!("keys", 2, ["readonly"], (0, 0, 0), "generic", "1.0.0", "O(N)", "Returns all key names that match a pattern.", keys::keys),
    spec!("lastsave", 1, ["loading", "stale", "fast"], (0, 0, 0), "server", "1.0.0", "O(1)", "Returns the Unix timestamp of the last successful save to disk.", system::lastsave),
    spec!("move", 3, ["write", "fast"], (1, 1, 1), "generic", "1.0.0", "O(1)", "Moves a key to another database.", keys::move_),
    spec!("multi", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], (0, 0, 0), "transactions", "1.2.0", "O(1)", "Starts a transaction.", multi::multi),
    spec!("persist", 2, ["write", "fast"], (1, 1, 1), "generic", "2.2.0", "O(1)", "Removes the expiration time of a key.", expire::persist),
    spec!("pexpire", -3, ["write", "fast"], (1, 1, 1), "generic", "2.6.0", "O(1)", "Sets the expiration time of a key in milliseconds.", expire::pexpire),
    spec!("pexpireat", -3, ["write", "fast"], (1, 1, 1), "generic", "2.6.0", "O(1)", "Sets the expiration time of a key to a Unix milliseconds timestamp.", expire::pexpireat),
    spec!("pexpiretime", 2, ["readonly", "fast"], (1, 1, 1), "generic", "7.0.0", "O(1)", "Returns the expiration time of a key as a Unix milliseconds timestamp.", expire::pexpiretime),
    spec!("ping", -1, ["fast"], (0, 0, 0), "connection", "1.0.0", "O(1)", "Returns the server's liveliness response.", conn::ping),
    spec!("psubscribe", -2, ["pubsub", "noscript", "loading", "stale"], (0, 0, 0), "pubsub", "2.0.0", "O(N) where N is the number of patterns to subscribe to.", "Listens for messages published to channels that match one or more patterns.", pubsub::psubscribe),
    spec!("psync", -3, ["admin", "noscript", "no_async_loading", "no_multi"], (0, 0, 0), "server", "2.8.0", "O(1)", "An internal command used in replication.", repl::psync),
    spec!("pttl", 2, ["readonly", "fast"], (1, 1, 1), "generic", "2.6.0", "O(1)", "Returns the expiration time in milliseconds of a key.", expire::pttl),
    spec!("publish", 3, ["pubsub", "loading", "stale", "fast"], (0, 0, 0), "pubsub", "2.0.0", "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).", "Posts a message to a channel.", pubsub::publish),
    Spec { name: "pubsub", arity: -2, flags: &[], keys: (0, 0, 0), group: "pubsub", summary: "A container for Pub/Sub commands.", since: "2.8.0", complexity: "Depends on subcommand.", handler: nop, subs: PUBSUB_SUBS, },
    spec!("punsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], (0, 0, 0), "pubsub", "2.0.0", "O(N) where N is the number of patterns to unsubscribe.", "Stops listening to messages published to channels that match one or more patterns.", pubsub::punsubscribe),
    spec!("quit", -1, [ "noscript", "loading", "stale", "fast", "no_auth", "allow_busy" ], (0, 0, 0), "connection", "1.0.0", "O(1)", "Closes the connection.", conn::quit),
    spec!("randomkey", 1, ["readonly"], (0, 0, 0), "generic", "1.0.0", "O(1)", "Returns a random key name from the database.", keys::randomkey),
    spec!("rename", 3, ["write"], (1, 2, 1), "generic", "1.0.0", "O(1)", "Renames a key and overwrites the destination.", keys::rename),
    spec!("renamenx", 3, ["write", "fast"], (1, 2, 1), "generic", "1.0.0", "O(1)", "Renames a key only when the target key name doesn't exist.", keys::renamenx),
    spec!("replconf", -1, ["admin", "noscript", "loading", "stale", "allow_busy"], (0, 0, 0), "server", "3.0.0", "O(1)", "An internal command for configuring the replication stream.", repl::replconf),
    spec!("replicaof", 3, ["admin", "noscript", "stale", "no_async_loading"], (0, 0, 0), "server", "5.0.0", "O(1)", "Configures a server as replica of another, or promotes it to a master.", repl::replicaof),
    spec!("reset", 1, [ "noscript", "loading", "stale", "fast", "no_auth", "allow_busy" ], (0, 0, 0), "connection", "6.2.0", "O(1)", "Resets the connection.", conn::reset),
    spec!("role", 1, ["noscript", "loading", "stale", "fast"], (0, 0, 0), "server", "2.8.12", "O(1)", "Returns the replication role.", repl::role),
    spec!("sadd", -3, ["write", "denyoom", "fast"], (1, 1, 1), "set", "1.0.0", "O(1)", "Adds one or more members to a set. Creates the key if it doesn't exist.", sets::sadd),
    spec!("save", 1, ["admin", "noscript", "no_async_loading", "no_multi"], (0, 0, 0), "server", "1.0.0", "O(N)", "Synchronously saves the database(s) to disk.", system::save),
    spec!("scan", -2, ["readonly"], (0, 0, 0), "generic", "2.8.0", "O(1)", "Iterates over the key names in the database.", keys::scan),
    spec!("scard", 2, ["readonly", "fast"], (1, 1, 1), "set", "1.0.0", "O(1)", "Returns the number of members in a set.", sets::scard),
    spec!("sdiff", -2, ["readonly"], (1, -1, 1), "set", "1.0.0", "O(N)", "Returns the difference of multiple sets.", setops::sdiff),
    spec!("sdiffstore", -3, ["write", "denyoom"], (1, -1, 1), "set", "1.0.0", "O(N)", "Stores the difference of multiple sets in a key.", setops::sdiffstore),
    spec!("select", 2, ["loading", "stale", "fast"], (0, 0, 0), "connection", "1.0.0", "O(1)", "Changes the selected database.", conn::select),
    spec!("sinter", -2, ["readonly"], (1, -1, 1), "set", "1.0.0", "O(N*M)", "Returns the intersect of multiple sets.", setops::sinter),
    spec!("sintercard", -3, ["readonly", "movablekeys"], (0, 0, 0), "set", "7.0.0", "O(N*M)", "Returns the number of members of the intersect of multiple sets.", setops::sintercard),
    spec!("sinterstore", -3, ["write", "denyoom"], (1, -1, 1), "set", "1.0.0", "O(N*M)", "Stores the intersect of multiple sets in a key.", setops::sinterstore),
    spec!("sismember", 3, ["readonly", "fast"], (1, 1, 1), "set", "1.0.0", "O(1)", "Determines whether a member belongs to a set.", sets::sismember),
    spec!("slaveof", 3, ["admin", "noscript", "stale", "no_async_loading"], (0, 0, 0), "server", "1.0.0", "O(1)", "Sets a Redis server as a replica of another, or promotes it to being a master.", repl::replicaof),
    spec!("smembers", 2, ["readonly"], (1, 1, 1), "set", "1.0.0", "O(N)", "Returns all members of a set.", sets::smembers),
    spec!("smismember", -3, ["readonly", "fast"], (1, 1, 1), "set", "6.2.0", "O(N)", "Determines whether multiple members belong to a set.", sets::smismember),
    spec!("smove", 4, ["write", "fast"], (1, 2, 1), "set", "1.0.0", "O(1)", "Moves a member from one set to another.", sets::smove),
    spec!("spop", -2, ["write", "fast"], (1, 1, 1), "set", "1.0.0", "O(N)", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", sets::spop),
    spec!("srandmember", -2, ["readonly"], (1, 1, 1), "set", "1.0.0", "O(N)", "Get one or multiple random members from a set", sets::srandmember),
    spec!("srem", -3, ["write", "fast"], (1, 1, 1), "set", "1.0.0", "O(N)", "Removes one or more members from a set. Deletes the set if the last member was removed.", sets::srem),
    spec!("sscan", -3, ["readonly"], (1, 1, 1), "set", "2.8.0", "O(1)", "Iterates over members of a set.", sets::sscan),
    spec!("subscribe", -2, ["pubsub", "noscript", "loading", "stale"], (0, 0, 0), "pubsub", "2.0.0", "O(N) where N is the number of channels to subscribe to.", "Listens for messages published to channels.", pubsub::subscribe),
    spec!("sunion", -2, ["readonly"], (1, -1, 1), "set", "1.0.0", "O(N)", "Returns the union of multiple sets.", setops::sunion),
    spec!("sunionstore", -3, ["write", "denyoom"], (1, -1, 1), "set", "1.0.0", "O(N)", "Stores the union of multiple sets in a key.", setops::sunionstore),
    spec!("sync", 1, ["admin", "noscript", "no_async_loading", "no_multi"], (0, 0, 0), "server", "1.0.0", "O(1)", "An internal command used in replication.", repl::psync),
    spec!("time", 1, ["loading", "stale", "fast"], (0, 0, 0), "server", "2.6.0", "O(1)", "Returns the server time.", system::time),
    spec!("touch", -2, ["readonly", "fast"], (1, -1, 1), "generic", "3.2.1", "O(N) where N is the number of keys that will be touched.", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", keys::touch),
    spec!("ttl", 2, ["readonly", "fast"], (1, 1, 1), "generic", "1.0.0", "O(1)", "Returns the expiration time in seconds of a key.", expire::ttl),
    spec!("type", 2, ["readonly", "fast"], (1, 1, 1), "generic", "1.0.0", "O(1)", "Determines the type of value stored at a key.", keys::type_),
    spec!("unlink", -2, ["write", "fast"], (1, -1, 1), "generic", "4.0.0", "O(1)", "Asynchronously deletes one or more keys.", keys::del),
    spec!("unsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], (0, 0, 0), "pubsub", "2.0.0", "O(N) where N is the number of channels to unsubscribe.", "Stops listening to messages posted to channels.", pubsub::unsubscribe),
    spec!("unwatch", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], (0, 0, 0), "transactions", "2.2.0", "O(1)", "Forgets about watched keys of a transaction.", multi::unwatch),
    spec!("wait", 3, ["noscript"], (0, 0, 0), "generic", "3.0.0", "O(1)", "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.", repl::wait),
    spec!("watch", -2, ["noscript", "loading", "stale", "fast", "allow_busy"], (1, -1, 1), "transactions", "2.2.0", "O(1) for every key.", "Monitors changes to keys to determine the execution of a transaction.", multi::watch),
];
