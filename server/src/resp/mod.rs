//! The Redis-protocol TTL set service: RESP2/RESP3 over TCP, sets with Redis 7 semantics,
//! lazy and active expiry, and an append-only file with rewrite and a shutdown snapshot.
//!
//! Layout follows the data path: `frame` (bytes → requests), `connection` (one client),
//! `cmd` (the command table and handlers, transactions in `cmd::multi`), `keyspace` (sets
//! and expiry) behind `keyspace_lock` (which EXEC holds across its queue), `watch` (who
//! WATCHes what), `aof` and
//! `snapshot` (persistence, on the keyspace alone), `state` (what connections and tasks
//! share), `tasks` (active expiry and the AOF writer), `server` (listener, limits,
//! shutdown), `repl`/`replica_link`/`upstream` (Redis replication both ways), `pubsub`
//! (channels, patterns and subscribers' bounded outboxes). It is not a general Redis: only
//! sets exist, and there is one database.

pub mod aof;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod connection;
pub mod frame;
pub mod glob;
pub mod keyspace;
pub mod keyspace_lock;
pub mod member;
pub mod memory;
pub mod pubsub;
pub mod rdb;
pub mod repl;
pub mod replica_link;
pub mod reply;
pub mod runtime;
pub mod server;
pub mod set;
pub mod snapshot;
pub mod state;
pub mod stats;
pub mod tasks;
pub mod upstream;
pub mod view;
pub mod watch;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{AppendFsync, Limits, RespConfig};
pub use runtime::{RespThread, start_on_own_runtime};
pub use server::{RespHandle, RespServer};
