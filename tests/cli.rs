//! The `ironfleet` command end to end: runtime verbs over loopback, their output, and their
//! errors and exit codes for bad flags and bad cluster files.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ironfleet");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running ironfleet")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn temp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ironfleet-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_cluster_files_name_the_field_and_exit_2() {
    let cases = [
        ("empty.toml", "replicas = []\n"),
        (
            "dup.toml",
            "replicas = [\"127.0.0.1:7000\", \"127.0.0.1:7000\"]\n",
        ),
        (
            "batch.toml",
            "replicas = [\"127.0.0.1:7000\"]\n[params]\nmax_batch_size = 0\n",
        ),
        (
            "typo.toml",
            "replicas = [\"127.0.0.1:7000\"]\n[params]\nmax_batch_sise = 4\n",
        ),
        ("addr.toml", "replicas = [\"localhost:7000\"]\n"),
    ];
    let mut report = String::new();
    for (name, text) in cases {
        let p = temp(name, text);
        let o = run(&[
            "rsl",
            "replica",
            "--config",
            p.to_str().unwrap(),
            "--id",
            "0",
        ]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let dir = p.parent().unwrap().to_str().unwrap().to_string();
        report += &format!("{name}:\n{}\n", stderr(&o).replace(&dir, "DIR"));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn replica_id_outside_the_file_is_an_error() {
    let p = temp("one.toml", "replicas = [\"127.0.0.1:7000\"]\n");
    let o = run(&[
        "rsl",
        "replica",
        "--config",
        p.to_str().unwrap(),
        "--id",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--id 3"), "{}", stderr(&o));
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        &["rsl", "bench", "--duration", "0s"][..],
        &["rsl", "bench", "--sweep", "1,0"],
        &["rsl", "client", "frobnicate"],
        &[
            "rsl",
            "client",
            "--config",
            "/nonexistent/cluster.toml",
            "inc",
        ],
        &["lock", "local", "--nodes", "0"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty());
    }
}

#[test]
fn bench_prints_json_with_the_echo_baseline() {
    let o = run(&[
        "rsl",
        "bench",
        "--sweep",
        "1,4",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--baseline",
        "echo",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let points = doc["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    for p in points {
        assert!(p["ops"].as_u64().unwrap() > 0, "{p}");
        assert!(p["p50_us"].as_u64().unwrap() <= p["p99_us"].as_u64().unwrap());
        assert!(p["p99_us"].as_u64().unwrap() <= p["p999_us"].as_u64().unwrap());
    }
    let systems: Vec<&str> = points
        .iter()
        .map(|p| p["system"].as_str().unwrap())
        .collect();
    assert_eq!(systems, ["rsl", "echo", "rsl", "echo"]);
}

#[test]
fn bench_draws_an_svg_curve() {
    let svg = std::env::temp_dir().join(format!("ironfleet-bench-{}.svg", std::process::id()));
    let o = run(&[
        "rsl",
        "bench",
        "--clients",
        "2",
        "--duration",
        "200ms",
        "--warmup",
        "50ms",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("ops/s"));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<polyline") && text.contains("rsl p50"));
    let _ = std::fs::remove_file(svg);
}

#[test]
fn lock_local_passes_the_lock_round_the_ring() {
    let o = run(&[
        "lock",
        "local",
        "--nodes",
        "3",
        "--hold-ms",
        "20",
        "--epochs",
        "7",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let holders: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("holds the lock"))
        .map(|l| l.split("node ").nth(1).unwrap().split(' ').next().unwrap())
        .collect();
    assert_eq!(holders, ["0", "1", "2", "0", "1", "2", "0"], "{out}");
}

#[test]
fn soak_runs_replica_processes_and_reports_memory() {
    let o = run(&[
        "rsl",
        "soak",
        "--ops",
        "4000",
        "--sample-every",
        "2000",
        "--clients",
        "8",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("resident memory from"), "{out}");
    assert!(out.contains("final counter"), "{out}");
}
