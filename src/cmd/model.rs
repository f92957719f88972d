//! The model verbs (`check`, `dfs`, `simulate`, `explore`, and `--liveness`) of every system,
//! shared by the examples (`check-paxos`, `check-kv`, `check-lock`) and the `ironfleet` binary:
//! the same flags, output and exit codes everywhere.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use stateright::actor::{Actor, ActorModel, ActorModelAction};
use stateright::Model;

use super::interrupt;
use crate::actors::kv::{ClientOp, Key, KeyRange, KvMutation, KvParams};
use crate::actors::lock::LockMutation;
use crate::actors::rsl::{Counter, Mutation, RslNode};
use crate::check::bounded::{check_bounded, BoundedOptions};
use crate::check::engine::Reduction;
use crate::check::fairness::{actor_action_kind, actor_action_kind_restarting, same_actor_state};
use crate::check::lasso::{check_liveness, ActionKind, LivenessOptions};
use crate::check::report::{print_bounded_report, print_live_report, print_report};
use crate::check::run::{self as runner, Engine, Mode, RunOptions};
use crate::check::symmetry::Symmetry;
use crate::invariants::rsl::RslHistory;
use crate::invariants::spec::AppSpec;
use crate::liveness::LivenessProperty;
use crate::model::kv::{kv_liveness, kv_model, KvModelCfg};
use crate::model::lock::{lock_liveness, lock_model, LockModelCfg};
use crate::model::rsl::{rsl_liveness, rsl_model, RslModelCfg};
use crate::model::NetworkKind;

/// What to do with the model.
#[derive(Subcommand, Clone, Debug)]
pub enum Verb {
    /// Exhaustive breadth-first check on all cores (shortest counterexamples).
    Check,
    /// Exhaustive depth-first check (much less memory).
    Dfs {
        /// Expand next a pending state picked by this seed instead of the newest (reproducible
        /// on one thread, `--threads 1`): one of the orders in which racing threads may expand
        /// states, to check that the reductions visit the same states in any order.
        #[arg(long)]
        schedule_seed: Option<u64>,
    },
    /// Seeded random walks through the same model (deeper, reproducible from the seed).
    Simulate {
        /// Seed of the first walk (walk i uses seed + i).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Number of walks.
        #[arg(long, default_value_t = 1000)]
        walks: u64,
        /// Steps per walk.
        #[arg(long, default_value_t = 200)]
        depth: usize,
    },
    /// Serve stateright's explorer (web UI) for this model.
    Explore {
        /// Address to listen on.
        #[arg(default_value = "localhost:3000")]
        addr: String,
    },
}

/// Flags common to every model.
#[derive(Args, Clone, Debug)]
pub struct CommonFlags {
    /// Network semantics: ordered | unordered | duplicating.
    #[arg(long, default_value = "duplicating", value_parser = parse_network)]
    pub network: NetworkKind,
    /// Let the network drop messages.
    #[arg(long)]
    pub lossy: bool,
    /// Stop exploring paths longer than this (needed for ordered/unordered networks, where
    /// periodic resends make the space infinite; defaults to 24 there).
    #[arg(long)]
    pub max_depth: Option<usize>,
    /// Checker threads, at least 1 (default: all cores).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// check and dfs stop (not exhaustive, exit status 2) once the checker's resident memory
    /// passes this (e.g. 8GiB, 500MiB; default: nine tenths of the memory available at start),
    /// instead of being killed by the operating system; check goes on depth-first once it
    /// passes half of it.
    #[arg(long, value_parser = parse_bytes)]
    pub max_memory: Option<u64>,
    /// check and dfs stop (not exhaustive, exit status 2) once they have run this long (e.g.
    /// 90s, 10m, 1.5h; a bare number is seconds), and report what they explored (with
    /// --liveness: the graph explored so far is analysed). Not with --engine stateright.
    #[arg(long, value_parser = parse_duration)]
    pub max_time: Option<Duration>,
    /// How check and dfs reduce the search: none (every transition, states exactly as
    /// stateright counts them), view (states that differ only in what nothing reads, in old
    /// messages no receiver can use any more, or (RSL) in the state a crashed replica crashed
    /// with, are one state), sleep (view plus sleep sets: every state of the view, far fewer
    /// transitions), symmetry (view plus one state per orbit of interchangeable clients; RSL
    /// only), all (sleep sets and symmetry together where the model offers a symmetry, sleep
    /// sets alone where it does not).
    #[arg(long, default_value = "all", value_parser = Reduction::parse)]
    pub reduction: Reduction,
    /// What sleep sets count as independent: conditional (two steps of different actors, and
    /// two steps of one actor that commute where they are taken: fewer transitions, each new
    /// test costing four runs of the actor's handlers) or static (steps of different actors
    /// only).
    #[arg(long, default_value = "conditional", value_parser = parse_independence)]
    pub independence: Independence,
    /// Which engine runs check and dfs: own (ours, with --reduction) or stateright
    /// (stateright's own checker, unreduced, for comparison).
    #[arg(long, default_value = "own", value_parser = parse_engine)]
    pub engine: EngineChoice,
    /// Stop at the first safety violation.
    #[arg(long)]
    pub stop_on_violation: bool,
    /// Check liveness under fairness instead of the safety properties: with check/dfs, the
    /// exhaustive lasso checker; with simulate, fair continuations of --fair-steps after faults
    /// stop, from states on the random walks.
    #[arg(long)]
    pub liveness: bool,
    /// Liveness: a crashed replica or host restarts eventually (its restart is a weakly fair
    /// task), instead of faults stopping with it down for good. Crashes still stop.
    #[arg(long)]
    pub fair_restarts: bool,
    /// Liveness check: stop exploring after this many states (the verdict is then not a proof).
    #[arg(long)]
    pub max_states: Option<usize>,
    /// Bounded liveness (simulate --liveness): steps a fair continuation has to reach the goal.
    #[arg(long, default_value_t = 300)]
    pub fair_steps: usize,
    /// Bounded liveness: a task enabled this many steps in a row is scheduled at once.
    #[arg(long, default_value_t = 8)]
    pub patience: usize,
}

