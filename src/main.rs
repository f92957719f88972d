//! The `ironfleet` command: one binary for every system and verb.
//!
//! Model verbs (`check`, `dfs`, `simulate`, `explore`) with the flags of the `check-paxos` and
//! `check-lock` examples, the deterministic simulator of the deployed stack (`rsl|kv|lock sim`),
//! and the real runtime over UDP: `rsl replica|local|client|bench`,
//! `kv host|local|get|set|del|shard|bench`, `lock local`. Exit codes: 0 fine, 1 a property
//! violated (or a benchmark with no completed request, or a simulated seed failed), 2 a bad flag,
//! configuration or environment.

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use ironfleet::actors::kv::KeyRange;
use ironfleet::actors::rsl::CounterOp;
use ironfleet::cmd::bench::{parse_duration, BenchFlags};
use ironfleet::cmd::keygen;
use ironfleet::cmd::kv::{self as kvc, KvBenchFlags, KvCliOp, KvTarget};
use ironfleet::cmd::lock::lock_local;
use ironfleet::cmd::model::{kv_main, lock_main, rsl_main, KvFlags, LockFlags, RslFlags, Verb};
use ironfleet::cmd::rsl::{self as rslc, RslTarget};
use ironfleet::cmd::sim::SimFlags;
use ironfleet::cmd::soak::{rsl_soak, SoakFlags};
use ironfleet::cmd::suite::{configuration_given, rsl_default_check};
use ironfleet::net::rsl::Startup;

/// IronFleet's systems as stateright actors: model check, simulate and explore them, and run
/// them over UDP.
#[derive(Parser, Debug)]
#[command(name = "ironfleet", version, about)]
struct Cli {
    #[command(subcommand)]
    system: System,
}

#[derive(Subcommand, Debug)]
enum System {
    /// IronRSL: the MultiPaxos replicated state machine (a counter app at run time). With no
    /// verb and no flag that describes a configuration: the default model check of eleven
    /// configurations (about a minute).
    Rsl {
        #[command(flatten)]
        flags: RslFlags,
        /// What to do (default: the default check of several configurations; with a
        /// configuration flag, check).
        #[command(subcommand)]
        verb: Option<RslVerb>,
    },
    /// IronKV: the sharded key-value store with delegation.
    Kv {
        #[command(flatten)]
        flags: KvFlags,
        /// What to do (default: check).
        #[command(subcommand)]
        verb: Option<KvVerb>,
    },
    /// IronLock: the ring lock.
    Lock {
        #[command(flatten)]
        flags: LockFlags,
        /// What to do (default: check).
        #[command(subcommand)]
        verb: Option<LockVerb>,
    },
}

/// How a replica or host starts.
#[derive(clap::Args, Debug)]
struct StartupFlags {
    /// Start a new replica or host: create its storage (refused if it exists). Without it, it
    /// starts only from its own storage.
    #[arg(long, conflicts_with = "ephemeral")]
    init: bool,
    /// Run without storage (for a cluster file without data_dir). UNSAFE across restarts: a
    /// restarted replica has forgotten its votes and promises and can break agreement; a
    /// restarted host has lost its pairs and believes the root owns every key again.
    #[arg(long)]
    ephemeral: bool,
}

impl StartupFlags {
    fn startup(&self) -> Startup {
        match (self.init, self.ephemeral) {
            (true, _) => Startup::Init,
            (_, true) => Startup::Ephemeral,
            _ => Startup::Restore,
        }
    }
}

