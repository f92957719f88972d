//! IronLock in the simulator: a ring of nodes passing the lock, no clients. The monitor checks
//! mutual exclusion on every step (at most one node holds the lock at any instant of virtual
//! time) and that epochs only grow; the run ends when the lock reached the target epoch, which
//! it must within the liveness bound after the heal.
//!
//! IronLock keeps nothing on disk and never resends a transfer: a node that crashes forgets it
//! holds the lock, and a lost transfer loses the lock for ever. The faults drawn are therefore
//! those it is meant to survive: duplication, reordering, pauses and clocks.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use stateright::actor::Id;

use super::disk::SimFs;
use super::faults::FaultKind;
use super::history::SeqSpec;
use super::world::SimSystem;
use crate::actors::lock::{LockConfig, LockMsg, LockMutation, LockNode, LockState, LockTimer};
use crate::net::storage::{StorageFile, Store};

/// A ring to simulate.
#[derive(Clone, Debug)]
pub struct LockSim {
    /// Nodes in the ring.
    pub nodes: usize,
    /// How long a holder keeps the lock, ms.
    pub hold_ms: u64,
    /// The run ends when a node holds the lock in this epoch.
    pub target_epoch: u64,
    /// A protocol mutation, or `None`.
    pub mutation: Option<LockMutation>,
}

/// No client operations: the lock has no clients.
pub struct NoOps;

impl SeqSpec for NoOps {
    type Op = ();
    type Ret = ();
    type State = ();
    fn partition(_: &()) -> u64 {
        0
    }
    fn init() {}
    fn step(_: &mut (), _: &()) {}
}

/// What the lock monitor remembers.
#[derive(Default)]
pub struct LockMonitor {
    holders: BTreeSet<usize>,
    epochs: Vec<u64>,
    highest: u64,
}

impl SimSystem for LockSim {
    type Msg = LockMsg;
    type Timer = LockTimer;
    type Storage = ();
    type Actor = LockNode;
    type Spec = NoOps;
    type Monitor = LockMonitor;

    fn name(&self) -> &'static str {
        "lock"
    }

    fn servers(&self) -> usize {
        self.nodes
    }

    fn clients(&self) -> usize {
        0
    }

    fn fault_kinds(&self) -> Vec<FaultKind> {
        vec![
            FaultKind::Duplication,
            FaultKind::Reordering,
            FaultKind::Pause,
            FaultKind::Clock,
        ]
    }

    fn max_down(&self) -> usize {
        0
    }

    fn max_lost(&self) -> usize {
        0
    }

    fn draw_ops(&self, _: usize, _: usize, _: &mut ChaCha8Rng) -> Vec<()> {
        Vec::new()
    }

    fn actor(&self, node: usize, _start_us: u64, _variant: u64, _: &Arc<Vec<()>>) -> LockNode {
        LockNode::new(LockConfig {
            ring: Arc::new((0..self.nodes).map(Id::from).collect()),
            me: node,
            hold_ms: self.hold_ms,
            mutation: self.mutation,
        })
    }

    fn accept_from_stranger(&self) -> fn(&LockMsg) -> bool {
        |_| false
    }

    fn store(&self, fs: Arc<SimFs>, node: usize) -> (Box<dyn Store<()>>, PathBuf) {
        let path = PathBuf::from(format!("/sim/lock-{node}.storage"));
        let file = StorageFile::on(fs, path.clone(), format!("sim lock node {node}"));
        (Box::new(file), path)
    }

    fn client_progress(&self, _: &LockNode, _: &LockState) -> (usize, usize, bool) {
        (0, 0, true)
    }

    fn client_answer(&self, _: &LockState, _: usize) {}

    fn monitor(&self) -> LockMonitor {
        LockMonitor {
            epochs: vec![0; self.nodes],
            ..LockMonitor::default()
        }
    }

    fn check_state(&self, mon: &mut LockMonitor, node: usize, s: &LockState) -> Result<(), String> {
        if s.epoch < mon.epochs[node] {
            return Err(format!(
                "epoch went backwards: {} after {}",
                s.epoch, mon.epochs[node]
            ));
        }
        mon.epochs[node] = s.epoch;
        mon.highest = mon.highest.max(s.epoch);
        if s.held {
            mon.holders.insert(node);
        } else {
            mon.holders.remove(&node);
        }
        if mon.holders.len() > 1 {
            return Err(format!(
                "mutual exclusion: nodes {:?} hold the lock at once",
                mon.holders
            ));
        }
        Ok(())
    }

    fn check_send(
        &self,
        _: &mut LockMonitor,
        _: usize,
        _: usize,
        _: &LockMsg,
    ) -> Result<(), String> {
        Ok(())
    }

    fn milestones(&self, mon: &LockMonitor) -> Vec<(&'static str, u64)> {
        vec![("highest epoch", mon.highest)]
    }

    fn waiting_for(&self, mon: &LockMonitor, _: &[Option<&LockState>]) -> Option<String> {
        (mon.highest < self.target_epoch).then(|| {
            format!(
                "the lock reached epoch {} of {}",
                mon.highest, self.target_epoch
            )
        })
    }
}
