//! Keeping an upload's body so that it can be sent again when a node fails.
//!
//! Small bodies (up to `--memory-body`) are read into memory before the first node is
//! tried. A large body is streamed to the first node as it arrives and, on the way, copied
//! to a spool file ("tee"): if that node succeeds the upload cost no extra pass over the
//! bytes; if it fails, the rest of the body is read into the spool and the next nodes get
//! the file. Memory per upload stays bounded whatever the size. Spool files are unnamed
//! (`O_TMPFILE`): they never appear in the directory and vanish with their handle, also
//! when the process dies.

use super::memory_budget::{MemoryBudget, Reservation};
use crate::http::Body;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

/// Why a body could not be kept.
#[derive(Debug)]
pub enum BodyError {
    /// The client stopped sending (closed, or stalled past the body timeout).
    Client(String),
    /// Our side: the spool file could not be written.
    Spool(String),
    /// A body of unknown length passed this many bytes.
    TooLarge(u64),
}

/// What a node attempt sends and gets back.
pub type NodePut = ureq::RequestBuilder<ureq::typestate::WithBody>;
pub type NodeAnswer = Result<ureq::http::Response<ureq::Body>, ureq::Error>;

/// An upload's body, owned across all its node attempts: it gives each attempt the body
/// to send (from memory, streamed from the client and teed to the spool, or replayed
/// from the spool) and keeps what the next attempt needs.
pub struct UploadBody<'u, 'b, 'c> {
    client: &'b mut Body<'c>,
    kept: Kept<'u>,
}

enum Kept<'u> {
    /// A small body, counted against the memory budget while it lives.
    Memory {
        bytes: Vec<u8>,
        _reservation: Reservation<'u>,
    },
    /// A large body in a spool file: `whole` once every byte is there; before that, the
    /// rest still arrives from the client.
    Spool { spool: Spool, whole: bool },
}

impl<'u, 'b, 'c> UploadBody<'u, 'b, 'c> {
    /// Takes the client's body of `length` bytes: read into memory when `in_memory` holds
    /// room for it, otherwise to be streamed and spooled in `spool_dir`.
    pub fn take(
        client: &'b mut Body<'c>,
        length: u64,
        in_memory: Option<Reservation<'u>>,
        spool_dir: &Path,
    ) -> Result<UploadBody<'u, 'b, 'c>, BodyError> {
        let kept = match in_memory {
            Some(reservation) => Kept::Memory {
                bytes: read_small(client)?,
                _reservation: reservation,
            },
            None => Kept::Spool {
                spool: Spool::new(spool_dir, length)?,
                whole: false,
            },
        };
        Ok(UploadBody { client, kept })
    }

    /// Takes a body of unknown length (chunked) whole, before any node sees it, and says
    /// how long it was: in memory while it stays within `memory_body` and the budget has
    /// room for that much, spooled beyond; refused with `TooLarge` as soon as it passes
    /// `max_body`.
    pub fn collect(
        client: &'b mut Body<'c>,
        limits: CollectLimits,
        budget: &'u MemoryBudget,
        spool_dir: &Path,
    ) -> Result<(UploadBody<'u, 'b, 'c>, u64), BodyError> {
        let in_memory = limits.memory_body.min(limits.max_body);
        client.limit_chunked(limits.max_body);
        let client_error = |err: io::Error| BodyError::Client(err.to_string());
        let mut bytes = Vec::new();
        if let Some(reservation) = budget.reserve(in_memory) {
            if let Err(err) = Read::by_ref(client)
                .take(in_memory + 1)
                .read_to_end(&mut bytes)
            {
                return Err(match client.over_limit() {
                    true => BodyError::TooLarge(limits.max_body),
                    false => client_error(err),
                });
            }
            if bytes.len() as u64 <= in_memory {
                let length = bytes.len() as u64;
                let kept = Kept::Memory {
                    bytes,
                    _reservation: reservation,
                };
                return Ok((UploadBody { client, kept }, length));
            }
        }
        let mut spool = Spool::new(spool_dir, 0)?;
        let spool_error =
            |err: io::Error| BodyError::Spool(format!("writing the spool file: {err}"));
        let mut length = bytes.len() as u64;
        if length > limits.max_body {
            return Err(BodyError::TooLarge(limits.max_body));
        }
        spool.file.write_all(&bytes).map_err(spool_error)?;
        drop(bytes);
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let n = match client.read(&mut buffer) {
                Ok(n) => n,
                Err(_) if client.over_limit() => return Err(BodyError::TooLarge(limits.max_body)),
                Err(err) => return Err(client_error(err)),
            };
            if n == 0 {
                break;
            }
            length += n as u64;
            if length > limits.max_body {
                return Err(BodyError::TooLarge(limits.max_body));
            }
            spool.file.write_all(&buffer[..n]).map_err(spool_error)?;
        }
        spool.length = length;
        let kept = Kept::Spool { spool, whole: true };
        Ok((UploadBody { client, kept }, length))
    }

    /// The whole body, read from the client first if it is still arriving (into the
    /// spool), for requests that send it at the same time.
    pub fn whole(&mut self) -> Result<WholeBody<'_>, BodyError> {
        match &mut self.kept {
            Kept::Memory { bytes, .. } => Ok(WholeBody::Memory(bytes)),
            Kept::Spool { spool, whole } => {
                if !*whole {
                    spool.finish(self.client)?;
                    *whole = true;
                }
                Ok(WholeBody::Spool {
                    file: &spool.file,
                    length: spool.length,
                })
            }
        }
    }

    /// One node attempt: sends the body with `put`. `stored` says whether the node took
    /// it; if it did not while the body streamed from the client, the rest of the body is
    /// read into the spool for the next attempt. An error means the body itself is lost
    /// (the client broke off, or the spool failed): no node can get it.
    pub fn attempt(
        &mut self,
        put: NodePut,
        stored: impl Fn(&NodeAnswer) -> bool,
    ) -> Result<NodeAnswer, BodyError> {
        if let Kept::Spool { spool, whole } = &mut self.kept {
            if !*whole {
                let answer = put.send(ureq::SendBody::from_reader(&mut spool.tee(self.client)));
                if !stored(&answer) {
                    spool.finish(self.client)?;
                    *whole = true;
                }
                return Ok(answer);
            }
        }
        // In memory, or spooled whole after a failed first attempt.
        Ok(self.whole()?.send(put))
    }
}

