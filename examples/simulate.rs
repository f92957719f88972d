//! The deterministic simulator of the deployed stack, for IronRSL, IronKV and IronLock.
//!
//! `cargo run --release --example simulate -- rsl sim --seeds 0..1000` runs a thousand seeds,
//! each a 3-replica cluster's life under drawn faults in virtual time. The arguments are those
//! of the `ironfleet` binary's `sim` verbs (`rsl|kv|lock [system flags] sim [sim flags]`), so a
//! failure's replay line works with either; `docs/simulation.md` explains the flags and the
//! output.

use clap::{Parser, Subcommand};
use ironfleet::cmd::model::{KvFlags, LockFlags, RslFlags};
use ironfleet::cmd::sim::{kv_sim, lock_sim, rsl_sim, SimFlags};

/// Simulate a cluster of IronRSL, IronKV or IronLock over the runtime's own driver and storage
/// code, in virtual time, under faults drawn per seed.
#[derive(Parser, Debug)]
#[command(name = "simulate", version, about)]
struct Cli {
    #[command(subcommand)]
    system: System,
}

#[derive(Subcommand, Debug)]
enum System {
    /// IronRSL (MultiPaxos) replicas and their clients.
    Rsl {
        #[command(flatten)]
        flags: RslFlags,
        #[command(subcommand)]
        verb: RslVerb,
    },
    /// IronKV hosts, clients and range moves.
    Kv {
        #[command(flatten)]
        flags: KvFlags,
        #[command(subcommand)]
        verb: SimVerb,
    },
    /// The IronLock ring.
    Lock {
        #[command(flatten)]
        flags: LockFlags,
        #[command(subcommand)]
        verb: SimVerb,
    },
}

#[derive(Subcommand, Debug)]
enum RslVerb {
    /// Run seeds of the simulator.
    Sim {
        #[command(flatten)]
        sim: SimFlags,
        /// The replicated app: counter, map or store.
        #[arg(long, default_value = "counter", value_parser = ["counter", "map", "store"])]
        app: String,
    },
}

#[derive(Subcommand, Debug)]
enum SimVerb {
    /// Run seeds of the simulator.
    Sim(SimFlags),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.system {
        System::Rsl {
            flags,
            verb: RslVerb::Sim { sim, app },
        } => rsl_sim(flags, sim, app),
        System::Kv {
            flags,
            verb: SimVerb::Sim(sim),
        } => kv_sim(flags, sim),
        System::Lock {
            flags,
            verb: SimVerb::Sim(sim),
        } => lock_sim(flags, sim),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
