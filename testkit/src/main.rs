//! `bp-bench`: benchmarks against real servers (see `bench`). Arguments, `--help` and
//! errors are handled like every backpack command's.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    backpack::command::parse_and_run::<backpack_testkit::bench::command::Bench>("bp-bench", &args)
}