/// The `--engine` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineChoice {
    /// Our engine.
    Own,
    /// stateright's checker.
    Stateright,
}

/// What the sleep sets count as independent (`--independence`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Independence {
    /// Steps of different actors only (the footprints).
    Static,
    /// Also two steps of one actor that commute where they are taken.
    Conditional,
}

fn parse_independence(s: &str) -> Result<Independence, String> {
    match s {
        "static" => Ok(Independence::Static),
        "conditional" => Ok(Independence::Conditional),
        _ => Err(format!(
            "unknown independence '{s}': use conditional or static"
        )),
    }
}

fn parse_engine(s: &str) -> Result<EngineChoice, String> {
    match s {
        "own" => Ok(EngineChoice::Own),
        "stateright" => Ok(EngineChoice::Stateright),
        _ => Err(format!("unknown engine '{s}': use own or stateright")),
    }
}

/// Splits a flag's value into its number and its unit (trimmed, in lower case); `what` names
/// what the value should be, for the error.
fn number_and_unit(s: &str, what: &str) -> Result<(f64, String), String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("'{s}' is not {what}"))?;
    Ok((n, unit.trim().to_ascii_lowercase()))
}

/// Parses a size: a number of bytes, optionally with a unit (KiB, MiB, GiB, TiB; KB, MB, GB, TB;
/// K, M, G, T as the binary units).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let (n, unit) = number_and_unit(s, "a size (examples: 8GiB, 500MiB, 1000000)")?;
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        u => {
            return Err(format!(
                "'{u}' in '{s}' is not a unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ))
        }
    };
    let bytes = n * mult;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("'{s}' is not a usable size"));
    }
    Ok(bytes as u64)
}

/// A duration with a unit (`90s`, `10m`, `1.5h`; a bare number is seconds), above zero and at
/// most a year.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = number_and_unit(s, "a duration (examples: 90s, 10m, 1.5h)")?;
    let mult: f64 = match unit.as_str() {
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        u => return Err(format!("'{u}' in '{s}' is not a unit of time (s, m, h)")),
    };
    let secs = n * mult;
    if !(secs > 0.0 && secs <= 365.0 * 24.0 * 3600.0) {
        return Err(format!(
            "'{s}' is not a usable duration (above zero, at most a year)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Lets a checker's flags come after its verb as well as before it (`check-paxos dfs
/// --crashes 1` as well as `check-paxos --crashes 1 dfs`): every argument of `cmd` becomes
/// global, so the verbs accept them and pass them up.
pub fn flags_before_or_after_the_verb(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|a| a.global(true))
}

fn parse_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a number of threads (1 or more)")),
    }
}

fn parse_network(s: &str) -> Result<NetworkKind, String> {
    NetworkKind::parse(s)
        .ok_or_else(|| format!("unknown network '{s}': use ordered, unordered or duplicating"))
}

/// Validates `--max-total-crashes` against `--crashes` (`crashes` of `actors` may be down at
/// once).
fn check_total_crashes(total: Option<usize>, crashes: usize, actors: &str) -> Result<()> {
    let Some(total) = total else {
        return Ok(());
    };
    if crashes == 0 {
        bail!("--max-total-crashes {total} needs --crashes 1 or more (how many {actors} may be down at once)");
    }
    if !(1..=255).contains(&total) {
        bail!("--max-total-crashes must be between 1 and 255 (got {total})");
    }
    Ok(())
}

/// Flags of the RSL model.
#[derive(Args, Clone, Debug)]
pub struct RslFlags {
    /// Number of replicas.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// Number of clients.
    #[arg(long, default_value_t = 2)]
    pub clients: usize,
    /// Requests (increments) per client.
    #[arg(long, default_value_t = 1)]
    pub requests: usize,
    /// How many replicas may be down at once (crash and restart from storage).
    #[arg(long, default_value_t = 0)]
    pub crashes: usize,
    /// At most this many crashes over a whole run, all replicas together (with --crashes);
    /// without it a run may crash and restart replicas any number of times.
    #[arg(long)]
    pub max_total_crashes: Option<usize>,
    /// Maximum number of view changes.
    #[arg(long, default_value_t = 0)]
    pub max_view_changes: u64,
    /// max_batch_size.
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// max_log_length.
    #[arg(long, default_value_t = 7)]
    pub log_length: u64,
    /// Report checkpoints in heartbeats, so log truncation and state transfer are explored
    /// (multiplies the state space by about 300).
    #[arg(long)]
    pub truncation: bool,
    /// The replicas' client session table holds at most this many sessions (below --clients,
    /// sessions are evicted and expire).
    #[arg(long)]
    pub max_client_sessions: Option<usize>,
    /// Switch on a deliberately broken variant to see the checker catch it:
    /// accept-below-promise, ignore-1b-votes, decide-without-quorum, execute-twice,
    /// execute-expired, truncate-beyond-quorum, forget-votes-on-restart, never-suspect
    /// (liveness), client-never-retransmits (liveness), client-accepts-stale-reply (with
    /// --requests 2).
    #[arg(long, value_parser = Mutation::parse)]
    pub mutation: Option<Mutation>,
    /// Common flags.
    #[command(flatten)]
    pub common: CommonFlags,
}

