//! The IronKV model: its configuration, the recorders that keep the ghost history, the
//! model-only switches derived from the network, and every property registered by name.

use std::borrow::Cow;
use std::sync::Arc;

use stateright::actor::{Actor, ActorModel, Envelope, Id, Out};
use stateright::semantics::ConsistencyTester;
use stateright::Property;

use super::{lossy_network, with_properties, NetworkKind};
use crate::actors::kv::{
    ClientOp, Host, HostConfig, HostSave, Key, KeyRange, KvClient, KvClientConfig, KvModelSwitches,
    KvMsg, KvMutation, KvNode, KvParams, KvPayload, Persistence,
};
use crate::invariants::kv::{self as inv, KvGhost, KvHistory, KvState, TableOp};
use crate::liveness::kv as live;
use crate::liveness::LivenessProperty;

/// An IronKV model's configuration.
#[derive(Clone, Debug)]
pub struct KvModelCfg {
    /// Hosts (`0` is the root).
    pub hosts: usize,
    /// Each client's operations (one client per entry).
    pub clients: Vec<Vec<ClientOp>>,
    /// Keys `0..keys` (as decimal strings) are in play; single ownership is checked at them and
    /// at every range boundary.
    pub keys: u64,
    /// Network semantics.
    pub network: NetworkKind,
    /// Whether the network may drop messages.
    pub lossy: bool,
    /// Protocol parameters.
    pub params: KvParams,
    /// Redirects a client follows for one operation before it gives up
    /// ([`KvModelSwitches::max_redirects`]).
    pub max_redirects: u32,
    /// A deliberately broken variant, or `None`.
    pub mutation: Option<KvMutation>,
    /// How many hosts may be down at once. A crashed host restarts from what it stored (a
    /// snapshot after every step that changed it: see [`Persistence::Snapshots`]).
    pub max_crashes: usize,
    /// At most this many crashes over a whole run, of all hosts together; `None`: any number,
    /// `max_crashes` at a time. As in the RSL model (`RslModelCfg::max_total_crashes`): hosts
    /// count their restarts in a ghost of their storage and the boundary adds those down.
    pub max_total_crashes: Option<usize>,
    /// Whether hosts sweep idle client channels on a timer (as at run time); off by default,
    /// since the sweep timer multiplies the states ([`KvModelSwitches::idle_sweep`]).
    pub idle_sweep: bool,
}

impl KvModelCfg {
    /// The small configuration the examples start from: 2 hosts; one client writes key 1 then
    /// reads it; an admin moves keys `1..` from the root to host 1 meanwhile.
    pub fn small() -> Self {
        KvModelCfg {
            hosts: 2,
            clients: vec![
                vec![
                    ClientOp::Set(Key::from(1), Some(b"a".to_vec())),
                    ClientOp::Get(Key::from(1)),
                ],
                vec![ClientOp::Shard {
                    range: KeyRange::new(1, None),
                    from: 0,
                    to: 1,
                }],
            ],
            keys: 2,
            network: NetworkKind::Duplicating,
            lossy: false,
            params: KvParams {
                max_delegations: 8,
                max_unacked: 8,
                ..KvParams::default()
            },
            max_redirects: 2,
            mutation: None,
            max_crashes: 0,
            max_total_crashes: None,
            idle_sweep: false,
        }
    }

    /// The model-only switches of this configuration: the one place they are derived. No
    /// retransmission where the network redelivers every message for ever (a message once sent
    /// can be delivered again at any time there: retransmission adds nothing).
    pub fn switches(&self) -> KvModelSwitches {
        KvModelSwitches {
            retransmit: !self.network.redelivers_for_ever(self.lossy),
            max_redirects: Some(self.max_redirects),
            idle_sweep: self.idle_sweep,
            counts_restarts: self.max_total_crashes.is_some(),
            mutation: self.mutation,
        }
    }

    /// How hosts store their state: only models with crashes pay for it.
    pub fn persistence(&self) -> Persistence {
        if self.max_crashes > 0 {
            Persistence::Snapshots
        } else {
            Persistence::Off
        }
    }

    fn is_client(&self, id: Id) -> bool {
        let i = usize::from(id);
        i >= self.hosts && i < self.hosts + self.clients.len()
    }
}

/// The model type of IronKV.
pub type KvModel = ActorModel<KvNode, KvModelCfg, KvHistory>;

