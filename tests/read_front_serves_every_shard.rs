//! The nginx front: bp-nginx-gen's output and the shipped nginx/backpack.conf, served by a
//! real nginx in front of nginx WebDAV nodes.

mod common;

use backpack::zk::ZkSession;
use backpack_testkit::{free_port, nginx_test, LocalCluster, NginxFront, NodeKind};
use common::cluster::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn gen(cluster: &LocalCluster, flags: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg0_compat("bp-nginx-gen")
        .arg(cluster.zk())
        .arg(&cluster.root)
        .args(flags)
        .output()
        .unwrap()
}

trait Arg0Compat {
    fn arg0_compat(&mut self, name: &str) -> &mut Self;
}

impl Arg0Compat for Command {
    fn arg0_compat(&mut self, name: &str) -> &mut Self {
        std::os::unix::process::CommandExt::arg0(self, name)
    }
}

fn status_and_body(url: &str, method: &str) -> (u16, String) {
    let agent = client();
    let response = match method {
        "GET" => agent.get(url).call(),
        "HEAD" => agent.head(url).call(),
        "DELETE" => agent.delete(url).call(),
        "POST" => agent.post(url).send(&b"x"[..]),
        "PATCH" => agent.patch(url).send(&b"x"[..]),
        _ => agent.put(url).send(&b"x"[..]),
    }
    .unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.into_body().read_to_string().unwrap_or_default(),
    )
}

/// Puts a file straight onto a node (as if the coordinator or a replicator had).
fn place(cluster: &LocalCluster, node: usize, path: &str, body: &[u8]) {
    let status = client()
        .put(&format!("{}{path}", cluster.node(node).url()))
        .send(body)
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 201, "{path}");
}

/// What every front must do, for the example cluster's layout.
fn check_front(cluster: &LocalCluster, front: &NginxFront) {
    place(cluster, 5, "/only-second.txt", b"second node");
    place(cluster, 2, "/we:ird.txt", b"colon");
    place(cluster, 4, "/a%20b.txt", b"space");
    match cluster.node(4).files_dir() {
        Some(files) => assert!(files.join("a b.txt").exists(), "WebDAV stores it decoded"),
        None => assert!(
            cluster.node(4).file("/a%20b.txt").is_some(),
            "Backpack keys it as sent"
        ),
    }
    // A real node keys it with its query string; WebDAV drops the query.
    place(cluster, 3, "/q.txt?v=2&size=small", b"query");
    // Present only on the second node of shard 2: the 404 of the first moves on.
    for _ in 0..4 {
        assert_eq!(
            status_and_body(&front.url("/2:only-second.txt"), "GET"),
            (200, "second node".into())
        );
    }
    assert_eq!(
        status_and_body(&front.url("/2:/only-second.txt"), "GET"),
        (200, "second node".into())
    );
    assert_eq!(status_and_body(&front.url("/2:missing.txt"), "GET").0, 404);
    assert_eq!(
        status_and_body(&front.url("/2:we:ird.txt"), "GET"),
        (200, "colon".into())
    );
    assert_eq!(
        status_and_body(&front.url("/1:a%20b.txt"), "GET"),
        (200, "space".into())
    );
    assert_eq!(
        status_and_body(&front.url("/3:q.txt?v=2&size=small"), "GET"),
        (200, "query".into())
    );
    // HEAD: the file's length and no body, with the same 404 fallback as GET (a real
    // node answers HEAD itself with 418).
    for path in [
        "/3:q.txt?v=2&size=small",
        "/2:only-second.txt",
        "/2:only-second.txt",
        "/1:a%20b.txt",
    ] {
        let answer = client().head(&front.url(path)).call().unwrap();
        assert_eq!(answer.status().as_u16(), 200, "HEAD {path}");
        let length = answer.headers()["content-length"]
            .to_str()
            .unwrap()
            .to_string();
        let expected = if path.starts_with("/3:") {
            5
        } else if path.starts_with("/2:") {
            11
        } else {
            5
        };
        assert_eq!(length, expected.to_string(), "HEAD {path}");
        assert_eq!(
            answer.into_body().read_to_vec().unwrap(),
            b"",
            "HEAD {path}"
        );
    }
    assert_eq!(status_and_body(&front.url("/2:missing.txt"), "HEAD").0, 404);
    // The front only reads: writes go through a coordinator (and its upload tokens).
    let before = status_and_body(&front.url("/2:only-second.txt"), "GET");
    for method in ["PUT", "POST", "DELETE", "PATCH"] {
        assert_eq!(
            status_and_body(&front.url("/2:only-second.txt"), method).0,
            403,
            "{method}"
        );
    }
    assert_eq!(
        status_and_body(&front.url("/2:only-second.txt"), "GET"),
        before,
        "a refused write changed the file"
    );
    for path in ["/abc:x", "/9:x", "/plain", "/10:x"] {
        assert_eq!(status_and_body(&front.url(path), "GET").0, 404, "{path}");
    }
    std::thread::sleep(Duration::from_millis(200));
    let log = std::fs::read_to_string(&front.access_log).unwrap();
    for path in ["/abc:x", "/9:x", "/plain", "/10:x"] {
        let line = log
            .lines()
            .find(|l| l.starts_with(&format!("{path} ")))
            .unwrap_or_else(|| panic!("{path} in {log}"));
        assert!(line.ends_with(" 404 -"), "{path} reached a node: {line}");
    }
    let query = log.lines().find(|l| l.starts_with("/3:q.txt?v=2")).unwrap();
    assert!(
        query.contains(&format!("127.0.0.1:{}", cluster.node(3).port))
            || query.contains(&format!("127.0.0.1:{}", cluster.node(6).port))
    );
}

