//! The default check of IronRSL: what `check-paxos` (and `ironfleet rsl`) runs when given no
//! verb and no flag that describes a configuration.
//!
//! No single configuration both finishes in about a minute and reaches the parts of Paxos where
//! the subtle bugs live: three replicas with one view change and one crash-restart is tens of
//! millions of states (three replicas with one view change and no crash, two million). So the default check is a short list of configurations, cheapest first,
//! each chosen for what it reaches:
//!
//! - concurrent clients (linearizability with two clients in flight), exhaustively;
//! - a view change with two requests (a new leader choosing values from 1b votes, its first
//!   slot, a retransmission across the change), exhaustively with two replicas;
//! - log truncation and state transfer, exhaustively;
//! - session eviction (a session table smaller than the clients), exhaustively;
//! - three replicas with a view change and a crash-restart, by seeded random walks (the one
//!   place where a replica that forgets its votes on restart can break agreement: with two
//!   replicas every quorum holds the other replica's vote);
//! - liveness: a leader crash with one view change, and a lossy network, by fair continuations
//!   from random walks; one crash at a time, exhaustively by the lasso checker;
//! - a view change and a crash-restart with two requests, exhaustively with two replicas;
//! - a view change with three replicas (a minority that lags, votes of two ballots in one
//!   slot), exhaustively (about half a minute).
//!
//! Every deliberately broken variant of [`Mutation`](crate::actors::rsl::Mutation) is caught by
//! one of these (the tests run each). The list stops at the first configuration with a
//! violation, whose report (trace, replay command, explorer link) is the last thing printed;
//! otherwise it ends with a table of every configuration's verdict and time.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::ArgMatches;

use super::model::{rsl_main, rsl_symmetry, RslFlags, Verb};
use crate::check::engine::Reduction;

/// The flags that describe one configuration (or the liveness mode): given any of them without
/// a verb, `check-paxos` checks that one configuration, as `check` does.
const CONFIGURATION_FLAGS: &[&str] = &[
    "replicas",
    "clients",
    "requests",
    "crashes",
    "max_total_crashes",
    "max_view_changes",
    "batch_size",
    "log_length",
    "truncation",
    "max_client_sessions",
    "network",
    "lossy",
    "max_depth",
    "liveness",
    "fair_restarts",
    "max_states",
    "fair_steps",
    "patience",
    "engine",
];

