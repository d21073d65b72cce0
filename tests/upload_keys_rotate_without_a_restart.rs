//! The `--upload-keys` file is re-read when it changes and on SIGHUP, under load: a key
//! added is taken within a second, a key dropped is refused within a second, and no
//! upload signed with a key in force fails. A file that does not parse keeps the keys in
//! force. The console and `/status.json` show the key ids, never the secrets.

mod common;

use backpack_testkit::{metrics, CoordinatorProcess, LocalCluster};
use common::cluster::*;
use common::tokens::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One upload of the load: which key signed it, when it started and ended (since the
/// load began), its status.
struct Sent {
    key: &'static str,
    started: Duration,
    ended: Duration,
    status: u16,
}

/// Uploads from `clients` threads per key until `stop`, each signed with its key: the
/// even-numbered clients with a token of their own for every upload, the odd ones with
/// one prefix token for all of theirs (as a session does), which the coordinator
/// remembers as verified until the keys change.
fn load(
    coordinator: &CoordinatorProcess,
    keys: &[&'static str],
    clients: usize,
    stop: Arc<AtomicBool>,
    began: Instant,
) -> Vec<std::thread::JoinHandle<Vec<Sent>>> {
    let mut threads = Vec::new();
    for &id in keys {
        for client_number in 0..clients {
            let url = coordinator.url("");
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                let key = TestKey::new(id, id.as_bytes()[1]);
                let agent = client();
                let session = key.sign(for_prefix(&format!("/{id}/{client_number}"), 4096));
                let mut sent = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let path = format!("/{id}/{client_number}/{n}.jpg");
                    let token = match client_number % 2 {
                        0 => key.sign(for_key(&path, 4096)),
                        _ => session.clone(),
                    };
                    let started = began.elapsed();
                    let status = agent
                        .put(format!("{url}{path}"))
                        .header("Authorization", format!("Bearer {token}"))
                        .send(&[b'r'; 1024][..])
                        .map_or(0, |response| response.status().as_u16());
                    sent.push(Sent {
                        key: id,
                        started,
                        ended: began.elapsed(),
                        status,
                    });
                }
                sent
            }));
        }
    }
    threads
}

