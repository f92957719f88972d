//! The main job: model check IronRSL.
//!
//! `cargo run --release --example check-paxos` checks the default configuration exhaustively;
//! `-- --help` lists the verbs (`check`, `dfs`, `simulate`, `explore`) and flags.

use clap::Parser;
use ironfleet::cmd::model::{rsl_main, RslFlags, Verb};

/// Model check IronRSL (MultiPaxos) with stateright.
#[derive(Parser, Debug)]
#[command(name = "check-paxos", version, about)]
struct Cli {
    #[command(flatten)]
    flags: RslFlags,
    /// What to do (default: check).
    #[command(subcommand)]
    verb: Option<Verb>,
}

fn main() {
    let cli = Cli::parse();
    let verb = cli.verb.unwrap_or(Verb::Check);
    match rsl_main(
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
