//! The Debian package as an operator meets it: `bin/backpack-package` builds it, lintian
//! finds no error (and no warning that docs/install.md does not explain), it installs,
//! every command answers `--help` from /usr/bin and has a man page, systemd accepts the
//! installed units and none is enabled, the installed coordinator takes an upload on a
//! test cluster, an upgrade keeps an edited setting, and a purge leaves nothing behind.
//!
//! It installs the package on this machine (as root, as CI runs) and purges it when it
//! ends, however it ends; it refuses to run where backpack-rs is installed already.
//! Apart from it: the man pages in contrib/man say what the commands' `--help` says.

mod common;

use backpack_testkit::NodeKind;
use common::admin::repo_dir;
use common::cluster::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PACKAGE: &str = "backpack-rs";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program}: {err}"))
}

/// Runs a command that must succeed; its standard output.
fn run_ok(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every command the binary runs, and `backpack` itself.
fn command_names() -> Vec<&'static str> {
    let mut names = vec!["backpack"];
    names.extend(backpack::cli::COMMANDS.iter().map(|(name, _)| *name));
    names
}

fn installed_version() -> Option<String> {
    let output = run("dpkg-query", &["-W", "-f=${Status} ${Version}", PACKAGE]);
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    said.strip_prefix("install ok installed ")
        .map(str::to_string)
}

/// Purges the package when the test ends, passed or not.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", PACKAGE]);
    }
}

/// Builds the package from the binary this test run built, with `version` if given.
fn build_package(out: &Path, version: Option<&str>) -> PathBuf {
    // The binary is <target>/release/backpack: the script finds it through the target dir.
    let target = bin().parent().and_then(Path::parent).expect("target dir");
    let mut command = Command::new(repo_dir().join("bin/backpack-package"));
    command
        .args(["--no-build", "--out"])
        .arg(out)
        .env("CARGO_TARGET_DIR", target);
    if let Some(version) = version {
        command.args(["--version", version]);
    }
    let output = command.output().expect("run bin/backpack-package");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bin/backpack-package: {said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let deb = PathBuf::from(said.lines().last().unwrap_or_default().trim());
    assert!(deb.is_file(), "no package at {deb:?}: {said}");
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("backpack-rs_") && name.ends_with(".deb"),
        "{name}"
    );
    deb
}

/// lintian's errors and warnings: none of the first, and each of the second explained in
/// the install page.
fn lintian_accepts(deb: &Path) {
    let output = run("lintian", &["--pedantic", &deb.display().to_string()]);
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    let errors: Vec<&str> = said.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{}", errors.join("\n"));
    let install = std::fs::read_to_string(repo_dir().join("docs/install.md")).unwrap();
    for line in said.lines().filter(|line| line.starts_with("W:")) {
        let tag = line.split_whitespace().nth(2).unwrap_or(line);
        assert!(
            install.contains(&format!("`{tag}`")),
            "lintian warns {tag}, which docs/install.md does not explain: {line}"
        );
    }
    assert!(
        output.status.success(),
        "lintian failed: {said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The files and links the package installed (directories apart), and its directories.
fn installed_paths() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let listed = run_ok("dpkg-query", &["-L", PACKAGE]);
    let conffiles = run_ok("dpkg-query", &["-W", "-f=${Conffiles}", PACKAGE]);
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let paths = listed.lines().chain(
        conffiles
            .lines()
            .filter_map(|line| line.split_whitespace().next()),
    );
    for path in paths.map(PathBuf::from) {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => dirs.push(path),
            Ok(_) => files.push(path),
            Err(err) => panic!("{} is listed but not there: {err}", path.display()),
        }
    }
    (files, dirs)
}

fn every_command_answers_help_and_has_a_page() {
    for name in command_names() {
        let path = format!("/usr/bin/{name}");
        if name != "backpack" {
            let link = std::fs::read_link(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
            assert_eq!(link, Path::new("backpack"), "{path}");
        }
        let help = run_ok(&path, &["--help"]);
        assert!(
            help.starts_with(&format!("Usage: {name} ")),
            "{path}: {help}"
        );
        let page = format!("/usr/share/man/man1/{name}.1.gz");
        assert!(Path::new(&page).is_file(), "no man page {page}");
    }
}

fn systemd_accepts_the_installed_units() {
    let units = [
        "backpack-coordinator@main.service",
        "backpack-replicator@main.service",
        "bp-nginx-gen.service",
    ];
    let mut args = vec!["verify"];
    args.extend(units);
    let output = run("systemd-analyze", &args);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && said.trim().is_empty(), "{said}");
    let templates = [
        "backpack-coordinator@.service",
        "backpack-replicator@.service",
        "bp-nginx-gen.service",
    ];
    for unit in templates {
        let text = std::fs::read_to_string(format!("/lib/systemd/system/{unit}")).unwrap();
        assert!(text.contains("ExecStart=/usr/bin/"), "{unit}: {text}");
        // systemd-analyze above checked that the man page it names is installed.
        assert!(text.contains("Documentation=man:"), "{unit}: {text}");
        assert!(!text.contains("/opt/"), "{unit} names /opt/: {text}");
    }
    // Installed, not enabled: nothing starts before an operator configures it.
    let wants = Path::new("/etc/systemd/system/multi-user.target.wants");
    for unit in units {
        assert!(!wants.join(unit).exists(), "{unit} is enabled");
    }
}

