//! The test kit itself: real servers come up and never outlive their owner, and the
//! scenario checks the fault suites rely on do find a lost copy, a file the front does
//! not serve, a stranded item and an unexplained dead one.

mod common;

use backpack_testkit::scenario::{checks, upload_n, Rig, PHOTOS};
use backpack_testkit::{is_listening, BackpackNode, NodeKind, RedisServer, Sandbox, WebDavNode};
use common::cluster::bin;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Not a test of its own: the child process of `servers_die_with_a_killed_owner`.
#[test]
#[ignore]
fn helper_start_redis_and_hang() {
    let Ok(port_file) = std::env::var("BACKPACK_TESTKIT_PORT_FILE") else {
        return;
    };
    let sandbox = Sandbox::new("orphan").unwrap();
    let redis = RedisServer::start(&sandbox, "redis").unwrap();
    std::fs::write(port_file, redis.port.to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn servers_die_with_a_killed_owner() {
    let port_file =
        std::env::temp_dir().join(format!("backpack-orphan-port-{}", std::process::id()));
    let _ = std::fs::remove_file(&port_file);
    let mut owner = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "helper_start_redis_and_hang",
            "--nocapture",
        ])
        .env("BACKPACK_TESTKIT_PORT_FILE", &port_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let port: u16 = loop {
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|t| t.parse().ok())
        {
            break port;
        }
        assert!(Instant::now() < deadline, "the helper never started Redis");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(is_listening(port));
    owner.kill().unwrap(); // SIGKILL: no destructor runs in the owner.
    owner.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_listening(port) {
        assert!(
            Instant::now() < deadline,
            "Redis on {port} outlived its owner"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(&port_file);
}

/// Sends one raw request on a connection of its own; the status and the body.
fn exchange(port: u16, request: &[u8]) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text[9..12].parse().unwrap();
    let body_at = text.find("\r\n\r\n").map_or(answer.len(), |i| i + 4);
    (status, answer[body_at..].to_vec())
}

fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    exchange(port, &request)
}

/// What the project relies on from a node, checked the same way on the real Backpack node
/// and on the WebDAV stand-in, so the fast tests catch what the real node would.
fn answers_like_a_backpack_node(port: u16) {
    assert_eq!(http(port, "PUT", "/a/b/hi.txt", b"hello").0, 201);
    assert_eq!(
        http(port, "PUT", "/a/b/hi.txt", b"hello").0,
        201,
        "a repeated PUT answers 201, never 204"
    );
    // Both answers of a repeated PUT on one kept-alive connection are framed (a length,
    // or an empty chunked body): a client never waits for a body that is not coming.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(3)))
        .build()
        .into();
    for _ in 0..2 {
        let answer = agent
            .put(&format!("http://127.0.0.1:{port}/a/b/hi.txt"))
            .send(&b"hello"[..])
            .expect("a framed answer");
        assert_eq!(answer.status().as_u16(), 201);
        assert_eq!(
            answer.into_body().read_to_vec().expect("an empty body"),
            b""
        );
    }
    assert_eq!(
        http(port, "GET", "/a/b/hi.txt", b""),
        (200, b"hello".to_vec())
    );
    assert_eq!(http(port, "GET", "/missing", b"").0, 404);
    assert_eq!(http(port, "GET", "/stats", b"").0, 200);
    for method in ["HEAD", "DELETE", "POST", "OPTIONS"] {
        assert_eq!(http(port, method, "/a/b/hi.txt", b"").0, 418, "{method}");
    }
    assert_eq!(http(port, "PUT", "/empty", b"").0, 411, "an empty body");
    let no_length = b"PUT /no-length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(exchange(port, no_length).0, 411, "no Content-Length");
    for reserved in ["/files", "/files_counter"] {
        assert_eq!(http(port, "PUT", reserved, b"x").0, 500, "{reserved}");
    }
    assert_eq!(http(port, "PUT", "/q.jpg?v=2", b"query").0, 201);
    assert_eq!(
        http(port, "GET", "/q.jpg?v=2", b""),
        (200, b"query".to_vec())
    );
}

#[test]
fn webdav_node_behaves_like_a_backpack_node() {
    let sandbox = Sandbox::new("webdav").unwrap();
    let mut node = WebDavNode::start(&sandbox, "node-1").unwrap();
    answers_like_a_backpack_node(node.port);
    assert_eq!(node.file("/a/b/hi.txt").as_deref(), Some(&b"hello"[..]));
    node.stop();
    assert!(!is_listening(node.port));
    node.restart().unwrap();
    assert_eq!(
        http(node.port, "GET", "/a/b/hi.txt", b"").0,
        200,
        "files survive a restart"
    );
}

/// True when process `pid` has its data file open with O_DIRECT, as the node means to.
fn reads_with_o_direct(pid: u32) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        let data_file = std::fs::read_link(fd.path())
            .is_ok_and(|target| target.file_name().is_some_and(|n| n == "data_1"));
        let flags = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("flags:"))?.to_string();
            u32::from_str_radix(line.trim_start_matches("flags:").trim(), 8).ok()
        });
        data_file && flags.is_some_and(|f| f & libc::O_DIRECT as u32 != 0)
    })
}

