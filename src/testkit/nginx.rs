//! nginx with WebDAV `PUT`: a stand-in Backpack node that stores files on disk.
//!
//! Like a Backpack node it answers `PUT /<path>` with 201 (204 when the file existed),
//! `GET /<path>` with the bytes or 404, and `GET /stats` with JSON.

use super::service::Service;
use super::{free_port, is_listening, Sandbox};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct WebDavNode {
    /// Where the node keeps its files: `<files>/<path>`.
    pub files: PathBuf,
    service: Service,
}

/// An nginx.conf that runs in the foreground, keeps everything in `dir` (pid, logs,
/// temporary files), and holds `http` as its http block's content.
pub(super) fn nginx_conf(dir: &Path, http: &str) -> String {
    // The worker must be allowed to write the node's directory: as root that means
    // running the worker as root too.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root;"
    } else {
        ""
    };
    let d = dir.display();
    format!(
        "{user}\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 1024; }}\nhttp {{\n\
         \x20   client_body_temp_path {d}/tmp/body;\n    proxy_temp_path {d}/tmp/proxy;\n\
         \x20   fastcgi_temp_path {d}/tmp/fastcgi;\n    uwsgi_temp_path {d}/tmp/uwsgi;\n\
         \x20   scgi_temp_path {d}/tmp/scgi;\n{http}}}\n"
    )
}

/// nginx's arguments to run `conf` with everything in `dir`.
pub(super) fn nginx_args(dir: &Path, conf: &Path) -> Vec<String> {
    vec![
        "-p".into(),
        format!("{}/", dir.display()),
        "-c".into(),
        conf.display().to_string(),
        "-e".into(),
        dir.join("error.log").display().to_string(),
    ]
}

/// A sink node answers 201 to every PUT and throws the body away: it shows what the
/// coordinator itself can do, with no disk behind the nodes.
fn sink_config(dir: &Path, port: u16) -> String {
    let http = format!(
        "    access_log off;\n    client_max_body_size 0;\n    server {{\n        listen 127.0.0.1:{port};\n\
         \x20       location / {{\n            return 201;\n        }}\n    }}\n"
    );
    nginx_conf(dir, &http)
}

fn config(dir: &Path, files: &Path, port: u16) -> String {
    let files = files.display();
    let http = format!(
        r#"    access_log off;
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
"#
    );
    nginx_conf(dir, &http)
}

impl WebDavNode {
    pub fn start(sandbox: &Sandbox, name: &str) -> std::io::Result<WebDavNode> {
        WebDavNode::start_kind(sandbox, name, false)
    }

    /// A sink node instead (see `sink_config`): same interface, stores nothing.
    pub fn start_sink(sandbox: &Sandbox, name: &str) -> std::io::Result<WebDavNode> {
        WebDavNode::start_kind(sandbox, name, true)
    }

    fn start_kind(sandbox: &Sandbox, name: &str, sink: bool) -> std::io::Result<WebDavNode> {
        let dir = sandbox.subdir(name)?;
        let files = dir.join("files");
        std::fs::create_dir_all(&files)?;
        std::fs::create_dir_all(dir.join("tmp"))?;
        let port = free_port()?;
        let config_path = dir.join("nginx.conf");
        let text = if sink {
            sink_config(&dir, port)
        } else {
            config(&dir, &files, port)
        };
        std::fs::write(&config_path, text)?;
        let launch = sandbox.launch(name, "nginx", nginx_args(&dir, &config_path), &dir);
        let service = Service::start(
            launch,
            port,
            "nginx WebDAV node",
            is_listening,
            Duration::from_secs(10),
        )?;
        Ok(WebDavNode { files, service })
    }

    /// `http://127.0.0.1:<port>`, as add-server takes it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The stored bytes of `path` (`/hi.txt`), None when the node does not have it.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.files.join(path.trim_start_matches('/'))).ok()
    }
}

impl std::ops::Deref for WebDavNode {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.service
    }
}

impl std::ops::DerefMut for WebDavNode {
    fn deref_mut(&mut self) -> &mut Service {
        &mut self.service
    }
}