/// Every property of the KV model, each under its name with its predicate, in report order. A
/// `sometimes` property that the configuration excludes by construction is left out.
pub fn kv_properties(cfg: &KvModelCfg) -> Vec<Property<KvModel>> {
    let mut p = vec![
        Property::always("one hash table", |m: &KvModel, s: &KvState| {
            inv::one_hash_table(m.cfg.hosts, s)
        }),
        Property::always("every key owned once", |m: &KvModel, s: &KvState| {
            inv::every_key_owned_once(m.cfg.hosts, m.cfg.keys, s)
        }),
        Property::always("exactly once, in order", |_: &KvModel, s: &KvState| {
            inv::exactly_once_in_order(s)
        }),
        Property::always("linearizable", |_: &KvModel, s: &KvState| {
            inv::linearizable(s)
        }),
        Property::always("delegation maps bounded", |m: &KvModel, s: &KvState| {
            inv::delegation_bounded(m.cfg.hosts, m.cfg.params.max_delegations, s)
        }),
        Property::sometimes("a redirect is followed", |_: &KvModel, s: &KvState| {
            s.actor_states
                .iter()
                .any(|a| a.client().is_some_and(|c| c.followed_redirect))
        }),
        Property::sometimes("a range moves with its data", |m: &KvModel, s: &KvState| {
            inv::hosts(m.cfg.hosts, s).any(|(_, h)| h.milestones.received_data)
        }),
        Property::sometimes("a duplicate is ignored", |m: &KvModel, s: &KvState| {
            inv::hosts(m.cfg.hosts, s).any(|(_, h)| h.milestones.ignored_duplicate)
        }),
        Property::sometimes("every client is answered", |m: &KvModel, s: &KvState| {
            live::all_clients_done(m.cfg.hosts, &m.cfg.clients, s)
        }),
        Property::eventually(live::EVERY_REQUEST_ANSWERED, |m: &KvModel, s: &KvState| {
            live::answered_or_bound_spent(m.cfg.hosts, &m.cfg.clients, s)
        }),
    ];
    if cfg.clients.len() > cfg.params.max_client_channels || cfg.idle_sweep {
        p.push(Property::sometimes(
            "a client channel is closed",
            |m: &KvModel, s: &KvState| {
                inv::hosts(m.cfg.hosts, s).any(|(_, h)| h.milestones.closed_channel)
            },
        ));
        p.push(Property::sometimes(
            "a closed client is refused",
            |m: &KvModel, s: &KvState| {
                inv::hosts(m.cfg.hosts, s).any(|(_, h)| h.milestones.refused_closed)
            },
        ));
    }
    p
}

/// The KV liveness properties for the lasso and bounded checkers. A continuation in which some
/// client gave up after the model's redirect bound is excused only if, throughout it, every
/// client that gave up would be answered by following the hosts' redirects
/// ([`live::gave_up_where_the_route_answers`]): the bound stopped it, not a redirect loop.
pub fn kv_liveness() -> Vec<LivenessProperty<KvModel>> {
    vec![
        LivenessProperty::eventually(live::EVERY_REQUEST_ANSWERED, |m: &KvModel, s: &KvState| {
            live::all_clients_done(m.cfg.hosts, &m.cfg.clients, s)
        })
        .unless_stuck_by_bound(|m: &KvModel, s: &KvState| {
            live::gave_up_where_the_route_answers(&m.actors, m.cfg.hosts, &m.cfg.clients, s)
        }),
        LivenessProperty::eventually(live::EVERYTHING_DELIVERED, |m: &KvModel, s: &KvState| {
            live::all_clients_done(m.cfg.hosts, &m.cfg.clients, s) && live::nothing_undelivered(s)
        })
        .unless_stuck_by_bound(|m: &KvModel, s: &KvState| {
            live::gave_up_where_the_route_answers(&m.actors, m.cfg.hosts, &m.cfg.clients, s)
                && live::nothing_undelivered(s)
        }),
    ]
}

/// Client `index`'s actor (the model's actors and the history recorder's mirror use the same).
fn client_actor(cfg: &KvModelCfg, index: usize) -> KvClient {
    KvClient::new(KvClientConfig {
        index,
        hosts: Arc::new((0..cfg.hosts).map(Id::from).collect()),
        ops: Arc::new(cfg.clients[index].clone()),
        epoch: 0,
        params: cfg.params.clone(),
        switches: cfg.switches(),
        give_up_ms: None,
    })
}

