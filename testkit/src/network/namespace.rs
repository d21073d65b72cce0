//! Linux namespaces for the kit's private networks, held by processes that cannot outlive
//! the test.
//!
//! A namespace lives as long as a process runs in it (or a file descriptor or bind mount
//! names it). `ip netns add` pins one with a bind mount under `/run/netns`, which outlives
//! a test killed with SIGKILL; here each namespace is pinned by a holder instead: a
//! `sleep` that made the namespace for itself before it started, and that the kernel kills
//! when the thread that started it ends (`PR_SET_PDEATHSIG`). When the test process dies,
//! however it dies, the holders die with it, the servers on its hosts are killed by their
//! watchdogs (see `process`), and the namespaces, their links and their rules go with the
//! last process in them.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn check(result: libc::c_int) -> io::Result<()> {
    match result {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))
}

/// What a holder makes for itself before it starts sleeping.
pub enum Fresh {
    /// A network namespace with nothing in it but a loopback device that is down.
    Net,
    /// A mount namespace in which `/etc/hosts` is the given file: the names of the hosts,
    /// seen by every process started on them, and by nothing else on the machine.
    MountWithHosts(std::path::PathBuf),
}

/// A process that only holds a namespace of its own; killed, and reaped, on drop.
pub struct Holder {
    child: Child,
    /// `/proc/<holder>/ns/<kind>`, open: what `setns` takes.
    file: File,
}

impl Holder {
    pub fn start(fresh: Fresh) -> io::Result<Holder> {
        let parent = std::process::id() as libc::pid_t;
        let mut command = Command::new("sleep");
        command
            .arg("infinity")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let (kind, hosts) = match &fresh {
            Fresh::Net => ("net", None),
            Fresh::MountWithHosts(file) => ("mnt", Some(c_path(file)?)),
        };
        let root = CString::new("/").map_err(io::Error::other)?;
        let etc_hosts = CString::new("/etc/hosts").map_err(io::Error::other)?;
        // SAFETY: between fork and exec only system calls run, on memory made before the
        // fork (the CStrings above); no allocation, no lock.
        unsafe {
            command.pre_exec(move || {
                check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
                // The owner may have died before the line above took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                match &hosts {
                    None => check(libc::unshare(libc::CLONE_NEWNET)),
                    Some(hosts) => {
                        check(libc::unshare(libc::CLONE_NEWNS))?;
                        // Nothing mounted here may reach the machine's own namespace.
                        let flags = libc::MS_REC | libc::MS_PRIVATE;
                        let none = std::ptr::null();
                        check(libc::mount(none, root.as_ptr(), none, flags, none as _))?;
                        check(libc::mount(
                            hosts.as_ptr(),
                            etc_hosts.as_ptr(),
                            none,
                            libc::MS_BIND,
                            none as _,
                        ))
                    }
                }
            });
        }
        // spawn returns once the exec is done: the namespace is made by then.
        let mut child = command.spawn()?;
        let path = format!("/proc/{}/ns/{kind}", child.id());
        let ours = std::fs::read_link(format!("/proc/thread-self/ns/{kind}"))?;
        if std::fs::read_link(&path).map_or(true, |link| link == ours) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "cannot make a {kind} namespace (the kit needs root)"
            )));
        }
        let file = File::open(&path)?;
        Ok(Holder { child, file })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The namespace's inode number: how `/proc/<pid>/ns/*` links name it.
    pub fn inode(&self) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        Ok(self.file.metadata()?.ino())
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Moves the calling thread (only it: namespaces are per thread) into the network
/// namespace `fd` names.
pub fn enter_net(fd: RawFd) -> io::Result<()> {
    // SAFETY: setns takes a descriptor and a flag.
    check(unsafe { libc::setns(fd, libc::CLONE_NEWNET) })
}

/// The calling thread's own network namespace, open, to come back to.
pub fn current_net() -> io::Result<File> {
    File::open("/proc/thread-self/ns/net")
}

/// The inode of the network namespace of process `pid`, None when it is gone.
pub fn net_inode_of(pid: &str) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let text = link.to_string_lossy();
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// Every process (by pid) whose network namespace is `inode`.
pub fn processes_in(inode: u64) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| net_inode_of(&pid.to_string()) == Some(inode))
        .collect()
}

/// Makes `command` start inside the network namespace `net` and, when given, the mount
/// namespace `mount`, in the directory the caller is in.
pub fn place_command(command: &mut Command, net: RawFd, mount: Option<RawFd>) -> io::Result<()> {
    let cwd = c_path(&std::env::current_dir()?)?;
    // SAFETY: system calls only, on descriptors and a CString made before the fork.
    unsafe {
        command.pre_exec(move || {
            check(libc::setns(net, libc::CLONE_NEWNET))?;
            if let Some(mount) = mount {
                // Entering a mount namespace moves us to its root directory.
                check(libc::setns(mount, libc::CLONE_NEWNS))?;
                check(libc::chdir(cwd.as_ptr()))?;
            }
            Ok(())
        });
    }
    Ok(())
}