fn the_installed_coordinator_takes_an_upload() {
    let cluster = example_cluster_of("package", NodeKind::Backpack);
    let installed = Path::new("/usr/bin/backpack-coordinator");
    let coordinator = cluster
        .start_coordinator_from(installed, "installed", &[])
        .expect("start the installed coordinator");
    let body = b"uploaded through the installed coordinator";
    let (status, answer) = put(&client(), &coordinator.url("/package/first.txt"), body);
    assert_eq!(status, 200, "{answer}");
    let shard = shard_of(&answer);
    let holding = holders(&cluster, "/package/first.txt");
    assert_eq!(holding.len(), 1, "one node holds it before replication");
    let node = cluster.node(holding[0]);
    assert_eq!(node.file("/package/first.txt").as_deref(), Some(&body[..]));
    assert!(["1", "2", "3"].contains(&shard.as_str()), "{shard}");
}

#[test]
fn the_package_installs_serves_upgrades_and_purges_cleanly() {
    assert!(
        run_ok("id", &["-u"]).trim() == "0",
        "the package test installs a package: run the tests as root (as .ci/run does)"
    );
    assert_eq!(
        installed_version(),
        None,
        "{PACKAGE} is installed on this machine; this test installs and purges its own: \
         dpkg --purge {PACKAGE} first"
    );
    let out = std::env::temp_dir().join(format!("backpack-package-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let first = build_package(&out.join("first"), None);
    lintian_accepts(&first);

    let _installed = Installed;
    run_ok("dpkg", &["-i", &first.display().to_string()]);
    let version = installed_version().expect("installed");
    // Its checksums are known to dpkg, and match what is on disk.
    assert_eq!(run_ok("dpkg", &["--verify", PACKAGE]), "");
    assert!(Path::new("/var/lib/dpkg/info/backpack-rs.md5sums").is_file());
    every_command_answers_help_and_has_a_page();
    systemd_accepts_the_installed_units();
    the_installed_coordinator_takes_an_upload();

    // An operator's edit survives an upgrade; an untouched setting file stays as shipped.
    let edited = Path::new("/etc/backpack/coordinator-main.env");
    let mut text = std::fs::read_to_string(edited).unwrap();
    text.push_str("LISTEN_PORT=12002\n");
    std::fs::write(edited, &text).unwrap();
    let untouched = std::fs::read("/etc/backpack/replicator-main.env").unwrap();
    let newer = format!("{version}+1");
    let second = build_package(&out.join("second"), Some(&newer));
    run_ok("dpkg", &["-i", &second.display().to_string()]);
    assert_eq!(installed_version(), Some(newer));
    assert_eq!(std::fs::read_to_string(edited).unwrap(), text);
    assert_eq!(
        std::fs::read("/etc/backpack/replicator-main.env").unwrap(),
        untouched
    );

    // A purge takes everything it installed, the settings too.
    let (files, dirs) = installed_paths();
    assert!(files.len() > 40, "{files:?}");
    run_ok("dpkg", &["--purge", PACKAGE]);
    assert_eq!(installed_version(), None);
    let left: Vec<&PathBuf> = files
        .iter()
        .filter(|path| std::fs::symlink_metadata(path).is_ok())
        .collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    for dir in [
        "/etc/backpack",
        "/usr/share/backpack",
        "/usr/share/doc/backpack-rs",
    ] {
        assert!(
            dirs.contains(&PathBuf::from(dir)),
            "{dir} not the package's"
        );
        assert!(!Path::new(dir).exists(), "{dir} left after purge");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn man_pages_say_what_every_commands_help_says() {
    let pages = repo_dir().join("contrib/man");
    for name in command_names() {
        let page = pages.join(format!("{name}.1"));
        let text = std::fs::read_to_string(&page)
            .unwrap_or_else(|err| panic!("no man page {}: {err}", page.display()));
        assert!(text.contains(&format!(".SH NAME\n{}", name.replace('-', "\\-"))));
    }
    let output = Command::new(pages.join("generate"))
        .arg(bin())
        .arg("--check")
        .output()
        .expect("run contrib/man/generate");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
