//! IronKV over real UDP on loopback: ranges move between hosts while clients read and write (no
//! acknowledged write lost, every read returns the latest acknowledged value), a recorded run of
//! clients racing on shared keys during moves is linearizable (stateright's tester), bad
//! datagrams are dropped and counted while the hosts serve, and a client that starts again on the
//! same port is served (SingleDelivery epochs).

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ironfleet::actors::kv::{Key, KeyRange, KvMsg, KvPayload};
use ironfleet::invariants::kv::{HashTableSpec, TableOp};
use ironfleet::net::codec;
use ironfleet::net::kv::{KvRemote, LocalKv};
use ironfleet::net::runtime::bind_udp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

const T: Duration = Duration::from_secs(5);
const CLIENTS: u64 = 4;
const KEYS: u64 = 64;
/// The admin moves these ranges (each always as a whole, so its owner owns all of it).
const RANGES: [(u64, Option<u64>); 4] = [(0, Some(16)), (16, Some(32)), (32, Some(48)), (48, None)];

/// Client `c` owns keys `c, c + CLIENTS, ...`: it is the only writer of its keys, so the latest
/// value it had acknowledged is exactly what any read must return.
async fn client(
    c: u64,
    hosts: Vec<SocketAddrV4>,
    ops: usize,
) -> (BTreeMap<u64, Option<Vec<u8>>>, u64) {
    let mut kv = KvRemote::connect(hosts).await.unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(c);
    let mut acked: BTreeMap<u64, Option<Vec<u8>>> = BTreeMap::new();
    for i in 0..ops {
        let key = c + CLIENTS * rng.random_range(0..KEYS / CLIENTS);
        match rng.random_range(0..10) {
            0..=3 => {
                let v = format!("c{c}-op{i}").into_bytes();
                kv.set(key, Some(v.clone()), T).await.unwrap();
                acked.insert(key, Some(v));
            }
            4 => {
                kv.set(key, None, T).await.unwrap();
                acked.insert(key, None);
            }
            _ => {
                let got = kv.get(key, T).await.unwrap();
                let want = acked.get(&key).cloned().flatten();
                assert_eq!(got, want, "client {c}, op {i}: read of key {key}");
            }
        }
    }
    (acked, kv.redirects)
}