impl RslFlags {
    /// The model configuration these flags describe, validated.
    pub fn model_cfg(&self) -> Result<RslModelCfg<Counter>> {
        // One replica would process every message locally, so the ghost history (which records
        // what goes over the network) would see no vote: the model needs at least two.
        if !(2..=7).contains(&self.replicas) {
            bail!("--replicas must be between 2 and 7 (got {})", self.replicas);
        }
        if self.batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        if self.log_length == 0 {
            bail!("--log-length must be at least 1");
        }
        if self.crashes >= self.replicas {
            bail!(
                "--crashes {} must be below --replicas {}",
                self.crashes,
                self.replicas
            );
        }
        if self.max_client_sessions == Some(0) {
            bail!("--max-client-sessions must be at least 1");
        }
        check_total_crashes(self.max_total_crashes, self.crashes, "replicas")?;
        let mut cfg = RslModelCfg::counter(self.replicas, self.clients, self.requests);
        if let Some(m) = self.max_client_sessions {
            cfg.params.max_client_sessions = m;
        }
        cfg.params.max_batch_size = self.batch_size;
        cfg.params.max_log_length = self.log_length;
        cfg.max_view_changes = self.max_view_changes;
        cfg.mutation = self.mutation;
        cfg.truncation = self.truncation;
        cfg.network = self.common.network;
        cfg.lossy = self.common.lossy;
        cfg.max_crashes = self.crashes;
        cfg.max_total_crashes = self.max_total_crashes;
        Ok(cfg)
    }

    /// The same configuration as command-line flags (for replay hints).
    pub fn as_flags(&self) -> String {
        let mut s = format!(
            "--replicas {} --clients {} --requests {} --crashes {} --max-view-changes {} --batch-size {} --log-length {}",
            self.replicas,
            self.clients,
            self.requests,
            self.crashes,
            self.max_view_changes,
            self.batch_size,
            self.log_length
        );
        if let Some(n) = self.max_total_crashes {
            s += &format!(" --max-total-crashes {n}");
        }
        if self.truncation {
            s += " --truncation";
        }
        if let Some(m) = self.max_client_sessions {
            s += &format!(" --max-client-sessions {m}");
        }
        s += &self.common.as_flags();
        if let Some(m) = self.mutation {
            s += &format!(" --mutation {}", m.name());
        }
        s
    }
}

impl CommonFlags {
    /// The network part of a model's title line: `network duplicating (lossy)`.
    fn network_title(&self) -> String {
        let lossy = if self.lossy { " (lossy)" } else { "" };
        format!("network {}{lossy}", self.network.name())
    }

    fn as_flags(&self) -> String {
        let mut s = String::new();
        if self.network != NetworkKind::Duplicating {
            s += &format!(" --network {}", self.network.name());
        }
        if self.lossy {
            s += " --lossy";
        }
        if let Some(d) = self.max_depth {
            s += &format!(" --max-depth {d}");
        }
        if self.fair_restarts {
            s += " --fair-restarts";
        }
        s
    }

    fn run_options(&self, verb: &Verb) -> RunOptions {
        let mode = match verb {
            Verb::Check | Verb::Explore { .. } => Mode::Bfs,
            Verb::Dfs { .. } => Mode::Dfs,
            Verb::Simulate { seed, walks, depth } => Mode::Simulate {
                seed: *seed,
                walks: *walks,
                depth: *depth,
            },
        };
        let mut opts = RunOptions {
            mode,
            engine: match self.engine {
                EngineChoice::Own => Engine::Own(self.reduction),
                EngineChoice::Stateright => Engine::Stateright,
            },
            stop_on_violation: self.stop_on_violation,
            max_depth: self.max_depth,
            progress: Some(Duration::from_secs(2)),
            conditional: self.independence == Independence::Conditional,
            schedule_seed: match verb {
                Verb::Dfs { schedule_seed } => *schedule_seed,
                _ => None,
            },
            ..RunOptions::default()
        };
        if let Some(t) = self.threads {
            opts.threads = t;
        }
        if let Some(m) = self.max_memory {
            opts.max_memory = Some(m);
        }
        opts.max_time = self.max_time;
        if opts.max_depth.is_none() && self.network.needs_depth_bound() {
            opts.max_depth = Some(24);
        }
        opts
    }
}

/// The mutation part of a model's title line (empty without one).
pub(crate) fn mutation_title(name: Option<&'static str>) -> String {
    name.map(|n| format!(", MUTATION {n}")).unwrap_or_default()
}

