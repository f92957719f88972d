//! The main job: model check IronRSL.
//!
//! `cargo run --release --example check-paxos` checks the default configuration exhaustively;
//! `-- --help` lists the verbs (`check`, `dfs`, `simulate`, `explore`) and flags.

use clap::Parser;
use ironfleet::cli::{paxos_main, PaxosFlags, Verb};

/// Model check IronRSL (MultiPaxos) with stateright.
#[derive(Parser, Debug)]
#[command(name = "check-paxos", version, about)]
struct Cli {
    #[command(flatten)]
    flags: PaxosFlags,
    /// What to do (default: check).
    #[command(subcommand)]
    verb: Option<Verb>,
}

fn main() {
    let cli = Cli::parse();
    let verb = cli.verb.unwrap_or(Verb::Check);
    match paxos_main(
        "cargo run --release --example check-paxos --",
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