#[test]
fn a_real_backpack_node_keeps_its_data_through_sigkill_and_can_lose_its_disk() {
    let sandbox = Sandbox::new("backpack-node").unwrap();
    let mut node = BackpackNode::start(&sandbox, "node-1").unwrap();
    answers_like_a_backpack_node(node.port);
    assert_eq!(node.file("/a/b/hi.txt").as_deref(), Some(&b"hello"[..]));
    assert!(
        reads_with_o_direct(node.process().pid().unwrap()),
        "the compatibility layer must keep the node's O_DIRECT reads"
    );
    // Its key is the raw target: not decoded.
    assert_eq!(http(node.port, "PUT", "/a%20b.txt", b"space").0, 201);
    assert_eq!(node.file("/a%20b.txt").as_deref(), Some(&b"space"[..]));
    node.stop();
    assert!(!is_listening(node.port));
    node.restart().unwrap();
    assert_eq!(node.file("/a/b/hi.txt").as_deref(), Some(&b"hello"[..]));
    node.process().kill();
    assert!(!is_listening(node.port));
    node.restart().unwrap();
    assert_eq!(
        node.file("/a/b/hi.txt").as_deref(),
        Some(&b"hello"[..]),
        "files survive a SIGKILL"
    );
    node.wipe().unwrap();
    assert_eq!(node.file("/a/b/hi.txt"), None, "a wiped node is empty");
    assert_eq!(http(node.port, "PUT", "/after.txt", b"new disk").0, 201);
    assert_eq!(node.file("/after.txt").as_deref(), Some(&b"new disk"[..]));
}

/// Tests start servers in parallel: two of them must never be given the same port, and
/// no port may come from the range where outgoing connections take theirs (a client
/// socket there would keep the server from binding it).
#[test]
fn free_ports_are_never_handed_out_twice() {
    let ephemeral_start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                (0..100)
                    .map(|_| backpack_testkit::free_port().unwrap())
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let mut ports: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(ports.iter().all(|&p| p < ephemeral_start), "{ports:?}");
    ports.sort();
    let before = ports.len();
    ports.dedup();
    assert_eq!(ports.len(), before, "a port was handed out twice");
}

/// The reaper kills the servers of a dead owner's sandbox, and only them: a recorded
/// process group whose number now belongs to another process (pids are reused; pid_max
/// is 32768 here) is left alone.
#[test]
fn the_reaper_kills_only_the_processes_it_recorded() {
    use backpack_testkit::process::start_time;
    use std::os::unix::process::CommandExt;
    let spawn_sleeper = || {
        Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let (mut recorded, mut stranger) = (spawn_sleeper(), spawn_sleeper());
    // An owner that is gone: a process that has exited.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let base = std::env::temp_dir().join("backpack-testkit");
    let orphan = base.join(format!("{}-0-orphaned", gone.id()));
    std::fs::create_dir_all(&orphan).unwrap();
    let started = start_time(recorded.id()).unwrap();
    std::fs::write(
        orphan.join("server.pgid"),
        format!("{} {started}", recorded.id()),
    )
    .unwrap();
    // The stranger's number with another start time: the group that once had it.
    let stranger_started = start_time(stranger.id()).unwrap();
    std::fs::write(
        orphan.join("other.pgid"),
        format!("{} {}", stranger.id(), stranger_started + 1),
    )
    .unwrap();
    let _sandbox = Sandbox::new("reaper").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while recorded.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the recorded server was not reaped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "a stranger was killed"
    );
    assert!(!orphan.exists());
    let _ = stranger.kill();
    let _ = stranger.wait();
}