/// Flags of the lock model.
#[derive(Args, Clone, Debug)]
pub struct LockFlags {
    /// Hosts in the ring.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Explore up to this epoch.
    #[arg(long, default_value_t = 7)]
    pub max_epoch: u64,
    /// Switch on a deliberately broken variant: keep-after-grant, accept-stale-transfer,
    /// never-grant (liveness).
    #[arg(long, value_parser = LockMutation::parse)]
    pub mutation: Option<LockMutation>,
    /// Common flags.
    #[command(flatten)]
    pub common: CommonFlags,
}

impl LockFlags {
    /// The model configuration these flags describe, validated.
    pub fn model_cfg(&self) -> Result<LockModelCfg> {
        if self.nodes < 2 {
            bail!("--nodes must be at least 2 (got {})", self.nodes);
        }
        if self.max_epoch < 1 {
            bail!("--max-epoch must be at least 1");
        }
        Ok(LockModelCfg {
            nodes: self.nodes,
            max_epoch: self.max_epoch,
            network: self.common.network,
            lossy: self.common.lossy,
            mutation: self.mutation,
        })
    }

    /// The same configuration as command-line flags (for replay hints).
    pub fn as_flags(&self) -> String {
        let mut s = format!("--nodes {} --max-epoch {}", self.nodes, self.max_epoch);
        s += &self.common.as_flags();
        if let Some(m) = self.mutation {
            s += &format!(" --mutation {}", m.name());
        }
        s
    }
}

/// Runs a verb on an actor model (built by `build`, called once for the run and once for the
/// report) and prints the report. Returns the process exit code: 0 when no property was
/// violated, 1 otherwise.
// Each system passes its model, properties, flags, labels and symmetry: one call site each.
#[allow(clippy::too_many_arguments)]
fn drive_and_report<A, C, H>(
    build: impl Fn() -> ActorModel<A, C, H>,
    live: Vec<LivenessProperty<ActorModel<A, C, H>>>,
    verb: &Verb,
    common: &CommonFlags,
    program: &str,
    flags: &str,
    title: &str,
    symmetry: impl FnOnce() -> std::result::Result<Symmetry, String>,
) -> Result<i32>
where
    A: Actor + Send + Sync + 'static,
    A::Msg: Ord + std::fmt::Display + Send + Sync,
    A::Timer: Ord + Send + Sync,
    A::Random: Send + Sync,
    A::State: Send + Sync,
    A::Storage: Send + Sync,
    C: Send + Sync + 'static,
    H: Clone
        + std::fmt::Debug
        + crate::check::reduce::GhostHistory
        + PartialEq
        + Send
        + Sync
        + 'static,
{
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "{title}")?;
    if let Verb::Dfs {
        schedule_seed: Some(_),
    } = verb
    {
        if common.liveness || common.engine == EngineChoice::Stateright {
            bail!("--schedule-seed orders our engine's safety search: not with --liveness or --engine stateright");
        }
    }
    if common.max_time.is_some() {
        if common.engine == EngineChoice::Stateright {
            bail!("--max-time bounds our engine's search: not with --engine stateright");
        }
        if matches!(verb, Verb::Simulate { .. } | Verb::Explore { .. }) {
            bail!("--max-time bounds check and dfs: simulate is bounded by --walks and --depth");
        }
    }
    // The explorer takes it (a liveness counterexample's replay hint carries it) and ignores it.
    if common.fair_restarts && !common.liveness && !matches!(verb, Verb::Explore { .. }) {
        bail!("--fair-restarts is an assumption of the liveness checkers: add --liveness");
    }
    if common.liveness {
        return drive_liveness(build, live, verb, common, program, flags, &mut out);
    }
    if let Verb::Explore { addr } = verb {
        writeln!(out, "Explorer on http://{addr}/ (Ctrl-C to stop)")?;
        out.flush()?;
        let threads = common
            .threads
            .unwrap_or_else(|| RunOptions::default().threads);
        let _ = build().checker().threads(threads).serve(addr.as_str());
        return Ok(0);
    }
    let mut opts = common.run_options(verb);
    let exhaustive = matches!(opts.mode, Mode::Bfs | Mode::Dfs);
    let mut no_symmetry_here = String::new();
    match opts.engine {
        Engine::Own(Reduction::Symmetry) if exhaustive => {
            let sym = symmetry().map_err(|e| anyhow::anyhow!("--reduction symmetry: {e}"))?;
            opts.symmetry = Some(sym);
        }
        // All: sleep sets with symmetry where the model offers one, sleep sets alone elsewhere.
        Engine::Own(Reduction::All) if exhaustive => match symmetry() {
            Ok(sym) if sym.renames_actions::<ActorModel<A, C, H>>() => opts.symmetry = Some(sym),
            Ok(_) => {
                no_symmetry_here = " (its symmetry cannot rename actions)".into();
                opts.engine = Engine::Own(Reduction::Sleep);
            }
            Err(e) => {
                no_symmetry_here = format!(" (no symmetry here: {e})");
                opts.engine = Engine::Own(Reduction::Sleep);
            }
        },
        _ => {}
    }
    let (checker, reduction) = match opts.engine {
        Engine::Own(r @ (Reduction::Symmetry | Reduction::All)) if exhaustive => (
            "",
            format!(
                ", reduction {} ({})",
                if r == Reduction::All {
                    "sleep + symmetry"
                } else {
                    "symmetry"
                },
                opts.symmetry.as_ref().map_or("", |s| s.what())
            ),
        ),
        Engine::Own(Reduction::Sleep) if !no_symmetry_here.is_empty() => {
            ("", format!(", reduction sleep{no_symmetry_here}"))
        }
        Engine::Own(r) => ("", format!(", reduction {}", r.name())),
        Engine::Stateright => (" (stateright's checker)", String::new()),
    };
    let sleeps = matches!(opts.engine, Engine::Own(Reduction::Sleep | Reduction::All));
    let reduction = match (sleeps, opts.conditional) {
        (true, true) => format!("{reduction}, conditional independence"),
        (true, false) => format!("{reduction}, static independence"),
        (false, _) => reduction,
    };
    let threads = match opts.threads {
        1 => "1 thread".to_string(),
        n => format!("{n} threads"),
    };
    let mode = match &opts.mode {
        Mode::Bfs => format!("exhaustive BFS{checker}, {threads}{reduction}"),
        Mode::Dfs => format!(
            "exhaustive DFS{checker}, {threads}{}{reduction}",
            opts.schedule_seed
                .map(|s| format!(", schedule seed {s}"))
                .unwrap_or_default()
        ),
        Mode::Simulate { seed, walks, depth } => {
            format!("simulation: {walks} walks of {depth} steps from seed {seed}")
        }
    };
    writeln!(
        out,
        "{mode}{}{}",
        opts.max_depth
            .map(|d| format!(", depth bound {d}"))
            .unwrap_or_default(),
        opts.max_time
            .map(|t| format!(", time limit {} s", t.as_secs_f64()))
            .unwrap_or_default()
    )?;
    out.flush()?;
    // Our engine's exhaustive searches stop on Ctrl-C and report; the rest quit at once.
    let listening = (exhaustive && matches!(opts.engine, Engine::Own(_))).then(interrupt::listen);
    opts.stop_requested = listening.as_ref().and_then(|l| l.flag());
    let outcome = runner::run(build(), &opts, &mut out);
    drop(listening);
    let replay = match verb {
        Verb::Simulate { seed, walks, depth } => format!(
            "`{program} {flags} simulate --seed {seed} --walks {walks} --depth {depth}` replays it; `{program} {flags} explore`"
        ),
        _ => format!("`{program} {flags} explore`"),
    };
    let violated = print_report(&build(), &outcome, "localhost:3000", &replay, &mut out);
    out.flush()?;
    let stopped = outcome.memory_stop.is_some() || outcome.time_stop.is_some();
    Ok(match (violated, stopped) {
        (true, _) => 1,
        (false, _) if outcome.requested_stop.is_some() => interrupt::INTERRUPTED,
        // Out of memory or time before the end: no verdict on the whole space.
        (false, true) => 2,
        (false, false) => 0,
    })
}

