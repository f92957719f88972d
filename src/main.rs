//! The `ironfleet` command: one binary for every system and verb.
//!
//! `ironfleet rsl check`, `ironfleet rsl simulate --seed 7`, `ironfleet lock explore`, ... The
//! model verbs and flags are those of the `check-paxos` and `check-lock` examples.
//! `ironfleet rsl local` runs a counter cluster over UDP on loopback and `ironfleet rsl client`
//! talks to it.

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ironfleet::actors::rsl::{Counter, CounterOp, Params};
use ironfleet::cli::{lock_main, paxos_main, LockFlags, PaxosFlags, Verb};
use ironfleet::net::rsl::{LocalCluster, RslClient};

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
        verb: Option<RslVerb>,
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

/// IronRSL verbs: the model verbs, and the real runtime over UDP.
#[derive(Subcommand, Debug)]
enum RslVerb {
    #[command(flatten)]
    Model(Verb),
    /// Run a counter cluster on loopback in this process until Ctrl-C.
    Local {
        /// Number of replicas.
        #[arg(long, default_value_t = 3)]
        replicas: usize,
        /// First port (replicas use consecutive ports).
        #[arg(long, default_value_t = 4000)]
        base_port: u16,
        /// Keep each replica's storage in this directory (restarts resume from it).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Send one request to a running cluster and print the reply.
    Client {
        /// The replicas' addresses, comma-separated, in configuration order.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "127.0.0.1:4000,127.0.0.1:4001,127.0.0.1:4002"
        )]
        replicas: Vec<SocketAddrV4>,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
        /// The operation: inc or get.
        #[arg(value_parser = parse_op)]
        op: CounterOp,
    },
}

fn parse_op(s: &str) -> Result<CounterOp, String> {
    match s {
        "inc" => Ok(CounterOp::Inc),
        "get" => Ok(CounterOp::Get),
        _ => Err(format!("unknown operation '{s}': use inc or get")),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn rsl_local(replicas: usize, base_port: u16, data_dir: Option<PathBuf>) -> Result<i32> {
    runtime()?.block_on(async {
        let cluster =
            LocalCluster::start::<Counter>(replicas, base_port, Params::default(), data_dir)
                .await?;
        println!("IronRSL counter cluster on loopback:");
        for (i, a) in cluster.addrs.iter().enumerate() {
            println!("  replica {i}: {a}");
        }
        let list: Vec<String> = cluster.addrs.iter().map(|a| a.to_string()).collect();
        println!(
            "Try: ironfleet rsl client --replicas {} inc      (Ctrl-C to stop)",
            list.join(",")
        );
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        for (i, c) in cluster.counters.iter().enumerate() {
            let line: Vec<String> = c
                .snapshot()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!("replica {i}: {}", line.join(" "));
        }
        cluster.stop().await?;
        Ok(0)
    })
}

fn rsl_client(replicas: Vec<SocketAddrV4>, timeout_ms: u64, op: CounterOp) -> Result<i32> {
    runtime()?.block_on(async {
        let mut c = RslClient::<Counter>::connect(replicas).await?;
        let reply = c.call(op, Duration::from_millis(timeout_ms)).await?;
        println!("{reply}");
        Ok(0)
    })
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match &cli.system {
        System::Rsl { flags, verb } => match verb {
            None => paxos_main("ironfleet rsl", &Verb::Check, flags),
            Some(RslVerb::Model(v)) => paxos_main("ironfleet rsl", v, flags),
            Some(RslVerb::Local {
                replicas,
                base_port,
                data_dir,
            }) => rsl_local(*replicas, *base_port, data_dir.clone()),
            Some(RslVerb::Client {
                replicas,
                timeout_ms,
                op,
            }) => rsl_client(replicas.clone(), *timeout_ms, *op),
        },
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
