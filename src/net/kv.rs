//! IronKV over UDP: one host on its socket
//! ([`spawn_host`]), a whole cluster on loopback in one process ([`LocalKv`]), gauges that show a
//! running host's tables, and an async client ([`KvRemote`]) that speaks SingleDelivery, follows
//! redirects, caches owners and asks for shard moves.
//!

use std::collections::{BTreeMap, VecDeque};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use stateright::actor::Id;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::auth::ClusterKey;
use super::codec;
use super::config::{load_key, KvClusterConfig};
use super::runtime::{bind_udp, run_actor, Counters, RuntimeConfig};
use super::storage::{cluster_startup, prepare_storage, Startup, Store};
use crate::actors::kv::{
    Host, HostConfig, HostSave, HostState, Key, KeyRange, KvModelSwitches, KvMsg, KvPayload,
    Persistence, SingleDelivery, Value,
};

/// A running host's tables, updated after every step.
#[derive(Debug, Default)]
pub struct HostGauges {
    /// Pairs in this host's table.
    pub keys: AtomicU64,
    /// Ranges in its delegation map.
    pub ranges: AtomicU64,
    /// Ranges it believes it owns (refreshed every 256 steps).
    pub owned_ranges: AtomicU64,
    /// Peers (hosts and clients) it has a SingleDelivery channel with.
    pub channels: AtomicU64,
    /// Messages waiting for an ack (refreshed every 256 steps).
    pub unacked: AtomicU64,
}

impl HostGauges {
    /// Updates the gauges after step number `step`. The cheap ones every time; the two that
    /// walk the delegation map or every channel only every [`FULL_GAUGE_EVERY`] steps, so a
    /// host with many clients does not pay for them on every packet.
    fn update(&self, me: Id, s: &HostState, step: u64) {
        let set = |g: &AtomicU64, v: usize| g.store(v as u64, Ordering::Relaxed);
        set(&self.keys, s.table.len());
        set(&self.ranges, s.delegation.len());
        set(&self.channels, s.sd.send.len().max(s.sd.recv.len()));
        if step.is_multiple_of(FULL_GAUGE_EVERY) {
            set(&self.owned_ranges, s.delegation.count_owned_by(me));
            set(
                &self.unacked,
                s.sd.send.values().map(|c| c.unacked.len()).sum(),
            );
        }
    }

    /// The current values as JSON.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "keys": g(&self.keys),
            "ranges": g(&self.ranges),
            "owned_ranges": g(&self.owned_ranges),
            "channels": g(&self.channels),
            "unacked": g(&self.unacked),
        })
    }
}

/// How often (in steps) the gauges that cost a walk are refreshed.
pub(crate) const FULL_GAUGE_EVERY: u64 = 256;

/// What a running host exposes.
#[derive(Clone, Debug, Default)]
pub struct HostStats {
    /// Runtime counters (datagrams, drops, timers).
    pub counters: Arc<Counters>,
    /// Table gauges.
    pub gauges: Arc<HostGauges>,
}

impl HostStats {
    /// One JSON object with the host's index, counters and gauges.
    pub fn status_json(&self, id: usize) -> serde_json::Value {
        serde_json::json!({
            "host": id,
            "counters": self.counters.to_json(),
            "gauges": self.gauges.to_json(),
            "rss_kib": super::rsl::resident_kib(),
        })
    }
}

/// An epoch for a SingleDelivery that starts now: the wall clock in microseconds, shifted left
/// by 8 bits and completed with 8 random bits, so that a process that starts again (perhaps on a
/// port an earlier one used) is ordered after the old one, and two incarnations that read the
/// same clock value (a coarse clock) still differ but for a 1-in-256 chance. (The clock in
/// microseconds, as before, made two such incarnations equal: the new one's messages were acked
/// as duplicates and never delivered.) A durable host takes its epoch once, at `--init`, and keeps
/// it; a clock that goes backwards between two client incarnations on one address remains a
/// hazard (the new one is taken for a stale one until its epoch passes the old).
/// Within one process the epochs only grow (the bench and tests start many clients at once).
pub(crate) fn clock_epoch() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1)
        .max(1);
    let fresh = (micros << 8) | u64::from(rand::random::<u8>());
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(fresh.max(last + 1))
        })
        .expect("the update always succeeds");
    fresh.max(prev + 1)
}