/// Builds the IronKV model: hosts `0..n`, clients after them.
pub fn kv_model(cfg: KvModelCfg) -> KvModel {
    let host_ids: Arc<Vec<Id>> = Arc::new((0..cfg.hosts).map(Id::from).collect());
    let switches = cfg.switches();
    let mut actors = Vec::new();
    for me in 0..cfg.hosts {
        actors.push(KvNode::Host(Host::new(HostConfig {
            hosts: host_ids.clone(),
            me,
            epoch: 0,
            params: cfg.params.clone(),
            switches: switches.clone(),
            persistence: cfg.persistence(),
        })));
    }
    for index in 0..cfg.clients.len() {
        actors.push(KvNode::Client(client_actor(&cfg, index)));
    }
    let network = cfg.network.network();
    let lossy = lossy_network(cfg.lossy);
    let crashes = cfg.max_crashes;
    let model = ActorModel::new(cfg, Arc::new(KvGhost::default()))
        .actors(actors)
        .init_network(network)
        .lossy_network(lossy)
        .max_crashes(crashes)
        .record_msg_out(record_out)
        .record_msg_in(record_in)
        .within_boundary(within_crash_bounds);
    let properties = kv_properties(&model.cfg);
    with_properties(model, properties)
}

/// Whether a state is inside the model's crash bounds ([`super::within_crash_bounds`]): only
/// hosts crash, and they count their restarts in the snapshots they save.
fn within_crash_bounds(cfg: &KvModelCfg, s: &KvState) -> bool {
    let restarts = s.actor_storages.iter().flatten().map(|save| match save {
        HostSave::Snapshot(st) => st.restarts,
        HostSave::Journal(_) => 0,
    });
    super::within_crash_bounds(&s.crashed, cfg.hosts, cfg.max_total_crashes, restarts)
}

fn record_out(cfg: &KvModelCfg, h: &KvHistory, env: Envelope<&KvMsg>) -> Option<KvHistory> {
    let KvMsg::Single { seqno, payload, .. } = env.msg else {
        return None;
    };
    if cfg.is_client(env.src) {
        let op = match payload {
            KvPayload::Get { key } => TableOp::Get(key.clone()),
            KvPayload::Set { key, value } => TableOp::Set(key.clone(), value.clone()),
            _ => return None,
        };
        let (inv, ret) = h.calls.get(&env.src).copied().unwrap_or((0, 0));
        if inv > ret {
            return None; // the same call, resent to the owner a redirect named
        }
        let mut n = (**h).clone();
        n.calls.insert(env.src, (inv + 1, ret));
        let _ = n.linearizability.on_invoke(env.src, op);
        return Some(Arc::new(n));
    }
    if cfg.is_client(env.dst) {
        let last = h.replies_out.get(&(env.src, env.dst)).copied().unwrap_or(0);
        if *seqno <= last {
            return None; // a retransmission
        }
        let mut n = (**h).clone();
        n.replies_out.insert((env.src, env.dst), *seqno);
        if let KvPayload::Reply {
            key,
            value,
            write: true,
        } = payload
        {
            match value {
                Some(v) => n.spec.insert(key.clone(), v.clone()),
                None => n.spec.remove(key),
            };
        }
        return Some(Arc::new(n));
    }
    None
}

/// A return is recorded when the client's own handler takes a reply as its answer: the ghost
/// keeps a mirror of each client's state, and every delivery to a client runs the client's own
/// `on_msg` on the mirror (SingleDelivery's in-order delivery, the match with the current
/// operation, redirects, a closed channel); a reply the client took is the return. The history
/// is what the client accepted, not what a correct client would have.
fn record_in(cfg: &KvModelCfg, h: &KvHistory, env: Envelope<&KvMsg>) -> Option<KvHistory> {
    if !cfg.is_client(env.dst) {
        return None;
    }
    let client = client_actor(cfg, usize::from(env.dst) - cfg.hosts);
    let started;
    let before = match h.clients.get(&env.dst) {
        Some(s) => &**s,
        None => {
            started = client.on_start(env.dst, &None, &mut Out::new());
            &started
        }
    };
    let mut after = Cow::Borrowed(before);
    client.on_msg(
        env.dst,
        &mut after,
        env.src,
        env.msg.clone(),
        &mut Out::new(),
    );
    let Cow::Owned(after) = after else {
        return None;
    };
    if after == *before {
        return None; // absent from the mirror stands for the initial state
    }
    let mut n = (**h).clone();
    if after.replies.len() > before.replies.len() {
        let value = after.replies.last().cloned().flatten();
        let (inv, ret) = n.calls.get(&env.dst).copied().unwrap_or((0, 0));
        n.calls.insert(env.dst, (inv, ret + 1));
        let _ = n.linearizability.on_return(env.dst, value);
    }
    n.clients.insert(env.dst, Arc::new(after));
    Some(Arc::new(n))
}