/// How the liveness checkers classify an actor model's actions (faults, fair tasks).
type Classify<M, T, R> = fn(&ActorModelAction<M, T, R>) -> ActionKind;

/// Runs the liveness checkers: the lasso checker for check/dfs, the bounded one for simulate.
fn drive_liveness<A, C, H>(
    build: impl Fn() -> ActorModel<A, C, H>,
    live: Vec<LivenessProperty<ActorModel<A, C, H>>>,
    verb: &Verb,
    common: &CommonFlags,
    program: &str,
    flags: &str,
    out: &mut dyn Write,
) -> Result<i32>
where
    A: Actor + 'static,
    A::Msg: Ord + std::fmt::Display + 'static,
    A::State: 'static,
    A::Timer: Ord,
    C: 'static,
    H: Clone + std::fmt::Debug + crate::check::reduce::GhostHistory + PartialEq + 'static,
{
    let model = build();
    let classify: Classify<A::Msg, A::Timer, A::Random> = if common.fair_restarts {
        actor_action_kind_restarting
    } else {
        actor_action_kind
    };
    let faults = if common.fair_restarts {
        "faults stop eventually; a crashed actor restarts eventually"
    } else {
        "faults stop eventually"
    };
    let violated = match verb {
        Verb::Check | Verb::Dfs { .. } => {
            writeln!(
                out,
                "liveness: exhaustive lasso search under weak fairness ({faults}){}",
                common
                    .max_states
                    .map(|m| format!(", at most {m} states"))
                    .unwrap_or_default()
            )?;
            out.flush()?;
            let listening = interrupt::listen();
            let opts = LivenessOptions {
                max_states: common.max_states,
                max_depth: common.max_depth,
                progress: Some(Duration::from_secs(2)),
                max_memory: common
                    .max_memory
                    .or_else(crate::check::engine::default_memory_limit),
                max_time: common.max_time,
                stop_requested: listening.flag(),
            };
            let outcome = check_liveness(&model, &live, &classify, &opts);
            drop(listening);
            let hint = format!("`{program} {flags} explore`");
            let violated = print_live_report(&model, &outcome, &hint, out);
            if !violated && outcome.requested_stop.is_some() {
                out.flush()?;
                return Ok(interrupt::INTERRUPTED);
            }
            if !violated && (outcome.memory_stop.is_some() || outcome.time_stop.is_some()) {
                out.flush()?;
                return Ok(2);
            }
            violated
        }
        Verb::Simulate { seed, walks, depth } => {
            writeln!(
                out,
                "liveness: {walks} walks of {depth} steps from seed {seed}; from each state, a fair continuation of {} steps without faults{} (patience {})",
                common.fair_steps,
                if common.fair_restarts { " but restarts" } else { "" },
                common.patience
            )?;
            out.flush()?;
            let opts = BoundedOptions {
                seed: *seed,
                walks: *walks,
                depth: *depth,
                k: common.fair_steps,
                patience: common.patience,
            };
            let outcome = check_bounded(&model, &live, &classify, &same_actor_state, &opts);
            let hint = format!(
                "`{program} {flags} --liveness --fair-steps {} --patience {} simulate --seed {seed} --walks {walks} --depth {depth}` replays it; `{program} {flags} explore`",
                common.fair_steps, common.patience
            );
            print_bounded_report(&model, &outcome, common.fair_steps, &hint, out)
        }
        Verb::Explore { .. } => bail!("--liveness works with check, dfs and simulate, not explore"),
    };
    out.flush()?;
    Ok(if violated { 1 } else { 0 })
}

