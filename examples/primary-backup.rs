//! Bring your own actors: a primary-backup register, written here and not part of IronFleet,
//! run three ways with a few lines of glue each:
//!
//! ```sh
//! cargo run --release --example primary-backup -- check                 # exhaustive model check
//! cargo run --release --example primary-backup -- sim --seeds 0..500    # deterministic simulation
//! cargo run --release --example primary-backup -- udp                   # over UDP on loopback
//! cargo run --release --example primary-backup -- --ack-early check     # a broken variant, caught
//! ```
//!
//! The protocol: clients send `Put`s and `Get`s to the primary; the primary gives each write a
//! sequence number, replicates it to the backup, and applies and acknowledges it only when the
//! backup confirmed it (both store what they applied before they answer). Reads are answered by
//! the primary from what it applied. The property: everything the primary applied is on the
//! backup. `--ack-early` applies and acknowledges before the backup confirmed.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ironfleet::check::run::{run, Mode, RunOptions};
use ironfleet::cmd::sim::{sim_main, SimFlags};
use ironfleet::net::runtime::{bind_udp, run_actor, Counters, RuntimeConfig};
use ironfleet::net::storage::{StorageFile, Store};
use ironfleet::sim::disk::SimFs;
use ironfleet::sim::faults::FaultKind;
use ironfleet::sim::history::SeqSpec;
use ironfleet::sim::world::SimSystem;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, ActorModel, Id, Network, Out};
use stateright::{Expectation, Model};

