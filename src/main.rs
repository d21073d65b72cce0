//! One binary for every command. It is called either under a command's own name (the
//! scripts in `bin/` run it as `backpack-coordinator-init ...`, so `--help` and error
//! messages carry the name users know) or as `backpack <command> ...`.

use std::process::ExitCode;

/// mimalloc for small blocks, glibc for large ones (`backpack::allocator`).
#[global_allocator]
static ALLOCATOR: backpack::allocator::SplitAllocator = backpack::allocator::SplitAllocator;

fn usage() -> ExitCode {
    eprintln!("usage: backpack <command> [arguments...]   (or run bin/<command>)");
    eprintln!("commands:");
    for (name, _) in backpack::cli::COMMANDS {
        eprintln!("  {name}");
    }
    ExitCode::from(backpack::command::EXIT_USAGE)
}

fn main() -> ExitCode {
    backpack::allocator::one_arena_for_large_blocks();
    let args: Vec<String> = std::env::args().collect();
    let called_as = args
        .first()
        .map(|arg0| arg0.rsplit('/').next().unwrap_or(arg0).to_string())
        .unwrap_or_default();
    let known = backpack::cli::COMMANDS
        .iter()
        .any(|(name, _)| *name == called_as);
    let (name, rest) = if known {
        (called_as, &args[1.min(args.len())..])
    } else {
        match args.get(1) {
            Some(command) => (command.clone(), &args[2..]),
            None => return usage(),
        }
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    if !backpack::cli::is_daemon(&name) {
        // A one-shot command piped into `head` should end quietly when the pipe closes,
        // like any Unix tool. (Servers keep Rust's default: a closed socket is an error,
        // not a signal.)
        // SAFETY: restoring the default disposition of a signal is always sound.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let program = name.clone();
    std::panic::set_hook(Box::new(move |info| {
        // A bug, never the user's fault: one line, no backtrace.
        eprintln!("{program}: internal error: {info}");
    }));
    match backpack::cli::run(&name, &rest) {
        Some(code) => code,
        None => {
            eprintln!("backpack: unknown command {name:?}");
            usage()
        }
    }
}
