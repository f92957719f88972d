//! The same IronRSL actors over real UDP sockets on loopback.

use std::collections::BTreeSet;
use std::time::Duration;

use ironfleet::actors::rsl::{Ballot, Counter, CounterOp, RslMsg};
use ironfleet::net::codec;
use ironfleet::net::config::RslClusterConfig;
use ironfleet::net::rsl::{LocalCluster, RslClient};
use tokio::net::UdpSocket;

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_increment_is_applied_exactly_once() {
    let cluster = LocalCluster::<Counter>::loopback(3).await.unwrap();
    let clients = 4;
    let per_client = 250;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let addrs = cluster.addrs();
        tasks.push(tokio::spawn(async move {
            let mut c = RslClient::<Counter>::connect(addrs).await.unwrap();
            let mut got = Vec::new();
            for _ in 0..per_client {
                got.push(c.call(CounterOp::Inc, TIMEOUT).await.unwrap());
            }
            got
        }));
    }
    let mut replies = BTreeSet::new();
    for t in tasks {
        for r in t.await.unwrap() {
            assert!(replies.insert(r), "two increments returned {r}");
        }
    }
    let n = (clients * per_client) as u64;
    assert_eq!(replies, (1..=n).collect::<BTreeSet<_>>());
    let mut c = RslClient::<Counter>::connect(cluster.addrs())
        .await
        .unwrap();
    assert_eq!(c.call(CounterOp::Get, TIMEOUT).await.unwrap(), n);
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_datagrams_are_dropped_and_counted() {
    let cluster = LocalCluster::<Counter>::loopback(3).await.unwrap();
    let target = cluster.addrs()[1];
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let heartbeat = codec::encode(&RslMsg::<Counter>::Heartbeat {
        bal: Ballot {
            seqno: 9,
            proposer: 0,
        },
        suspicious: true,
        opn_ckpt: 1_000,
    })
    .unwrap();
    let valid_request = codec::encode(&RslMsg::<Counter>::Request {
        seqno: 1,
        op: CounterOp::Get,
    })
    .unwrap();
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        b"hello".to_vec(),
        vec![0xff; 300],
        heartbeat[..heartbeat.len() - 1].to_vec(), // truncated
        vec![b'I'; codec::MAX_DATAGRAM + 10],      // oversized
        heartbeat.clone(),                         // well formed, unknown sender
    ];
    for g in &garbage {
        stranger.send_to(g, target).await.unwrap();
    }
    // Let them arrive, then check every one was dropped and counted by reason.
    let c = &cluster.stats[1].counters;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while c.dropped() < garbage.len() as u64 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let snap: std::collections::BTreeMap<_, _> = c.snapshot().into_iter().collect();
    assert_eq!(snap["dropped_undecodable"], 4, "{snap:?}");
    assert_eq!(snap["dropped_oversized"], 1, "{snap:?}");
    assert_eq!(snap["dropped_unknown_sender"], 1, "{snap:?}");
    // A request from a stranger is not dropped: clients are strangers.
    stranger.send_to(&valid_request, target).await.unwrap();
    // The cluster still serves.
    let mut client = RslClient::<Counter>::connect(cluster.addrs())
        .await
        .unwrap();
    assert_eq!(client.call(CounterOp::Inc, TIMEOUT).await.unwrap(), 1);
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_cluster_recovers_its_state_from_storage() {
    let dir = std::env::temp_dir().join(format!("ironfleet-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = RslClusterConfig::new(vec!["127.0.0.1:0".parse().unwrap(); 3]);
    cfg.data_dir = Some(dir.clone());
    let cluster = LocalCluster::<Counter>::start(cfg).await.unwrap();
    // The ports bound, kept for the restart.
    let cfg = cluster.config.clone();
    let addrs = cluster.addrs();
    let mut c = RslClient::<Counter>::connect(addrs.clone()).await.unwrap();
    for want in 1..=5 {
        assert_eq!(c.call(CounterOp::Inc, TIMEOUT).await.unwrap(), want);
    }
    cluster.stop().await.unwrap();
    assert!(dir.join("replica-0.storage").exists());
    // Same ports, same storage: the counter survives the restart. Replica 0 will not lead view
    // 0 again (its 1a ballot is durable), so this also exercises a view change.
    let cluster = LocalCluster::<Counter>::start(cfg).await.unwrap();
    assert_eq!(cluster.addrs(), addrs);
    let mut c = RslClient::<Counter>::connect(cluster.addrs())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(c.call(CounterOp::Inc, TIMEOUT).await.unwrap(), 6);
    eprintln!("first reply after restart: {:?}", started.elapsed());
    cluster.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Regression: `RslClient::call` kept its sequence number after a timeout, so the next, different
/// call reused it and was answered with the earlier call's reply (replicas answer an executed
/// number from their reply cache). Here a stand-in replica lets the first call time out, then
/// answers the second call first with a late reply to the first: the client must not take it.
#[tokio::test]
async fn a_call_after_a_timed_out_call_gets_its_own_reply() {
    use ironfleet::actors::rsl::{MapApp, MapOp, MapReply};
    let replica = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let std::net::SocketAddr::V4(addr) = replica.local_addr().unwrap() else {
        unreachable!()
    };
    let mut client = RslClient::<MapApp>::connect(vec![addr]).await.unwrap();
    let first = client
        .call(MapOp::Put(1, 10), Duration::from_millis(100))
        .await;
    assert!(first.is_err(), "nothing answered the first call");
    let mut buf = vec![0u8; 2048];
    let (n, _) = replica.recv_from(&mut buf).await.unwrap();
    let RslMsg::<MapApp>::Request { seqno: s1, .. } = codec::decode(&buf[..n]).unwrap() else {
        panic!("a request")
    };
    let second =
        tokio::spawn(async move { client.call(MapOp::Put(2, 20), Duration::from_secs(5)).await });
    // Skip the first call's retransmissions until the second call's request arrives.
    let (s2, from) = loop {
        let (n, from) = replica.recv_from(&mut buf).await.unwrap();
        match codec::decode::<RslMsg<MapApp>>(&buf[..n]).unwrap() {
            RslMsg::Request {
                seqno,
                op: MapOp::Put(2, 20),
            } => break (seqno, from),
            _ => continue,
        }
    };
    assert!(s2 > s1, "the second call reused sequence number {s1}");
    let reply = |seqno, value| {
        codec::encode(&RslMsg::<MapApp>::Reply {
            seqno,
            reply: MapReply(value),
        })
        .unwrap()
    };
    replica.send_to(&reply(s1, Some(111)), from).await.unwrap();
    replica.send_to(&reply(s2, Some(222)), from).await.unwrap();
    let got = second.await.unwrap().unwrap();
    assert_eq!(
        got,
        MapReply(Some(222)),
        "the second call took the first call's reply"
    );
}

/// With a cluster key, datagrams from a replica's address that lack a valid MAC are dropped and
/// counted while the cluster serves. Here the test holds replica 2's socket (so its datagrams
/// come from a real peer address) and forges what used to wedge or corrupt a cluster: a
/// heartbeat and a 1a with maximal ballots, a state supply far ahead, a 2b quorum's worth of
/// votes. Replicas 0 and 1 are a quorum and keep serving, in view 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_peer_datagrams_are_dropped_and_counted_while_the_cluster_serves() {
    use ironfleet::net::auth::ClusterKey;
    use ironfleet::net::rsl::{spawn_replica, ReplicaStats, Startup};
    use ironfleet::net::runtime::bind_udp;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    let dir = std::env::temp_dir().join(format!("ironfleet-forged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    ClusterKey::write_new(&dir.join("cluster.key")).unwrap();
    let sockets: Vec<UdpSocket> = (0..3)
        .map(|_| bind_udp("127.0.0.1:0".parse().unwrap()).unwrap())
        .collect();
    let addrs: Vec<std::net::SocketAddrV4> = sockets
        .iter()
        .map(|s| match s.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            a => panic!("{a}"),
        })
        .collect();
    let mut cfg = RslClusterConfig::new(addrs.clone());
    cfg.key_file = Some(dir.join("cluster.key"));
    let mut sockets = sockets.into_iter();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let stats: Vec<ReplicaStats> = (0..2).map(|_| ReplicaStats::default()).collect();
    for (i, st) in stats.iter().enumerate() {
        let s = sockets.next().unwrap();
        spawn_replica::<Counter>(&cfg, i, Startup::Ephemeral, s, st.clone(), rx.clone()).unwrap();
    }
    let forger = sockets.next().unwrap();
    let max = Ballot {
        seqno: u64::MAX,
        proposer: u32::MAX,
    };
    let mut forged = vec![
        RslMsg::<Counter>::Heartbeat {
            bal: max,
            suspicious: true,
            opn_ckpt: u64::MAX,
        },
        RslMsg::OneA { bal: max },
    ];
    let supply = ironfleet::actors::rsl::snapshot_chunks::<Counter>(
        1_000_000,
        &999,
        &Arc::new(Default::default()),
        32_000,
    );
    forged.extend(
        supply
            .into_iter()
            .map(|chunk| RslMsg::AppStateChunk { bal: max, chunk }),
    );
    let wrong_key = ClusterKey::from_bytes([9; 32]);
    let mut sent = 0;
    for m in &forged {
        for to in &addrs[..2] {
            let plain = codec::encode(m).unwrap();
            forger.send_to(&plain, to).await.unwrap();
            let mut sealed = plain.clone();
            wrong_key.seal(&mut sealed);
            forger.send_to(&sealed, to).await.unwrap();
            sent += 2;
        }
    }
    let mut c = RslClient::<Counter>::connect(addrs.clone()).await.unwrap();
    assert_eq!(c.call(CounterOp::Inc, TIMEOUT).await.unwrap(), 1);
    assert_eq!(c.call(CounterOp::Get, TIMEOUT).await.unwrap(), 1);
    let dropped: u64 = stats
        .iter()
        .map(|s| s.counters.dropped_unauthenticated.load(Ordering::Relaxed))
        .sum();
    // Replicas 0 and 1 also hear replica 2's (absent) silence; every forged datagram is counted.
    assert!(
        dropped >= sent,
        "{dropped} of {sent} forged datagrams counted"
    );
    for s in &stats {
        assert_eq!(
            s.gauges.view.load(Ordering::Relaxed),
            0,
            "the view did not move"
        );
    }
}

/// Regression: state transfer sent the app state and the whole reply cache (an entry per client
/// address ever seen) in one datagram; past about 5,000 distinct clients it no longer fitted, was
/// never sent, and a replica that had to catch up stayed behind for good. Here 20,000 increments
/// come from fresh clients (thousands of distinct addresses) while replica 2 is down; restarted
/// empty, it must catch up through a chunked state transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_replica_catches_up_after_twenty_thousand_distinct_clients() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let mut cluster = LocalCluster::<Counter>::loopback(3).await.unwrap();
    let lagging = (0..3)
        .find(|&i| Some(i) != cluster.leader())
        .expect("a replica that does not lead");
    cluster.kill(lagging).await;
    let addrs = cluster.addrs();
    // With one replica down, a view change under CPU load can land on its view and cost an
    // epoch; a call that times out is retried from another fresh client (it may still have been
    // executed, so the final count is at least the acknowledged one).
    let acked = Arc::new(AtomicU64::new(0));
    let total = 20_000u64;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (addrs, acked) = (addrs.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            while acked.load(Ordering::Relaxed) < total {
                let mut c = RslClient::<Counter>::connect(addrs.clone()).await.unwrap();
                if c.call(CounterOp::Inc, TIMEOUT).await.is_ok() {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let executed = |c: &LocalCluster<Counter>, i: usize| {
        c.stats[i].gauges.ops_complete.load(Ordering::Relaxed)
    };
    let target = (0..3)
        .filter(|&i| i != lagging)
        .map(|i| executed(&cluster, i))
        .max()
        .unwrap();
    assert!(target > 0);
    cluster.restart(lagging).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while executed(&cluster, lagging) < target {
        assert!(
            std::time::Instant::now() < deadline,
            "replica {lagging} stayed at {} of {target} slots",
            executed(&cluster, lagging)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let g = &cluster.stats[lagging].gauges;
    assert_eq!(
        g.state_transfer.load(Ordering::Relaxed),
        1,
        "caught up by state transfer"
    );
    // 20,000 distinct clients, a table of 10,000 sessions: the oldest were evicted, on every
    // replica alike (the lagging one got its table by state transfer).
    let bound = ironfleet::actors::rsl::Params::default().max_client_sessions as u64;
    for i in 0..3 {
        let sessions = cluster.stats[i]
            .gauges
            .client_sessions
            .load(Ordering::Relaxed);
        assert!(sessions <= bound, "replica {i} holds {sessions} sessions");
    }
    assert!(
        g.session_watermark.load(Ordering::Relaxed) > 0,
        "sessions were evicted"
    );
    let mut c = RslClient::<Counter>::connect(addrs).await.unwrap();
    let value = c.call(CounterOp::Get, TIMEOUT).await.unwrap();
    assert!(
        value >= acked.load(Ordering::Relaxed),
        "{value}: an acknowledged increment was lost"
    );
    cluster.stop().await.unwrap();
}

/// The next datagram `socket` receives, decoded.
async fn next_answer(socket: &UdpSocket) -> RslMsg<Counter> {
    let mut buf = vec![0u8; 2048];
    let (n, _) = tokio::time::timeout(TIMEOUT, socket.recv_from(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    codec::decode(&buf[..n]).unwrap()
}

/// A cluster whose session table holds two sessions: after three clients, the first client's
/// session is evicted; a late retransmission of its request (same address, same seqno) is refused
/// with `SessionExpired`, never executed again; a client whose sequence numbers are below the
/// watermark gets the refusal as an error and its next call, above the watermark, succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_from_an_evicted_session_is_refused_never_executed_twice() {
    let any: std::net::SocketAddrV4 = "127.0.0.1:0".parse().unwrap();
    let mut config = RslClusterConfig::new(vec![any; 3]);
    config.params.max_client_sessions = 2;
    let cluster = LocalCluster::<Counter>::start(config).await.unwrap();
    let addrs = cluster.addrs();
    // Client 0 speaks raw datagrams, so it can retransmit an old request as the network would.
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let request = codec::encode(&RslMsg::<Counter>::Request {
        seqno: 7,
        op: CounterOp::Inc,
    })
    .unwrap();
    for a in &addrs {
        raw.send_to(&request, a).await.unwrap();
    }
    let first = next_answer(&raw).await;
    assert_eq!(first, RslMsg::Reply { seqno: 7, reply: 1 });
    // Two more clients (wall-clock seqnos, far above 7) evict client 0's session.
    for expected in [2, 3] {
        let mut c = RslClient::<Counter>::connect(addrs.clone()).await.unwrap();
        assert_eq!(c.call(CounterOp::Inc, TIMEOUT).await.unwrap(), expected);
    }
    // The late retransmission: refused, not executed.
    for a in &addrs {
        raw.send_to(&request, a).await.unwrap();
    }
    // Late copies of the first reply may still come (a follower that executed the slot
    // answers the first request from its session table if it saw it only afterwards).
    loop {
        match next_answer(&raw).await {
            RslMsg::SessionExpired {
                seqno: 7,
                watermark,
            } => {
                assert!(watermark >= 7);
                break;
            }
            RslMsg::Reply { seqno: 7, reply: 1 } => continue,
            other => panic!("expected SessionExpired, got {other:?}"),
        }
    }
    let mut c = RslClient::<Counter>::connect(addrs.clone()).await.unwrap();
    assert_eq!(
        c.call(CounterOp::Get, TIMEOUT).await.unwrap(),
        3,
        "the refused retransmission was executed"
    );
    cluster.stop().await.unwrap();
}

/// What `RslClient` does with a refusal: the call fails with [`SessionExpired`], and the next
/// call takes a sequence number above the watermark.
#[tokio::test]
async fn a_client_told_its_session_expired_starts_a_new_session_above_the_watermark() {
    use ironfleet::net::rsl::SessionExpired;
    let replica = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let std::net::SocketAddr::V4(addr) = replica.local_addr().unwrap() else {
        unreachable!()
    };
    let mut client = RslClient::<Counter>::connect(vec![addr]).await.unwrap();
    let first = tokio::spawn(async move {
        let r = client.call(CounterOp::Inc, TIMEOUT).await;
        (client, r)
    });
    let mut buf = vec![0u8; 2048];
    let (n, from) = replica.recv_from(&mut buf).await.unwrap();
    let RslMsg::<Counter>::Request { seqno: s1, .. } = codec::decode(&buf[..n]).unwrap() else {
        panic!("a request")
    };
    let watermark = s1 + 1_000_000_000_000;
    let refusal = codec::encode(&RslMsg::<Counter>::SessionExpired {
        seqno: s1,
        watermark,
    })
    .unwrap();
    replica.send_to(&refusal, from).await.unwrap();
    let (mut client, r) = first.await.unwrap();
    let err = r.expect_err("a refused call fails");
    let expired = err
        .downcast_ref::<SessionExpired>()
        .expect("the error says the session expired");
    assert_eq!((expired.seqno, expired.watermark), (s1, watermark));
    let second = tokio::spawn(async move { client.call(CounterOp::Inc, TIMEOUT).await });
    let s2 = loop {
        let (n, from) = replica.recv_from(&mut buf).await.unwrap();
        if let RslMsg::<Counter>::Request { seqno, .. } = codec::decode(&buf[..n]).unwrap() {
            if seqno != s1 {
                let reply = codec::encode(&RslMsg::<Counter>::Reply { seqno, reply: 1 }).unwrap();
                replica.send_to(&reply, from).await.unwrap();
                break seqno;
            }
        }
    };
    assert!(
        s2 > watermark,
        "the next call's seqno {s2} is not above {watermark}"
    );
    assert_eq!(second.await.unwrap().unwrap(), 1);
}
