//! nginx as the Backpack front: a config of ours (the generated or the shipped one)
//! included in a minimal nginx.conf, with an access log that shows which node (if any)
//! served each request.

use super::nginx::{nginx_args, nginx_conf};
use super::process::{wait_until, ServerProcess};
use super::{is_listening, Sandbox};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct NginxFront {
    pub port: u16,
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
    /// Starts nginx with `front_config`, which must listen on 127.0.0.1:`port`.
    pub fn start(
        sandbox: &Sandbox,
        name: &str,
        front_config: &Path,
        port: u16,
    ) -> std::io::Result<NginxFront> {
        let (dir, args) = prepare(sandbox, name, front_config)?;
        let process = ServerProcess::start(sandbox.launch(name, "nginx", args, &dir))?;
        wait_until("nginx front", Duration::from_secs(10), || {
            is_listening(port)
        })?;
        Ok(NginxFront {
            port,
            access_log: dir.join("access.log"),
            process,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}
