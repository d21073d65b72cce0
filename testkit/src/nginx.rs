//! nginx with WebDAV `PUT`: a stand-in Backpack node that stores files on disk, fast to
//! start and light to run.
//!
//! It answers like a real Backpack node where the project depends on it: `PUT /<path>`
//! with a length stores and answers 201 (never 204: a node appends a new copy and
//! repoints the key), 411 without a `Content-Length` or with 0 (a node cannot store an
//! empty file), 500 for the node's reserved keys `files` and `files_counter`; `GET` the
//! bytes or 404, `GET /stats` JSON; 418 to every other method, HEAD included. Unlike a
//! real node it stores a percent-encoded name decoded (`a%20b.txt` as `a b.txt`).
use super::service::Service;
use super::{free_port, is_listening_at, Host, Sandbox};
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
/// Writes `config` as `dir/nginx.conf` and starts nginx on it as the server `name`,
/// ready once it listens on `port`.
pub(super) fn start_nginx(
    sandbox: &Sandbox,
    host: &Host,
    name: &str,
    dir: &Path,
    config: &str,
    port: u16,
    what: &'static str,
) -> std::io::Result<Service> {
    let config_path = dir.join("nginx.conf");
    std::fs::write(&config_path, config)?;
    let launch = sandbox.launch_on(host, name, "nginx", nginx_args(dir, &config_path), dir);
    Service::start(launch, port, what, is_listening_at, Duration::from_secs(10))
}

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
fn sink_config(dir: &Path, listen: &str) -> String {
    let http = format!(
        "    access_log off;\n    client_max_body_size 0;\n    server {{\n        listen {listen};\n\
         \x20       location / {{\n            return 201;\n        }}\n    }}\n"
    );
    nginx_conf(dir, &http)
}

/// nginx's WebDAV answers 204 when a PUT replaces a file; a Backpack node always answers
/// 201. nginx cannot change a 2xx status by configuration, so a header filter in njs
/// (Debian's libnginx-mod-http-js) does.
/// The 204 carries no length, so the 201 must say it has no body (or a keep-alive client
/// waits for one).
const ALWAYS_CREATED_JS: &str = "function created(r) {\n    if (r.status == 204) {\n        r.status = 201;\n        r.headersOut['Content-Length'] = '0';\n    }\n}\nexport default { created };\n";

/// Where Debian's nginx keeps the njs module.
const NJS_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_js_module.so";

fn config(dir: &Path, files: &Path, listen: &str) -> std::io::Result<String> {
    let script = dir.join("always_created.js");
    std::fs::write(&script, ALWAYS_CREATED_JS)?;
    let puts = dir.join(PUTS_LOG);
    let (files, script, puts) = (files.display(), script.display(), puts.display());
    let http = format!(
        r#"    # Every PUT the node finished, for the tests' observer (`WebDavNode::puts`).
    map $request_method $is_put {{
        PUT 1;
        default 0;
    }}
    log_format puts '$msec $request_time $status $uri';
    access_log {puts} puts if=$is_put;
    client_max_body_size 0;
    js_import node from {script};
    # What a Backpack node refuses: 411 for a PUT without a positive length, 418 for any
    # method but GET and PUT.
    map "$request_method $http_content_length" $backpack_refusal {{
        "~^PUT [1-9][0-9]*$" "";
        "~^PUT " 411;
        "~^GET " "";
        default 418;
    }}
    server {{
        listen {listen};
        root {files};
        if ($backpack_refusal = 411) {{
            return 411;
        }}
        if ($backpack_refusal = 418) {{
            return 418 "I am teapot, what did you expect?\n";
        }}
        location = /stats {{
            # A real node stores it, and can never serve it back.
            if ($request_method = PUT) {{
                return 201;
            }}
            default_type application/json;
            return 200 '{{"node":"webdav"}}';
        }}
        location ~ ^/(files|files_counter)$ {{
            return 500;
        }}
        location / {{
            js_header_filter node.created;
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw group:rw all:r;
        }}
    }}
"#
    );
    Ok(format!(
        "load_module {NJS_MODULE};\n{}",
        nginx_conf(dir, &http)
    ))
}

/// The node's log of PUTs, in its directory.
const PUTS_LOG: &str = "puts.log";

/// One PUT a WebDAV node finished (answered, or gave up on), from its log.
#[derive(Debug, Clone)]
pub struct LoggedPut {
    pub path: String,
    pub status: u16,
    /// When its first byte came and when it ended, in seconds since the epoch, to the
    /// millisecond.
    pub start: f64,
    pub end: f64,
}

impl WebDavNode {
    /// Every PUT the node finished so far, in the order they ended.
    pub fn puts(&self) -> Vec<LoggedPut> {
        let Some(dir) = self.files.parent() else {
            return Vec::new();
        };
        let text = std::fs::read_to_string(dir.join(PUTS_LOG)).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split(' ');
                let end: f64 = fields.next()?.parse().ok()?;
                let took: f64 = fields.next()?.parse().ok()?;
                let status = fields.next()?.parse().ok()?;
                let path = fields.next()?.to_string();
                Some(LoggedPut {
                    path,
                    status,
                    start: end - took,
                    end,
                })
            })
            .collect()
    }

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
        let host = sandbox.host(name)?;
        let port = free_port()?;
        let listen = format!("{}:{port}", host.ip);
        let text = if sink {
            sink_config(&dir, &listen)
        } else {
            config(&dir, &files, &listen)?
        };
        let service = start_nginx(sandbox, &host, name, &dir, &text, port, "nginx WebDAV node")?;
        Ok(WebDavNode { files, service })
    }

    /// `http://<host>:<port>`, as add-server takes it.
    pub fn url(&self) -> String {
        self.host.url(self.port)
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
