//! One process per replica (`ironfleet rsl replica --config FILE --id N`), on loopback: the
//! leader's process is killed with SIGKILL mid-load, a new view forms and clients continue; the
//! killed replica restarts from its storage and catches up through state transfer (the others
//! truncated their logs meanwhile), and is then needed for a quorum when a second replica is
//! killed. SIGTERM stops the survivors gracefully.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironfleet::actors::rsl::{Counter, CounterOp};
use ironfleet::net::config::RslClusterConfig;
use ironfleet::net::rsl::{GaugeSnapshot, RslClient};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ironfleet");

/// A replica process and the last status line it printed.
struct ReplicaProc {
    child: Child,
    last: Arc<Mutex<Option<Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ReplicaProc {
    /// Starts replica `id`; `init` for its first start (it creates its storage file).
    fn spawn(config: &Path, id: usize, init: bool) -> Self {
        let mut child = Command::new(BIN)
            .args(["rsl", "replica", "--config"])
            .arg(config)
            .args(["--id", &id.to_string(), "--status-every", "50ms"])
            .args(init.then_some("--init"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning a replica process");
        let last = Arc::new(Mutex::new(None));
        let out = child.stdout.take().unwrap();
        let l = last.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    *l.lock().unwrap() = Some(v);
                }
            }
        });
        ReplicaProc {
            child,
            last,
            reader: Some(reader),
        }
    }

    fn gauges(&self) -> Option<GaugeSnapshot> {
        let v = self.last.lock().unwrap().clone()?;
        serde_json::from_value(v["gauges"].clone()).ok()
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM; returns whether it exited successfully, and its final status line.
    fn terminate(mut self) -> (bool, Option<Value>) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
        let status = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        let last = self.last.lock().unwrap().clone();
        (status.success(), last)
    }
}

impl Drop for ReplicaProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Free loopback UDP ports (bound, then released for the replicas to take).
fn free_addrs(n: usize) -> Vec<std::net::SocketAddrV4> {
    let socks: Vec<std::net::UdpSocket> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    socks
        .iter()
        .map(|s| match s.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            _ => unreachable!(),
        })
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Acknowledged increments: (reply, when).
type Acks = Arc<Mutex<Vec<(u64, Instant)>>>;

#[test]
fn leader_killed_mid_load_fails_over_and_restarted_replica_catches_up() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("ironfleet-failover-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = RslClusterConfig::new(free_addrs(3));
    cfg.data_dir = Some(dir.join("data"));
    cfg.params.baseline_view_timeout_ms = 300;
    cfg.params.heartbeat_period_ms = 30;
    let path = dir.join("cluster.toml");
    std::fs::write(&path, cfg.to_toml()).unwrap();

    let mut procs: Vec<Option<ReplicaProc>> = (0..3)
        .map(|i| Some(ReplicaProc::spawn(&path, i, true)))
        .collect();
    // A replica prints its first status line once it has bound its port. Clients bind ports
    // the kernel picks, and a port `free_addrs` released is free for the picking until its
    // replica binds it: seen once in CI, a client took a replica's port, that replica could not
    // start ("Address already in use"), and the run stalled once the leader was killed.
    wait_until(
        "every replica to bind its port",
        Duration::from_secs(30),
        || procs.iter().all(|p| p.as_ref().unwrap().gauges().is_some()),
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let acks: Acks = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (acks, stop, addrs) = (acks.clone(), stop.clone(), cfg.replicas.clone());
        clients.push(rt.spawn(async move {
            let mut c = RslClient::<Counter>::connect(addrs).await.unwrap();
            while !stop.load(Ordering::Relaxed) {
                let r = c
                    .call(CounterOp::Inc, Duration::from_secs(30))
                    .await
                    .unwrap();
                acks.lock().unwrap().push((r, Instant::now()));
            }
        }));
    }
    let acked = || acks.lock().unwrap().len();

    // Load, then kill the leader.
    wait_until("300 increments", Duration::from_secs(30), || acked() >= 300);
    let leading = |procs: &Vec<Option<ReplicaProc>>| -> Vec<usize> {
        (0..3)
            .filter(|&i| {
                procs[i]
                    .as_ref()
                    .and_then(|p| p.gauges())
                    .is_some_and(|g| g.leading == 1)
            })
            .collect()
    };
    let leader = leading(&procs);
    assert_eq!(leader.len(), 1, "exactly one leader");
    let leader = leader[0];
    let view_before = procs[leader].as_ref().unwrap().gauges().unwrap().view;
    let killed_at = Instant::now();
    procs[leader].as_mut().unwrap().kill9();
    let before_kill = acked();
    wait_until(
        "300 increments after the kill",
        Duration::from_secs(30),
        || acked() >= before_kill + 300,
    );
    let first_after = acks
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| *t)
        .filter(|t| *t > killed_at)
        .min()
        .unwrap();
    let failover = first_after - killed_at;
    eprintln!("failover: first acknowledged increment {failover:?} after SIGKILL of the leader");
    let survivor = (leader + 1) % 3;
    let g = procs[survivor].as_ref().unwrap().gauges().unwrap();
    assert!(g.view > view_before, "a new view formed: {g:?}");
    assert!(
        g.log_truncation_point > 0,
        "the survivors truncated their logs: {g:?}"
    );

    // Restart the killed replica on its storage: it must catch up through state transfer.
    procs[leader] = Some(ReplicaProc::spawn(&path, leader, false));
    let restarted_at = Instant::now();
    let target = g.ops_complete;
    wait_until(
        "the restarted replica to catch up",
        Duration::from_secs(30),
        || {
            procs[leader]
                .as_ref()
                .unwrap()
                .gauges()
                .is_some_and(|g| g.ops_complete >= target && g.state_transfer == 1)
        },
    );
    eprintln!(
        "catch-up: restarted replica reached slot {target} in {:?}, through state transfer",
        restarted_at.elapsed()
    );

    // Now the restarted replica is needed: kill another one; the remaining two must serve.
    let second = leading(&procs).first().copied().unwrap_or(survivor);
    assert_ne!(second, leader);
    procs[second].as_mut().unwrap().kill9();
    let before = acked();
    wait_until(
        "200 increments served by the restarted replica's quorum",
        Duration::from_secs(30),
        || acked() >= before + 200,
    );

    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for c in clients {
            c.await.unwrap();
        }
    });
    let total = acked() as u64;
    let got = rt.block_on(async {
        let mut c = RslClient::<Counter>::connect(cfg.replicas.clone())
            .await
            .unwrap();
        c.call(CounterOp::Get, Duration::from_secs(30))
            .await
            .unwrap()
    });
    let mut replies: Vec<u64> = acks.lock().unwrap().iter().map(|(r, _)| *r).collect();
    replies.sort_unstable();
    replies.dedup();
    assert_eq!(
        replies.len() as u64,
        total,
        "an increment was acknowledged twice"
    );
    assert_eq!(
        got, total,
        "final counter equals the acknowledged increments"
    );
    assert_eq!(replies, (1..=total).collect::<Vec<_>>());

    // Graceful shutdown on SIGTERM, with a final status line.
    for i in (0..3).filter(|&i| i != second) {
        let (ok, last) = procs[i].take().unwrap().terminate();
        assert!(ok, "replica {i} exits 0 on SIGTERM");
        let last = last.expect("a final status line");
        assert_eq!(last["replica"], i);
        assert!(last["counters"]["datagrams_in"].as_u64().unwrap() > 0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
