//! Keeping an upload's body so that it can be sent again when a node fails.
//!
//! Small bodies (up to `--memory-body`) are read into memory before the first node is
//! tried. A large body is streamed to the first node as it arrives and, on the way, copied
//! to a spool file ("tee"): if that node succeeds the upload cost no extra pass over the
//! bytes; if it fails, the rest of the body is read into the spool and the next nodes get
//! the file. Memory per upload stays bounded whatever the size. Spool files are unnamed
//! (`O_TMPFILE`): they never appear in the directory and vanish with their handle, also
//! when the process dies.

use crate::http::Body;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Why a body could not be kept.
#[derive(Debug)]
pub enum BodyError {
    /// The client stopped sending (closed, or stalled past the body timeout).
    Client(String),
    /// Our side: the spool file could not be written.
    Spool(String),
}

/// Reads a whole small body into memory.
pub fn read_small(body: &mut Body<'_>) -> Result<Vec<u8>, BodyError> {
    let mut bytes = Vec::with_capacity(body.len() as usize);
    body.read_to_end(&mut bytes)
        .map_err(|err| BodyError::Client(err.to_string()))?;
    Ok(bytes)
}

/// A large body on its way: streamed from the client through `reader()`, and copied to an
/// unnamed spool file.
pub struct Spool {
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

    /// The whole spooled body, from its first byte (after `finish`).
    pub fn replay(&mut self) -> io::Result<io::Take<&mut File>> {
        self.file.seek(SeekFrom::Start(0))?;
        let length = self.length;
        Ok(Read::by_ref(&mut self.file).take(length))
    }
}

pub struct Tee<'s, 'b, 'c> {
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