/// `check-paxos`: runs a verb on the RSL model described by `flags`.
pub fn rsl_main(program: &str, verb: &Verb, flags: &RslFlags) -> Result<i32> {
    let cfg = flags.model_cfg().context("invalid model configuration")?;
    let title = format!(
        "IronRSL model: {} replicas, {} clients x {} requests, {}, crashes {}{}, view changes <= {}, batch {}, log {}, truncation {}{}",
        flags.replicas,
        flags.clients,
        flags.requests,
        flags.common.network_title(),
        flags.crashes,
        match flags.max_total_crashes {
            Some(n) => format!(" (at most {n} in all)"),
            None => String::new(),
        },
        flags.max_view_changes,
        flags.batch_size,
        flags.log_length,
        if flags.truncation { "on" } else { "off" },
        mutation_title(flags.mutation.map(|m| m.name()))
    );
    drive_and_report(
        || rsl_model(cfg.clone()),
        rsl_liveness(),
        verb,
        &flags.common,
        program,
        &flags.as_flags(),
        &title,
        || rsl_symmetry(&cfg),
    )
}

/// The RSL model's symmetry: clients with the same workload are interchangeable, where the
/// protocol is symmetric in them (see [`RslModelCfg::interchangeable_clients`]).
pub fn rsl_symmetry<A: AppSpec>(cfg: &RslModelCfg<A>) -> std::result::Result<Symmetry, String> {
    let groups = cfg.interchangeable_clients()?;
    let what: Vec<String> = groups
        .iter()
        .map(|g| {
            let ids: Vec<String> = g.iter().map(|c| usize::from(*c).to_string()).collect();
            format!("actors {} interchangeable", ids.join(", "))
        })
        .collect();
    Ok(Symmetry::actors::<RslNode<A>, RslModelCfg<A>, RslHistory<A>>(groups, what.join("; ")))
}

/// What the models without a symmetry say to `--reduction symmetry`.
fn no_symmetry(system: &str) -> std::result::Result<Symmetry, String> {
    Err(format!(
        "the {system} model offers none (its states do not implement the renaming of actor ids)"
    ))
}

/// `check-lock`: runs a verb on the lock model described by `flags`.
pub fn lock_main(program: &str, verb: &Verb, flags: &LockFlags) -> Result<i32> {
    let cfg = flags.model_cfg().context("invalid model configuration")?;
    let title = format!(
        "IronLock model: {} nodes, epochs <= {}, {}{}",
        flags.nodes,
        flags.max_epoch,
        flags.common.network_title(),
        mutation_title(flags.mutation.map(|m| m.name()))
    );
    drive_and_report(
        || lock_model(cfg.clone()),
        lock_liveness(),
        verb,
        &flags.common,
        program,
        &flags.as_flags(),
        &title,
        || no_symmetry("IronLock"),
    )
}

/// Flags of the IronKV model.
#[derive(Args, Clone, Debug)]
pub struct KvFlags {
    /// Hosts (host 0 owns every key at start).
    #[arg(long, default_value_t = 2)]
    pub hosts: usize,
    /// Clients; client i writes key (keys - 1 - i % keys), then reads it.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Keys in play (0..keys).
    #[arg(long, default_value_t = 2)]
    pub keys: u64,
    /// Shard moves an admin requests meanwhile: move j sends keys 1.. from host j % hosts to the
    /// next host.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// An explicit shard move `RANGE:FROM:TO` (e.g. `1..:0:1`, `0..2:1:2`), asked by the admin
    /// client in order; repeat for more. Replaces the moves `--shards` would make.
    #[arg(long = "move", value_name = "RANGE:FROM:TO", value_parser = parse_move)]
    pub moves: Vec<ShardMove>,
    /// Largest delegation map a host may have.
    #[arg(long, default_value_t = 8)]
    pub max_delegations: usize,
    /// Redirects a client follows for one operation before it gives up (bounds the ping-pong
    /// between old and new owner while a delegation is in flight; liveness does not judge a
    /// client that gave up).
    #[arg(long, default_value_t = 2)]
    pub max_redirects: u32,
    /// How many hosts may be down at once (crash, then restart from what the host stored).
    /// Default: 1 for the safety checks, 0 with --liveness (a host that stays down strands the
    /// keys it owns, so liveness under crashes needs every host back up: add --fair-restarts).
    #[arg(long)]
    pub crashes: Option<usize>,
    /// At most this many crashes over a whole run, all hosts together (with --crashes);
    /// without it a run may crash and restart hosts any number of times.
    #[arg(long)]
    pub max_total_crashes: Option<usize>,
    /// A host keeps at most this many client channels (below the number of clients, channels
    /// are closed and their clients refused).
    #[arg(long)]
    pub max_client_channels: Option<usize>,
    /// Hosts sweep idle client channels on a timer, as at run time (the sweep may fire at any
    /// point, closing the channels quiet since the previous sweep).
    #[arg(long)]
    pub idle_sweep: bool,
    /// Switch on a deliberately broken variant: answer-delegated, accept-duplicate,
    /// partial-shard, drop-pair, never-retransmit, forget-storage-on-restart (with --crashes),
    /// reopen-closed-channel (with --max-client-channels), client-takes-redirect-as-absent.
    #[arg(long, value_parser = KvMutation::parse)]
    pub mutation: Option<KvMutation>,
    /// Common flags.
    #[command(flatten)]
    pub common: CommonFlags,
}

