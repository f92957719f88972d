//! `ironfleet rsl|kv|lock sim`: runs seeds of the deterministic simulator, prints progress and
//! a summary, and on a failure what broke, the seed, the replay command, and (with `--shrink`)
//! a minimised case written to a file that `--case` replays.

use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::bench::parse_duration;
use crate::net::driver::RuntimeMutation;
use crate::sim::faults::{parse_kinds, FaultKind};
use crate::sim::shrink::shrink;
use crate::sim::world::{run_checked, FailureKind, Observe, SimCase, SimOutcome, SimSystem};

/// Flags of the `sim` verb (the cluster's size and a protocol `--mutation` are the system's
/// flags, given before the verb).
#[derive(clap::Args, Debug, Clone)]
pub struct SimFlags {
    /// Run this one seed.
    #[arg(long, conflicts_with_all = ["seeds", "case"])]
    pub seed: Option<u64>,
    /// Run the seeds A..B (B excluded), e.g. 0..1000.
    #[arg(long, value_parser = parse_seeds, conflicts_with = "case")]
    pub seeds: Option<Range<u64>>,
    /// Replay a case file written by --shrink.
    #[arg(long)]
    pub case: Option<PathBuf>,
    /// Operations per client.
    #[arg(long, default_value_t = 100)]
    pub ops: usize,
    /// Virtual length of the fault phase (after it everything heals), e.g. 2s.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Virtual time allowed after the heal for every client to finish.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub liveness_bound: Duration,
    /// Pin the fault kinds instead of drawing them per seed: all, none, or a list of loss,
    /// dup, reorder, corrupt, partition, crash, pause, clock, disk-error, disk-corrupt,
    /// client-restart, torn-write.
    #[arg(long, value_parser = parse_kinds)]
    pub faults: Option<std::vec::Vec<FaultKind>>,
    /// On a failure, minimise the case and write it to `sim-case-SEED.json`.
    #[arg(long)]
    pub shrink: bool,
    /// Write the event log of a single seed as JSON lines to this file.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// A deliberately broken runtime behaviour: send-after-failed-save,
    /// send-postpones-timers, client-reuses-seqno (rsl), restart-without-storage,
    /// state-transfer-in-one-message (rsl), storage-skips-fsync, storage-skips-directory-fsync.
    #[arg(long, value_parser = parse_runtime_mutation)]
    pub runtime_mutation: Option<RuntimeMutation>,
    /// Check safety after every k-th step (k at least 1).
    #[arg(long, default_value_t = 1, value_parser = parse_every)]
    pub check_every: u64,
    /// Run each seed twice and compare the event logs (the determinism self-check).
    #[arg(long)]
    pub determinism: bool,
}

/// Parses `A..B`.
pub fn parse_every(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(k) if k >= 1 => Ok(k),
        _ => Err(format!("'{s}' is not a step count (1 or more)")),
    }
}

fn parse_seeds(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("'{s}' is not a seed range (try 0..1000)"))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("'{a}' is not a seed"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("'{b}' is not a seed"))?;
    if b <= a {
        return Err(format!("the seed range {a}..{b} is empty"));
    }
    Ok(a..b)
}

/// Parses a runtime mutation's name.
pub fn parse_runtime_mutation(s: &str) -> Result<RuntimeMutation, String> {
    match s {
        "send-after-failed-save" => Ok(RuntimeMutation::SendAfterFailedSave),
        "send-postpones-timers" => Ok(RuntimeMutation::SendPostponesTimers),
        "client-reuses-seqno" => Ok(RuntimeMutation::ClientReusesSeqno),
        "restart-without-storage" => Ok(RuntimeMutation::RestartWithoutStorage),
        "state-transfer-in-one-message" => Ok(RuntimeMutation::StateTransferInOneMessage),
        "storage-skips-fsync" => Ok(RuntimeMutation::StorageSkipsFsync),
        "storage-skips-directory-fsync" => Ok(RuntimeMutation::StorageSkipsDirectoryFsync),
        _ => Err(format!(
            "unknown runtime mutation '{s}' (known: send-after-failed-save, \
             send-postpones-timers, client-reuses-seqno, restart-without-storage, \
             state-transfer-in-one-message, storage-skips-fsync, storage-skips-directory-fsync)"
        )),
    }
}

