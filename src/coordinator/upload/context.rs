//! What one upload carries through its steps (its context), and how it ends: where it was
//! stored, or the refusal to answer.

use super::payload::BodyError;
use crate::affinity::Home;
use crate::http::Request;
use std::borrow::Cow;
use std::time::Instant;

/// One upload as it goes through its steps: what the client sent, what the upload
/// learned on the way. Created when the request head is read; every step takes it.
pub(super) struct Upload<'r> {
    /// The key as sent: the raw request target (SPEC), without an upload token's `token`
    /// query parameter.
    pub target: Cow<'r, str>,
    /// The largest body taken: `--max-body`, or less when the upload token says so.
    pub max_body: u64,
    /// The body's length: as declared, or as counted once a chunked body is read.
    pub length: u64,
    pub started: Instant,
    /// The worker thread its client's socket wakes: node and Redis connections are taken
    /// from that worker's pools (see `affinity`).
    pub home: Home,
    /// Why each node tried so far did not store the file, as the answer names them.
    pub failures: Vec<String>,
}

impl<'r> Upload<'r> {
    pub(super) fn new(request: &'r Request, max_body: u64) -> Upload<'r> {
        Upload {
            target: Cow::Borrowed(request.target()),
            max_body,
            length: request.content_length(),
            started: Instant::now(),
            home: request.home,
            failures: Vec::new(),
        }
    }

    /// Milliseconds since the upload started.
    pub(super) fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }
}

/// An upload that was not stored, with the answer to give.
pub(super) struct Refusal {
    pub status: u16,
    pub message: String,
    /// Refused by the upload token check: why, as `/metrics` counts it.
    pub auth_reason: Option<&'static str>,
}

pub(super) fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
        auth_reason: None,
    }
}

/// Where an upload ended up: its shard, and the node (or nodes, comma-separated) that
/// stored it.
pub(super) struct Stored {
    pub shard: String,
    pub node: String,
}

pub(super) fn too_large(max_body: u64) -> Refusal {
    refuse(413, format!("the body is larger than {max_body} bytes"))
}

pub(super) fn empty() -> Refusal {
    refuse(
        400,
        "the body is empty: a Backpack node cannot store an empty file",
    )
}

pub(super) fn body_refusal(err: BodyError) -> Refusal {
    match err {
        BodyError::Client(why) => refuse(400, format!("the request body did not arrive: {why}")),
        BodyError::Spool(why) => refuse(503, format!("cannot keep the body: {why}")),
        BodyError::TooLarge(max_body) => too_large(max_body),
    }
}
