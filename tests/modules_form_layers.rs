//! The production crate's modules, and the test kit's, form layers: within every module,
//! its submodules use each other without a circle, so each can be read (and changed)
//! knowing only what is below it. A reference from a module to its own ancestors or descendants does not count
//! (a parent declares its children; a child may use what its parent defines).
//!
//! The check reads `src/` and `testkit/src/` as text: every `crate::`, `super::` and `self::` path, in `use`
//! items (braces expanded) and in code, comments and unit tests aside, is resolved to the
//! deepest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path of every source file: `src/http/body.rs` is `["http", "body"]`,
/// `src/http/mod.rs` is `["http"]`, `src/lib.rs` is `[]`.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                let mut inner = prefix.to_vec();
                inner.push(name);
                walk(&path, &inner, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut module = prefix.to_vec();
                if !matches!(stem, "mod" | "lib" | "main") {
                    module.push(stem.to_string());
                }
                if stem != "main" {
                    out.insert(module, path);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(path: &str) -> Vec<String> {
    let Some(open) = path.find('{') else {
        return vec![path.trim().to_string()];
    };
    let prefix = &path[..open];
    let Some(close) = path.rfind('}') else {
        return vec![prefix.to_string()];
    };
    let inner = &path[open + 1..close];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(&format!("{prefix}{}", p.trim())))
        .collect()
}

/// Every module path a file refers to, as written (`crate::a::b`, `super::{x, y}`, ...).
fn references(text: &str) -> Vec<String> {
    // Code after the first test module is the file's unit tests: not part of the layers.
    // Comment lines name modules without using them.
    let code: String = text
        .split("#[cfg(test)]")
        .next()
        .unwrap_or("")
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.as_str();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(start) = ["crate::", "super::", "self::"]
        .iter()
        .filter_map(|k| code[at..].find(k).map(|i| at + i))
        .min()
    {
        let preceded = code[..start]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        // The path: identifiers and `::`, then perhaps one brace group.
        let mut end = start;
        let mut depth = 0usize;
        for (i, c) in code[start..].char_indices() {
            let inside = depth > 0;
            match c {
                '{' => depth += 1,
                '}' if inside => depth -= 1,
                c if inside || c.is_alphanumeric() || c == '_' || c == ':' => {}
                _ => break,
            }
            end = start + i + c.len_utf8();
            if inside && depth == 0 {
                break;
            }
        }
        if !preceded {
            found.extend(expand(&code[start..end]));
        }
        at = end.max(start + 1);
    }
    found
}

/// The module a written path names, from the module `from` (a file's module path).
fn resolve(
    path: &str,
    from: &[String],
    known: &BTreeMap<Vec<String>, PathBuf>,
) -> Option<Vec<String>> {
    let segments: Vec<&str> = path.split("::").map(str::trim).collect();
    let mut base: Vec<String> = match *segments.first()? {
        "crate" => Vec::new(),
        // In `a/mod.rs`, `self` is `a` and `super` is a's parent; in `a/b.rs`, `self` is
        // `a::b` and `super` is `a`.
        "self" => from.to_vec(),
        "super" => from[..from.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    let mut rest = &segments[1..];
    while rest.first() == Some(&"super") {
        base.pop();
        rest = &rest[1..];
    }
    let mut deepest = base.clone();
    for segment in rest {
        base.push(segment.to_string());
        if known.contains_key(&base) {
            deepest = base.clone();
        } else {
            break;
        }
    }
    Some(deepest)
}

/// Circles among the children of each module: lists of sibling modules.
fn circles(src: &Path) -> Vec<Vec<String>> {
    let known = modules(src);
    // Per parent module: child -> children it uses.
    let mut graphs: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (module, file) in &known {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for reference in references(&text) {
            let Some(target) = resolve(&reference, module, &known) else {
                continue;
            };
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common == module.len() || common == target.len() {
                continue; // an ancestor or a descendant
            }
            graphs
                .entry(module[..common].to_vec())
                .or_default()
                .entry(module[common].clone())
                .or_default()
                .insert(target[common].clone());
        }
    }
    let mut found = Vec::new();
    for (parent, graph) in &graphs {
        for start in graph.keys() {
            // A path from start back to start, through siblings greater than start (each
            // circle reported once, from its least member).
            let mut stack = vec![(start.clone(), vec![start.clone()])];
            let mut seen = BTreeSet::new();
            while let Some((node, trail)) = stack.pop() {
                for next in graph.get(&node).into_iter().flatten() {
                    if next == start {
                        let mut circle: Vec<String> = trail
                            .iter()
                            .map(|m| {
                                let mut full = parent.clone();
                                full.push(m.clone());
                                full.join("::")
                            })
                            .collect();
                        circle.push(circle[0].clone());
                        found.push(circle);
                    } else if next > start && seen.insert(next.clone()) {
                        let mut longer = trail.clone();
                        longer.push(next.clone());
                        stack.push((next.clone(), longer));
                    }
                }
            }
        }
    }
    found
}

fn assert_no_circles(src: &Path) {
    assert!(
        src.join("lib.rs").is_file(),
        "{} has a lib.rs",
        src.display()
    );
    let found = circles(src);
    let shown: Vec<String> = found.iter().map(|c| c.join(" -> ")).collect();
    assert!(
        found.is_empty(),
        "module circles in {}:\n{}",
        src.display(),
        shown.join("\n")
    );
}

#[test]
fn no_module_circles_in_the_production_crate() {
    assert_no_circles(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
}

#[test]
fn no_module_circles_in_the_test_kit() {
    assert_no_circles(&Path::new(env!("CARGO_MANIFEST_DIR")).join("testkit/src"));
}

#[test]
fn the_check_finds_a_circle() {
    let dir = std::env::temp_dir().join(format!("layers-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("http")).unwrap();
    std::fs::write(dir.join("lib.rs"), "pub mod http;\npub mod cli;\n").unwrap();
    std::fs::write(dir.join("cli.rs"), "use crate::http::server::Server;\n").unwrap();
    std::fs::write(dir.join("http/mod.rs"), "mod body;\nmod server;\n").unwrap();
    std::fs::write(
        dir.join("http/body.rs"),
        "use super::{server::Limits, mod_level};\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("http/server.rs"),
        "fn f() { crate::http::body::read(); crate::cli::run(); }\n",
    )
    .unwrap();
    let found = circles(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let shown: Vec<String> = found.iter().map(|c| c.join(" -> ")).collect();
    assert!(
        shown.contains(&"http::body -> http::server -> http::body".to_string()),
        "{shown:?}"
    );
    assert!(
        shown.contains(&"cli -> http -> cli".to_string()),
        "{shown:?}"
    );
    assert_eq!(found.len(), 2, "{shown:?}");
}
