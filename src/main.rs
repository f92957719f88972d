//! The `ironfleet` command: one binary for every system and verb.
//!
//! `ironfleet rsl check`, `ironfleet rsl simulate --seed 7`, `ironfleet lock explore`, ... The
//! model verbs and flags are those of the `check-paxos` and `check-lock` examples. The real
//! UDP runtime verbs (`replica`, `local`, `client`, `bench`) come with the runtime issue.

use clap::{Parser, Subcommand};
use ironfleet::cli::{lock_main, paxos_main, LockFlags, PaxosFlags, Verb};

/// IronFleet's systems as stateright actors: model check, simulate and explore them.
#[derive(Parser, Debug)]
#[command(name = "ironfleet", version, about)]
struct Cli {
    #[command(subcommand)]
    system: System,
}

#[derive(Subcommand, Debug)]
enum System {
    /// IronRSL: the MultiPaxos replicated state machine.
    Rsl {
        #[command(flatten)]
        flags: PaxosFlags,
        /// What to do (default: check).
        #[command(subcommand)]
        verb: Option<Verb>,
    },
    /// IronLock: the ring lock.
    Lock {
        #[command(flatten)]
        flags: LockFlags,
        /// What to do (default: check).
        #[command(subcommand)]
        verb: Option<Verb>,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match &cli.system {
        System::Rsl { flags, verb } => paxos_main(
            "ironfleet rsl",
            verb.as_ref().unwrap_or(&Verb::Check),
            flags,
        ),
        System::Lock { flags, verb } => lock_main(
            "ironfleet lock",
            verb.as_ref().unwrap_or(&Verb::Check),
            flags,
        ),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
