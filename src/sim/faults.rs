//! What can go wrong in a simulated run, drawn from the seed: the fault *mix* (which kinds are
//! on, at what rates: swarm testing, so that seeds explore different mixes, as TigerBeetle's
//! VOPR does) and the fault *schedule* (the timed events: crashes, partitions, pauses, clock
//! jumps, lost disks), drawn up front so that shrinking can remove them one by one.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The kinds of fault the simulator injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FaultKind {
    /// Datagrams lost.
    Loss,
    /// Datagrams delivered twice.
    Duplication,
    /// Latency spread wide enough to reorder datagrams on a link.
    Reordering,
    /// A byte of a datagram flipped (the codec or the MAC must reject it).
    Corruption,
    /// Links cut, symmetric or one way, and nodes isolated.
    Partition,
    /// A server process crashes and restarts from its storage later.
    Crash,
    /// A process stops taking events for a while (a GC pause, a stopped VM).
    Pause,
    /// Node clocks run at different rates and jump forward.
    Clock,
    /// A storage write fails (EIO, ENOSPC): the process must stop before its messages leave.
    DiskError,
    /// A server's storage is found corrupt when it restarts: it must refuse to start.
    DiskCorruption,
    /// A client process restarts as a new incarnation on the same address, abandoning the
    /// operation it was waiting for.
    ClientRestart,
    /// Some server crashes come as a power cut in the middle of a storage write: what was not
    /// synced is lost and the write may be torn (see `sim::disk`).
    TornWrite,
}

impl FaultKind {
    /// Every kind, in order.
    pub const ALL: [FaultKind; 12] = [
        FaultKind::Loss,
        FaultKind::Duplication,
        FaultKind::Reordering,
        FaultKind::Corruption,
        FaultKind::Partition,
        FaultKind::Crash,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::DiskError,
        FaultKind::DiskCorruption,
        FaultKind::ClientRestart,
        FaultKind::TornWrite,
    ];

    /// The name used by `--faults`.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Loss => "loss",
            FaultKind::Duplication => "dup",
            FaultKind::Reordering => "reorder",
            FaultKind::Corruption => "corrupt",
            FaultKind::Partition => "partition",
            FaultKind::Crash => "crash",
            FaultKind::Pause => "pause",
            FaultKind::Clock => "clock",
            FaultKind::DiskError => "disk-error",
            FaultKind::DiskCorruption => "disk-corrupt",
            FaultKind::ClientRestart => "client-restart",
            FaultKind::TornWrite => "torn-write",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown fault kind {s:?} (known: {})", names.join(", "))
            })
    }
}

/// Which fault kinds are on and at what rates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultMix {
    /// The kinds switched on.
    pub kinds: Vec<FaultKind>,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub duplication: f64,
    /// Probability that a datagram has a byte flipped.
    pub corruption: f64,
    /// Probability that a storage write fails.
    pub disk_error: f64,
    /// Base one-way latency, microseconds.
    pub latency_us: u64,
    /// Latency spread (uniform on top of the base), microseconds: wide spreads reorder.
    pub jitter_us: u64,
    /// Mean time between scheduled faults (crashes, partitions, pauses, clock jumps), ms.
    pub mean_gap_ms: u64,
    /// Largest clock drift, parts per million.
    pub drift_ppm: u64,
    /// Probability that a server crash is a power cut inside its next storage write.
    #[serde(default)]
    pub torn_write: f64,
}

