//! nginx with WebDAV `PUT`: a stand-in Backpack node that stores files on disk.
//!
//! Like a Backpack node it answers `PUT /<path>` with 201 (204 when the file existed),
//! `GET /<path>` with the bytes or 404, and `GET /stats` with JSON.

use super::process::{wait_until, ServerProcess};
use super::{free_port, is_listening, Sandbox};
use std::path::PathBuf;
use std::time::Duration;

pub struct WebDavNode {
    pub port: u16,
    /// Where the node keeps its files: `<files>/<path>`.
    pub files: PathBuf,
    process: ServerProcess,
}

fn config(dir: &std::path::Path, files: &std::path::Path, port: u16) -> String {
    // The worker must be allowed to write the node's directory: as root that means
    // running the worker as root too.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root;"
    } else {
        ""
    };
    let dir = dir.display();
    let files = files.display();
    format!(
        r#"{user}
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port};
        root {files};
        location = /stats {{
            default_type application/json;
            return 200 '{{"node":"webdav"}}';
        }}
        location / {{
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw group:rw all:r;
        }}
    }}
}}
"#
    )
}

impl WebDavNode {
    pub fn start(sandbox: &Sandbox, name: &str) -> std::io::Result<WebDavNode> {
        let dir = sandbox.subdir(name)?;
        let files = dir.join("files");
        std::fs::create_dir_all(&files)?;
        std::fs::create_dir_all(dir.join("tmp"))?;
        let port = free_port()?;
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config(&dir, &files, port))?;
        let args = vec![
            "-p".into(),
            format!("{}/", dir.display()),
            "-c".into(),
            config_path.display().to_string(),
            "-e".into(),
            dir.join("error.log").display().to_string(),
        ];
        let launch = sandbox.launch(name, "nginx", args, &dir);
        let process = ServerProcess::start(launch)?;
        let node = WebDavNode {
            port,
            files,
            process,
        };
        node.wait_ready()?;
        Ok(node)
    }

    fn wait_ready(&self) -> std::io::Result<()> {
        let port = self.port;
        wait_until("nginx WebDAV node", Duration::from_secs(10), || {
            is_listening(port)
        })
    }

    /// `http://127.0.0.1:<port>`, as add-server takes it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The stored bytes of `path` (`/hi.txt`), None when the node does not have it.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.files.join(path.trim_start_matches('/'))).ok()
    }

    pub fn stop(&mut self) {
        self.process.stop();
    }

    pub fn restart(&mut self) -> std::io::Result<()> {
        self.process.restart()?;
        self.wait_ready()
    }

    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}