/// Durable hosts, killed (their task aborted mid-step, like SIGKILL) and restarted from storage
/// again and again while clients read and write and an admin moves ranges: no acknowledged
/// write is lost, every read returns the latest acknowledged value, and each pair ends on
/// exactly one host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_killed_and_restarted_repeatedly_lose_no_acknowledged_write() {
    let dir = std::env::temp_dir().join(format!("ironfleet-kv-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let any = SocketAddrV4::new([127, 0, 0, 1].into(), 0);
    let mut config = ironfleet::net::config::KvClusterConfig::new(vec![any; 3]);
    config.data_dir = Some(dir.clone());
    let mut cluster = LocalKv::start(config).await.unwrap();
    let hosts = cluster.addrs();
    let writers: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client(c, hosts.clone(), 3_000)))
        .collect();
    let admin_hosts = hosts.clone();
    let admin = tokio::spawn(async move {
        let mut admin = KvRemote::connect(admin_hosts).await.unwrap();
        for round in 0..3 {
            for (i, &(lo, hi)) in RANGES.iter().enumerate() {
                let from = admin.find_owner(lo, T).await.unwrap();
                let to = (from + 1 + (round + i) % 2) % 3;
                admin
                    .shard(KeyRange::new(lo, hi.map(Key::from)), from, to, T)
                    .await
                    .unwrap();
                while !admin.owns(to, lo, T).await.unwrap() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
    });
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer_done = done.clone();
    let killer = tokio::spawn(async move {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut kills = 0;
        while !killer_done.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(rng.random_range(20..120))).await;
            let victim = rng.random_range(0..3);
            cluster.kill(victim).await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..60))).await;
            cluster.restart(victim).await.unwrap();
            kills += 1;
        }
        (cluster, kills)
    });
    let mut latest: BTreeMap<u64, Option<Vec<u8>>> = BTreeMap::new();
    for w in writers {
        latest.extend(w.await.unwrap().0);
    }
    admin.await.unwrap();
    done.store(true, Ordering::Relaxed);
    let (cluster, kills) = killer.await.unwrap();
    assert!(kills >= 5, "only {kills} kills");
    let mut reader = KvRemote::connect(hosts.clone()).await.unwrap();
    for key in 0..KEYS {
        let want = latest.get(&key).cloned().flatten();
        assert_eq!(
            reader.get(key, T).await.unwrap(),
            want,
            "final read of {key}"
        );
    }
    let live = latest.values().filter(|v| v.is_some()).count() as u64;
    let stored: u64 = cluster
        .stats
        .iter()
        .map(|s| s.gauges.keys.load(Ordering::Relaxed))
        .sum();
    assert_eq!(stored, live, "each pair on exactly one host");
    cluster.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_move_while_clients_read_and_write() {
    let cluster = LocalKv::loopback(3).await.unwrap();
    let hosts = cluster.addrs();
    let writers: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client(c, hosts.clone(), 3_000)))
        .collect();
    // The admin: move each range to the next host, round and round, while the clients run.
    let admin_hosts = hosts.clone();
    let admin = tokio::spawn(async move {
        let mut admin = KvRemote::connect(admin_hosts).await.unwrap();
        let mut moves = 0;
        for round in 0..5 {
            for (i, &(lo, hi)) in RANGES.iter().enumerate() {
                let range = KeyRange::new(lo, hi.map(Key::from));
                let from = admin.find_owner(lo, T).await.unwrap();
                let to = (from + 1 + (round + i) % 2) % 3;
                admin.shard(range.clone(), from, to, T).await.unwrap();
                let deadline = tokio::time::Instant::now() + T;
                while !admin.owns(to, lo, T).await.unwrap() {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "host {to} never took {range}"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                moves += 1;
            }
        }
        moves
    });
    let mut latest: BTreeMap<u64, Option<Vec<u8>>> = BTreeMap::new();
    let mut redirects = 0;
    for w in writers {
        let (acked, r) = w.await.unwrap();
        latest.extend(acked);
        redirects += r;
    }
    assert!(redirects > 0, "the clients must have followed the moves");
    assert_eq!(admin.await.unwrap(), 20);
    // No acknowledged write lost: a fresh client reads every key's latest value.
    let mut reader = KvRemote::connect(hosts.clone()).await.unwrap();
    for key in 0..KEYS {
        let want = latest.get(&key).cloned().flatten();
        assert_eq!(
            reader.get(key, T).await.unwrap(),
            want,
            "final read of {key}"
        );
    }
    // Each pair lives on exactly one host: the hosts' tables add up to the live keys.
    let live = latest.values().filter(|v| v.is_some()).count() as u64;
    let stored: u64 = cluster
        .stats
        .iter()
        .map(|s| s.gauges.keys.load(Ordering::Relaxed))
        .sum();
    assert_eq!(stored, live);
    // The data moved: more than one host holds pairs, and clients were redirected.
    let holding = cluster
        .stats
        .iter()
        .filter(|s| s.gauges.keys.load(Ordering::Relaxed) > 0)
        .count();
    assert!(holding >= 2, "pairs on {holding} host(s)");
    for s in &cluster.stats {
        assert_eq!(s.counters.dropped(), 0);
    }
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_datagrams_are_dropped_and_counted_while_serving() {
    let cluster = LocalKv::loopback(2).await.unwrap();
    let hosts = cluster.addrs();
    let stranger = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
    // Garbage, a truncated message, and a Delegate from someone who is not a host (it would
    // hand the stranger's pairs in as if they were the cluster's).
    let set = codec::encode(&KvMsg::Single {
        epoch: 1,
        to: 0,
        seqno: 1,
        payload: KvPayload::Set {
            key: 1u64.into(),
            value: Some(b"x".to_vec()),
        },
    })
    .unwrap();
    let forged = codec::encode(&KvMsg::Single {
        epoch: 1,
        to: 0,
        seqno: 1,
        payload: KvPayload::Delegate {
            range: KeyRange::ALL,
            pairs: Default::default(),
        },
    })
    .unwrap();
    for d in [&b"\xff\xfe garbage"[..], &set[..set.len() - 2], &forged[..]] {
        stranger.send_to(d, hosts[1]).await.unwrap();
    }
    let mut kv = KvRemote::connect(hosts.clone()).await.unwrap();
    kv.set(3, Some(b"still here".to_vec()), T).await.unwrap();
    assert_eq!(kv.get(3, T).await.unwrap(), Some(b"still here".to_vec()));
    let c = &cluster.stats[1].counters;
    assert_eq!(c.dropped_undecodable.load(Ordering::Relaxed), 2);
    assert_eq!(c.dropped_unknown_sender.load(Ordering::Relaxed), 1);
    // Host 1 still believes host 0 owns everything: the forged delegation was not taken.
    assert!(!kv.owns(1, 3, T).await.unwrap());
    cluster.stop().await.unwrap();
}

/// Sends `Set(key, value)` as `Single(epoch, seqno)` from `socket` and waits for its reply.
async fn raw_set(
    socket: &tokio::net::UdpSocket,
    host: SocketAddrV4,
    epoch: u64,
    seqno: u64,
    key: u64,
) -> Option<KvPayload> {
    let msg = KvMsg::Single {
        epoch,
        to: 0,
        seqno,
        payload: KvPayload::Set {
            key: key.into(),
            value: Some(format!("{epoch}.{seqno}").into_bytes()),
        },
    };
    socket
        .send_to(&codec::encode(&msg).unwrap(), host)
        .await
        .unwrap();
    let mut buf = vec![0u8; 2048];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
        // Only what is addressed to this incarnation (a real client ignores the rest).
        if let Ok(KvMsg::Single { to, payload, .. }) = codec::decode::<KvMsg>(&buf[..n]) {
            if to == 0 || to == epoch {
                return Some(payload);
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_restarted_on_the_same_port_is_served() {
    let cluster = LocalKv::loopback(1).await.unwrap();
    let host = cluster.addrs()[0];
    let first = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = first.local_addr().unwrap();
    for seqno in 1..=3 {
        assert!(raw_set(&first, host, 100, seqno, 9).await.is_some());
    }
    drop(first);
    // A new process on the same port starts again at sequence number 1, with a later epoch.
    let second = bind_udp(match port {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    })
    .unwrap();
    let reply = raw_set(&second, host, 200, 1, 9).await;
    assert!(
        matches!(reply, Some(KvPayload::Reply { ref value, .. }) if value.as_deref() == Some(&b"200.1"[..])),
        "{reply:?}"
    );
    // A straggler from the first process (an older epoch) is ignored, not answered.
    assert_eq!(raw_set(&second, host, 100, 4, 9).await, None);
    let mut kv = KvRemote::connect(vec![host]).await.unwrap();
    assert_eq!(kv.get(9, T).await.unwrap(), Some(b"200.1".to_vec()));
    cluster.stop().await.unwrap();
}

/// One operation of a recorded real run: who, what, what came back, and when (microseconds since
/// the run began: invocation before the request left, return after the answer arrived).
struct Recorded {
    client: usize,
    op: TableOp,
    ret: Option<Vec<u8>>,
    invoked: u128,
    returned: u128,
}

/// Whether a recorded history is linearizable against the hash-table spec, one key at a time:
/// linearizability is local (a history is linearizable if and only if the sub-history of each
/// object is), and the operations on different keys are operations on different objects.
/// stateright's `LinearizabilityTester` backtracks through every order of overlapping
/// operations, so one tester over all keys could take minutes on a loaded machine (seen: a
/// `.ci/run` spinning in it for over ten minutes); one per key searches far fewer orders.
fn linearizable(ops: &[Recorded]) -> bool {
    let key = |r: &Recorded| match &r.op {
        TableOp::Get(k) | TableOp::Set(k, _) => k.clone(),
    };
    let mut keys: Vec<_> = ops.iter().map(key).collect();
    keys.sort();
    keys.dedup();
    keys.iter().all(|k| {
        let of_key: Vec<&Recorded> = ops.iter().filter(|r| key(r) == *k).collect();
        linearizable_in_time_order(&of_key)
    })
}

/// Whether `ops` are linearizable: their events are replayed in real-time order into
/// stateright's `LinearizabilityTester`. At equal times a return goes first, soundly: a return
/// is stamped after the answer arrived and an invocation before the request left, so equal
/// stamps mean the one really finished before the other began.
fn linearizable_in_time_order(ops: &[&Recorded]) -> bool {
    let mut events: Vec<(u128, u8, usize)> = Vec::new();
    for (n, r) in ops.iter().enumerate() {
        events.push((r.invoked, 1, n));
        events.push((r.returned, 0, n));
    }
    events.sort();
    let mut tester = LinearizabilityTester::new(HashTableSpec::default());
    for (_, kind, n) in events {
        let r = ops[n];
        if kind == 0 {
            tester.on_return(r.client, r.ret.clone()).unwrap();
        } else {
            tester.on_invoke(r.client, r.op.clone()).unwrap();
        }
    }
    tester.serialized_history().is_some()
}

/// The keys the racing clients share.
const SHARED: [u64; 3] = [0, 20, 40];

/// Client `c` of a race on the [`SHARED`] keys: `ops` random gets, sets and deletes (seeded with
/// `seed + c`), each recorded with its real-time stamps since `start`.
async fn racing_client(
    c: usize,
    hosts: Vec<SocketAddrV4>,
    ops: usize,
    seed: u64,
    start: std::time::Instant,
) -> Vec<Recorded> {
    let mut kv = KvRemote::connect(hosts).await.unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed + c as u64);
    let mut log = Vec::new();
    for i in 0..ops {
        let key = SHARED[rng.random_range(0..SHARED.len())];
        let op = match rng.random_range(0..3) {
            0 => TableOp::Get(key.into()),
            1 => TableOp::Set(key.into(), None),
            _ => TableOp::Set(key.into(), Some(format!("{c}:{i}").into_bytes())),
        };
        let invoked = start.elapsed().as_micros();
        let ret = match &op {
            TableOp::Get(k) => kv.get(k.clone(), T).await.unwrap(),
            TableOp::Set(k, v) => {
                kv.set(k.clone(), v.clone(), T).await.unwrap();
                v.clone()
            }
        };
        let returned = start.elapsed().as_micros();
        log.push(Recorded {
            client: c,
            op,
            ret,
            invoked,
            returned,
        });
    }
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_real_run_with_moves_is_linearizable() {
    let cluster = LocalKv::loopback(3).await.unwrap();
    let hosts = cluster.addrs();
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..3usize)
        .map(|c| tokio::spawn(racing_client(c, hosts.clone(), 60, 100, start)))
        .collect();
    // Meanwhile the shared keys' ranges move between the hosts.
    let mut admin = KvRemote::connect(hosts.clone()).await.unwrap();
    for round in 0..4 {
        for (i, &(lo, hi)) in RANGES.iter().enumerate().take(3) {
            let range = KeyRange::new(lo, hi.map(Key::from));
            let from = admin.find_owner(lo, T).await.unwrap();
            admin
                .shard(range, from, (from + 1 + (round + i) % 2) % 3, T)
                .await
                .unwrap();
        }
    }
    let mut ops: Vec<Recorded> = Vec::new();
    for t in tasks {
        ops.extend(t.await.unwrap());
    }
    assert_eq!(ops.len(), 180);
    assert!(
        linearizable(&ops),
        "the recorded history is not linearizable"
    );
    // The check has teeth: the same history with one read answered wrongly is rejected.
    // The earliest read: the search rejects it after few orders.
    let get = (0..ops.len())
        .filter(|&i| matches!(ops[i].op, TableOp::Get(_)))
        .min_by_key(|&i| ops[i].invoked)
        .expect("some reads");
    ops[get].ret = Some(b"never written".to_vec());
    assert!(!linearizable(&ops));
    cluster.stop().await.unwrap();
}

/// In a cluster with a key, clients need no key for get and set, but a shard request is taken
/// only from an admin holding the key: an unauthenticated one is dropped and counted, and its
/// range stays where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_cluster_key_only_an_admin_holding_it_moves_ranges() {
    use ironfleet::net::auth::ClusterKey;
    use ironfleet::net::config::KvClusterConfig;
    use std::sync::Arc;

    let dir = std::env::temp_dir().join(format!("ironfleet-kv-key-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = Arc::new(ClusterKey::write_new(&dir.join("kv.key")).unwrap());
    let any = SocketAddrV4::new([127, 0, 0, 1].into(), 0);
    let mut cfg = KvClusterConfig::new(vec![any; 2]);
    cfg.key_file = Some(dir.join("kv.key"));
    let cluster = LocalKv::start(cfg).await.unwrap();
    let hosts = cluster.addrs();
    let mut client = KvRemote::connect(hosts.clone()).await.unwrap();
    client.set(7, Some(b"seven".to_vec()), T).await.unwrap();
    let range = KeyRange::ALL;

    let mut stranger = KvRemote::connect(hosts.clone()).await.unwrap();
    let refused = stranger
        .shard(range.clone(), 0, 1, Duration::from_millis(500))
        .await;
    assert!(
        refused.is_err(),
        "an unauthenticated shard request was honoured"
    );
    let dropped = cluster.stats[0]
        .counters
        .dropped_unknown_sender
        .load(Ordering::Relaxed);
    assert!(dropped >= 1, "the refusal is counted");
    assert_eq!(client.get(7, T).await.unwrap(), Some(b"seven".to_vec()));

    let mut admin = KvRemote::connect(hosts.clone())
        .await
        .unwrap()
        .with_key(Some(key));
    admin.shard(range, 0, 1, T).await.unwrap();
    let mut fresh = KvRemote::connect(hosts).await.unwrap();
    assert_eq!(fresh.get(7, T).await.unwrap(), Some(b"seven".to_vec()));
    assert!(fresh.redirects >= 1, "host 1 now owns the key");
}

/// A client that keeps `hosts` busy with gets until `stop`; returns how many it did.
async fn busy_client(
    hosts: Vec<SocketAddrV4>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> u64 {
    let mut c = KvRemote::connect(hosts).await.unwrap();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        c.get(1, T).await.unwrap();
        n += 1;
    }
    n
}

/// The time between the first two datagrams `socket` receives that `is_it` picks (a message
/// that is never acknowledged, arriving and then resent); fails if none comes within 3 s.
async fn time_between_copies(
    socket: &tokio::net::UdpSocket,
    what: &str,
    is_it: fn(&KvMsg) -> bool,
) -> Duration {
    let mut buf = vec![0u8; 70_000];
    let mut first = None;
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(3), socket.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("the {what} is resent while the load runs"))
            .unwrap();
        if codec::decode::<KvMsg>(&buf[..n]).is_ok_and(|m| is_it(&m)) {
            match first {
                None => first = Some(tokio::time::Instant::now()),
                Some(t) => return t.elapsed(),
            }
        }
    }
}

/// The load kept the host busy (`ops` operations) and the copy came within two periods.
fn assert_resent_under_load(resent: Duration, period: Duration, ops: u64) {
    assert!(ops > 50, "the load kept the host busy ({ops} operations)");
    assert!(
        resent <= 2 * period + Duration::from_millis(100),
        "resent after {resent:?} (period {period:?})"
    );
}

/// Regression: a busy host never retransmitted. Every send re-armed its one retransmission
/// timer, pushing the deadline out, so while a client kept it busy a reply lost to another
/// client was not resent (measured: 2.6 s and counting). Here one client loads the host while a
/// raw client never acknowledges its reply: the reply must come again within two retransmission
/// periods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reply_is_resent_within_two_periods_under_steady_load() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let cluster = LocalKv::loopback(1).await.unwrap();
    let host = cluster.addrs()[0];
    let period = Duration::from_millis(cluster.config.params.retransmit_ms);
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(busy_client(vec![host], stop.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let raw = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
    let set = KvMsg::Single {
        epoch: 7,
        to: 0,
        seqno: 1,
        payload: KvPayload::Set {
            key: 3u64.into(),
            value: Some(b"x".to_vec()),
        },
    };
    raw.send_to(&codec::encode(&set).unwrap(), host)
        .await
        .unwrap();
    let resent = time_between_copies(&raw, "reply", |m| {
        matches!(
            m,
            KvMsg::Single {
                seqno: 1,
                payload: KvPayload::Reply { .. },
                ..
            }
        )
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    assert_resent_under_load(resent, period, load.await.unwrap());
}

/// Regression: a fresh client's first datagram was sent with `try_send_to`, which fails on a new
/// socket until tokio has seen it writable; the request then went out only on the first
/// retransmission (one-shot `ironfleet kv get` took 200 ms instead of a few). With the
/// retransmission period set to 10 s, the first request must still arrive at once.
#[tokio::test]
async fn a_fresh_clients_first_request_goes_out_at_once() {
    let host = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
    let std::net::SocketAddr::V4(addr) = host.local_addr().unwrap() else {
        unreachable!()
    };
    let mut client = KvRemote::connect(vec![addr]).await.unwrap();
    client.retransmit = Duration::from_secs(10);
    let call = tokio::spawn(async move { client.get(1, Duration::from_secs(3)).await });
    let mut buf = vec![0u8; 2048];
    let got = tokio::time::timeout(Duration::from_secs(2), host.recv_from(&mut buf)).await;
    assert!(got.is_ok(), "the first request waited for a retransmission");
    call.abort();
}

/// A host that keeps two client channels: fifty clients come and go and its channels stay at
/// two; an old client whose channel was closed is told so (`ChannelClosed`: the outcome of that
/// operation is unknown) and its next operation, on a new incarnation, goes through; what it
/// wrote before is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_closes_the_oldest_client_channels_and_their_clients_start_again() {
    use ironfleet::net::kv::ChannelClosed;
    let any = SocketAddrV4::new([127, 0, 0, 1].into(), 0);
    let mut config = ironfleet::net::config::KvClusterConfig::new(vec![any]);
    config.params.max_client_channels = 2;
    let cluster = LocalKv::start(config).await.unwrap();
    let hosts = cluster.addrs();
    let mut old = KvRemote::connect(hosts.clone()).await.unwrap();
    old.set(1, Some(b"old".to_vec()), T).await.unwrap();
    for i in 0..50u64 {
        let mut c = KvRemote::connect(hosts.clone()).await.unwrap();
        c.set(100 + i, Some(b"x".to_vec()), T).await.unwrap();
    }
    let channels = cluster.stats[0].gauges.channels.load(Ordering::Relaxed);
    assert!(channels <= 2, "{channels} client channels");
    let err = old.get(1, T).await.unwrap_err();
    assert!(err.downcast_ref::<ChannelClosed>().is_some(), "{err:#}");
    assert_eq!(old.get(1, T).await.unwrap(), Some(b"old".to_vec()));
    cluster.stop().await.unwrap();
}

/// Three `kv host` processes with storage; while three clients race on shared keys and an admin
/// moves their ranges, a host process picked at random is killed with SIGKILL and restarted from
/// its storage, again and again. The recorded history (real-time stamps) is linearizable, and
/// when the kills stop every moved range is owned by exactly one host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_processes_killed_with_sigkill_repeatedly_stay_linearizable() {
    use std::process::{Child, Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_ironfleet");
    let dir = std::env::temp_dir().join(format!("ironfleet-kv-sigkill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let hosts: Vec<SocketAddrV4> = (0..3)
        .map(|_| {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let std::net::SocketAddr::V4(a) = s.local_addr().unwrap() else {
                unreachable!()
            };
            a
        })
        .collect();
    let cfg = dir.join("kv.toml");
    let list: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
    std::fs::write(
        &cfg,
        format!("hosts = [{}]\ndata_dir = \"data\"\n", list.join(", ")),
    )
    .unwrap();
    let start_host = move |id: usize, init: bool| -> Child {
        let mut c = Command::new(bin);
        c.args(["kv", "host", "--config", cfg.to_str().unwrap(), "--id"])
            .arg(id.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if init {
            c.arg("--init");
        }
        c.spawn().unwrap()
    };
    let mut procs: Vec<Child> = (0..3).map(|i| start_host(i, true)).collect();
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..3usize)
        .map(|c| tokio::spawn(racing_client(c, hosts.clone(), 150, 200, start)))
        .collect();
    let admin_hosts = hosts.clone();
    let admin = tokio::spawn(async move {
        let mut admin = KvRemote::connect(admin_hosts).await.unwrap();
        for round in 0..3 {
            for (i, &(lo, hi)) in RANGES.iter().enumerate().take(3) {
                let from = admin.find_owner(lo, T).await.unwrap();
                let to = (from + 1 + (round + i) % 2) % 3;
                let range = KeyRange::new(lo, hi.map(Key::from));
                admin.shard(range, from, to, T).await.unwrap();
                while !admin.owns(to, lo, T).await.unwrap() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    });
    // The killer runs until the clients and the admin are done.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut kills = 0;
    while !(admin.is_finished() && tasks.iter().all(|t| t.is_finished())) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..100))).await;
        let victim = rng.random_range(0..3);
        procs[victim].kill().unwrap();
        procs[victim].wait().unwrap();
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..50))).await;
        procs[victim] = start_host(victim, false);
        kills += 1;
    }
    admin.await.unwrap();
    let mut ops: Vec<Recorded> = Vec::new();
    for t in tasks {
        ops.extend(t.await.unwrap());
    }
    assert_eq!(ops.len(), 450);
    assert!(kills >= 3, "only {kills} kills");
    assert!(
        linearizable(&ops),
        "the recorded history is not linearizable"
    );
    // Every moved range has exactly one owner.
    let mut probe = KvRemote::connect(hosts.clone()).await.unwrap();
    for &(lo, _) in RANGES.iter().take(3) {
        let mut owners = 0;
        for h in 0..3 {
            if probe.owns(h, lo, T).await.unwrap() {
                owners += 1;
            }
        }
        assert_eq!(owners, 1, "range starting at {lo}: {owners} owners");
    }
    for mut p in procs {
        let _ = p.kill();
        let _ = p.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same for a lost `Delegate`: host 1 is a raw socket that never acknowledges the range
/// host 0 hands it, while a client keeps host 0 busy; the `Delegate` must come again within two
/// retransmission periods (else the range would have no owner).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_delegate_is_resent_within_two_periods_under_steady_load() {
    use ironfleet::net::config::KvClusterConfig;
    use ironfleet::net::kv::{spawn_host, HostStats};
    use ironfleet::net::storage::Startup;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let socket = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
    let std::net::SocketAddr::V4(host0) = socket.local_addr().unwrap() else {
        unreachable!()
    };
    let raw1 = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
    let std::net::SocketAddr::V4(host1) = raw1.local_addr().unwrap() else {
        unreachable!()
    };
    let config = KvClusterConfig::new(vec![host0, host1]);
    let period = Duration::from_millis(config.params.retransmit_ms);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let _host = spawn_host(
        &config,
        0,
        Startup::Ephemeral,
        socket,
        HostStats::default(),
        rx,
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(busy_client(vec![host0, host1], stop.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut admin = KvRemote::connect(vec![host0, host1]).await.unwrap();
    admin
        .shard(KeyRange::new(5, Some(Key::from(6))), 0, 1, T)
        .await
        .unwrap();
    let resent = time_between_copies(&raw1, "Delegate", |m| {
        matches!(
            m,
            KvMsg::Single {
                payload: KvPayload::Delegate { .. },
                ..
            }
        )
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    assert_resent_under_load(resent, period, load.await.unwrap());
}

/// A host closes a client channel idle for between one and two `client_idle_close_ms` periods:
/// a client that comes back after that is told so (`ChannelClosed`) and goes on as a new
/// incarnation; a departed client's channel is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_closes_idle_client_channels() {
    use ironfleet::net::kv::ChannelClosed;
    let any = SocketAddrV4::new([127, 0, 0, 1].into(), 0);
    let mut config = ironfleet::net::config::KvClusterConfig::new(vec![any]);
    config.params.client_idle_close_ms = 100;
    let cluster = LocalKv::start(config).await.unwrap();
    let hosts = cluster.addrs();
    let mut c = KvRemote::connect(hosts.clone()).await.unwrap();
    c.set(1, Some(b"kept".to_vec()), T).await.unwrap();
    {
        let mut departed = KvRemote::connect(hosts.clone()).await.unwrap();
        departed.get(2, T).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    let channels = cluster.stats[0].gauges.channels.load(Ordering::Relaxed);
    assert_eq!(channels, 0, "idle channels are closed");
    let err = c.get(1, T).await.unwrap_err();
    assert!(err.downcast_ref::<ChannelClosed>().is_some(), "{err:#}");
    assert_eq!(c.get(1, T).await.unwrap(), Some(b"kept".to_vec()));
    cluster.stop().await.unwrap();
}
