//! Copying one file: `GET` it from a source node and stream it into a `PUT` to the target,
//! with the same `Content-Length`. Memory stays bounded whatever the size.

use super::metrics::Reason;
use crate::cluster::snapshot::Snapshot;
use crate::replication_queue::Item;
use rand::seq::SliceRandom;
use std::io::Read;
use std::net::SocketAddr;
use ureq::SendBody;

/// An item, parsed, with its nodes' addresses.
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

/// Copies a plan's file from its sources in random order; the source that worked and the
/// bytes copied, or why none did (`SourceMissing` only when every source answered 404).
pub fn copy_from_any(agent: &ureq::Agent, plan: &Plan) -> Result<(String, u64), (Reason, String)> {
    let mut order = plan.sources.clone();
    order.shuffle(&mut rand::rng());
    let mut failures = Vec::new();
    let mut reason = Reason::SourceMissing;
    for (id, source) in order {
        match copy(agent, source, plan.target, &plan.item.path) {
            Ok(bytes) => return Ok((id, bytes)),
            // A target failure will not get better with another source.
            Err(failure @ CopyFailure::Target(_)) => {
                failures.push(format!("from {id}: {failure}"));
                reason = Reason::Target;
                break;
            }
            Err(failure @ CopyFailure::Source(_)) => {
                failures.push(format!("from {id}: {failure}"));
                reason = Reason::Source;
            }
            Err(failure @ CopyFailure::SourceMissing) => {
                failures.push(format!("from {id}: {failure}"));
            }
        }
    }
    Err((reason, failures.join("; ")))
}

#[derive(Debug)]
enum CopyFailure {
    /// The source answered 404: it does not have the file (yet).
    SourceMissing,
    /// The source could not give the file.
    Source(String),
    /// The target did not take it.
    Target(String),
}

impl std::fmt::Display for CopyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyFailure::SourceMissing => f.write_str("the source answered 404"),
            CopyFailure::Source(why) => write!(f, "source: {why}"),
            CopyFailure::Target(why) => write!(f, "target: {why}"),
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
    source: SocketAddr,
    target: SocketAddr,
    path: &str,
) -> Result<u64, CopyFailure> {
    let response = agent
        .get(&format!("http://{source}{path}"))
        .call()
        .map_err(|err| CopyFailure::Source(err.to_string()))?;
    match response.status().as_u16() {
        200 => {}
        404 => return Err(CopyFailure::SourceMissing),
        other => return Err(CopyFailure::Source(format!("answered {other}"))),
    }
    let length = content_length(response.headers())
        .ok_or_else(|| CopyFailure::Source("no Content-Length in its answer".into()))?;
    let mut body = response.into_body().into_reader();
    let put = agent
        .put(&format!("http://{target}{path}"))
        .header("Content-Length", length.to_string())
        .send(SendBody::from_reader(&mut body));
    let status = match put {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let _ = std::io::copy(
                &mut answer.into_body().into_reader().take(64 * 1024),
                &mut std::io::sink(),
            );
            status
        }
        Err(err) => return Err(CopyFailure::Target(err.to_string())),
    };
    // The PUT stopped reading at Content-Length; reading on to the end of the GET's body
    // (nothing is left) is what returns its connection to the pool, to be used again
    // instead of a new connection for every copy.
    let _ = std::io::copy(&mut body.by_ref().take(1), &mut std::io::sink());
    // A Backpack node answers 201, also when it had the file (it appends a new copy and
    // repoints the key), so an item that comes back after a Redis outage is harmless.
    // 204 is taken too (WebDAV servers say it for a replaced file), never needed; nor is
    // HEAD, which a Backpack node answers with 418.
    if matches!(status, 201 | 204) {
        return Ok(length);
    }
    Err(CopyFailure::Target(format!("answered {status}")))
}