/// A client's operation on the register.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
enum RegOp {
    Put(u64),
    Get,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
enum PbMsg {
    Put { id: u64, value: u64 },
    Get { id: u64 },
    PutOk { id: u64 },
    GetOk { id: u64, value: u64 },
    Replicate { seq: u64, value: u64 },
    ReplicateOk { seq: u64 },
}

impl fmt::Display for PbMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum PbTimer {
    Retransmit,
}

/// What the primary and the backup keep on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Durable {
    seq: u64,
    value: u64,
    /// The last write acknowledged per client (so a retransmitted one is not applied again).
    done: BTreeMap<Id, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Pb {
    Primary {
        backup: Id,
        ack_early: bool,
        retransmit: bool,
    },
    Backup,
    Client {
        primary: Id,
        ops: Arc<Vec<RegOp>>,
        /// Resend on a timer (always at run time; a model on a duplicating network redelivers
        /// instead, which keeps it finite).
        retransmit: bool,
        /// The id of the first operation. A client restarted on the address of an earlier one
        /// must start above every id that one used, or the primary takes its new writes for old
        /// ones it already applied and acknowledges them unapplied (found by the simulator's
        /// client restarts). The simulated client starts at its clock.
        first_id: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum PbState {
    Primary {
        d: Durable,
        /// The write being replicated: (client, id, value, seq).
        pending: Option<(Id, u64, u64, u64)>,
    },
    Backup(Durable),
    Client {
        next: usize,
        answers: Vec<u64>,
    },
}

const RETRANSMIT: Duration = Duration::from_millis(50);

impl Pb {
    fn request(ops: &[RegOp], first_id: u64, next: usize) -> Option<PbMsg> {
        let id = first_id + next as u64;
        ops.get(next).map(|op| match op {
            RegOp::Put(value) => PbMsg::Put { id, value: *value },
            RegOp::Get => PbMsg::Get { id },
        })
    }
}

impl Actor for Pb {
    type Msg = PbMsg;
    type Timer = PbTimer;
    type State = PbState;
    type Storage = Durable;
    type Random = ();

    fn on_start(&self, _: Id, storage: &Option<Durable>, o: &mut Out<Self>) -> PbState {
        let d = storage.clone().unwrap_or_default();
        match self {
            Pb::Primary { .. } => PbState::Primary { d, pending: None },
            Pb::Backup => PbState::Backup(d),
            Pb::Client {
                primary,
                ops,
                retransmit,
                first_id,
            } => {
                if let Some(m) = Self::request(ops, *first_id, 0) {
                    o.send(*primary, m);
                    if *retransmit {
                        o.set_timer(PbTimer::Retransmit, RETRANSMIT..RETRANSMIT);
                    }
                }
                PbState::Client {
                    next: 0,
                    answers: Vec::new(),
                }
            }
        }
    }

    fn on_msg(&self, _: Id, state: &mut Cow<PbState>, src: Id, msg: PbMsg, o: &mut Out<Self>) {
        match (self, state.to_mut(), msg) {
            (
                Pb::Primary {
                    backup,
                    ack_early,
                    retransmit,
                },
                PbState::Primary { d, pending },
                PbMsg::Put { id, value },
            ) => {
                if d.done.get(&src).is_some_and(|&done| done >= id) {
                    o.send(src, PbMsg::PutOk { id }); // a retransmission: already applied
                } else if pending.is_none() {
                    let seq = d.seq + 1;
                    *pending = Some((src, id, value, seq));
                    o.send(*backup, PbMsg::Replicate { seq, value });
                    if *retransmit {
                        o.set_timer(PbTimer::Retransmit, RETRANSMIT..RETRANSMIT);
                    }
                    if *ack_early {
                        d.seq = seq;
                        d.value = value;
                        o.save(d.clone());
                        o.send(src, PbMsg::PutOk { id });
                    }
                } // else busy: the client retransmits
            }
            (Pb::Primary { .. }, PbState::Primary { d, pending }, PbMsg::ReplicateOk { seq }) => {
                if let Some((client, id, value, s)) = *pending {
                    if s == seq {
                        *pending = None;
                        d.seq = seq;
                        d.value = value;
                        d.done.insert(client, id);
                        o.save(d.clone());
                        o.send(client, PbMsg::PutOk { id });
                        o.cancel_timer(PbTimer::Retransmit);
                    }
                }
            }
            (Pb::Primary { .. }, PbState::Primary { d, .. }, PbMsg::Get { id }) => {
                o.send(src, PbMsg::GetOk { id, value: d.value });
            }
            (Pb::Backup, PbState::Backup(d), PbMsg::Replicate { seq, value }) => {
                if seq > d.seq {
                    d.seq = seq;
                    d.value = value;
                    o.save(d.clone());
                }
                if seq <= d.seq {
                    o.send(src, PbMsg::ReplicateOk { seq });
                }
            }
            (
                Pb::Client {
                    primary,
                    ops,
                    first_id,
                    ..
                },
                PbState::Client { next, answers },
                reply,
            ) => {
                let (id, answer) = match reply {
                    PbMsg::PutOk { id } => match ops.get(*next) {
                        Some(RegOp::Put(v)) => (id, *v),
                        _ => return,
                    },
                    PbMsg::GetOk { id, value } => (id, value),
                    _ => return,
                };
                if id != *first_id + *next as u64 || src != *primary {
                    return;
                }
                answers.push(answer);
                *next += 1;
                match Self::request(ops, *first_id, *next) {
                    Some(m) => o.send(*primary, m),
                    None => o.cancel_timer(PbTimer::Retransmit),
                }
            }
            _ => {}
        }
    }

    fn on_timeout(&self, _: Id, state: &mut Cow<PbState>, _: &PbTimer, o: &mut Out<Self>) {
        match (self, &**state) {
            (
                Pb::Primary { backup, .. },
                PbState::Primary {
                    pending: Some((_, _, value, seq)),
                    ..
                },
            ) => {
                o.send(
                    *backup,
                    PbMsg::Replicate {
                        seq: *seq,
                        value: *value,
                    },
                );
                o.set_timer(PbTimer::Retransmit, RETRANSMIT..RETRANSMIT);
            }
            (
                Pb::Client {
                    primary,
                    ops,
                    first_id,
                    ..
                },
                PbState::Client { next, .. },
            ) => {
                if let Some(m) = Self::request(ops, *first_id, *next) {
                    o.send(*primary, m);
                    o.set_timer(PbTimer::Retransmit, RETRANSMIT..RETRANSMIT);
                }
            }
            _ => {}
        }
    }
}

/// The property, on the states of the primary and the backup.
fn replicated(primary: &PbState, backup_seq: u64) -> Result<(), String> {
    match primary {
        PbState::Primary { d, .. } if d.seq > backup_seq => Err(format!(
            "the primary applied write {} but the backup has only {backup_seq}",
            d.seq
        )),
        _ => Ok(()),
    }
}

fn seq_of(s: &PbState) -> u64 {
    match s {
        PbState::Primary { d, .. } | PbState::Backup(d) => d.seq,
        PbState::Client { .. } => 0,
    }
}

/// The stateright model: two clients, one crash, a duplicating network.
fn model(ack_early: bool) -> ActorModel<Pb, (), ()> {
    let (p, b) = (Id::from(0usize), Id::from(1usize));
    ActorModel::new((), ())
        .actor(Pb::Primary {
            backup: b,
            ack_early,
            retransmit: false,
        })
        .actor(Pb::Backup)
        .actor(Pb::Client {
            primary: p,
            ops: Arc::new(vec![RegOp::Put(1), RegOp::Get]),
            retransmit: false,
            first_id: 1,
        })
        .actor(Pb::Client {
            primary: p,
            ops: Arc::new(vec![RegOp::Put(2)]),
            retransmit: false,
            first_id: 1,
        })
        .init_network(Network::new_unordered_duplicating([]))
        .max_crashes(1)
        .property(
            Expectation::Always,
            "applied writes are on the backup",
            |_, s| replicated(&s.actor_states[0], seq_of(&s.actor_states[1])).is_ok(),
        )
        .property(
            Expectation::Sometimes,
            "a write is acknowledged",
            |_, s| matches!(&*s.actor_states[2], PbState::Client { next, .. } if *next > 0),
        )
        .within_boundary(|_, s| s.crashed.iter().skip(2).all(|c| !c))
}

/// Glue 1: the model, checked by the project's engine.
fn check(ack_early: bool) -> i32 {
    let model = model(ack_early);
    let opts = RunOptions {
        mode: Mode::Bfs,
        stop_on_violation: ack_early,
        ..RunOptions::default()
    };
    let outcome = run(model.clone(), &opts, &mut std::io::stderr());
    let violated = ironfleet::check::report::print_report(
        &model,
        &outcome,
        "localhost:3000",
        &format!(
            "cargo run --release --example primary-backup -- {}explore",
            if ack_early { "--ack-early " } else { "" }
        ),
        &mut std::io::stdout(),
    );
    i32::from(violated)
}

/// Glue 2: what the simulator must know.
#[derive(Clone)]
struct PbSim {
    clients: usize,
    ack_early: bool,
}

struct Register;

impl SeqSpec for Register {
    type Op = RegOp;
    type Ret = u64;
    type State = u64;
    fn partition(_: &RegOp) -> u64 {
        0
    }
    fn init() -> u64 {
        0
    }
    fn step(s: &mut u64, op: &RegOp) -> u64 {
        if let RegOp::Put(v) = op {
            *s = *v;
        }
        *s
    }
}

impl SimSystem for PbSim {
    type Msg = PbMsg;
    type Timer = PbTimer;
    type Storage = Durable;
    type Actor = Pb;
    type Spec = Register;
    type Monitor = u64; // the backup's sequence number

    fn name(&self) -> &'static str {
        "primary-backup"
    }
    fn servers(&self) -> usize {
        2
    }
    fn clients(&self) -> usize {
        self.clients
    }
    fn fault_kinds(&self) -> Vec<FaultKind> {
        FaultKind::ALL
            .into_iter()
            .filter(|k| *k != FaultKind::DiskCorruption)
            .collect()
    }
    fn max_down(&self) -> usize {
        1
    }
    fn max_lost(&self) -> usize {
        0
    }
    fn draw_ops(&self, client: usize, n: usize, rng: &mut ChaCha8Rng) -> Vec<RegOp> {
        (0..n)
            .map(|i| {
                if rng.random_bool(0.5) {
                    RegOp::Put((client as u64 + 1) * 1_000_000 + i as u64)
                } else {
                    RegOp::Get
                }
            })
            .collect()
    }
    fn actor(&self, node: usize, start_us: u64, _variant: u64, ops: &Arc<Vec<RegOp>>) -> Pb {
        match node {
            0 => Pb::Primary {
                backup: Id::from(1usize),
                ack_early: self.ack_early,
                retransmit: true,
            },
            1 => Pb::Backup,
            _ => Pb::Client {
                primary: Id::from(0usize),
                ops: ops.clone(),
                retransmit: true,
                first_id: start_us.max(1),
            },
        }
    }
    fn accept_from_stranger(&self) -> fn(&PbMsg) -> bool {
        |m| matches!(m, PbMsg::Put { .. } | PbMsg::Get { .. })
    }
    fn store(&self, fs: Arc<SimFs>, node: usize) -> (Box<dyn Store<Durable>>, PathBuf) {
        // The storage file the UDP runtime would use, on the simulated disk.
        let path = PathBuf::from(format!("/sim/pb-{node}.storage"));
        let file = StorageFile::on(fs, path.clone(), format!("pb {node}"));
        (Box::new(file), path)
    }
    fn client_progress(&self, actor: &Pb, s: &PbState) -> (usize, usize, bool) {
        match (actor, s) {
            (Pb::Client { ops, .. }, PbState::Client { next, answers }) => (
                (*next + 1).min(ops.len()),
                answers.len(),
                *next >= ops.len(),
            ),
            _ => (0, 0, true),
        }
    }
    fn client_answer(&self, s: &PbState, k: usize) -> u64 {
        match s {
            PbState::Client { answers, .. } => answers[k],
            _ => 0,
        }
    }
    fn monitor(&self) -> u64 {
        0
    }
    fn check_state(&self, backup_seq: &mut u64, node: usize, s: &PbState) -> Result<(), String> {
        match node {
            1 => {
                *backup_seq = seq_of(s);
                Ok(())
            }
            0 => replicated(s, *backup_seq),
            _ => Ok(()),
        }
    }
    fn check_send(&self, _: &mut u64, _: usize, _: usize, _: &PbMsg) -> Result<(), String> {
        Ok(())
    }
    fn milestones(&self, backup_seq: &u64) -> Vec<(&'static str, u64)> {
        vec![("writes on the backup", *backup_seq)]
    }
}

/// Glue 3: the same actors over UDP on loopback, through the project's runtime.
fn udp() -> anyhow::Result<i32> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let any: SocketAddrV4 = "127.0.0.1:0".parse()?;
        let sockets = [bind_udp(any)?, bind_udp(any)?, bind_udp(any)?];
        let addr = |i: usize| match sockets[i].local_addr() {
            Ok(SocketAddr::V4(a)) => Ok(a),
            other => anyhow::bail!("not an IPv4 socket: {other:?}"),
        };
        let (p, b, c) = (addr(0)?, addr(1)?, addr(2)?);
        let ops = Arc::new(vec![RegOp::Put(7), RegOp::Get, RegOp::Put(8), RegOp::Get]);
        let actors = [
            Pb::Primary {
                backup: Id::from(b),
                ack_early: false,
                retransmit: true,
            },
            Pb::Backup,
            Pb::Client {
                primary: Id::from(p),
                ops: ops.clone(),
                retransmit: true,
                first_id: 1,
            },
        ];
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        for (i, (actor, socket)) in actors.into_iter().zip(sockets).enumerate() {
            let done = done_tx.clone();
            let n = ops.len();
            let cfg = RuntimeConfig::<Pb> {
                peers: if i < 2 { vec![p, b] } else { vec![] },
                key: None,
                accept_from_stranger: if i < 2 {
                    |m| matches!(m, PbMsg::Put { .. } | PbMsg::Get { .. })
                } else {
                    |_| true
                },
                storage: None,
                init: false,
                seed: i as u64,
                observe: Some(Box::new(move |s: &PbState| {
                    if let PbState::Client { answers, .. } = s {
                        if answers.len() == n {
                            let _ = done.send(answers.clone());
                        }
                    }
                })),
            };
            tokio::spawn(run_actor(
                actor,
                socket,
                cfg,
                Arc::new(Counters::default()),
                stop_rx.clone(),
            ));
        }
        let answers = tokio::time::timeout(Duration::from_secs(5), done_rx.recv())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the client stopped"))?;
        let _ = stop_tx.send(true);
        println!("primary {p}, backup {b}, client {c}");
        for (op, a) in ops.iter().zip(&answers) {
            println!("  {op:?} -> {a}");
        }
        let expected = [7, 7, 8, 8];
        Ok(if answers == expected { 0 } else { 1 })
    })
}

#[derive(Parser)]
#[command(about = "A primary-backup register under check, sim and UDP")]
struct Cli {
    /// The broken variant: acknowledge a write before the backup has it.
    #[arg(long, global = true)]
    ack_early: bool,
    #[command(subcommand)]
    how: How,
}

#[derive(Subcommand)]
enum How {
    /// Model check two clients and one crash.
    Check,
    /// Open the model in stateright's explorer on localhost:3000.
    Explore,
    /// Simulate (three clients).
    Sim(SimFlags),
    /// Run over UDP on loopback.
    Udp,
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.how {
        How::Check => Ok(check(cli.ack_early)),
        How::Explore => {
            model(cli.ack_early).checker().serve("localhost:3000");
            Ok(0)
        }
        How::Sim(flags) => {
            let sys = PbSim {
                clients: 3,
                ack_early: cli.ack_early,
            };
            let title = format!(
                "primary-backup simulation{}",
                if cli.ack_early { ", ack-early" } else { "" }
            );
            sim_main(&sys, &title, &flags)
        }
        How::Udp => udp(),
    };
    match code {
        Ok(c) => std::process::exit(c),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