/// IronRSL verbs: the model verbs, and the real runtime over UDP.
#[derive(Subcommand, Debug)]
enum RslVerb {
    #[command(flatten)]
    Model(Verb),
    /// Deterministic simulation of the deployed stack: each seed a cluster's life under faults
    /// in virtual time, checked on every step, shrinkable and replayable.
    Sim {
        #[command(flatten)]
        sim: SimFlags,
        /// The replicated app: counter (increments and reads), map (gets, puts, deletes of
        /// numbers) or store (gets, puts, deletes of 2 KB values over 48 keys: state transfer
        /// in several datagrams).
        #[arg(long, default_value = "counter", value_parser = ["counter", "map", "store"])]
        app: String,
    },
    /// Run one replica of a cluster file until SIGINT/SIGTERM.
    Replica {
        /// The cluster file (TOML).
        #[arg(long)]
        config: PathBuf,
        /// This replica's index in the file's `replicas`.
        #[arg(long)]
        id: usize,
        /// Print a JSON status line (counters, gauges, memory) this often, e.g. 5s.
        #[arg(long, value_parser = parse_duration)]
        status_every: Option<Duration>,
        /// How it starts: from storage, --init, or --ephemeral.
        #[command(flatten)]
        startup: StartupFlags,
    },
    /// Run a whole counter cluster on loopback in this process until Ctrl-C/SIGTERM.
    Local {
        /// Number of replicas.
        #[arg(long, default_value_t = 3)]
        replicas: usize,
        /// First port (replicas use consecutive ports; 0: any free ports).
        #[arg(long, default_value_t = 4000)]
        base_port: u16,
        /// Keep each replica's storage in this directory (restarts resume from it).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Write the cluster's file here, for `client --config` and `bench --config`.
        #[arg(long)]
        write_config: Option<PathBuf>,
    },
    /// Send one request to a running cluster and print the reply.
    Client {
        #[command(flatten)]
        target: RslTarget,
        /// Give up after this long.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        timeout: Duration,
        /// The operation: inc or get.
        #[arg(value_parser = parse_op)]
        op: CounterOp,
    },
    /// Closed-loop benchmark: throughput and latency percentiles, optionally against a raw UDP
    /// echo baseline, as a table, JSON or an SVG curve.
    Bench(BenchFlags),
    /// Soak: run many increments through replica processes and watch their memory stay flat.
    Soak(SoakFlags),
    /// Write a new cluster key file (name it as key_file in the cluster file): replicas then
    /// authenticate every datagram between them.
    Keygen {
        /// The key file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

/// IronKV verbs: the model verbs, and the real runtime over UDP.
#[derive(Subcommand, Debug)]
enum KvVerb {
    #[command(flatten)]
    Model(Verb),
    /// Deterministic simulation of the deployed stack: each seed a cluster's life under faults
    /// in virtual time, checked on every step, shrinkable and replayable.
    Sim(SimFlags),
    /// Run one host of a cluster file until SIGINT/SIGTERM.
    Host {
        /// The cluster file (TOML).
        #[arg(long)]
        config: PathBuf,
        /// This host's index in the file's `hosts`.
        #[arg(long)]
        id: usize,
        /// Print a JSON status line (counters, table gauges, memory) this often, e.g. 5s.
        #[arg(long, value_parser = parse_duration)]
        status_every: Option<Duration>,
        /// How it starts: from storage, --init, or --ephemeral.
        #[command(flatten)]
        startup: StartupFlags,
    },
    /// Run a whole cluster on loopback in this process until Ctrl-C/SIGTERM.
    Local {
        /// Number of hosts (host 0 owns every key at start).
        #[arg(long = "hosts", default_value_t = 3)]
        count: usize,
        /// First port (hosts use consecutive ports; 0: any free ports).
        #[arg(long, default_value_t = 5000)]
        base_port: u16,
        /// Write the cluster's file here, for `--config`.
        #[arg(long)]
        write_config: Option<PathBuf>,
    },
    /// Read a key (prints the value, or `(none)`).
    Get {
        #[command(flatten)]
        target: KvTarget,
        /// The key (its UTF-8 bytes; keys order byte by byte).
        key: String,
    },
    /// Write a key.
    Set {
        #[command(flatten)]
        target: KvTarget,
        /// The key (its UTF-8 bytes; keys order byte by byte).
        key: String,
        /// The value (stored as its UTF-8 bytes).
        value: String,
    },
    /// Delete a key.
    Del {
        #[command(flatten)]
        target: KvTarget,
        /// The key (its UTF-8 bytes; keys order byte by byte).
        key: String,
    },
    /// Move a key range to another host (asks its current owner; waits until the new owner
    /// answers for it).
    Shard {
        #[command(flatten)]
        target: KvTarget,
        /// The range: `A..B` (B excluded) or `A..` (to the end).
        #[arg(long, value_parser = KeyRange::parse)]
        range: KeyRange,
        /// The host index that is to own it.
        #[arg(long)]
        to: usize,
    },
    /// Closed-loop benchmark (Get/Set mix): throughput and latency percentiles for one-host and
    /// three-host clusters, optionally against a raw UDP echo baseline; a table, JSON or SVG.
    Bench(KvBenchFlags),
    /// Write a new cluster key file (name it as key_file in the cluster file): hosts then
    /// authenticate every datagram between them.
    Keygen {
        /// The key file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

/// IronLock verbs.
#[derive(Subcommand, Debug)]
enum LockVerb {
    #[command(flatten)]
    Model(Verb),
    /// Deterministic simulation of the deployed stack: each seed a cluster's life under faults
    /// in virtual time, checked on every step, shrinkable and replayable.
    Sim(SimFlags),
    /// Run the ring on loopback and show the lock travelling round it.
    Local {
        /// Hosts in the ring.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// How long each holder keeps the lock, in milliseconds.
        #[arg(long, default_value_t = 500)]
        hold_ms: u64,
        /// Stop after this many epochs (default: at Ctrl-C).
        #[arg(long)]
        epochs: Option<u64>,
    },
}

fn parse_op(s: &str) -> Result<CounterOp, String> {
    match s {
        "inc" => Ok(CounterOp::Inc),
        "get" => Ok(CounterOp::Get),
        _ => Err(format!("unknown operation '{s}': use inc or get")),
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match &cli.system {
        System::Rsl { flags, verb } => match verb {
            None if matches
                .subcommand_matches("rsl")
                .is_some_and(configuration_given) =>
            {
                rsl_main("ironfleet rsl", &Verb::Check, flags)
            }
            None => rsl_default_check("ironfleet rsl", flags),
            Some(RslVerb::Model(v)) => rsl_main("ironfleet rsl", v, flags),
            Some(RslVerb::Replica {
                config,
                id,
                status_every,
                startup,
            }) => rslc::rsl_replica(config, *id, startup.startup(), *status_every),
            Some(RslVerb::Local {
                replicas,
                base_port,
                data_dir,
                write_config,
            }) => rslc::rsl_local(
                *replicas,
                *base_port,
                data_dir.clone(),
                write_config.clone(),
            ),
            Some(RslVerb::Client {
                target,
                timeout,
                op,
            }) => rslc::rsl_client(target, *timeout, *op),
            Some(RslVerb::Bench(f)) => rslc::rsl_bench(f),
            Some(RslVerb::Sim { sim, app }) => ironfleet::cmd::sim::rsl_sim(flags, sim, app),
            Some(RslVerb::Soak(f)) => rsl_soak(f),
            Some(RslVerb::Keygen { out }) => keygen(out),
        },
        System::Kv { flags, verb } => match verb {
            None => kv_main("ironfleet kv", &Verb::Check, flags),
            Some(KvVerb::Model(v)) => kv_main("ironfleet kv", v, flags),
            Some(KvVerb::Host {
                config,
                id,
                status_every,
                startup,
            }) => kvc::kv_host(config, *id, startup.startup(), *status_every),
            Some(KvVerb::Local {
                count,
                base_port,
                write_config,
            }) => kvc::kv_local(*count, *base_port, write_config.clone()),
            Some(KvVerb::Get { target, key }) => {
                kvc::kv_op(target, KvCliOp::Get(key.as_str().into()))
            }
            Some(KvVerb::Set { target, key, value }) => {
                kvc::kv_op(target, KvCliOp::Set(key.as_str().into(), value.clone()))
            }
            Some(KvVerb::Del { target, key }) => {
                kvc::kv_op(target, KvCliOp::Del(key.as_str().into()))
            }
            Some(KvVerb::Shard { target, range, to }) => kvc::kv_shard(target, range.clone(), *to),
            Some(KvVerb::Bench(f)) => kvc::kv_bench(f),
            Some(KvVerb::Sim(s)) => ironfleet::cmd::sim::kv_sim(flags, s),
            Some(KvVerb::Keygen { out }) => keygen(out),
        },
        System::Lock { flags, verb } => match verb {
            None => lock_main("ironfleet lock", &Verb::Check, flags),
            Some(LockVerb::Model(v)) => lock_main("ironfleet lock", v, flags),
            Some(LockVerb::Sim(s)) => ironfleet::cmd::sim::lock_sim(flags, s),
            Some(LockVerb::Local {
                nodes,
                hold_ms,
                epochs,
            }) => lock_local(*nodes, *hold_ms, *epochs),
        },
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
