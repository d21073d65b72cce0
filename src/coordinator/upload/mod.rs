//! The write path: `PUT /<path>` stores the body on one node of a writable shard, queues
//! replication to the shard's other nodes, and answers `{"shard_id": "<id>"}`.
//!
//! 1. Validate the request (before reading any of the body, so `100 Continue` is only
//!    sent for uploads we will take): what no Backpack node can store is refused here
//!    (`node_key`), never sent to a node and never counted against one.
//! 2. Choose a writable shard, weighted by free space (`placement`).
//! 3. Try its nodes in random order (recently failed ones last, `node_health`); the first
//!    that answers 201 or 204 has the file (`node_put`). If every node of the shard
//!    fails, try another shard (`store`; `copies` for `--sync-copies`).
//! 4. Push a replication item for every other node of the shard to every Redis; at least
//!    one must take them, or the answer is 503 (`replicate`).
//! 5. Count the bytes toward the shard's size (applied to ZooKeeper in batches).
//!
//! An upload's state travels in its context (`context::Upload`); the body across
//! attempts is `payload`, held in memory under `memory_budget`. What the path does is
//! told to `UploadEvents`, which the coordinator's observers implement: this module knows
//! nothing of `/stats`, `/metrics` or the console.

mod context;
mod copies;
mod memory_budget;
mod node_health;
pub mod node_key;
mod node_put;
mod payload;
pub mod placement;
mod replicate;
mod store;

pub use node_health::NodeReport;

use crate::cluster::sizes::PendingSizes;
use crate::cluster::snapshot::SnapshotCell;
use crate::http::{Body, Framing, Request, Response};
use crate::log_line;
use crate::transport::node_http::{self, NodeAgents};
use crate::upload_auth::{self, key_ring::KeyRing};
use context::{empty, refuse, too_large, Refusal, Upload};
use memory_budget::MemoryBudget;
use node_health::NodeHealth;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What the write path is tuned by (from the command line).
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// Largest body accepted (413 above).
    pub max_body: u64,
    /// Bodies up to this size are kept in memory; larger ones are spooled while streamed.
    pub memory_body: u64,
    /// Bytes of bodies held in memory at once, all uploads together.
    pub memory_budget: u64,
    pub spool_dir: PathBuf,
    /// How many shards an upload may try before it fails.
    pub shard_attempts: usize,
    /// Connect, silence and whole-request bounds of a PUT to a node.
    pub node_limits: node_http::Limits,
    /// How long a node that failed is tried last.
    pub node_cooldown: Duration,
    /// One log line per stored upload (failures are always logged).
    pub log_uploads: bool,
    /// Nodes of one shard that must store an upload before it is acknowledged
    /// (`--sync-copies`; 1 stores on one node and queues the rest).
    pub sync_copies: usize,
}

/// What the write path tells whoever watches it. Called on the upload's coroutine: an
/// implementation must not block.
pub trait UploadEvents: Send + Sync {
    /// An upload was answered with `status`; its body's length and how long it took.
    fn answered(&self, status: u16, bytes: u64, elapsed: Duration);
    /// An upload was refused by the upload token check, for `reason`.
    fn refused_auth(&self, reason: &'static str);
    /// A node did not store a file.
    fn node_failed(&self, node: &str);
    /// An upload was acknowledged with more than one copy stored (`--sync-copies`).
    fn stored_copies(&self);
    /// An upload was refused because no shard could store `--sync-copies` copies.
    fn too_few_nodes(&self);
}

/// What every upload uses: the settings, the configuration, the nodes' health and
/// connections, the memory for bodies, where sizes add up, and who hears of it.
pub struct Uploads {
    settings: UploadSettings,
    snapshots: Arc<SnapshotCell>,
    sizes: Arc<PendingSizes>,
    nodes: NodeHealth,
    agents: NodeAgents,
    /// Caps the bytes of bodies held in memory (see `memory_budget`).
    memory: MemoryBudget,
    events: Arc<dyn UploadEvents>,
    /// Shards already logged as too small for `--sync-copies` (each is logged once).
    small_shards: Mutex<HashSet<String>>,
    /// The keys that sign upload tokens, when tokens are required (`--upload-keys`).
    upload_keys: Option<Arc<KeyRing>>,
}

impl Uploads {
    /// The write path for `settings`: it reads configurations from `snapshots`, adds
    /// shard sizes to `sizes`, and tells `events` what it does.
    pub fn new(
        settings: UploadSettings,
        snapshots: Arc<SnapshotCell>,
        sizes: Arc<PendingSizes>,
        events: Arc<dyn UploadEvents>,
    ) -> Uploads {
        Uploads {
            nodes: NodeHealth::new(settings.node_cooldown),
            agents: NodeAgents::new(settings.node_limits, node_http::Role::Uploads),
            memory: MemoryBudget::new(settings.memory_budget),
            settings,
            snapshots,
            sizes,
            events,
            small_shards: Mutex::default(),
            upload_keys: None,
        }
    }

