//! nginx as the Backpack front: a config of ours (the generated or the shipped one)
//! included in a minimal nginx.conf, with an access log that shows which node (if any)
//! served each request.

use super::nginx::{nginx_args, nginx_conf};
use super::process::{wait_until, ServerProcess};
use super::{is_listening_at, Host, Sandbox};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct NginxFront {
    pub port: u16,
    pub host: Host,
    /// `<request_uri> <status> <upstream_addr>` per request.
    pub access_log: PathBuf,
    process: ServerProcess,
}

/// The nginx.conf around `include`d front config.
fn wrapper(dir: &Path, front_config: &Path) -> String {
    let d = dir.display();
    let http = format!(
        "    log_format front '$request_uri $status $upstream_addr';\n    access_log {d}/access.log front;\n    include {};\n",
        front_config.display()
    );
    nginx_conf(dir, &http)
}

/// Writes the wrapper for `front_config` into a fresh `dir`; nginx's arguments for it.
fn prepare(
    sandbox: &Sandbox,
    name: &str,
    front_config: &Path,
) -> std::io::Result<(PathBuf, Vec<String>)> {
    let dir = sandbox.subdir(name)?;
    std::fs::create_dir_all(dir.join("tmp"))?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, wrapper(&dir, front_config))?;
    let args = nginx_args(&dir, &conf);
    Ok((dir, args))
}

/// `nginx -t` on a front config; Err holds what nginx said.
pub fn nginx_test(
    sandbox: &Sandbox,
    name: &str,
    front_config: &Path,
) -> std::io::Result<Result<(), String>> {
    let (_, args) = prepare(sandbox, name, front_config)?;
    let output = Command::new("nginx").arg("-t").args(args).output()?;
    Ok(if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    })
}

impl NginxFront {
    /// Starts nginx with `front_config` on the host for `name` (see `Sandbox::host`); the
    /// config must listen on that host's address (127.0.0.1 on loopback) and `port`.
    pub fn start(
        sandbox: &Sandbox,
        name: &str,
        front_config: &Path,
        port: u16,
    ) -> std::io::Result<NginxFront> {
        let (dir, args) = prepare(sandbox, name, front_config)?;
        let host = sandbox.host(name)?;
        let process = ServerProcess::start(sandbox.launch_on(&host, name, "nginx", args, &dir))?;
        let address = host.socket(port);
        wait_until("nginx front", Duration::from_secs(10), || {
            is_listening_at(address)
        })?;
        Ok(NginxFront {
            port,
            host,
            access_log: dir.join("access.log"),
            process,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host.socket(self.port))
    }

    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}