impl SimFlags {
    /// The case `seed` draws under these flags.
    pub fn case<S: SimSystem>(&self, sys: &S, seed: u64) -> SimCase {
        let mut c = SimCase::draw(
            sys,
            seed,
            self.ops,
            self.duration.as_millis() as u64,
            self.faults.as_deref(),
        );
        c.liveness_ms = self.liveness_bound.as_millis() as u64;
        c.runtime_mutation = self.runtime_mutation.unwrap_or_default();
        c.check_every = self.check_every;
        c
    }
}

/// The result of running seeds.
pub struct SimSummary {
    /// Seeds run.
    pub seeds: u64,
    /// The first failing seed and its run.
    pub failed: Option<(u64, SimOutcome)>,
    /// Events, summed.
    pub events: u64,
    /// Virtual microseconds, summed.
    pub virtual_us: u64,
    /// Faults by kind, summed.
    pub faults: std::collections::BTreeMap<String, u64>,
    /// Milestones: (seeds that reached it, total).
    pub milestones: std::collections::BTreeMap<String, (u64, u64)>,
    /// Wall time.
    pub wall: Duration,
    /// Seeds whose history the linearizability search could not judge within its budget.
    pub undecided: Vec<u64>,
}

/// Runs `seeds` (stopping at the first failure), with the determinism check if asked.
pub fn run_seeds<S>(
    sys: &S,
    flags: &SimFlags,
    seeds: Range<u64>,
    progress: &mut dyn Write,
) -> Result<SimSummary>
where
    S: SimSystem,
{
    let start = Instant::now();
    let mut last_print = Instant::now();
    let mut sum = SimSummary {
        seeds: 0,
        failed: None,
        events: 0,
        virtual_us: 0,
        faults: Default::default(),
        milestones: Default::default(),
        wall: Duration::ZERO,
        undecided: Vec::new(),
    };
    let total = seeds.end - seeds.start;
    for seed in seeds {
        let case = flags.case(sys, seed);
        let out = run_checked(sys, &case, &mut Observe::default(), flags.determinism)
            .map_err(|e| anyhow::anyhow!("seed {seed}: {e}"))?;
        sum.seeds += 1;
        if out.undecided {
            sum.undecided.push(seed);
        }
        sum.events += out.events;
        sum.virtual_us += out.virtual_us;
        for (k, v) in &out.faults {
            *sum.faults.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &out.milestones {
            let e = sum.milestones.entry(k.clone()).or_default();
            e.0 += u64::from(*v > 0);
            e.1 += v;
        }
        if last_print.elapsed() > Duration::from_secs(2) {
            last_print = Instant::now();
            let _ = writeln!(
                progress,
                "  {}/{} seeds, {} events, {:.1} s",
                sum.seeds,
                total,
                sum.events,
                start.elapsed().as_secs_f64()
            );
        }
        if out.failure.is_some() {
            sum.failed = Some((seed, out));
            break;
        }
    }
    sum.wall = start.elapsed();
    Ok(sum)
}

/// The command line that replays `seed`: this process's arguments with the seed flags
/// replaced.
fn replay_command(seed: u64) -> String {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1).peekable();
    while let Some(a) = args.next() {
        if a == "--seeds" || a == "--seed" || a == "--shrink" || a == "--determinism" {
            if a != "--shrink" && a != "--determinism" {
                args.next();
            }
            continue;
        }
        if a.starts_with("--seeds=") || a.starts_with("--seed=") {
            continue;
        }
        out.push(a);
    }
    format!("ironfleet {} --seed {seed}", out.join(" "))
}

fn print_failure(out: &mut dyn Write, seed: u64, o: &SimOutcome) -> Result<()> {
    let f = o.failure.as_ref().context("no failure")?;
    let kind = match f.kind {
        FailureKind::Safety => "SAFETY VIOLATED",
        FailureKind::Linearizability => "NOT LINEARIZABLE",
        FailureKind::Liveness => "LIVENESS VIOLATED",
    };
    writeln!(
        out,
        "seed {seed}: {kind} at event {} ({} us virtual):",
        f.event, f.at_us
    )?;
    writeln!(out, "  {}", f.what)?;
    Ok(())
}