    /// Requires an upload token signed by a key of `ring` on every upload.
    pub fn requiring_tokens(mut self, ring: Arc<KeyRing>) -> Uploads {
        self.upload_keys = Some(ring);
        self
    }

    /// The keys that sign upload tokens, when tokens are required.
    pub fn upload_keys(&self) -> Option<&KeyRing> {
        self.upload_keys.as_deref()
    }

    /// Each node's recent failures as this coordinator saw them, for the console.
    pub fn node_report(&self) -> HashMap<String, NodeReport> {
        self.nodes.report()
    }

    /// Bytes of upload bodies held in memory now.
    pub fn memory_in_use(&self) -> u64 {
        self.memory.used()
    }

    /// `PUT /<path>`: one log line and one event per upload, whatever the outcome.
    pub fn handle(&self, request: &Request, body: &mut Body<'_>) -> Response {
        let mut upload = Upload::new(request, self.settings.max_body);
        let outcome = self
            .validate(request, &mut upload)
            .and_then(|declared| self.store(&mut upload, declared, body));
        let elapsed = upload.started.elapsed();
        let ms = elapsed.as_secs_f64() * 1000.0;
        let status = outcome
            .as_ref()
            .map_or_else(|refusal| refusal.status, |_| 200);
        self.events.answered(status, upload.length, elapsed);
        let length = upload.length;
        match outcome {
            Ok(stored) => {
                if self.settings.log_uploads {
                    log_line!(
                        "PUT {} {length} bytes -> shard {} node {} in {ms:.1} ms: 200",
                        upload.target,
                        stored.shard,
                        stored.node
                    );
                }
                stored_answer(&stored.shard)
            }
            Err(mut refusal) => {
                // Below `--max-body`, the limit is the upload token's.
                if refusal.status == 413 && upload.max_body < self.settings.max_body {
                    refusal.auth_reason = Some("too_large");
                }
                if let Some(reason) = refusal.auth_reason {
                    self.events.refused_auth(reason);
                }
                log_line!(
                    "PUT {} {length} bytes in {ms:.1} ms: {} {}",
                    upload.target,
                    refusal.status,
                    refusal.message
                );
                let answer = Response::error(refusal.status, &refusal.message);
                match refusal.status {
                    401 => answer.with_header("WWW-Authenticate", "Bearer".into()),
                    _ => answer,
                }
            }
        }
    }

    /// Checks the request before any of its body is read: its declared length (None for
    /// a chunked body, whose length is known only at its end). In this order: framing,
    /// the upload token, `--max-body`, the key, an empty body.
    fn validate<'r>(
        &self,
        request: &'r Request,
        upload: &mut Upload<'r>,
    ) -> Result<Option<u64>, Refusal> {
        let declared = match request.framing {
            Framing::Length(length) => Some(length),
            Framing::Chunked => None,
            Framing::Absent => {
                return Err(refuse(
                    411,
                    "Content-Length or Transfer-Encoding: chunked is required",
                ))
            }
        };
        if let Some(ring) = &self.upload_keys {
            let permit =
                match ring.with_current(|keys| upload_auth::authorize(request, keys, unix_now())) {
                    Ok(permit) => permit,
                    Err(refused) => {
                        upload.target = upload_auth::redacted(request.target());
                        return Err(Refusal {
                            status: refused.status,
                            message: refused.message,
                            auth_reason: Some(refused.reason),
                        });
                    }
                };
            upload.target = permit.key;
            upload.max_body = upload.max_body.min(permit.max_body);
        }
        if declared.is_some_and(|length| length > self.settings.max_body) {
            return Err(too_large(self.settings.max_body));
        }
        node_key::check_target(&upload.target).map_err(|why| refuse(400, why))?;
        if declared == Some(0) {
            return Err(empty());
        }
        Ok(declared)
    }
}

/// Seconds since 1970 (0 for a clock set before it: every token is then in time).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// `{"shard_id":"<id>"}`, as `Response::json` would print it, written directly: every
/// upload answers this.
fn stored_answer(shard: &str) -> Response {
    let mut body = Vec::with_capacity(24 + shard.len());
    body.extend_from_slice(b"{\"shard_id\":");
    crate::js_json::push_string(&mut body, shard);
    body.extend_from_slice(b"}\n");
    Response::plain(200, "application/json", body)
}