/// Whether the command line `matches` (of a command that flattens [`RslFlags`]) sets any flag
/// that describes a configuration.
pub fn configuration_given(matches: &ArgMatches) -> bool {
    CONFIGURATION_FLAGS
        .iter()
        .any(|id| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
}

/// One configuration of the default check.
struct Phase {
    /// What it reaches, in a few words.
    what: &'static str,
    /// Replicas, clients, requests per client, crashes at a time, view changes.
    shape: (usize, usize, usize, usize, u64),
    /// Anything else it sets (truncation, session table, network, liveness).
    extra: fn(&mut RslFlags),
    /// How it is explored.
    verb: Verb,
}

fn nothing(_: &mut RslFlags) {}

/// Walks of the random-walk configuration: every mutation is caught within its first 300 walks
/// from seed 0, so 10,000 leave a wide margin (about 12 s).
const WALKS: u64 = 10_000;

fn phases() -> Vec<Phase> {
    let walks = |walks| Verb::Simulate {
        seed: 0,
        walks,
        depth: 200,
    };
    vec![
        Phase {
            what: "concurrent clients",
            shape: (3, 2, 1, 0, 0),
            extra: nothing,
            verb: Verb::Check,
        },
        Phase {
            what: "a view change, two requests",
            shape: (2, 1, 2, 0, 1),
            extra: nothing,
            verb: Verb::Check,
        },
        Phase {
            what: "log truncation and state transfer",
            shape: (3, 1, 1, 0, 0),
            extra: |f| f.truncation = true,
            verb: Verb::Check,
        },
        Phase {
            what: "session eviction",
            shape: (2, 2, 1, 0, 0),
            extra: |f| f.max_client_sessions = Some(1),
            verb: Verb::Check,
        },
        Phase {
            what: "3 replicas, a view change and a crash",
            shape: (3, 1, 2, 1, 1),
            extra: nothing,
            verb: walks(WALKS),
        },
        Phase {
            what: "liveness: a leader crash, a view change",
            shape: (3, 1, 1, 1, 1),
            extra: |f| f.common.liveness = true,
            verb: walks(500),
        },
        Phase {
            what: "liveness: a lossy network",
            shape: (3, 1, 1, 0, 0),
            extra: |f| {
                f.common.liveness = true;
                f.common.lossy = true;
            },
            verb: walks(200),
        },
        Phase {
            what: "liveness: one crash at a time",
            shape: (3, 1, 1, 1, 0),
            extra: |f| f.common.liveness = true,
            verb: Verb::Dfs {
                schedule_seed: None,
            },
        },
        Phase {
            what: "a view change and a crash, two requests",
            shape: (2, 1, 2, 1, 1),
            extra: nothing,
            verb: Verb::Dfs {
                schedule_seed: None,
            },
        },
        Phase {
            what: "3 replicas, a crash, two clients",
            shape: (3, 2, 1, 1, 0),
            extra: nothing,
            verb: Verb::Dfs {
                schedule_seed: None,
            },
        },
        Phase {
            what: "3 replicas, a view change",
            shape: (3, 1, 1, 0, 1),
            extra: nothing,
            verb: Verb::Dfs {
                schedule_seed: None,
            },
        },
    ]
}

impl Phase {
    /// The flags of this configuration: the user's flags that are not configuration flags
    /// (threads, memory, reduction, mutation, stop-on-violation) with this phase's shape.
    fn flags(&self, base: &RslFlags) -> RslFlags {
        let mut f = base.clone();
        let (replicas, clients, requests, crashes, view_changes) = self.shape;
        f.replicas = replicas;
        f.clients = clients;
        f.requests = requests;
        f.crashes = crashes;
        f.max_view_changes = view_changes;
        (self.extra)(&mut f);
        f
    }

    fn how(&self) -> String {
        match &self.verb {
            Verb::Check => "exhaustive".into(),
            Verb::Dfs { .. } => "exhaustive (depth-first)".into(),
            Verb::Simulate { walks, .. } => format!("{walks} random walks"),
            Verb::Explore { .. } => unreachable!("no phase explores"),
        }
    }

    /// The configuration in words: "3 replicas, 1 client x 2, 1 crash at a time, 1 view
    /// change".
    fn shape_text(f: &RslFlags) -> String {
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let mut s = format!(
            "{}, {} x {}",
            plural(f.replicas, "replica"),
            plural(f.clients, "client"),
            f.requests
        );
        if f.crashes > 0 {
            let es = if f.crashes == 1 { "" } else { "es" };
            s += &format!(", {} crash{es} at a time", f.crashes);
        }
        if f.max_view_changes > 0 {
            let vc = usize::try_from(f.max_view_changes).unwrap_or(usize::MAX);
            s += &format!(", {}", plural(vc, "view change"));
        }
        if f.truncation {
            s += ", truncation";
        }
        if let Some(n) = f.max_client_sessions {
            s += &format!(", {}", plural(n, "session"));
        }
        if f.common.lossy {
            s += ", lossy";
        }
        s
    }
}

/// Runs the default check with the user's non-configuration flags `base`. Returns the exit
/// code: 0 every configuration holds, 1 one was violated (the rest were not run), 2 one ran out
/// of memory before the end (no verdict on its whole space).
pub fn rsl_default_check(program: &str, base: &RslFlags) -> Result<i32> {
    let phases = phases();
    let start = Instant::now();
    let mut done: Vec<(usize, String, &'static str, Duration)> = Vec::new();
    let mut code = 0;
    for (i, phase) in phases.iter().enumerate() {
        let mut flags = phase.flags(base);
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "\n=== {}/{}: {} ({}) ===",
            i + 1,
            phases.len(),
            phase.what,
            phase.how()
        )?;
        // Symmetry applies where the configuration has interchangeable clients; elsewhere this
        // configuration runs with sleep sets rather than stop the whole check. (`all`, the
        // default, falls back to sleep sets by itself.)
        if flags.common.reduction == Reduction::Symmetry
            && matches!(phase.verb, Verb::Check | Verb::Dfs { .. })
        {
            if let Err(why) = rsl_symmetry(&flags.model_cfg()?) {
                writeln!(
                    out,
                    "--reduction symmetry does not apply here ({why}): sleep sets instead"
                )?;
                flags.common.reduction = Reduction::Sleep;
            }
        }
        out.flush()?;
        drop(out);
        let phase_start = Instant::now();
        let phase_code = rsl_main(program, &phase.verb, &flags)?;
        let verdict = match phase_code {
            0 => "holds",
            1 => "VIOLATED",
            _ => "unknown",
        };
        done.push((i, Phase::shape_text(&flags), verdict, phase_start.elapsed()));
        if phase_code == 1 {
            code = 1;
            break;
        }
        if phase_code == super::interrupt::INTERRUPTED {
            code = phase_code;
            break;
        }
        if phase_code != 0 {
            code = 2;
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nDefault check of IronRSL: {} of {} configurations in {:.1} s",
        done.len(),
        phases.len(),
        start.elapsed().as_secs_f64()
    )?;
    for (i, shape, verdict, took) in &done {
        let p = &phases[*i];
        writeln!(
            out,
            "  {:>2}  {:<40} {:<8} {:>6.1} s   {shape}; {}",
            i + 1,
            p.what,
            verdict,
            took.as_secs_f64(),
            p.how()
        )?;
    }
    match code {
        0 => writeln!(
            out,
            "Every configuration holds. `{program} --help` checks one configuration of your own."
        )?,
        1 => writeln!(
            out,
            "Stopped at the first violation: its counterexample is above; the configurations after it did not run."
        )?,
        super::interrupt::INTERRUPTED => writeln!(
            out,
            "Stopped on request (Ctrl-C): the configuration marked unknown has no verdict on its whole space, and those after it did not run."
        )?,
        _ => writeln!(
            out,
            "A configuration marked unknown ran out of memory before the end: no verdict on its whole space (see --max-memory)."
        )?,
    }
    out.flush()?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        flags: RslFlags,
    }

    #[test]
    fn every_configuration_flag_is_an_argument_and_is_recognised() {
        let cmd = Cli::command();
        for id in CONFIGURATION_FLAGS {
            assert!(
                cmd.get_arguments().any(|a| a.get_id() == *id),
                "{id} is not an argument of RslFlags"
            );
        }
        let given = |args: &[&str]| {
            let m = Cli::command().get_matches_from(args);
            configuration_given(&m)
        };
        assert!(!given(&["x"]));
        assert!(!given(&[
            "x",
            "--threads",
            "1",
            "--mutation",
            "execute-twice"
        ]));
        assert!(!given(&["x", "--reduction", "view", "--stop-on-violation"]));
        assert!(given(&["x", "--replicas", "3"]));
        assert!(given(&["x", "--max-view-changes", "1"]));
        assert!(given(&["x", "--lossy"]));
        assert!(given(&["x", "--liveness"]));
        assert!(given(&["x", "--engine", "stateright"]));
    }

    #[test]
    fn every_phase_is_a_valid_configuration() {
        let base = Cli::try_parse_from(["x"]).unwrap().flags;
        for p in phases() {
            let f = p.flags(&base);
            f.model_cfg()
                .unwrap_or_else(|e| panic!("{}: {e:#}", p.what));
        }
    }
}