/// What a host accepts from an address that is not a host, in a cluster without a key: client
/// requests, admin shard requests, and acks of its replies. Delegations, replies and redirects
/// come only from hosts.
fn from_client_or_admin(m: &KvMsg) -> bool {
    match m {
        KvMsg::Ack { .. } => true,
        KvMsg::Closed { .. } => false,
        KvMsg::Single { payload, .. } => matches!(
            payload,
            KvPayload::Get { .. } | KvPayload::Set { .. } | KvPayload::Shard { .. }
        ),
    }
}

/// What a host accepts from an unauthenticated address in a cluster with a key: client requests
/// and acks. A shard request must come sealed with the cluster key (an admin holding it, as
/// `ironfleet kv shard` does with the cluster file's key_file).
fn from_client(m: &KvMsg) -> bool {
    match m {
        KvMsg::Ack { .. } => true,
        KvMsg::Closed { .. } => false,
        KvMsg::Single { payload, .. } => {
            matches!(payload, KvPayload::Get { .. } | KvPayload::Set { .. })
        }
    }
}

/// Starts host `id` of `cluster` on `socket` as a tokio task; it runs until `shutdown` turns
/// true, or until a storage write fails (the task then ends with the error). Storage is
/// `cluster.storage_of(id)` (a snapshot and a write-ahead log: see [`super::journal`]); a
/// cluster without `data_dir` runs only with [`Startup::Ephemeral`].
pub fn spawn_host(
    cluster: &KvClusterConfig,
    id: usize,
    startup: Startup,
    socket: UdpSocket,
    stats: HostStats,
    shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<Result<()>>> {
    if id >= cluster.hosts.len() {
        bail!(
            "host id {id} is not in the configuration (it has {} hosts: ids 0..{})",
            cluster.hosts.len(),
            cluster.hosts.len()
        );
    }
    prepare_storage(
        &cluster.data_dir,
        startup,
        "a host must keep its pairs, ranges and channels",
    )?;
    let store = cluster
        .storage_of(id)
        .map(|l| Box::new(l) as Box<dyn Store<HostSave>>);
    let persistence = if store.is_some() {
        Persistence::Journal
    } else {
        Persistence::Off
    };
    let key = load_key(&cluster.key_file)?;
    let ids: Arc<Vec<Id>> = Arc::new(cluster.hosts.iter().map(|a| Id::from(*a)).collect());
    let me = ids[id];
    let host = Host::new(HostConfig {
        hosts: ids,
        me: id,
        epoch: clock_epoch(),
        params: cluster.params.clone(),
        switches: KvModelSwitches::default(),
        persistence,
    });
    let gauges = stats.gauges.clone();
    let cfg = RuntimeConfig::<Host> {
        peers: cluster.hosts.clone(),
        key: key.clone(),
        accept_from_stranger: if key.is_some() {
            from_client
        } else {
            from_client_or_admin
        },
        storage: store,
        init: startup == Startup::Init,
        seed: id as u64,
        observe: Some(Box::new({
            let mut step = 0u64;
            move |s: &HostState| {
                gauges.update(me, s, step);
                step += 1;
            }
        })),
    };
    Ok(tokio::spawn(run_actor(
        host,
        socket,
        cfg,
        stats.counters,
        shutdown,
    )))
}

fn v4(a: SocketAddr) -> Result<SocketAddrV4> {
    match a {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(a) => bail!("expected an IPv4 address, got {a}"),
    }
}

/// A running host task: its shutdown switch and its handle.
type RunningHost = (watch::Sender<bool>, JoinHandle<Result<()>>);

/// Hosts running as tasks of this process, on loopback.
pub struct LocalKv {
    /// The cluster's configuration (its addresses are the hosts' real ones).
    pub config: KvClusterConfig,
    /// Each host's counters and gauges.
    pub stats: Vec<HostStats>,
    hosts: Vec<Option<RunningHost>>,
}

impl LocalKv {
    /// Starts the hosts of `config` on its addresses; a port 0 means "any free port" and is
    /// replaced by the port bound.
    pub async fn start(mut config: KvClusterConfig) -> Result<Self> {
        if config.hosts.is_empty() {
            bail!("a cluster needs at least one host");
        }
        let mut sockets = Vec::new();
        for (i, a) in config.hosts.iter_mut().enumerate() {
            let s = bind_udp(*a).with_context(|| format!("starting host {i}"))?;
            *a = v4(s.local_addr()?)?;
            sockets.push(s);
        }
        let mut cluster = LocalKv {
            config,
            stats: Vec::new(),
            hosts: Vec::new(),
        };
        let startup = cluster.startup()?;
        for (i, s) in sockets.into_iter().enumerate() {
            let stats = HostStats::default();
            let (tx, rx) = watch::channel(false);
            let h = spawn_host(&cluster.config, i, startup, s, stats.clone(), rx)?;
            cluster.stats.push(stats);
            cluster.hosts.push(Some((tx, h)));
        }
        Ok(cluster)
    }

    /// How the whole cluster starts (see [`cluster_startup`]).
    fn startup(&self) -> Result<Startup> {
        let files = self.config.data_dir.as_ref().map(|_| {
            (0..self.config.hosts.len())
                .filter_map(|i| self.config.storage_of(i))
                .map(|l| l.snapshot_path().to_owned())
                .collect()
        });
        cluster_startup(files, "hosts")
    }

    /// Kills host `i` abruptly (its task is aborted mid-step, as a crashed process would be):
    /// only what it stored survives.
    pub async fn kill(&mut self, i: usize) {
        if let Some((_, h)) = self.hosts[i].take() {
            h.abort();
            let _ = h.await;
        }
    }

    /// Restarts host `i` on its address, from its storage if the cluster keeps it.
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        self.kill(i).await;
        let s = bind_udp(self.config.hosts[i])?;
        let stats = HostStats::default();
        let (tx, rx) = watch::channel(false);
        let startup = match self.config.data_dir {
            Some(_) => Startup::Restore,
            None => Startup::Ephemeral,
        };
        let h = spawn_host(&self.config, i, startup, s, stats.clone(), rx)?;
        self.stats[i] = stats;
        self.hosts[i] = Some((tx, h));
        Ok(())
    }

    /// `n` hosts on free loopback ports with default parameters.
    pub async fn loopback(n: usize) -> Result<Self> {
        let any = SocketAddrV4::new([127, 0, 0, 1].into(), 0);
        Self::start(KvClusterConfig::new(vec![any; n])).await
    }

    /// The hosts' addresses.
    pub fn addrs(&self) -> Vec<SocketAddrV4> {
        self.config.hosts.clone()
    }

    /// Stops every host gracefully and waits for them.
    pub async fn stop(self) -> Result<()> {
        for (tx, _) in self.hosts.iter().flatten() {
            let _ = tx.send(true);
        }
        for (_, h) in self.hosts.into_iter().flatten() {
            h.await.context("host task panicked")??;
        }
        Ok(())
    }
}

