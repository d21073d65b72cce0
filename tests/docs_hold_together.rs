//! The documentation holds together: every relative link and `#anchor` in `README.md`
//! and `docs/` resolves, every command name it uses exists in `bin/`, and the
//! configuration reference is what the binaries' own `--help` says, so a flag added
//! without its line fails here.
//!
//! `BACKPACK_WRITE_REFERENCE=1 cargo test --release --test docs_hold_together` writes
//! `docs/reference.md` anew from the binaries.

mod common;

use common::admin::{run, stdout};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file below docs/.
fn documents() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read docs/").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut out = vec![repo().join("README.md")];
    walk(&repo().join("docs"), &mut out);
    out.sort();
    out
}

/// The text outside fenced code blocks (links in code are not links).
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced && !line.starts_with("    ") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Link targets `[text](target)` in `text`.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        if let Some(end) = after.find(')') {
            found.push(after[..end].to_string());
        }
        rest = &rest[at + 2..];
    }
    found
}

/// The anchor a code host makes of a heading: lower case, punctuation dropped (but `-`
/// and `_`), spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            found.insert(slug(line.trim_start_matches('#')));
        }
    }
    found
}

#[test]
fn every_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for document in documents() {
        let text = std::fs::read_to_string(&document).expect("read a document");
        let dir = document.parent().expect("a document's folder");
        for target in links(&prose(&text)) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file = if path.is_empty() {
                document.clone()
            } else {
                dir.join(path)
            };
            if !file.exists() {
                broken.push(format!("{}: {target}: no such file", document.display()));
                continue;
            }
            if !anchor.is_empty() {
                let target_text = std::fs::read_to_string(&file).unwrap_or_default();
                if !anchors(&target_text).contains(anchor) {
                    broken.push(format!("{}: {target}: no such heading", document.display()));
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_anchor_rule_and_the_link_finder_work() {
    assert_eq!(
        slug(" What `--sync-copies 2` costs"),
        "what---sync-copies-2-costs"
    );
    assert_eq!(
        slug("Replacing the Node.js tools on a running cluster"),
        "replacing-the-nodejs-tools-on-a-running-cluster"
    );
    assert_eq!(links("a [b](c.md#d) e [f](g)"), ["c.md#d", "g"]);
    assert!(prose("```\n[x](nowhere)\n```\n").is_empty());
}

/// `backpack-...` and `bp-...` command names, as the docs write them.
fn command_names(text: &str) -> BTreeSet<String> {
    let prefixes = [
        "backpack-coordinator",
        "backpack-replicator",
        "backpack-demo",
        "backpack-install-deps",
        "backpack-walkthrough",
        "bp-nginx-gen",
        "bp-bench",
    ];
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices(|c| c == 'b') {
        let rest = &text[at..];
        let Some(prefix) = prefixes.iter().find(|p| rest.starts_with(**p)) else {
            continue;
        };
        if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let length = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c == '-'))
            .unwrap_or(rest.len());
        let name = rest[..length].trim_end_matches('-');
        // A unit (`backpack-coordinator@.service`) or a prefix (`backpack-coordinator.<host>`).
        let next = rest[length..].chars().next();
        if name.len() < prefix.len() || matches!(next, Some('@' | '.' | '_' | '<')) {
            continue;
        }
        found.insert(name.to_string());
    }
    found
}

#[test]
fn every_command_the_docs_name_is_in_bin() {
    let mut unknown = BTreeSet::new();
    let mut seen = 0;
    for document in documents() {
        let text = std::fs::read_to_string(&document).expect("read a document");
        for name in command_names(&text) {
            seen += 1;
            if !repo().join("bin").join(&name).exists() {
                unknown.insert(format!("{}: {name}", document.display()));
            }
        }
    }
    assert!(seen > 20, "only {seen} command names found");
    assert!(unknown.is_empty(), "not in bin/:\n{}", lines_of(&unknown));
    let sample = "bin/backpack-coordinator-add-shard and backpack-coordinator-frobnicate, \
                  not backpack-coordinator@.service";
    assert_eq!(
        command_names(sample).into_iter().collect::<Vec<_>>(),
        [
            "backpack-coordinator-add-shard",
            "backpack-coordinator-frobnicate"
        ]
    );
}

fn lines_of(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join("\n")
}

/// The reference as the binaries' `--help` makes it.
fn reference_from_the_binaries() -> String {
    let mut text = String::from(
        "# Configuration reference\n\n\
         Every command, its arguments and its flags with their defaults, as the binaries'\n\
         own `--help` prints them (a test writes this page from them and fails when it\n\
         differs, so it cannot drift). Times read `500ms`, `5s`, `2m`, `1h`, or a bare number\n\
         of seconds; sizes `100gb`, `1.5gb`, `512mb`, or a bare number of bytes (1024-based).\n\
         Every command also takes `--version`. What the commands do, and their exit codes:\n\
         [admin commands](admin-commands.md), [the coordinator](coordinator.md),\n\
         [the replicator](replicator.md), [the front](front.md), [repair](operations/repair.md).\n",
    );
    for (name, _) in backpack::cli::COMMANDS {
        let output = run(name, &["--help"]);
        assert!(output.status.success(), "{name} --help");
        text.push_str(&format!(
            "\n## {name}\n\n```text\n{}\n```\n",
            stdout(&output).trim_end()
        ));
    }
    text
}

#[test]
fn the_configuration_reference_is_what_the_binaries_say() {
    let path = repo().join("docs/reference.md");
    let expected = reference_from_the_binaries();
    if std::env::var_os("BACKPACK_WRITE_REFERENCE").is_some() {
        std::fs::write(&path, &expected).expect("write docs/reference.md");
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    if written != expected {
        let first = written
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .map_or(written.lines().count().min(expected.lines().count()), |n| n);
        panic!(
            "docs/reference.md differs from the binaries' --help from line {}: {:?} (write it anew with BACKPACK_WRITE_REFERENCE=1 cargo test --release --test docs_hold_together)",
            first + 1,
            expected.lines().nth(first)
        );
    }
}
