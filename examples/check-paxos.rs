//! The main job: model check IronRSL.
//!
//! `cargo run --release --example check-paxos` runs the default check (several configurations,
//! cheapest first, that together reach view changes and crash-restarts: about a minute);
//! `-- --help` lists the verbs (`check`, `dfs`, `simulate`, `explore`) and the flags that check
//! one configuration of your own.

use clap::{CommandFactory, FromArgMatches, Parser};
use ironfleet::cmd::model::{flags_before_or_after_the_verb, rsl_main, RslFlags, Verb};
use ironfleet::cmd::suite::{configuration_given, rsl_default_check};

/// The checker clones and drops states millions of times a second: mimalloc's allocator takes
/// less time at it than the system's (see docs/checking.md for the measured figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Model check IronRSL (MultiPaxos) with stateright. With no verb and no flag that describes a
/// configuration: the default check of eleven configurations (about a minute); with a verb or any
/// configuration flag: that one configuration.
#[derive(Parser, Debug)]
#[command(name = "check-paxos", version)]
struct Cli {
    #[command(flatten)]
    flags: RslFlags,
    /// What to do with the configuration the flags describe (without a verb and without a
    /// configuration flag: the default check of several configurations; with configuration
    /// flags: check).
    #[command(subcommand)]
    verb: Option<Verb>,
}

fn main() {
    let matches = flags_before_or_after_the_verb(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let program = "cargo run --release --example check-paxos --";
    let result = match &cli.verb {
        Some(verb) => rsl_main(program, verb, &cli.flags),
        None if configuration_given(&matches) => rsl_main(program, &Verb::Check, &cli.flags),
        None => rsl_default_check(program, &cli.flags),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