#[test]
fn the_generated_front_serves_the_example_cluster() {
    let cluster = example_cluster("front-generated");
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let output = gen(&cluster, &["--listen", &listen]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config = cluster.sandbox.path().join("generated.conf");
    std::fs::write(&config, &output.stdout).unwrap();
    assert_eq!(
        nginx_test(&cluster.sandbox, "front-test", &config).unwrap(),
        Ok(())
    );
    let front = NginxFront::start(&cluster.sandbox, "front", &config, port).unwrap();
    check_front(&cluster, &front);

    // Deterministic: same state, same bytes; read-only shards still serve reads.
    assert_eq!(gen(&cluster, &["--listen", &listen]).stdout, output.stdout);
    cluster
        .admin("backpack-coordinator-disable-shard", &["2"])
        .unwrap();
    cluster
        .admin(
            "backpack-coordinator-add-server",
            &["5", &cluster.node(5).url()],
        )
        .unwrap();
    assert_eq!(gen(&cluster, &["--listen", &listen]).stdout, output.stdout);
    let upstreams = gen(&cluster, &["--upstreams-only"]);
    let text = String::from_utf8_lossy(&upstreams.stdout);
    assert!(
        text.contains("upstream backpack-shard-3") && !text.contains("server {"),
        "{text}"
    );
}

#[test]
fn the_shipped_config_passes_nginx_t_and_serves_the_same() {
    shipped_front_serves(example_cluster("front-shipped"));
}

#[test]
fn the_shipped_config_serves_real_backpack_nodes() {
    shipped_front_serves(example_cluster_of("front-real", NodeKind::Backpack));
}

fn shipped_front_serves(cluster: LocalCluster) {
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("nginx/backpack.conf"))
            .unwrap();
    // The example's ports, moved to where this test's nodes and front listen.
    let port = free_port().unwrap();
    let mut config = shipped.replace("listen 12080;", &format!("listen 127.0.0.1:{port};"));
    for id in 1..=6 {
        config = config.replace(
            &format!("127.0.0.1:1000{id} "),
            &format!("127.0.0.1:{} ", cluster.node(id).port),
        );
    }
    assert_ne!(config, shipped);
    let path = cluster.sandbox.path().join("shipped.conf");
    std::fs::write(&path, &config).unwrap();
    assert_eq!(
        nginx_test(&cluster.sandbox, "shipped-test", &path).unwrap(),
        Ok(())
    );
    let front = NginxFront::start(&cluster.sandbox, "front", &path, port).unwrap();
    check_front(&cluster, &front);
}