#[test]
fn keys_rotate_under_load_within_a_second() {
    let cluster = LocalCluster::start(bin(), "tokens-rotate", 1, 2).unwrap();
    cluster.add_enabled_shard("1", &[1, 2], "10gb").unwrap();
    let (k1, k2) = (TestKey::new("k1", b'1'), TestKey::new("k2", b'2'));
    let path = cluster.sandbox.path().join("upload-keys");
    write_keys(&path, &[&k1]);
    let mut coordinator = coordinator(
        &cluster,
        &["--upload-keys", path.to_str().unwrap(), "--quiet"],
    );

    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let threads = load(&coordinator, &["k1", "k2"], 3, Arc::clone(&stop), began);
    std::thread::sleep(Duration::from_millis(1500));
    let added = began.elapsed();
    write_keys(&path, &[&k1, &k2]);
    std::thread::sleep(Duration::from_millis(2000));
    let dropped = began.elapsed();
    write_keys(&path, &[&k2]);
    std::thread::sleep(Duration::from_millis(2000));
    // A file that does not parse: the keys in force stay.
    let broken = began.elapsed();
    std::fs::write(&path, "k3 not-base64!\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let sent: Vec<Sent> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();

    let second = Duration::from_secs(1);
    let count = |key: &str, from: Duration, to: Duration, status: u16| {
        sent.iter()
            .filter(|s| s.key == key && s.started >= from && s.ended <= to && s.status == status)
            .count()
    };
    let all = |key: &str, from: Duration, to: Duration| {
        sent.iter()
            .filter(|s| s.key == key && s.started >= from && s.ended <= to)
            .count()
    };
    let end = began.elapsed();
    let zero = Duration::ZERO;
    // k1 was in force until it was dropped: every upload it signed that ended by then was
    // taken, the one addition included.
    assert!(all("k1", zero, dropped) > 100, "too little load to judge");
    assert_eq!(count("k1", zero, dropped, 200), all("k1", zero, dropped));
    // k2 before it was added: refused; a second after: taken, through k1's removal and
    // the broken file.
    assert_eq!(count("k2", zero, added, 403), all("k2", zero, added));
    assert!(
        all("k2", added + second, end) > 100,
        "too little load to judge"
    );
    assert_eq!(
        count("k2", added + second, end, 200),
        all("k2", added + second, end)
    );
    // k1 a second after it was dropped: refused, also after the broken file.
    assert!(all("k1", dropped + second, end) > 100);
    assert_eq!(
        count("k1", dropped + second, end, 403),
        all("k1", dropped + second, end)
    );
    assert!(broken < end);
    let first_k2 = sent
        .iter()
        .filter(|s| s.key == "k2" && s.status == 200)
        .map(|s| s.ended)
        .min();
    let last_k1 = sent
        .iter()
        .filter(|s| s.key == "k1" && s.status == 200)
        .map(|s| s.started)
        .max();
    eprintln!(
        "{} uploads; k2 first taken {:?} after it was added, k1 last taken {:?} after it was dropped",
        sent.len(),
        first_k2.map(|t| t.saturating_sub(added)),
        last_k1.map(|t| t.saturating_sub(dropped)),
    );

    let text = metrics::get_text(&coordinator.url("/metrics")).unwrap();
    let reloads = |result: &str| {
        metrics::sample(
            &text,
            &format!("backpack_coordinator_upload_keys_reloads_total{{result=\"{result}\"}}"),
        )
    };
    assert_eq!(reloads("ok"), Some(2.0), "{text}");
    // An edit in place may be seen half written too: at least the whole one failed.
    assert!(reloads("failed").unwrap_or(0.0) >= 1.0, "{text}");
    let log = coordinator.log();
    assert!(
        log.contains("upload keys not reloaded (the file changed)"),
        "{log}"
    );
    assert!(log.contains("not base64; still in force: k2"), "{log}");

    // SIGHUP re-reads the file even when nothing about it changed.
    write_keys(&path, &[&k1, &k2]);
    wait_for("the file's change is taken", Duration::from_secs(5), || {
        coordinator
            .log()
            .matches("(the file changed); in force: k1, k2")
            .count()
            == 2
    });
    coordinator.process.signal(libc::SIGHUP);
    wait_for("a reload on SIGHUP", Duration::from_secs(5), || {
        coordinator.log().contains("(SIGHUP); in force: k1, k2")
    });
    // A restart reads the file as it is.
    coordinator.restart().unwrap();
    let agent = client();
    let token = k1.sign(for_key("/after-restart.jpg", 10));
    let status = agent
        .put(coordinator.url("/after-restart.jpg"))
        .header("Authorization", format!("Bearer {token}"))
        .send(&b"x"[..])
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

#[test]
fn a_keys_file_others_can_read_is_refused_and_secrets_are_never_shown() {
    let cluster = LocalCluster::start(bin(), "tokens-file", 1, 2).unwrap();
    cluster.add_enabled_shard("1", &[1, 2], "10gb").unwrap();
    let key = TestKey::new("k1", b'1');
    let path = cluster.sandbox.path().join("upload-keys");
    write_keys(&path, &[&key]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let flag = ["--upload-keys", path.to_str().unwrap()];
    let refused = cluster
        .start_coordinator("open-file", &flag)
        .err()
        .expect("refused");
    assert!(
        refused.to_string().contains("every user may access it"),
        "{refused}"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let guarded = cluster.start_coordinator("guarded", &flag).unwrap();
    let open = cluster.start_coordinator("no-tokens", &[]).unwrap();

    let agent = client();
    let status = get_json(&agent, &guarded.url("/status.json"));
    assert_eq!(status["upload_tokens"]["required"], true, "{status}");
    assert_eq!(
        status["upload_tokens"]["key_ids"],
        serde_json::json!(["k1"])
    );
    let secret = key.line().split_whitespace().nth(1).unwrap().to_string();
    for page in ["/", "/status.json", "/metrics", "/stats"] {
        let text = agent
            .get(guarded.url(page))
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap();
        assert!(!text.contains(&secret[..12]), "{page} shows the secret");
        if page == "/" {
            assert!(text.contains("upload tokens required"), "{text}");
        }
    }
    let text = metrics::get_text(&guarded.url("/metrics")).unwrap();
    assert_eq!(
        metrics::sample(&text, "backpack_coordinator_upload_tokens_required"),
        Some(1.0)
    );
    assert_eq!(
        metrics::sample(&text, "backpack_coordinator_upload_keys_in_force"),
        Some(1.0)
    );

    // Without --upload-keys nothing changes: no token is asked for, and a `token`
    // parameter is part of the key like any other.
    let status = get_json(&agent, &open.url("/status.json"));
    assert_eq!(status["upload_tokens"]["required"], false, "{status}");
    let (code, answer) = put(&agent, &open.url("/t.jpg?token=abc"), b"plain");
    assert_eq!(code, 200, "{answer}");
    let items = cluster.queue_items(0);
    assert!(
        items
            .iter()
            .any(|item| item.contains("\"/t.jpg?token=abc\"")),
        "{items:?}"
    );
}