/// The `sim` verb for `sys`; `title` describes the cluster. Exit code 0: every seed passed; 1:
/// a seed failed.
pub fn sim_main<S>(sys: &S, title: &str, flags: &SimFlags) -> Result<i32>
where
    S: SimSystem,
{
    let mut stdout = std::io::stdout();
    if flags.ops == 0 {
        bail!("--ops 0: every client needs at least one operation");
    }
    if let Some(path) = &flags.case {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the case file {}", path.display()))?;
        let case: SimCase = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a simulator case", path.display()))?;
        return replay_one(sys, title, flags, &case);
    }
    if let Some(seed) = flags.seed {
        let case = flags.case(sys, seed);
        return replay_one(sys, title, flags, &case);
    }
    if flags.trace.is_some() {
        bail!("--trace writes the log of one run: give --seed or --case, not a range");
    }
    let seeds = flags.seeds.clone().unwrap_or(0..100);
    println!("{title}: seeds {}..{}", seeds.start, seeds.end);
    let sum = run_seeds(sys, flags, seeds, &mut std::io::stderr())?;
    let secs = sum.wall.as_secs_f64().max(1e-9);
    println!(
        "seeds run: {}, events: {}, virtual time: {:.1} s, wall: {:.2} s",
        sum.seeds,
        sum.events,
        sum.virtual_us as f64 / 1e6,
        secs
    );
    println!(
        "  {:.0} events/s, {:.0}x real time, {:.0} seeds/min{}",
        sum.events as f64 / secs,
        sum.virtual_us as f64 / 1e6 / secs,
        sum.seeds as f64 * 60.0 / secs,
        if flags.determinism {
            ", every seed run twice: identical"
        } else {
            ""
        }
    );
    if !sum.faults.is_empty() {
        println!("faults injected:");
        for (k, v) in &sum.faults {
            println!("  {k:<32} {v}");
        }
    }
    if !sum.undecided.is_empty() {
        println!(
            "linearizability undecided (the search gave up; not judged, not failed) for {} seeds: {:?}",
            sum.undecided.len(),
            &sum.undecided[..sum.undecided.len().min(20)]
        );
    }
    println!("milestones (seeds reaching it, total):");
    for (k, (seeds, total)) in &sum.milestones {
        println!("  {k:<32} {seeds:>6} {total:>10}");
    }
    let Some((seed, out)) = sum.failed else {
        println!("all {} seeds passed", sum.seeds);
        return Ok(0);
    };
    print_failure(&mut stdout, seed, &out)?;
    println!("replay: {}", replay_command(seed));
    if flags.shrink {
        shrink_and_report(sys, flags, &flags.case(sys, seed), &out)?;
    }
    Ok(1)
}

fn replay_one<S>(sys: &S, title: &str, flags: &SimFlags, case: &SimCase) -> Result<i32>
where
    S: SimSystem,
{
    let mut stdout = std::io::stdout();
    let mut obs = Observe::default();
    if let Some(path) = &flags.trace {
        let f = std::fs::File::create(path)
            .with_context(|| format!("creating the trace file {}", path.display()))?;
        obs.trace = Some(Box::new(std::io::BufWriter::new(f)));
    }
    let start = Instant::now();
    let out = run_checked(sys, case, &mut obs, flags.determinism)
        .map_err(|e| anyhow::anyhow!("seed {}: {e}", case.seed))?;
    let wall = start.elapsed().as_secs_f64().max(1e-9);
    drop(obs);
    println!(
        "{title}: seed {}, faults {}",
        case.seed,
        if case.mix.kinds.is_empty() {
            "none".to_string()
        } else {
            case.mix
                .kinds
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(",")
        }
    );
    println!(
        "events: {}, virtual time: {:.3} s, wall: {:.3} s, operations answered: {} of {}, datagrams dropped by drivers: {}",
        out.events,
        out.virtual_us as f64 / 1e6,
        wall,
        out.answered,
        out.operations,
        out.dropped
    );
    for (k, v) in &out.faults {
        println!("  {k:<32} {v}");
    }
    for (k, v) in &out.milestones {
        println!("  {k:<32} {v}");
    }
    if let Some(path) = &flags.trace {
        println!("trace: {}", path.display());
    }
    if out.undecided {
        println!("linearizability undecided: the search gave up within its budget (not judged)");
    }
    if out.failure.is_none() {
        println!("passed");
        return Ok(0);
    }
    print_failure(&mut stdout, case.seed, &out)?;
    if flags.case.is_none() {
        println!("replay: {}", replay_command(case.seed));
    }
    if flags.shrink {
        shrink_and_report(sys, flags, case, &out)?;
    }
    Ok(1)
}

