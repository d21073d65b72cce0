//! `backpack-coordinator`: takes `PUT` uploads and places them on shards.
//!
//! Where things are: `upload` is the write path, start to finish; it reads the
//! configuration snapshot that `crate::cluster` keeps current (the only code that talks
//! to ZooKeeper) and tells what it does to `observers`, which count it and answer
//! `/stats`, `/metrics` and the console; `command` parses the command line and starts
//! everything.

pub mod command;
mod observers;
pub mod upload;

use crate::http::{Body, Handler, Request, Response};
use observers::Observers;
use std::sync::Arc;
use upload::Uploads;

/// The coordinator's request handler: uploads go to the write path, reads of its own
/// state to the observers.
pub struct Coordinator {
    uploads: Uploads,
    observers: Arc<Observers>,
}

impl Handler for Coordinator {
    fn call(&self, request: &Request, body: &mut Body<'_>) -> Response {
        match request.method() {
            "PUT" => self.uploads.handle(request, body),
            "GET" | "HEAD" => match request.path() {
                "/" => self.observers.console_answer(&self.uploads),
                "/status.json" => self.observers.status_answer(&self.uploads),
                "/stats" => self.observers.stats_answer(),
                "/metrics" => self.observers.metrics_answer(&self.uploads),
                _ => Response::error(
                    404,
                    "not found: uploads are PUT; the console is GET /, its data /status.json, statistics /stats and /metrics",
                ),
            },
            other => Response::error(405, &format!("method {other} is not allowed"))
                .with_header("Allow", "GET, HEAD, PUT".into()),
        }
    }
}
