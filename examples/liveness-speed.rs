//! Speed and memory of the liveness checker against plain BFS on the same model, in one run:
//! `cargo run --release --example liveness-speed [-- --clients 2 --threads 1]`.
//!
//! Plain BFS is stateright's checker (safety properties and its terminal-state `eventually`)
//! through our runner; the liveness checker explores the same graph, keeps it, and judges
//! `eventually every client is answered` under fairness.

use std::time::Instant;

use clap::Parser;
use ironfleet::actors::rsl::Counter;
use ironfleet::check::engine::Reduction;
use ironfleet::check::fairness::actor_action_kind;
use ironfleet::check::lasso::{check_liveness, LiveVerdict, LivenessOptions};
use ironfleet::check::run::{run, Engine, Mode, RunOptions};
use ironfleet::model::rsl::rsl_liveness;
use ironfleet::model::rsl::{rsl_model, RslModelCfg};

/// Liveness checker vs BFS on the RSL model.
#[derive(Parser, Debug)]
struct Cli {
    /// Clients (one increment each).
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Replicas at most down at once.
    #[arg(long, default_value_t = 0)]
    crashes: usize,
    /// BFS threads (the liveness checker is single-threaded).
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() {
    let cli = Cli::parse();
    let mut cfg = RslModelCfg::counter(3, cli.clients, 1);
    cfg.max_crashes = cli.crashes;
    println!(
        "RSL model: 3 replicas, {} clients x 1, crashes {}",
        cli.clients, cli.crashes
    );

    // The view without sleep sets: the states and transitions the lasso checker explores.
    let opts = RunOptions {
        mode: Mode::Bfs,
        engine: Engine::Own(Reduction::View),
        threads: cli.threads,
        progress: None,
        ..RunOptions::default()
    };
    let t = Instant::now();
    let bfs = run(rsl_model(cfg.clone()), &opts, &mut std::io::sink());
    let bfs_secs = t.elapsed().as_secs_f64();
    let bfs_rate = bfs.unique as f64 / bfs_secs;
    println!(
        "plain BFS ({} threads):  {:>9} unique states in {:>6.2} s = {:>8.0} states/s",
        cli.threads, bfs.unique, bfs_secs, bfs_rate
    );

    let model = rsl_model(cfg);
    let t = Instant::now();
    let live = check_liveness(
        &model,
        &rsl_liveness::<Counter>(),
        &actor_action_kind,
        &LivenessOptions::default(),
    );
    let live_secs = t.elapsed().as_secs_f64();
    let live_rate = live.states as f64 / live_secs;
    println!(
        "liveness (1 thread):    {:>9} states        in {:>6.2} s = {:>8.0} states/s  ({:.0} bytes/state, {} edges; analysis {:.2} s)",
        live.states,
        live_secs,
        live_rate,
        live.bytes_per_state,
        live.edges,
        live.analyse_time.as_secs_f64()
    );
    println!("ratio: {:.2}x of BFS speed", live_rate / bfs_rate);
    for (name, v) in &live.properties {
        let verdict = match v {
            LiveVerdict::Holds => "holds".to_string(),
            LiveVerdict::NoCounterexample { caveat } => format!("no counterexample ({caveat})"),
            LiveVerdict::Violated(_) => {
                "VIOLATED (run check-paxos --liveness for the lasso)".into()
            }
        };
        println!("  {name}: {verdict}");
    }
}