/// One shard move of the admin client: ask host `from` to move `range` to host `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardMove {
    /// The range.
    pub range: KeyRange,
    /// The host asked.
    pub from: usize,
    /// The new owner.
    pub to: usize,
}

impl std::fmt::Display for ShardMove {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.range;
        match &r.hi {
            Some(h) => write!(f, "{}..{}:{}:{}", r.lo, h, self.from, self.to),
            None => write!(f, "{}..:{}:{}", r.lo, self.from, self.to),
        }
    }
}

fn parse_move(s: &str) -> Result<ShardMove, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let [range, from, to] = parts[..] else {
        return Err(format!("'{s}' is not RANGE:FROM:TO (e.g. 1..:0:1)"));
    };
    let range = KeyRange::parse(range)?;
    let host = |x: &str| {
        x.parse::<usize>()
            .map_err(|_| format!("'{x}' is not a host index"))
    };
    Ok(ShardMove {
        range,
        from: host(from)?,
        to: host(to)?,
    })
}

impl KvFlags {
    /// How many hosts may be down at once: `--crashes`, or its default (1 for safety, 0 for
    /// liveness).
    pub fn crashes(&self) -> usize {
        self.crashes
            .unwrap_or(if self.common.liveness { 0 } else { 1 })
    }

    /// The model configuration these flags describe, validated.
    pub fn model_cfg(&self) -> Result<KvModelCfg> {
        if !(2..=5).contains(&self.hosts) {
            bail!("--hosts must be 2..=5 (got {})", self.hosts);
        }
        if !(1..=4).contains(&self.keys) {
            bail!("--keys must be 1..=4 (got {})", self.keys);
        }
        if self.clients > 3 {
            bail!("--clients must be at most 3 (got {})", self.clients);
        }
        if self.shards > 3 {
            bail!("--shards must be at most 3 (got {})", self.shards);
        }
        if self.max_delegations < 3 {
            bail!("--max-delegations must be at least 3 (a shard can add two ranges)");
        }
        if self.max_client_channels == Some(0) {
            bail!("--max-client-channels must be at least 1");
        }
        let crashes = self.crashes();
        if crashes >= self.hosts {
            bail!("--crashes {} must be below --hosts {}", crashes, self.hosts);
        }
        check_total_crashes(self.max_total_crashes, crashes, "hosts")?;
        let mut clients: Vec<Vec<ClientOp>> = (0..self.clients)
            .map(|i| {
                let key = Key::from(self.keys - 1 - (i as u64 % self.keys));
                let value = format!("v{i}").into_bytes();
                vec![ClientOp::Set(key.clone(), Some(value)), ClientOp::Get(key)]
            })
            .collect();
        let moves: Vec<ShardMove> = if self.moves.is_empty() {
            (0..self.shards)
                .map(|j| ShardMove {
                    range: KeyRange::new(1.min(self.keys - 1), None),
                    from: j % self.hosts,
                    to: (j + 1) % self.hosts,
                })
                .collect()
        } else {
            self.moves.clone()
        };
        if moves.len() > 3 {
            bail!("at most 3 shard moves (got {})", moves.len());
        }
        for m in &moves {
            if m.from >= self.hosts || m.to >= self.hosts {
                bail!(
                    "--move {m}: hosts are 0..{} (got {} and {})",
                    self.hosts,
                    m.from,
                    m.to
                );
            }
        }
        if !moves.is_empty() {
            clients.push(
                moves
                    .iter()
                    .map(|m| ClientOp::Shard {
                        range: m.range.clone(),
                        from: m.from,
                        to: m.to,
                    })
                    .collect(),
            );
        }
        Ok(KvModelCfg {
            hosts: self.hosts,
            clients,
            keys: self.keys,
            network: self.common.network,
            lossy: self.common.lossy,
            params: KvParams {
                max_delegations: self.max_delegations,
                max_unacked: 8,
                max_client_channels: self.max_client_channels.unwrap_or(8),
                ..KvParams::default()
            },
            max_redirects: self.max_redirects,
            mutation: self.mutation,
            max_crashes: crashes,
            max_total_crashes: self.max_total_crashes,
            idle_sweep: self.idle_sweep,
        })
    }

