//! The version a binary reports (`--version`, the console): the crate's version, and the
//! git commit it was built from when built from a checkout (`build.rs` records it).

/// `0.1.0 (git 0e1f2a3b4c5d)`, or `0.1.0` when built without git.
pub fn version() -> String {
    match option_env!("BACKPACK_GIT_COMMIT") {
        Some(commit) => format!("{} (git {commit})", env!("CARGO_PKG_VERSION")),
        None => env!("CARGO_PKG_VERSION").to_string(),
    }
}
