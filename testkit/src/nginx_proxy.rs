//! nginx as a plain reverse proxy: the physical limit of one proxy hop, for benchmarks.
//!
//! One worker (the coordinator's own share of the cores is what it is compared with),
//! keep-alive connections to the upstream nodes, and no buffering either way: each PUT is
//! streamed to one node and its answer streamed back, which is the least any coordinator
//! could do per upload.

use super::nginx::{nginx_conf, start_nginx};
use super::service::Service;
use super::{free_port, Sandbox};

pub struct NginxProxy {
    service: Service,
}

impl NginxProxy {
    /// Proxies every request to the nodes at `upstreams` (`127.0.0.1:<port>`),
    /// round-robin.
    pub fn start(sandbox: &Sandbox, name: &str, upstreams: &[u16]) -> std::io::Result<NginxProxy> {
        let dir = sandbox.subdir(name)?;
        std::fs::create_dir_all(dir.join("tmp"))?;
        let port = free_port()?;
        let servers: String = upstreams
            .iter()
            .map(|p| format!("        server 127.0.0.1:{p};\n"))
            .collect();
        let http = format!(
            "    access_log off;\n    client_max_body_size 0;\n\
             \x20   upstream nodes {{\n{servers}        keepalive 128;\n    }}\n\
             \x20   server {{\n        listen 127.0.0.1:{port};\n\
             \x20       location / {{\n\
             \x20           proxy_pass http://nodes;\n\
             \x20           proxy_http_version 1.1;\n\
             \x20           proxy_set_header Connection \"\";\n\
             \x20           proxy_request_buffering off;\n\
             \x20           proxy_buffering off;\n\
             \x20       }}\n    }}\n"
        );
        let config = nginx_conf(&dir, &http);
        let service = start_nginx(
            sandbox,
            &crate::Host::loopback(),
            name,
            &dir,
            &config,
            port,
            "nginx proxy",
        )?;
        Ok(NginxProxy { service })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.service.port)
    }
}