#[test]
fn the_scenario_checks_find_what_a_fault_could_lose() {
    let flags = ["--quiet", "--size-flush", "200ms"];
    let rig = Rig::seed_example(bin(), "checks", NodeKind::WebDav, &flags, &["--quiet"])
        .expect("start the rig");
    let acks = upload_n(&rig.coordinators[0].url(""), 6, "checked", PHOTOS);
    checks::wait_drained(&rig.cluster, Duration::from_secs(30)).unwrap();
    // Sizes flushed.
    std::thread::sleep(Duration::from_secs(1));
    // A whole cluster passes every check.
    assert_eq!(
        checks::missing_copies(&rig.cluster, &acks).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        checks::unreadable_through_front(&rig.front, &acks),
        Vec::<String>::new()
    );
    assert_eq!(
        checks::unexplained_items(&rig.cluster, &|_| false),
        Vec::<String>::new()
    );
    eprintln!(
        "{}",
        rig.cluster
            .admin("backpack-coordinator-print-stats", &[])
            .unwrap()
    );
    let none = HashMap::new();
    assert_eq!(
        checks::short_sizes(&rig.cluster, &acks, &none).unwrap(),
        Vec::<String>::new()
    );

    // One copy lost: found on its node. Both lost: the front cannot serve it either.
    let (one, both) = (&acks[0], &acks[1]);
    let nodes = |shard: &str| -> [usize; 2] {
        let first: usize = shard.parse().unwrap();
        [first, first + 3]
    };
    let remove = |node: usize, path: &str| {
        let files = rig.cluster.node(node).files_dir().unwrap().to_path_buf();
        std::fs::remove_file(files.join(path.trim_start_matches('/'))).unwrap();
    };
    remove(nodes(&one.shard)[1], &one.path);
    for node in nodes(&both.shard) {
        remove(node, &both.path);
    }
    let missing = checks::missing_copies(&rig.cluster, &acks).unwrap();
    assert_eq!(missing.len(), 3, "{missing:?}");
    assert!(
        missing[0].starts_with(&format!("{} on node", one.path)),
        "{missing:?}"
    );
    let unserved = checks::unreadable_through_front(&rig.front, &acks);
    assert_eq!(unserved.len(), 1, "{unserved:?}");
    assert!(
        unserved[0].contains(&both.path) && unserved[0].ends_with(": 404"),
        "{unserved:?}"
    );

    // An item left queued, and a dead one: both found unless the dead one is explained.
    let stray = r#"{"from":["1"],"to":"4","path":"/stray"}"#.to_string();
    rig.cluster.redis[0].add(backpack_testkit::QUEUE_KEY, std::slice::from_ref(&stray));
    let dead = r#"{"from":["1"],"to":"4","path":"/stats"}"#.to_string();
    rig.cluster.redis[1].add(&format!("{}-dead", backpack_testkit::QUEUE_KEY), &[dead]);
    let left = checks::unexplained_items(&rig.cluster, &|_| false);
    assert_eq!(left.len(), 2, "{left:?}");
    let left = checks::unexplained_items(&rig.cluster, &|item| item.contains("/stats"));
    assert_eq!(left, vec![format!("queued on Redis 0: {stray}")]);

    // A size node short of what was acknowledged.
    let shard = &acks[2].shard;
    set_current(&rig, shard, 0);
    let short = checks::short_sizes(&rig.cluster, &acks, &none).unwrap();
    assert_eq!(short.len(), 1, "{short:?}");
    assert!(
        short[0].starts_with(&format!("shard {shard}: size 0 <")),
        "{short:?}"
    );
}

/// Overwrites a shard's `current`, keeping its capacity.
fn set_current(rig: &Rig, shard: &str, current: u64) {
    let state = backpack::zk_state::ZkState::open(
        &rig.cluster.zk(),
        &rig.cluster.root,
        Duration::from_secs(5),
    )
    .unwrap();
    let path = state.paths().shard_size(shard);
    state
        .update(&path, |doc| {
            doc["current"] = current.into();
            Ok(())
        })
        .unwrap();
}