/// The error a [`KvRemote`] operation returns when a host had closed this client's channel (it
/// keeps a bounded number of client channels, closing those of the oldest incarnations). Whether
/// the operation took effect is unknown; the client has already started a new incarnation, so
/// the next operation goes through.
#[derive(Debug, thiserror::Error)]
#[error(
    "host {host} closed this client's channel (watermark {watermark}); whether the operation \
     took effect is unknown, and the next one starts a new channel"
)]
pub struct ChannelClosed {
    /// The host's index.
    pub host: usize,
    /// The host's watermark of closed channels.
    pub watermark: u64,
}

/// How a wait for the hosts ends.
enum Answer {
    /// The reply to the request waited for.
    Value(Option<Value>),
    /// The request waited for was redirected to this host index.
    Redirect(usize),
    /// Everything sent to the host waited for is acknowledged.
    Acked,
}

/// What [`KvRemote::pump`] waits for.
#[derive(Clone, Copy)]
enum Want {
    /// The answer to the request with this tag.
    Answer(u64),
    /// Every message to this host index acknowledged.
    Acked(usize),
}

/// The largest number of owners a client remembers (it forgets them all beyond it).
const MAX_CACHED_OWNERS: usize = 1 << 16;

/// A client of an IronKV cluster: one operation at a time, through SingleDelivery (sequence
/// numbers per host, cumulative acks, retransmission), following redirects and remembering the
/// owner of each key it has heard of.
///
/// A reply is matched to its request by order: a host answers each request it delivers with
/// exactly one `Reply` or `Redirect`, in delivery order on the channel, so the client keeps, per
/// host, the tags of the requests still unanswered; an answer to an abandoned (timed-out)
/// request is recognised and skipped.
pub struct KvRemote {
    socket: UdpSocket,
    hosts: Vec<SocketAddrV4>,
    sd: SingleDelivery<KvPayload>,
    owners: BTreeMap<Key, usize>,
    outstanding: BTreeMap<usize, VecDeque<u64>>,
    next_tag: u64,
    buf: Vec<u8>,
    max_unacked: usize,
    /// Redirects followed so far (all operations).
    pub redirects: u64,
    /// The cluster key, if this client is an operator's: its datagrams are then sealed, which
    /// hosts of a keyed cluster require of shard requests.
    key: Option<Arc<ClusterKey>>,
    /// Retransmission period.
    pub retransmit: Duration,
}