impl FaultMix {
    /// Whether `kind` is on.
    pub fn has(&self, kind: FaultKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// No faults at all: a clean network, nothing crashes.
    pub fn none() -> Self {
        FaultMix {
            kinds: Vec::new(),
            loss: 0.0,
            duplication: 0.0,
            corruption: 0.0,
            disk_error: 0.0,
            latency_us: 200,
            jitter_us: 100,
            mean_gap_ms: 1_000,
            drift_ppm: 0,
            torn_write: 0.0,
        }
    }

    /// Draws a mix from `seed`: each kind in `allowed` is on with probability one half (or every
    /// kind in `pinned`, if given), and rates are drawn per kind (swarm testing).
    pub fn draw(seed: u64, allowed: &[FaultKind], pinned: Option<&[FaultKind]>) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5357_4152_4d00_0000);
        // Client restarts and torn writes came last: their coins are drawn after everything
        // else, so that the other kinds and rates of a seed are what they were before.
        let mut kinds: Vec<FaultKind> = match pinned {
            Some(p) => p.iter().copied().filter(|k| allowed.contains(k)).collect(),
            None => allowed
                .iter()
                .copied()
                .filter(|k| *k != FaultKind::ClientRestart && *k != FaultKind::TornWrite)
                .filter(|_| rng.random_bool(0.5))
                .collect(),
        };
        let on = |k| kinds.contains(&k);
        let rate = |rng: &mut ChaCha8Rng, k, lo: f64, hi: f64| {
            if on(k) {
                rng.random_range(lo..hi)
            } else {
                0.0
            }
        };
        let loss = rate(&mut rng, FaultKind::Loss, 0.01, 0.2);
        let duplication = rate(&mut rng, FaultKind::Duplication, 0.01, 0.2);
        let corruption = rate(&mut rng, FaultKind::Corruption, 0.001, 0.05);
        let disk_error = rate(&mut rng, FaultKind::DiskError, 0.0005, 0.01);
        let latency_us = rng.random_range(50..2_000);
        let jitter_us = if on(FaultKind::Reordering) {
            rng.random_range(1_000..20_000)
        } else {
            latency_us / 4
        };
        let mean_gap_ms = rng.random_range(100..1_500);
        let drift_ppm = if on(FaultKind::Clock) {
            rng.random_range(100..100_000)
        } else {
            0
        };
        if pinned.is_none() && allowed.contains(&FaultKind::ClientRestart) && rng.random_bool(0.5) {
            kinds.push(FaultKind::ClientRestart);
        }
        if pinned.is_none() && allowed.contains(&FaultKind::TornWrite) && rng.random_bool(0.5) {
            kinds.push(FaultKind::TornWrite);
        }
        let torn_write = if kinds.contains(&FaultKind::TornWrite) {
            rng.random_range(0.2..0.8)
        } else {
            0.0
        };
        FaultMix {
            kinds,
            loss,
            duplication,
            corruption,
            disk_error,
            latency_us,
            jitter_us,
            mean_gap_ms,
            drift_ppm,
            torn_write,
        }
    }
}

/// One scheduled fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultEvent {
    /// Server `node` crashes and restarts `down_ms` later.
    Crash {
        /// The server.
        node: usize,
        /// How long it stays down.
        down_ms: u64,
    },
    /// Links from every node of `a` to every node of `b` (and back, if `symmetric`) are cut
    /// for `for_ms`.
    Partition {
        /// One side.
        a: Vec<usize>,
        /// The other side.
        b: Vec<usize>,
        /// Both directions, or only from `a` to `b`.
        symmetric: bool,
        /// How long.
        for_ms: u64,
    },
    /// `node` takes no events for `for_ms` (what arrives waits).
    Pause {
        /// The node.
        node: usize,
        /// How long.
        for_ms: u64,
    },
    /// `node`'s clock jumps forward by `ms`.
    ClockJump {
        /// The node.
        node: usize,
        /// How far.
        ms: u64,
    },
    /// Server `node` crashes and its storage is found corrupt: it must refuse to restart.
    LoseDisk {
        /// The server.
        node: usize,
    },
    /// Client `client` (an index among clients) restarts as a new incarnation.
    RestartClient {
        /// The client.
        client: usize,
    },
}

impl FaultEvent {
    /// The kind of fault this is.
    pub fn kind(&self) -> FaultKind {
        match self {
            FaultEvent::Crash { .. } => FaultKind::Crash,
            FaultEvent::Partition { .. } => FaultKind::Partition,
            FaultEvent::Pause { .. } => FaultKind::Pause,
            FaultEvent::ClockJump { .. } => FaultKind::Clock,
            FaultEvent::LoseDisk { .. } => FaultKind::DiskCorruption,
            FaultEvent::RestartClient { .. } => FaultKind::ClientRestart,
        }
    }
}

/// A fault at a virtual time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    /// When, in virtual microseconds from the start.
    pub at_us: u64,
    /// What.
    pub event: FaultEvent,
}