    /// The same configuration as command-line flags (for replay hints).
    pub fn as_flags(&self) -> String {
        let mut s = format!(
            "--hosts {} --clients {} --keys {} --shards {} --max-delegations {} --max-redirects {}",
            self.hosts,
            self.clients,
            self.keys,
            self.shards,
            self.max_delegations,
            self.max_redirects
        );
        for m in &self.moves {
            s += &format!(" --move {m}");
        }
        if let Some(n) = self.crashes {
            s += &format!(" --crashes {n}");
        }
        if let Some(n) = self.max_total_crashes {
            s += &format!(" --max-total-crashes {n}");
        }
        if let Some(m) = self.max_client_channels {
            s += &format!(" --max-client-channels {m}");
        }
        if self.idle_sweep {
            s += " --idle-sweep";
        }
        s += &self.common.as_flags();
        if let Some(m) = self.mutation {
            s += &format!(" --mutation {}", m.name());
        }
        s
    }
}

/// `check-kv`: runs a verb on the IronKV model described by `flags`.
pub fn kv_main(program: &str, verb: &Verb, flags: &KvFlags) -> Result<i32> {
    let cfg = flags.model_cfg().context("invalid model configuration")?;
    let moves = cfg.clients.len() - flags.clients;
    let moves = cfg
        .clients
        .last()
        .filter(|_| moves > 0)
        .map_or(0, |ops| ops.len());
    let mut common = flags.common.clone();
    if flags.mutation.is_some() && !common.liveness && !common.stop_on_violation {
        // A broken variant can make the state space far larger than the correct one's (a
        // duplicate accepted once cascades into fresh replies): stop at the first violation.
        common.stop_on_violation = true;
    }
    let crashes = match (flags.crashes(), flags.max_total_crashes) {
        (0, _) => String::new(),
        (n, None) => format!("{n} host crash at a time, "),
        (n, Some(total)) => format!("{n} host crash at a time ({total} in all), "),
    };
    let title = format!(
        "IronKV model: {} hosts, {} clients (set then get), {} keys, {} shard moves, {crashes}{}{}",
        flags.hosts,
        flags.clients,
        flags.keys,
        moves,
        flags.common.network_title(),
        mutation_title(flags.mutation.map(|m| m.name()))
    );
    drive_and_report(
        || kv_model(cfg.clone()),
        kv_liveness(),
        verb,
        &common,
        program,
        &flags.as_flags(),
        &title,
        || no_symmetry("IronKV"),
    )
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        flags: super::RslFlags,
        #[command(subcommand)]
        verb: Option<super::Verb>,
    }

    fn parse(args: &[&str]) -> Result<(Cli, clap::ArgMatches), clap::Error> {
        let matches = super::flags_before_or_after_the_verb(Cli::command())
            .try_get_matches_from(std::iter::once("check-paxos").chain(args.iter().copied()))?;
        Ok((Cli::from_arg_matches(&matches)?, matches))
    }

    #[test]
    fn flags_may_come_before_or_after_the_verb() {
        for line in [
            "--crashes 1 --threads 1 dfs --schedule-seed 3",
            "dfs --crashes 1 --schedule-seed 3 --threads 1",
            "--threads 1 dfs --schedule-seed 3 --crashes 1",
        ] {
            let args: Vec<&str> = line.split_whitespace().collect();
            let args = &args[..];
            let (cli, matches) = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(cli.flags.crashes, 1, "{args:?}");
            assert_eq!(cli.flags.common.threads, Some(1), "{args:?}");
            assert!(
                matches!(
                    cli.verb,
                    Some(super::Verb::Dfs {
                        schedule_seed: Some(3)
                    })
                ),
                "{args:?}"
            );
            assert!(
                crate::cmd::suite::configuration_given(&matches),
                "{args:?}: a configuration flag after the verb still counts as one"
            );
        }
        let (cli, matches) = parse(&["simulate", "--seed", "7"]).unwrap();
        assert!(matches!(
            cli.verb,
            Some(super::Verb::Simulate { seed: 7, .. })
        ));
        assert!(!crate::cmd::suite::configuration_given(&matches));
        assert!(parse(&["dfs", "--crashes", "x"]).is_err());
        assert!(parse(&["dfs", "--frobnicate"]).is_err());
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(super::parse_bytes("8GiB"), Ok(8 << 30));
        assert_eq!(super::parse_bytes("500MiB"), Ok(500 << 20));
        assert_eq!(super::parse_bytes("1.5G"), Ok(3 << 29));
        assert_eq!(super::parse_bytes("2GB"), Ok(2_000_000_000));
        assert_eq!(super::parse_bytes("4096"), Ok(4096));
        assert!(super::parse_bytes("0").is_err());
        assert!(super::parse_bytes("12XB").is_err());
        assert!(super::parse_bytes("GiB").is_err());
    }

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        use std::time::Duration;
        assert_eq!(super::parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(super::parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(super::parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(super::parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(super::parse_duration("0").is_err());
        assert!(super::parse_duration("5x").is_err());
        assert!(super::parse_duration("m").is_err());
        assert!(super::parse_duration("1e9h").is_err());
        assert!(super::parse_duration("-3s").is_err());
    }
}