impl KvRemote {
    /// A client on a fresh loopback socket.
    pub async fn connect(hosts: Vec<SocketAddrV4>) -> Result<Self> {
        if hosts.is_empty() {
            bail!("a client needs at least one host address");
        }
        let socket = bind_udp(SocketAddrV4::new([127, 0, 0, 1].into(), 0))?;
        Ok(KvRemote {
            socket,
            hosts,
            sd: SingleDelivery::new(clock_epoch()),
            owners: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            next_tag: 0,
            buf: vec![0u8; codec::MAX_DATAGRAM + 1],
            max_unacked: 1024,
            redirects: 0,
            key: None,
            retransmit: Duration::from_millis(200),
        })
    }

    /// Seals this client's datagrams with the cluster key (an operator's client: hosts of a
    /// keyed cluster take shard requests only from holders of the key).
    pub fn with_key(mut self, key: Option<Arc<ClusterKey>>) -> Self {
        self.key = key;
        self
    }

    /// Sends `m` to `to` (sealed if this client holds the key), waiting for the socket to be
    /// writable. A send error is a lost datagram: retransmission covers it.
    ///
    /// (It used `try_send_to`, which fails with `WouldBlock` on a fresh socket until tokio has
    /// seen it writable: a one-shot CLI operation's first request was dropped that way and went
    /// out only on the first retransmission, 200 ms later.)
    async fn emit(&self, m: &KvMsg, to: SocketAddr) -> Result<()> {
        let mut bytes = codec::encode(m)?;
        if let Some(k) = &self.key {
            k.seal(&mut bytes);
        }
        if let Err(e) = self.socket.send_to(&bytes, to).await {
            tracing::debug!(%to, %e, "client send failed");
        }
        Ok(())
    }

    /// The value of `key` (`None`: absent).
    pub async fn get(&mut self, key: impl Into<Key>, timeout: Duration) -> Result<Option<Value>> {
        let key = key.into();
        self.call(KvPayload::Get { key: key.clone() }, key, timeout)
            .await
    }

    /// Sets `key` to `value` (`None`: deletes it).
    pub async fn set(
        &mut self,
        key: impl Into<Key>,
        value: Option<Value>,
        timeout: Duration,
    ) -> Result<()> {
        let key = key.into();
        self.call(
            KvPayload::Set {
                key: key.clone(),
                value,
            },
            key,
            timeout,
        )
        .await
        .map(|_| ())
    }

    /// The host index that answered for `key` last (or was named its owner).
    pub fn known_owner(&self, key: &Key) -> Option<usize> {
        self.owners.get(key).copied()
    }

    /// The host that owns `key` now: asks (a Get) and follows redirects.
    pub async fn find_owner(&mut self, key: impl Into<Key>, timeout: Duration) -> Result<usize> {
        let key = key.into();
        self.get(key.clone(), timeout).await?;
        Ok(self.owners[&key])
    }

    /// Asks host `from` to move `range` to host `to`; returns once `from` has the request
    /// (acknowledged). The host honours it only if it owns the whole range, has room in its
    /// delegation map, and the range's pairs fit one datagram; see [`KvRemote::owns`].
    pub async fn shard(
        &mut self,
        range: KeyRange,
        from: usize,
        to: usize,
        timeout: Duration,
    ) -> Result<()> {
        if range.is_empty() {
            bail!("{range}: an empty range moves nothing");
        }
        let (Some(_), Some(&recipient)) = (self.hosts.get(from), self.hosts.get(to)) else {
            bail!("hosts are 0..{} (got {from} and {to})", self.hosts.len());
        };
        let payload = KvPayload::Shard {
            range,
            recipient: Id::from(recipient),
        };
        self.send(from, payload).await?;
        match self
            .pump(Want::Acked(from), Instant::now() + timeout)
            .await?
        {
            Answer::Acked => Ok(()),
            _ => unreachable!("an ack wait ends acked"),
        }
    }