/// A body whole in memory or in its spool file, which several node requests can read at
/// the same time (each spool reader keeps its own position).
#[derive(Clone, Copy)]
pub enum WholeBody<'a> {
    Memory(&'a [u8]),
    Spool { file: &'a File, length: u64 },
}

impl WholeBody<'_> {
    /// Sends the body with `put`.
    pub fn send(self, put: NodePut) -> NodeAnswer {
        match self {
            WholeBody::Memory(bytes) => put.send(bytes),
            WholeBody::Spool { file, length } => {
                let mut reader = SpoolReader {
                    file,
                    at: 0,
                    end: length,
                };
                put.send(ureq::SendBody::from_reader(&mut reader))
            }
        }
    }
}

/// Reads a spool file by position (`pread`), so readers on other coroutines do not move
/// each other's offset.
struct SpoolReader<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let left = (self.end - self.at).min(buf.len() as u64) as usize;
        if left == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..left], self.at)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.at += n as u64;
        Ok(n)
    }
}

/// How much of a body of unknown length is held where.
#[derive(Debug, Clone, Copy)]
pub struct CollectLimits {
    /// More is refused.
    pub max_body: u64,
    /// Up to this much is held in memory; more goes to a spool file.
    pub memory_body: u64,
}

/// Reads a whole small body into memory.
fn read_small(body: &mut Body<'_>) -> Result<Vec<u8>, BodyError> {
    let mut bytes = Vec::with_capacity(body.len() as usize);
    body.read_to_end(&mut bytes)
        .map_err(|err| BodyError::Client(err.to_string()))?;
    Ok(bytes)
}

/// A large body on its way: streamed from the client through `reader()`, and copied to an
/// unnamed spool file.
struct Spool {
    file: File,
    length: u64,
    client_error: Option<String>,
    spool_error: Option<String>,
}

impl Spool {
    pub fn new(dir: &Path, length: u64) -> Result<Spool, BodyError> {
        let file = tempfile::tempfile_in(dir).map_err(|err| {
            BodyError::Spool(format!(
                "cannot create a spool file in {}: {err}",
                dir.display()
            ))
        })?;
        Ok(Spool {
            file,
            length,
            client_error: None,
            spool_error: None,
        })
    }

    /// The client's body as it arrives, copied to the spool while it is read.
    pub fn tee<'s, 'b, 'c>(&'s mut self, body: &'b mut Body<'c>) -> Tee<'s, 'b, 'c> {
        Tee { spool: self, body }
    }

    /// After a failed first attempt: reads the rest of the body into the spool, so the
    /// whole body is there for the next node.
    pub fn finish(&mut self, body: &mut Body<'_>) -> Result<(), BodyError> {
        self.error()?;
        let mut tee = self.tee(body);
        let copied = io::copy(&mut tee, &mut io::sink());
        self.error()?;
        copied.map_err(|err| BodyError::Client(err.to_string()))?;
        Ok(())
    }

    /// What went wrong while teeing, if anything.
    pub fn error(&self) -> Result<(), BodyError> {
        if let Some(why) = &self.client_error {
            return Err(BodyError::Client(why.clone()));
        }
        if let Some(why) = &self.spool_error {
            return Err(BodyError::Spool(why.clone()));
        }
        Ok(())
    }
}

struct Tee<'s, 'b, 'c> {
    spool: &'s mut Spool,
    body: &'b mut Body<'c>,
}

impl Read for Tee<'_, '_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.body.read(buf) {
            Ok(n) => n,
            Err(err) => {
                self.spool.client_error = Some(err.to_string());
                return Err(err);
            }
        };
        if let Err(err) = self.spool.file.write_all(&buf[..n]) {
            self.spool.spool_error = Some(format!("writing the spool file: {err}"));
            return Err(err);
        }
        Ok(n)
    }
}
