//! An application signs upload tokens in any language from docs/upload-tokens.md: its
//! test vectors hold for Python's standard library, for `backpack-coordinator-sign-upload`
//! and for the coordinator's check; the page's Python function signs a token a running
//! coordinator takes.

mod common;

use backpack::upload_auth::keys::UploadKeys;
use backpack::upload_auth::token::{verify, Grant};
use backpack_testkit::LocalCluster;
use common::admin::{repo_dir, run, stderr, stdout};
use common::cluster::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

struct Vector {
    grant: String,
    payload: String,
    mac: String,
    token: String,
}

fn page() -> String {
    std::fs::read_to_string(repo_dir().join("docs/upload-tokens.md")).unwrap()
}

/// The keys file line and the vectors of the page's test vectors section.
fn vectors(page: &str) -> (String, Vec<Vector>) {
    let section = page
        .split("### Test vectors")
        .nth(1)
        .expect("a test vectors section");
    let section = section.split("\n## ").next().unwrap();
    let keys_line = section
        .lines()
        .find(|line| line.starts_with("k1 "))
        .expect("a keys file line")
        .to_string();
    let field = |block: &str, name: &str| {
        block
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .map(|value| value.trim().to_string())
    };
    let vectors: Vec<Vector> = section
        .split("```")
        .filter_map(|block| {
            Some(Vector {
                grant: field(block, "grant")?,
                payload: field(block, "payload")?,
                mac: field(block, "mac")?,
                token: field(block, "token")?,
            })
        })
        .collect();
    (keys_line, vectors)
}

/// Runs `script` with python3 (standard library only), `input` on its standard input.
fn python(script: &str, input: &str) -> String {
    let mut child = Command::new("python3")
        .args(["-I", "-S", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn keys_file(dir: &std::path::Path, line: &str, mode: u32) -> std::path::PathBuf {
    let path = dir.join(format!("keys-{mode:o}"));
    std::fs::write(&path, format!("{line}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn the_documented_vectors_hold_in_python_the_command_and_the_coordinator() {
    let (keys_line, vectors) = vectors(&page());
    assert_eq!(vectors.len(), 2);
    let secret = keys_line.split_whitespace().nth(1).unwrap();
    let keys = UploadKeys::parse(&keys_line).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = keys_file(dir.path(), &keys_line, 0o600);
    for vector in &vectors {
        // Python: the algorithm as the page gives it, step by step.
        let script = r#"
import base64, hashlib, hmac, sys
secret, grant = sys.stdin.read().split("\n", 1)
b64url = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
payload = b64url(grant.encode("utf-8"))
mac = b64url(hmac.new(base64.b64decode(secret), payload.encode("ascii"), hashlib.sha256).digest())
print(payload, mac, payload + "." + mac)
"#;
        let said = python(script, &format!("{secret}\n{}", vector.grant));
        assert_eq!(
            said.split_whitespace().collect::<Vec<_>>(),
            [&vector.payload, &vector.mac, &vector.token],
            "{}",
            vector.grant
        );
        // The coordinator's check takes it and reads the grant the page shows.
        let grant = verify(&vector.token, &keys).expect("the vector verifies");
        let shown: Grant = serde_json::from_str(&vector.grant).unwrap();
        assert_eq!(grant, shown);
        // The command signs the same token from the same grant.
        let mut args = vec!["--keys".to_string(), path.display().to_string()];
        args.extend(["--key-id".into(), grant.kid.clone()]);
        args.extend(["--expires-at".into(), grant.exp.to_string()]);
        args.extend(["--max-bytes".into(), grant.max.to_string()]);
        if let Some(key) = &grant.key {
            args.extend(["--key".into(), key.clone()]);
        }
        if let Some(prefix) = &grant.prefix {
            args.extend(["--prefix".into(), prefix.clone()]);
        }
        if let Some(len) = grant.len {
            args.extend(["--length".into(), len.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run("backpack-coordinator-sign-upload", &args);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output).trim(), vector.token);
    }
}

#[test]
fn the_pages_python_signs_a_token_a_coordinator_takes() {
    let (keys_line, _) = vectors(&page());
    let secret = keys_line.split_whitespace().nth(1).unwrap();
    let page = page();
    let function = page
        .split("```python")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the page's Python");
    let token = python(
        &format!("{function}\nprint(sign_upload('k1', '{secret}', '/users/42/', 1 << 20))"),
        "",
    );
    let token = token.trim();
    let cluster = LocalCluster::start(bin(), "tokens-python", 1, 1).unwrap();
    cluster.add_enabled_shard("1", &[1], "10gb").unwrap();
    let path = keys_file(cluster.sandbox.path(), &keys_line, 0o600);
    let coordinator = coordinator(&cluster, &["--upload-keys", path.to_str().unwrap()]);
    let agent = client();
    let send = |target: &str| {
        agent
            .put(coordinator.url(target))
            .header("Authorization", format!("Bearer {token}"))
            .send(&b"from python"[..])
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(send("/users/42/photo.jpg"), 200);
    assert_eq!(
        cluster.node(1).file("/users/42/photo.jpg").as_deref(),
        Some(&b"from python"[..])
    );
    assert_eq!(send("/users/43/photo.jpg"), 403);
}

#[test]
fn sign_upload_refuses_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (keys_line, _) = vectors(&page());
    let guarded = keys_file(dir.path(), &keys_line, 0o600);
    let open = keys_file(dir.path(), &keys_line, 0o644);
    let guarded = guarded.to_str().unwrap();
    for (args, code, says) in [
        (
            vec![
                "--keys", guarded, "--key-id", "k1", "--key", "/a", "--prefix", "/b",
            ],
            2,
            "exactly one of --key and --prefix",
        ),
        (
            vec!["--keys", guarded, "--key-id", "k1"],
            2,
            "exactly one of --key and --prefix",
        ),
        (
            vec!["--keys", guarded, "--key-id", "k1", "--key", "a.jpg"],
            2,
            "start with /",
        ),
        (
            vec!["--keys", guarded, "--key-id", "k7", "--key", "/a"],
            1,
            "no key \"k7\"",
        ),
        (
            vec![
                "--keys",
                open.to_str().unwrap(),
                "--key-id",
                "k1",
                "--key",
                "/a",
            ],
            1,
            "every user may access it",
        ),
        (
            vec![
                "--keys",
                guarded,
                "--key-id",
                "k1",
                "--key",
                "/a",
                "--max-bytes",
                "lots",
            ],
            2,
            "invalid size",
        ),
    ] {
        let output = run("backpack-coordinator-sign-upload", &args);
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {said}");
        // One line, and for arguments that do not parse the hint to --help.
        let mut lines = said.lines();
        let _ = lines.next();
        assert!(
            lines.all(|line| line.contains("--help for usage")),
            "{said}"
        );
        assert!(said.contains(says), "{args:?}: {said}");
        assert!(stdout(&output).is_empty());
    }
}