    /// Whether host `host` answers for `key` itself (rather than redirecting).
    pub async fn owns(
        &mut self,
        host: usize,
        key: impl Into<Key>,
        timeout: Duration,
    ) -> Result<bool> {
        let tag = self.send(host, KvPayload::Get { key: key.into() }).await?;
        match self
            .pump(Want::Answer(tag.expect("a Get")), Instant::now() + timeout)
            .await?
        {
            Answer::Value(_) => Ok(true),
            _ => Ok(false),
        }
    }

    /// Queues `payload` for host `host` and sends it; returns the request's tag if it expects
    /// an answer.
    async fn send(&mut self, host: usize, payload: KvPayload) -> Result<Option<u64>> {
        let answered = matches!(payload, KvPayload::Get { .. } | KvPayload::Set { .. });
        let dst = self.hosts[host];
        let Some(msg) = self.sd.send(Id::from(dst), payload, self.max_unacked) else {
            bail!(
                "{} requests to host {host} are still unacknowledged",
                self.max_unacked
            );
        };
        let tag = answered.then(|| {
            let t = self.next_tag;
            self.next_tag += 1;
            self.outstanding.entry(host).or_default().push_back(t);
            t
        });
        self.emit(&msg, SocketAddr::V4(dst)).await?;
        Ok(tag)
    }

