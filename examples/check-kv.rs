//! Model check IronKV: `cargo run --release --example check-kv`.

use clap::{CommandFactory, FromArgMatches, Parser};
use ironfleet::cmd::model::{flags_before_or_after_the_verb, kv_main, KvFlags, Verb};

/// The checker clones and drops states millions of times a second: mimalloc's allocator takes
/// less time at it than the system's (see docs/checking.md for the measured figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Model check IronKV (sharded hash table with delegation) with stateright.
#[derive(Parser, Debug)]
#[command(name = "check-kv", version, about)]
struct Cli {
    #[command(flatten)]
    flags: KvFlags,
    /// What to do (default: check).
    #[command(subcommand)]
    verb: Option<Verb>,
}

fn main() {
    let matches = flags_before_or_after_the_verb(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let verb = cli.verb.unwrap_or(Verb::Check);
    match kv_main(
        "cargo run --release --example check-kv --",
        &verb,
        &cli.flags,
    ) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
