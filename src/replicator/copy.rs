//! Copying one file: `GET` it from a source node and stream it into a `PUT` to the target,
//! with the same `Content-Length`. Memory stays bounded whatever the size.

use super::fence::{fenced, CopyGate};
use super::give_up::FailureKind;
use super::metrics::Reason;
use crate::cluster::snapshot::Snapshot;
use crate::replication_queue::Item;
use crate::transport::node_http::drain_answer;
use rand::seq::SliceRandom;
use std::io::Read;
use std::net::SocketAddr;
use ureq::SendBody;

/// An item, parsed, with its nodes' addresses.
#[derive(Clone)]
pub struct Plan {
    pub item: Item,
    pub sources: Vec<(String, SocketAddr)>,
    pub target: SocketAddr,
}

/// The plan for the item `text`, or why it cannot be copied.
pub fn plan(snapshot: &Snapshot, text: &str) -> Result<Plan, (Reason, String)> {
    let item = Item::parse(text)
        .map_err(|why| (Reason::BadItem, format!("not a replication item ({why})")))?;
    let find = |id: &str| -> Result<SocketAddr, (Reason, String)> {
        let node = snapshot.nodes.get(id).ok_or_else(|| {
            (
                Reason::UnknownNode,
                format!("node {id} is not in servers-map"),
            )
        })?;
        node.addr.ok_or_else(|| {
            (
                Reason::UnknownNode,
                format!("node {id} ({}) does not resolve", node.endpoint),
            )
        })
    };
    let target = find(&item.to)?;
    let sources = item
        .from
        .iter()
        .map(|id| find(id).map(|addr| (id.clone(), addr)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan {
        item,
        sources,
        target,
    })
}

/// Why a copy was not made: for the metrics, the log, and the item's failure record.
pub struct NotCopied {
    pub reason: Reason,
    pub why: String,
    pub kind: FailureKind,
}

/// Copies a plan's file from its sources in random order; the source that worked and the
/// bytes copied, or why none did (`SourceMissing` only when every source answered 404;
/// `NodeDown` only when no node answered at all).
pub fn copy_from_any(
    agent: &ureq::Agent,
    gate: &CopyGate,
    plan: &Plan,
) -> Result<(String, u64), NotCopied> {
    let mut order = plan.sources.clone();
    order.shuffle(&mut rand::rng());
    let mut failures = Vec::new();
    let mut reason = Reason::SourceMissing;
    let mut all_down = true;
    for (id, source) in order {
        let failure = match copy(agent, gate, source, plan.target, &plan.item.path) {
            Ok(bytes) => return Ok((id, bytes)),
            Err(failure) => failure,
        };
        failures.push(format!("from {id}: {failure}"));
        all_down &= failure.down;
        match failure.side {
            // A target failure will not get better with another source.
            Side::Target => {
                reason = Reason::Target;
                break;
            }
            Side::Source => reason = Reason::Source,
            Side::SourceMissing => {}
        }
    }
    let kind = match reason {
        Reason::SourceMissing => FailureKind::Missing,
        _ if all_down => FailureKind::NodeDown,
        _ => FailureKind::Attempt,
    };
    Err(NotCopied {
        reason,
        why: failures.join("; "),
        kind,
    })
}

/// One copy's failure: which side, why, and whether that node did not answer at all.
#[derive(Debug)]
struct CopyFailure {
    side: Side,
    why: String,
    down: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Side {
    /// The source answered 404: it does not have the file (yet).
    SourceMissing,
    /// The source could not give the file.
    Source,
    /// The target did not take it.
    Target,
}

impl CopyFailure {
    fn answered(side: Side, why: impl Into<String>) -> CopyFailure {
        CopyFailure {
            side,
            why: why.into(),
            down: false,
        }
    }

    /// A request that failed: `down` when the node never answered (refused, reset, timed
    /// out), not when it answered something we cannot use.
    fn request(side: Side, err: ureq::Error) -> CopyFailure {
        let down = matches!(
            err,
            ureq::Error::Io(_)
                | ureq::Error::Timeout(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::HostNotFound
        );
        CopyFailure {
            side,
            why: err.to_string(),
            down,
        }
    }
}

impl std::fmt::Display for CopyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.side {
            Side::SourceMissing => f.write_str("the source answered 404"),
            Side::Source => write!(f, "source: {}", self.why),
            Side::Target => write!(f, "target: {}", self.why),
        }
    }
}

fn content_length(headers: &ureq::http::HeaderMap) -> Option<u64> {
    headers
        .get("content-length")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Copies `path` from `source` to `target`; the bytes copied.
fn copy(
    agent: &ureq::Agent,
    gate: &CopyGate,
    source: SocketAddr,
    target: SocketAddr,
    path: &str,
) -> Result<u64, CopyFailure> {
    let response = agent
        .get(&format!("http://{source}{path}"))
        .call()
        .map_err(|err| CopyFailure::request(Side::Source, err))?;
    match response.status().as_u16() {
        200 => {}
        404 => return Err(CopyFailure::answered(Side::SourceMissing, "")),
        other => {
            return Err(CopyFailure::answered(
                Side::Source,
                format!("answered {other}"),
            ))
        }
    }
    let length = content_length(response.headers())
        .ok_or_else(|| CopyFailure::answered(Side::Source, "no Content-Length in its answer"))?;
    let mut body = response.into_body().into_reader();
    let mut fenced_body = FencedBody {
        inner: &mut body,
        left: length,
        gate,
    };
    let put = agent
        .put(&format!("http://{target}{path}"))
        .header("Content-Length", length.to_string())
        .send(SendBody::from_reader(&mut fenced_body));
    let status = match put {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let _ = drain_answer(answer.into_body().into_reader(), 64 * 1024);
            status
        }
        Err(err) => return Err(CopyFailure::request(Side::Target, err)),
    };
    // The PUT stopped reading at Content-Length; reading on to the end of the GET's body
    // (nothing is left) is what returns its connection to the pool, to be used again
    // instead of a new connection for every copy.
    let _ = drain_answer(&mut body, 1);
    // A Backpack node answers 201, also when it had the file (it appends a new copy and
    // repoints the key), so an item that comes back after a Redis outage is harmless.
    // 204 is taken too (WebDAV servers say it for a replaced file), never needed; nor is
    // HEAD, which a Backpack node answers with 418.
    if matches!(status, 201 | 204) {
        return Ok(length);
    }
    Err(CopyFailure::answered(
        Side::Target,
        format!("answered {status}"),
    ))
}

/// A body that goes to the target only under the fence (see `fence`): every piece while
/// the lease holds, and the last byte on its own, after `CopyGate::before_last_byte`. A
/// node stores a file only once it has the whole body, so a copy cut before its last byte
/// leaves nothing behind.
struct FencedBody<'a, R: Read> {
    inner: &'a mut R,
    /// Bytes of the body not given out yet.
    left: u64,
    gate: &'a CopyGate,
}

impl<R: Read> Read for FencedBody<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        if !self.gate.holds() {
            return Err(fenced());
        }
        let most = match self.left {
            1 => {
                self.gate.before_last_byte()?;
                1
            }
            left => (left - 1).min(buf.len() as u64) as usize,
        };
        let read = self.inner.read(&mut buf[..most])?;
        self.left -= read as u64;
        Ok(read)
    }
}