/// Draws the schedule of `mix` over `duration_ms` for `servers` servers and `nodes` nodes.
pub fn draw_schedule(
    seed: u64,
    mix: &FaultMix,
    servers: usize,
    nodes: usize,
    duration_ms: u64,
) -> Vec<Scheduled> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5343_4845_4400_0000);
    let kinds: Vec<FaultKind> = [
        FaultKind::Crash,
        FaultKind::Partition,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::DiskCorruption,
        FaultKind::ClientRestart,
    ]
    .into_iter()
    .filter(|k| mix.has(*k))
    .filter(|k| *k != FaultKind::ClientRestart || nodes > servers)
    .collect();
    let mut out = Vec::new();
    if kinds.is_empty() || servers == 0 || nodes == 0 {
        return out;
    }
    let mut t_us = 0u64;
    loop {
        t_us += rng.random_range(1..=2 * mix.mean_gap_ms.max(1)) * 1_000;
        if t_us >= duration_ms * 1_000 {
            break;
        }
        let kind = kinds[rng.random_range(0..kinds.len())];
        let ms = |rng: &mut ChaCha8Rng| rng.random_range(10..=2 * mix.mean_gap_ms.max(10));
        let event = match kind {
            FaultKind::Crash => FaultEvent::Crash {
                node: rng.random_range(0..servers),
                down_ms: ms(&mut rng),
            },
            FaultKind::Partition => {
                let mut a = Vec::new();
                let mut b = Vec::new();
                if rng.random_bool(0.3) {
                    // Isolate one node.
                    let n = rng.random_range(0..nodes);
                    a.push(n);
                    b.extend((0..nodes).filter(|&m| m != n));
                } else {
                    for n in 0..nodes {
                        if rng.random_bool(0.5) {
                            a.push(n)
                        } else {
                            b.push(n)
                        }
                    }
                }
                FaultEvent::Partition {
                    a,
                    b,
                    symmetric: rng.random_bool(0.7),
                    for_ms: ms(&mut rng),
                }
            }
            FaultKind::Pause => FaultEvent::Pause {
                node: rng.random_range(0..nodes),
                for_ms: ms(&mut rng),
            },
            FaultKind::Clock => FaultEvent::ClockJump {
                node: rng.random_range(0..nodes),
                ms: ms(&mut rng),
            },
            FaultKind::ClientRestart => FaultEvent::RestartClient {
                client: rng.random_range(0..nodes - servers),
            },
            _ => FaultEvent::LoseDisk {
                node: rng.random_range(0..servers),
            },
        };
        out.push(Scheduled { at_us: t_us, event });
    }
    out
}

/// Parses `--faults`: `all`, `none`, or a comma-separated list of kinds.
pub fn parse_kinds(s: &str) -> Result<Vec<FaultKind>, String> {
    match s {
        "all" => Ok(FaultKind::ALL.to_vec()),
        "none" | "" => Ok(Vec::new()),
        _ => s.split(',').map(|k| k.trim().parse()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_and_a_schedule_are_functions_of_the_seed() {
        let a = FaultMix::draw(7, &FaultKind::ALL, None);
        let b = FaultMix::draw(7, &FaultKind::ALL, None);
        assert_eq!(a, b);
        assert_eq!(
            draw_schedule(7, &a, 3, 5, 5_000),
            draw_schedule(7, &b, 3, 5, 5_000)
        );
        // Swarm: different seeds switch different kinds on.
        let mixes: std::collections::BTreeSet<Vec<FaultKind>> = (0..50)
            .map(|s| FaultMix::draw(s, &FaultKind::ALL, None).kinds)
            .collect();
        assert!(mixes.len() > 20, "{} mixes", mixes.len());
    }

    #[test]
    fn pinned_kinds_are_the_ones_on_and_unknown_names_are_refused() {
        let kinds = parse_kinds("loss,crash").unwrap();
        let m = FaultMix::draw(1, &FaultKind::ALL, Some(&kinds));
        assert_eq!(m.kinds, kinds);
        assert!(m.loss > 0.0 && m.duplication == 0.0);
        let e = parse_kinds("loss,flood").unwrap_err();
        assert!(e.contains("flood") && e.contains("partition"), "{e}");
    }
}
