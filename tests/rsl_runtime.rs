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