fn shrink_and_report<S>(sys: &S, _flags: &SimFlags, case: &SimCase, out: &SimOutcome) -> Result<()>
where
    S: SimSystem,
{
    let kind = out.failure.as_ref().context("no failure to shrink")?.kind;
    let s = shrink(sys, case, kind, 300);
    println!(
        "shrunk in {} runs: {} -> {} events, {} -> {} scheduled faults, {} -> {} ops per client, fault kinds [{}]",
        s.tries,
        out.events,
        s.outcome.events,
        case.schedule.len(),
        s.case.schedule.len(),
        case.ops,
        s.case.ops,
        s.case.mix.kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
    );
    print_failure(&mut std::io::stdout(), case.seed, &s.outcome)?;
    let path = PathBuf::from(format!("sim-case-{}.json", case.seed));
    std::fs::write(&path, serde_json::to_string_pretty(&s.case)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "shrunk case: {} (replay: {} --case {})",
        path.display(),
        replay_command(case.seed)
            .split(" --seed ")
            .next()
            .unwrap_or("ironfleet"),
        path.display()
    );
    Ok(())
}

/// `ironfleet rsl sim`: the RSL cluster of the system flags (replicas, clients, mutation,
/// session table size) with the runtime's parameters, running `app` (`counter` or `map`).
pub fn rsl_sim(flags: &super::model::RslFlags, sim: &SimFlags, app: &str) -> Result<i32> {
    match app {
        "counter" => rsl_sim_app::<crate::actors::rsl::Counter>(flags, sim),
        "map" => rsl_sim_app::<crate::actors::rsl::MapApp>(flags, sim),
        "store" => rsl_sim_app::<crate::actors::rsl::StoreApp>(flags, sim),
        _ => bail!("--app {app}: the apps are counter, map and store"),
    }
}

fn rsl_sim_app<A: crate::sim::rsl::SimApp>(
    flags: &super::model::RslFlags,
    sim: &SimFlags,
) -> Result<i32> {
    if flags.replicas == 0 || flags.clients == 0 {
        bail!("--replicas and --clients must be at least 1");
    }
    let mut sys = crate::sim::rsl::RslSim::<A>::new(flags.replicas, flags.clients)
        .with_runtime_mutation(sim.runtime_mutation.unwrap_or_default());
    sys.mutation = flags.mutation;
    if let Some(n) = flags.max_client_sessions {
        sys.params.max_client_sessions = n;
    }
    let title = format!(
        "IronRSL simulation: {} replicas, {} clients x {} ops of the {} app{}",
        flags.replicas,
        flags.clients,
        sim.ops,
        A::NAME,
        super::model::mutation_title(flags.mutation.map(|m| m.name()))
    );
    quiet(|| sim_main(&sys, &title, sim))
}

/// Runs `f` with the drivers' logs off: a simulated disk failing or a corrupt datagram is
/// logged as an error by the driver, thousands of times per run, and the summary counts them.
fn quiet<T>(f: impl FnOnce() -> T) -> T {
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), f)
}

/// `ironfleet kv sim`: the KV cluster of the system flags (hosts, clients, keys, mutation),
/// durable hosts with the runtime's parameters; clients now and then move a range.
pub fn kv_sim(flags: &super::model::KvFlags, sim: &SimFlags) -> Result<i32> {
    if flags.hosts == 0 || flags.clients == 0 || flags.keys == 0 {
        bail!("--hosts, --clients and --keys must be at least 1");
    }
    let mut sys = crate::sim::kv::KvSim::new(flags.hosts, flags.clients);
    sys.keys = flags.keys;
    sys.mutation = flags.mutation;
    if flags.idle_sweep {
        // Sweep idle client channels within a run's virtual time (at run time: a minute).
        sys.params.client_idle_close_ms = 200;
    }
    if let Some(n) = flags.max_client_channels {
        sys.params.max_client_channels = n;
    }
    let title = format!(
        "IronKV simulation: {} hosts, {} clients x {} ops over {} keys{}",
        flags.hosts,
        flags.clients,
        sim.ops,
        flags.keys,
        super::model::mutation_title(flags.mutation.map(|m| m.name()))
    );
    quiet(|| sim_main(&sys, &title, sim))
}

/// `ironfleet lock sim`: the ring of the system flags; `--ops` is the epoch the lock must reach.
pub fn lock_sim(flags: &super::model::LockFlags, sim: &SimFlags) -> Result<i32> {
    if flags.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let sys = crate::sim::lock::LockSim {
        nodes: flags.nodes,
        hold_ms: 10,
        target_epoch: sim.ops as u64,
        mutation: flags.mutation,
    };
    let title = format!(
        "IronLock simulation: {} nodes, until epoch {}{}",
        flags.nodes,
        sim.ops,
        super::model::mutation_title(flags.mutation.map(|m| m.name()))
    );
    quiet(|| sim_main(&sys, &title, sim))
}
