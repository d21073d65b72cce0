//! Clients for the coordinator's peers (Backpack nodes over HTTP, Redis) whose sockets
//! are `may` sockets.
//!
//! A `may` coroutine only yields on `may`'s own I/O. `ureq` and the `redis` client use
//! std sockets by default, which would block the whole worker thread, and with it every
//! other upload on that worker, behind one slow node. These modules plug `may` sockets
//! into both crates, so a slow peer only parks the coroutine that waits for it.

pub mod node_http;
pub mod node_transport;
pub mod peer;
pub mod redis;
pub mod tcp_queue;
