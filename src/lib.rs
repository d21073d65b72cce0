//! backpack-rs: the coordination layer of a Backpack storage cluster.
//!
//! Where things are:
//! - `state`: the cluster state kept in ZooKeeper, as typed values (one module per node);
//! - `zk_state`: reading and compare-and-set updates of that state over a `zk` session;
//! - `cluster`: the live configuration (ZooKeeper session, watches, snapshots);
//! - `coordinator`: the upload server (`coordinator::upload` is the write path);
//! - `upload_auth`: who may upload (signed upload tokens, `--upload-keys`);
//! - `http`: the HTTP/1.1 server it runs on (`may` coroutines);
//! - `transport`: HTTP and Redis clients over `may` sockets;
//! - `admin`: the admin commands (init, add-server, add-shard, ...), run by `cli`;
//! - `replication_queue`: the Redis set that holds replication tasks;
//! - `replicator`: the daemon that drains it.
//!
//! Test and benchmark tooling (real servers on loopback, `bp-bench`) is the workspace
//! crate `backpack-testkit` (`testkit/`), not part of this one.

pub mod admin;
pub mod affinity;
pub mod allocator;
pub mod cli;
pub mod cluster;
pub mod command;
pub mod coordinator;
pub mod duration_arg;
pub mod error;
pub mod fuzzing;
pub mod hostname;
pub mod http;
pub mod js_json;
pub mod logline;
pub mod nginx_gen;
pub mod repair;
pub mod replication_queue;
pub mod replicator;
pub mod shutdown;
pub mod size;
pub mod state;
pub mod transport;
pub mod upload_auth;
pub mod version;
pub mod zk;
pub mod zk_state;

pub use error::{Error, Result};
