//! One binary for every command. It is called either under a command's own name (the
//! scripts in `bin/` run it as `backpack-coordinator-init ...`, so `--help` and error
//! messages carry the name users know) or as `backpack <command> ...`.

use std::process::ExitCode;

/// mimalloc for small blocks, glibc for large ones (`backpack::allocator`).
#[global_allocator]
static ALLOCATOR: backpack::allocator::SplitAllocator = backpack::allocator::SplitAllocator;

/// What `backpack` says of itself: how to call it and the commands it runs.
fn usage_text() -> String {
    let mut text = String::from(
        "Usage: backpack <command> [<arguments>...]\n\n\
         The one binary behind every backpack-rs command: it runs the command it is called \
         by (a link named backpack-coordinator runs the coordinator), or the one named by \
         its first argument. Each command has its own --help.\n\nCommands:\n",
    );
    for (name, _) in backpack::cli::COMMANDS {
        text.push_str(&format!("  {name}\n"));
    }
    text.push_str("\nOptions:\n  --help, help      display usage information\n");
    text.push_str("  --version         the version, and the git commit it was built from");
    text
}

fn usage() -> ExitCode {
    eprintln!("{}", usage_text());
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
        match args.get(1).map(String::as_str) {
            Some("--help" | "help" | "-h") => {
                println!("{}", usage_text());
                return ExitCode::SUCCESS;
            }
            Some("--version") => {
                println!("backpack {}", backpack::version::version());
                return ExitCode::SUCCESS;
            }
            Some(command) => (command.to_string(), &args[2..]),
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