    async fn call(
        &mut self,
        payload: KvPayload,
        key: Key,
        timeout: Duration,
    ) -> Result<Option<Value>> {
        let deadline = Instant::now() + timeout;
        let mut target = self.owners.get(&key).copied().unwrap_or(0);
        let mut hops = 0u32;
        loop {
            let tag = self
                .send(target, payload.clone())
                .await?
                .expect("a Get or Set");
            match self.pump(Want::Answer(tag), deadline).await? {
                Answer::Value(v) => {
                    if self.owners.len() >= MAX_CACHED_OWNERS {
                        self.owners.clear();
                    }
                    self.owners.insert(key, target);
                    return Ok(v);
                }
                Answer::Redirect(owner) => {
                    self.redirects += 1;
                    hops += 1;
                    // While a delegation is in flight the old and the new owner send the client
                    // back and forth; back off a little after a few rounds.
                    if hops > 4 {
                        let ms = 1u64 << (hops - 4).min(6);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    target = owner;
                }
                Answer::Acked => unreachable!("an answer wait ends with an answer"),
            }
        }
    }

    /// Whether `want` waits for acks and everything sent to its host is acknowledged.
    fn all_acked(&self, want: Want) -> bool {
        let Want::Acked(h) = want else { return false };
        let dst = Id::from(self.hosts[h]);
        self.sd.send.get(&dst).is_none_or(|c| c.unacked.is_empty())
    }

    /// Receives, acks and retransmits until `want` is met or `deadline` passes.
    async fn pump(&mut self, want: Want, deadline: Instant) -> Result<Answer> {
        loop {
            if self.all_acked(want) {
                return Ok(Answer::Acked);
            }
            let tick = (Instant::now() + self.retransmit).min(deadline);
            loop {
                let got = tokio::time::timeout_at(tick, self.socket.recv_from(&mut self.buf)).await;
                let (n, from) = match got {
                    Err(_) => break,
                    Ok(Err(e)) => {
                        tracing::debug!(%e, "client recv error");
                        continue;
                    }
                    Ok(Ok(x)) => x,
                };
                let Some(idx) = self.hosts.iter().position(|h| SocketAddr::V4(*h) == from) else {
                    continue;
                };
                let Ok(msg) = codec::decode::<KvMsg>(&self.buf[..n]) else {
                    continue;
                };
                match msg {
                    KvMsg::Ack { epoch, from, seqno } => {
                        self.sd.ack(Id::from(self.hosts[idx]), epoch, from, seqno);
                        if self.all_acked(want) {
                            return Ok(Answer::Acked);
                        }
                    }
                    KvMsg::Closed { epoch, watermark } if epoch == self.sd.epoch => {
                        // A host closed this incarnation's channel: go on as a new one, above
                        // the watermark; what was in flight may or may not have been done.
                        self.sd =
                            SingleDelivery::new(clock_epoch().max(watermark.saturating_add(1)));
                        self.outstanding.clear();
                        return Err(ChannelClosed {
                            host: idx,
                            watermark,
                        }
                        .into());
                    }
                    KvMsg::Closed { .. } => {}
                    KvMsg::Single {
                        epoch,
                        to,
                        seqno,
                        payload,
                    } => {
                        let r = self.sd.receive(
                            Id::from(self.hosts[idx]),
                            epoch,
                            to,
                            seqno,
                            payload,
                            false,
                        );
                        if let Some(ack) = r.ack {
                            self.emit(&ack, from).await?;
                        }
                        let Some(p) = r.deliver else { continue };
                        let answered =
                            matches!(p, KvPayload::Reply { .. } | KvPayload::Redirect { .. });
                        if !answered {
                            continue;
                        }
                        let t = self.outstanding.entry(idx).or_default().pop_front();
                        let Want::Answer(tag) = want else { continue };
                        if t != Some(tag) {
                            continue; // the answer to an abandoned request
                        }
                        match p {
                            KvPayload::Reply { value, .. } => return Ok(Answer::Value(value)),
                            KvPayload::Redirect { owner, .. } => {
                                let owner = SocketAddrV4::from(owner);
                                let Some(o) = self.hosts.iter().position(|h| *h == owner) else {
                                    bail!("host {idx} redirected to {owner}, which is not a host of this cluster");
                                };
                                return Ok(Answer::Redirect(o));
                            }
                            _ => unreachable!("matched above"),
                        }
                    }
                }
            }
            if Instant::now() >= deadline {
                bail!("no answer from the hosts in time");
            }
            for (dst, m) in self.sd.unacked() {
                self.emit(&m, SocketAddr::V4(SocketAddrV4::from(dst)))
                    .await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Regression: epochs were the clock in microseconds, so clients started within one
    /// microsecond (the bench starts hundreds) shared one, and a new incarnation with its
    /// predecessor's epoch had its messages acked as duplicates and never delivered.
    #[test]
    fn epochs_taken_at_once_are_distinct_and_ordered() {
        let epochs: Vec<u64> = (0..1000).map(|_| clock_epoch()).collect();
        assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{epochs:?}");
    }

    fn payload() -> impl Strategy<Value = KvPayload> {
        let value = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64));
        let key = || proptest::collection::vec(any::<u8>(), 0..12).prop_map(Key);
        let range = (key(), proptest::option::of(key())).prop_map(|(lo, hi)| KeyRange::new(lo, hi));
        let id = any::<u16>().prop_map(|p| Id::from(SocketAddrV4::new([127, 0, 0, 1].into(), p)));
        prop_oneof![
            key().prop_map(|key| KvPayload::Get { key }),
            (key(), value.clone()).prop_map(|(key, value)| KvPayload::Set { key, value }),
            (key(), value, any::<bool>()).prop_map(|(key, value, write)| KvPayload::Reply {
                key,
                value,
                write
            }),
            (key(), id.clone()).prop_map(|(key, owner)| KvPayload::Redirect { key, owner }),
            (range.clone(), id)
                .prop_map(|(range, recipient)| KvPayload::Shard { range, recipient }),
            (
                range,
                proptest::collection::btree_map(
                    key(),
                    proptest::collection::vec(any::<u8>(), 0..16),
                    0..8
                )
            )
                .prop_map(|(range, pairs)| KvPayload::Delegate {
                    range,
                    pairs: Arc::new(pairs)
                }),
        ]
    }

    fn message() -> impl Strategy<Value = KvMsg> {
        prop_oneof![
            (any::<u64>(), any::<u64>(), any::<u64>(), payload()).prop_map(
                |(epoch, to, seqno, payload)| KvMsg::Single {
                    epoch,
                    to,
                    seqno,
                    payload
                }
            ),
            (any::<u64>(), any::<u64>(), any::<u64>())
                .prop_map(|(epoch, from, seqno)| KvMsg::Ack { epoch, from, seqno }),
            (any::<u64>(), any::<u64>())
                .prop_map(|(epoch, watermark)| KvMsg::Closed { epoch, watermark }),
        ]
    }

    proptest! {
        /// Every KV message survives the wire; any bytes, or a corrupted message, decode to a
        /// message or an error, never a panic.
        #[test]
        fn kv_messages_round_trip_and_garbage_never_panics(
            m in message(),
            flip in any::<(usize, u8)>(),
            junk in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let bytes = codec::encode(&m).unwrap();
            prop_assert_eq!(codec::decode::<KvMsg>(&bytes).unwrap(), m);
            let mut bad = bytes.clone();
            let i = flip.0 % bad.len();
            bad[i] ^= flip.1 | 1;
            let _ = codec::decode::<KvMsg>(&bad);
            let _ = codec::decode::<KvMsg>(&bytes[..bytes.len() / 2]);
            let _ = codec::decode::<KvMsg>(&junk);
        }
    }
}
