//! Shrinking a failing case: delta debugging over the scheduled faults, then fewer operations
//! per client, then the per-datagram fault kinds switched off one by one, then a shorter fault
//! phase. Every candidate is run again from the same seed; it is kept only if it still fails
//! the same way (same kind of failure) in no more events than the case it replaces, so the
//! shrunk run is never longer. Each run is deterministic, so the result replays.

use super::faults::FaultKind;
use super::world::{run, FailureKind, Observe, SimCase, SimOutcome, SimSystem};

/// A shrunk case and how it was found.
pub struct Shrunk {
    /// The smallest failing case found.
    pub case: SimCase,
    /// Its run.
    pub outcome: SimOutcome,
    /// Candidates run.
    pub tries: usize,
}

/// Shrinks `case`, which fails with `kind`, running at most `budget` candidates.
pub fn shrink<S>(sys: &S, case: &SimCase, kind: FailureKind, budget: usize) -> Shrunk
where
    S: SimSystem,
{
    let mut tries = 0;
    let mut best = case.clone();
    let mut best_out = run(sys, &best, &mut Observe::default());
    let attempt = |c: &SimCase, tries: &mut usize, best: &SimOutcome| -> Option<SimOutcome> {
        if *tries >= budget {
            return None;
        }
        *tries += 1;
        let out = run(sys, c, &mut Observe::default());
        (out.failure.as_ref().map(|f| f.kind) == Some(kind) && out.events <= best.events)
            .then_some(out)
    };
    // 1. Delta debugging over the schedule.
    let mut n = 2usize;
    while !best.schedule.is_empty() && tries < budget {
        let len = best.schedule.len();
        let chunk = len.div_ceil(n);
        let mut reduced = false;
        for i in 0..n.min(len.div_ceil(chunk)) {
            let mut c = best.clone();
            let lo = i * chunk;
            let hi = (lo + chunk).min(len);
            c.schedule.drain(lo..hi);
            if let Some(o) = attempt(&c, &mut tries, &best_out) {
                best = c;
                best_out = o;
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if n >= len {
                break;
            }
            n = (n * 2).min(len);
        }
    }
    // 2. Fewer operations per client.
    while best.ops > 1 && tries < budget {
        let mut c = best.clone();
        c.ops = best.ops / 2;
        match attempt(&c, &mut tries, &best_out) {
            Some(o) => {
                best = c;
                best_out = o;
            }
            None => break,
        }
    }
    // 3. Per-datagram faults off, one kind at a time.
    for k in [
        FaultKind::Loss,
        FaultKind::Duplication,
        FaultKind::Corruption,
        FaultKind::Reordering,
        FaultKind::Clock,
        FaultKind::DiskError,
    ] {
        if !best.mix.has(k) {
            continue;
        }
        let mut c = best.clone();
        c.mix.kinds.retain(|x| *x != k);
        match k {
            FaultKind::Loss => c.mix.loss = 0.0,
            FaultKind::Duplication => c.mix.duplication = 0.0,
            FaultKind::Corruption => c.mix.corruption = 0.0,
            FaultKind::Reordering => c.mix.jitter_us = c.mix.latency_us / 4,
            FaultKind::Clock => c.mix.drift_ppm = 0,
            _ => c.mix.disk_error = 0.0,
        }
        if let Some(o) = attempt(&c, &mut tries, &best_out) {
            best = c;
            best_out = o;
        }
    }
    // 4. A shorter fault phase.
    while best.duration_ms > 10 && tries < budget {
        let mut c = best.clone();
        c.duration_ms = best.duration_ms / 2;
        c.schedule.retain(|s| s.at_us < c.duration_ms * 1_000);
        match attempt(&c, &mut tries, &best_out) {
            Some(o) => {
                best = c;
                best_out = o;
            }
            None => break,
        }
    }
    Shrunk {
        case: best,
        outcome: best_out,
        tries,
    }
}
