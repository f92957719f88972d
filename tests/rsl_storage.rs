//! A replica process fails closed on storage: it starts from its own storage file, or from
//! nothing only when told (`--init`, or `--ephemeral` without a `data_dir`); a missing, corrupt
//! or foreign file stops it at once with a non-zero exit; a storage write that fails while it
//! serves stops it too, before the step's messages leave.
//!
//! Each of these, before this behaviour existed, left a process that looked healthy: it started
//! empty (and could reuse its old ballot), or it stopped serving but kept running until SIGTERM.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ironfleet::actors::rsl::{Counter, CounterOp};
use ironfleet::net::config::RslClusterConfig;
use ironfleet::net::rsl::RslClient;

const BIN: &str = env!("CARGO_BIN_EXE_ironfleet");

fn free_addrs(n: usize) -> Vec<SocketAddrV4> {
    let sockets: Vec<std::net::UdpSocket> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets
        .iter()
        .map(|s| match s.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            a => panic!("unexpected {a}"),
        })
        .collect()
}

/// A fresh directory with a cluster file of `n` replicas (storage in `data/` if `durable`).
fn cluster(tag: &str, n: usize, durable: bool) -> (PathBuf, RslClusterConfig) {
    let dir = std::env::temp_dir().join(format!("ironfleet-storage-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = RslClusterConfig::new(free_addrs(n));
    if durable {
        cfg.data_dir = Some(dir.join("data"));
    }
    cfg.params.baseline_view_timeout_ms = 300;
    cfg.params.heartbeat_period_ms = 30;
    std::fs::write(dir.join("cluster.toml"), cfg.to_toml()).unwrap();
    (dir, cfg)
}

fn replica(dir: &Path, id: usize, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(["rsl", "replica", "--config"])
        .arg(dir.join("cluster.toml"))
        .args(["--id", &id.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning a replica")
}

/// Waits up to `limit` for `child` to exit; kills it and returns `None` if it is still running.
fn exits_within(mut child: Child, limit: Duration) -> Option<Output> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Starts a replica with `extra` flags and asserts it exits 2 at once, saying `expected`.
fn refused(dir: &Path, id: usize, extra: &[&str], expected: &str) {
    let o = exits_within(replica(dir, id, extra), Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the replica kept running ({extra:?})"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(expected), "{}", stderr(&o));
}

#[test]
fn a_cluster_without_storage_needs_ephemeral() {
    let (dir, _) = cluster("ephemeral", 1, false);
    refused(&dir, 0, &[], "no data_dir");
    let running = replica(&dir, 0, &["--ephemeral"]);
    assert!(
        exits_within(running, Duration::from_millis(500)).is_none(),
        "an explicitly ephemeral replica serves"
    );
}

#[test]
fn a_replica_without_its_storage_file_refuses_to_start() {
    let (dir, _) = cluster("missing", 1, true);
    refused(&dir, 0, &[], "no storage file");
    refused(&dir, 0, &["--ephemeral"], "remove one of them");
}

#[test]
fn init_creates_the_file_once_and_a_restart_reads_it() {
    let (dir, cfg) = cluster("init", 1, true);
    let first = replica(&dir, 0, &["--init"]);
    assert!(exits_within(first, Duration::from_millis(500)).is_none());
    assert!(cfg.data_dir.unwrap().join("replica-0.storage").exists());
    refused(&dir, 0, &["--init"], "already exists");
    let again = replica(&dir, 0, &[]);
    assert!(
        exits_within(again, Duration::from_millis(500)).is_none(),
        "a replica with its file starts"
    );
}

#[test]
fn a_corrupt_or_foreign_storage_file_fails_at_start() {
    let (dir, cfg) = cluster("corrupt", 2, true);
    let data = cfg.data_dir.unwrap();
    for id in 0..2 {
        let p = replica(&dir, id, &["--init"]);
        assert!(exits_within(p, Duration::from_millis(400)).is_none());
    }
    // Another replica's file in replica 0's place.
    std::fs::copy(
        data.join("replica-1.storage"),
        data.join("replica-0.storage"),
    )
    .unwrap();
    refused(&dir, 0, &[], "replica 1");
    // A damaged file.
    let mut bytes = std::fs::read(data.join("replica-1.storage")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(data.join("replica-0.storage"), &bytes).unwrap();
    refused(&dir, 0, &[], "corrupt storage file");
    std::fs::write(data.join("replica-0.storage"), b"{}").unwrap();
    refused(&dir, 0, &[], "corrupt storage file");
}

#[test]
fn a_storage_write_failing_mid_run_stops_the_replica_with_an_error() {
    let (dir, cfg) = cluster("failing", 3, true);
    let data = cfg.data_dir.clone().unwrap();
    let mut procs: Vec<Option<Child>> = (0..3)
        .map(|i| Some(replica(&dir, i, &["--init"])))
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = RslClient::<Counter>::connect(cfg.replicas.clone())
            .await
            .unwrap();
        assert_eq!(
            c.call(CounterOp::Inc, Duration::from_secs(10))
                .await
                .unwrap(),
            1
        );
    });
    // Block every replica's next write: a directory where the temporary file goes.
    // (A replica may be writing its temporary file at that moment: then take it away first.)
    for i in 0..3 {
        let tmp = data.join(format!("replica-{i}.tmp"));
        while std::fs::create_dir(&tmp).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    // The next request needs votes, and every vote needs a write: nothing may be acknowledged.
    let acked = rt.block_on(async {
        let mut c = RslClient::<Counter>::connect(cfg.replicas.clone())
            .await
            .unwrap();
        c.call(CounterOp::Inc, Duration::from_secs(2)).await
    });
    assert!(
        acked.is_err(),
        "an increment was acknowledged without storage: {acked:?}"
    );
    let mut stopped = 0;
    for p in procs.iter_mut() {
        if let Some(o) = exits_within(p.take().unwrap(), Duration::from_secs(5)) {
            assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
            // The write fails at create (the usual case) or, if the replica was writing at
            // that moment, at rename.
            let e = stderr(&o);
            assert!(e.contains("failed") && e.contains("replica-"), "{e}");
            stopped += 1;
        }
    }
    assert!(
        stopped >= 2,
        "a quorum of replicas must have stopped, {stopped} did"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
