//! A node that answers every request with one error status, after reading the whole
//! request: what a Backpack node answers while its index Redis is down, say. Its failures
//! are answers (an item's fault, as far as a replicator can tell), not a node gone quiet.

use super::loopback_server::LoopbackServer;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;

pub struct FailingNode {
    pub port: u16,
    _server: LoopbackServer,
}

/// Reads one request (head and `Content-Length` body); false at the end of the stream.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<bool> {
    let mut length = 0u64;
    let mut first = true;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(false);
        }
        let line = line.trim_end();
        if line.is_empty() && !first {
            break;
        }
        first = false;
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    io::copy(&mut reader.by_ref().take(length), &mut io::sink())?;
    Ok(true)
}

fn serve(client: TcpStream, status: u16) -> io::Result<()> {
    let mut writer = client.try_clone()?;
    let mut reader = BufReader::new(client);
    while read_request(&mut reader)? {
        let body = format!("{{\"error\":\"answering {status} on purpose\"}}");
        write!(
            writer,
            "HTTP/1.1 {status} Failing\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
    }
    Ok(())
}

impl FailingNode {
    /// Listens on a free loopback port and answers `status` to everything.
    pub fn start(status: u16) -> io::Result<FailingNode> {
        let server = LoopbackServer::start(move |client| {
            let _ = serve(client, status);
        })?;
        Ok(FailingNode {
            port: server.port,
            _server: server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