#[test]
fn hostile_or_broken_state_is_refused() {
    let cluster = example_cluster("front-hostile");
    let zk = ZkSession::connect(&cluster.zk(), Duration::from_secs(5)).unwrap();
    let servers = format!("{}/servers-map", cluster.root);
    let (bytes, version) = zk.get(&servers).unwrap().unwrap();
    let mut map: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    map["7"] = serde_json::json!({"host": "evil;}", "port": "1"});
    assert!(zk
        .set(&servers, map.to_string().into_bytes(), version)
        .unwrap());
    let output = gen(&cluster, &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("server 7") && err.contains("evil;}"), "{err}");
    assert!(output.stdout.is_empty());

    map["7"] = serde_json::json!({"host": "127.0.0.1", "port": "1;"});
    let (_, version) = zk.get(&servers).unwrap().unwrap();
    assert!(zk
        .set(&servers, map.to_string().into_bytes(), version)
        .unwrap());
    assert!(String::from_utf8_lossy(&gen(&cluster, &[]).stderr).contains("server 7"));

    map.as_object_mut().unwrap().remove("7");
    map.as_object_mut().unwrap().remove("6");
    let (_, version) = zk.get(&servers).unwrap().unwrap();
    assert!(zk
        .set(&servers, map.to_string().into_bytes(), version)
        .unwrap());
    let err = String::from_utf8_lossy(&gen(&cluster, &[]).stderr).into_owned();
    assert!(
        err.contains("shard 3 lists server 6, which is not in servers-map"),
        "{err}"
    );

    let output = gen(&cluster, &["--listen", "80; include /etc/passwd"]);
    assert_eq!(output.status.code(), Some(1));
    let output = Command::new(bin())
        .arg0_compat("bp-nginx-gen")
        .args([&cluster.zk(), "/not-initialized"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is the cluster initialized?"));
}

/// `bp-nginx-gen --watch --output <output>` with `extra` flags, run from `dir`.
fn start_watcher(
    cluster: &LocalCluster,
    dir: &Path,
    output: &Path,
    extra: &[String],
) -> backpack_testkit::ServerProcess {
    let mut args: Vec<String> = vec![
        cluster.zk(),
        cluster.root.clone(),
        "--watch".into(),
        "--output".into(),
        output.display().to_string(),
    ];
    args.extend_from_slice(extra);
    let mut launch =
        cluster
            .sandbox
            .launch("bp-nginx-gen", &bin().display().to_string(), args, dir);
    launch.arg0 = Some("bp-nginx-gen".into());
    backpack_testkit::ServerProcess::start(launch).unwrap()
}

#[test]
fn watch_rewrites_on_change_and_keeps_a_valid_file() {
    let cluster = example_cluster("front-watch");
    let dir = cluster.sandbox.subdir("watch").unwrap();
    let output = dir.join("backpack.conf");
    let reloads = dir.join("reloads");
    // The check refuses any config with a shard 5: our stand-in for "nginx -t fails".
    let check = format!("! grep -q backpack-shard-5 {}", output.display());
    let reload = format!("echo reload >> {}", reloads.display());
    let watcher = start_watcher(
        &cluster,
        &dir,
        &output,
        &["--check-cmd".into(), check, "--reload-cmd".into(), reload],
    );
    let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ok() {
            let log = std::fs::read_to_string(watcher.log()).unwrap_or_default();
            assert!(Instant::now() < deadline, "{what}: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let reload_count = || {
        std::fs::read_to_string(&reloads)
            .unwrap_or_default()
            .lines()
            .count()
    };
    wait_for("first file", &|| output.exists() && reload_count() == 1);
    let first = std::fs::read_to_string(&output).unwrap();
    assert!(first.contains("upstream backpack-shard-3"));

    cluster
        .admin("backpack-coordinator-add-shard", &["4", "1,2", "1gb"])
        .unwrap();
    let changed = Instant::now();
    wait_for("shard 4 written", &|| {
        std::fs::read_to_string(&output)
            .unwrap()
            .contains("backpack-shard-4")
    });
    assert!(
        changed.elapsed() < Duration::from_secs(1),
        "rewritten after {:?}",
        changed.elapsed()
    );
    wait_for("reloaded", &|| reload_count() == 2);

    // A result the check refuses: the old file stays, no reload.
    let before = std::fs::read_to_string(&output).unwrap();
    cluster
        .admin("backpack-coordinator-add-shard", &["5", "3", "1gb"])
        .unwrap();
    wait_for("refusal logged", &|| {
        std::fs::read_to_string(watcher.log())
            .unwrap()
            .contains("keeping the old one")
    });
    assert_eq!(std::fs::read_to_string(&output).unwrap(), before);
    assert_eq!(reload_count(), 2);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

/// The watcher writes the front from servers-map and shards-map alone: it never uses the
/// queue, so a root without `/queue` does not hold it back.
#[test]
fn watch_does_not_wait_for_the_queue() {
    let cluster = example_cluster("front-no-queue");
    let zk = ZkSession::connect(&cluster.zk(), Duration::from_secs(5)).unwrap();
    assert!(zk.delete(&format!("{}/queue", cluster.root)).unwrap());
    let dir = cluster.sandbox.subdir("watch").unwrap();
    let output = dir.join("backpack.conf");
    let watcher = start_watcher(&cluster, &dir, &output, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !output.exists() {
        let log = std::fs::read_to_string(watcher.log()).unwrap_or_default();
        assert!(Instant::now() < deadline, "no front written: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&output).unwrap();
    assert!(text.contains("upstream backpack-shard-3"), "{text}");
}
