//! The runtime verbs of the `ironfleet` command: `rsl replica|local|client|bench` and
//! `lock local`. Each returns the process exit code (0 fine, 1 a failed run such as a benchmark
//! with no completed request); errors (bad config, a port in use) become exit code 2 in `main`.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use stateright::actor::Id;
use tokio::sync::{mpsc, watch};

use super::bench::{self, EchoServer, Point, Timing};
use super::config::ClusterConfig;
use super::rsl::{bind, spawn_replica, LocalCluster, ReplicaStats, RslClient};
use super::runtime::{run_actor, shutdown_signal, Counters, RuntimeConfig};
use crate::actors::lock::{LockConfig, LockNode, LockState};
use crate::actors::rsl::{Counter, CounterOp};
use crate::plot::{Chart, Series};

/// A tokio runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn print_status(stats: &ReplicaStats, id: usize) {
    println!("{}", stats.status_json(id));
}

/// `ironfleet rsl replica --config FILE --id N`: runs one replica until SIGINT/SIGTERM, printing
/// a JSON status line every `status_every` (if set) and once more at shutdown.
pub fn rsl_replica(config: &Path, id: usize, status_every: Option<Duration>) -> Result<i32> {
    let cluster = ClusterConfig::load(config)?;
    if id >= cluster.replicas.len() {
        bail!(
            "--id {id}: {} has {} replicas (ids 0..={})",
            config.display(),
            cluster.replicas.len(),
            cluster.replicas.len() - 1
        );
    }
    runtime()?.block_on(async {
        let socket = bind(cluster.replicas[id]).await?;
        let stats = ReplicaStats::default();
        let (tx, rx) = watch::channel(false);
        let handle = spawn_replica::<Counter>(&cluster, id, socket, stats.clone(), rx)?;
        tracing::info!(id, addr = %cluster.replicas[id], "replica serving");
        let status = {
            let stats = stats.clone();
            tokio::spawn(async move {
                let Some(every) = status_every else {
                    return;
                };
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    print_status(&stats, id);
                }
            })
        };
        let signal = shutdown_signal().await?;
        tracing::info!(id, signal, "shutting down");
        status.abort();
        let _ = tx.send(true);
        handle.await.context("replica task panicked")??;
        print_status(&stats, id);
        Ok(0)
    })
}

/// `n` loopback addresses on consecutive ports from `base_port` (0: each any free port).
pub fn loopback_addrs(n: usize, base_port: u16) -> Result<Vec<SocketAddrV4>> {
    (0..n)
        .map(|i| {
            let port = if base_port == 0 {
                Ok(0)
            } else {
                u16::try_from(base_port as usize + i)
                    .map_err(|_| anyhow::anyhow!("--base-port {base_port}: ports run past 65535"))
            }?;
            Ok(SocketAddrV4::new([127, 0, 0, 1].into(), port))
        })
        .collect()
}

/// `ironfleet rsl local`: a whole cluster in this process until Ctrl-C/SIGTERM.
pub fn rsl_local(
    replicas: usize,
    base_port: u16,
    data_dir: Option<PathBuf>,
    write_config: Option<PathBuf>,
) -> Result<i32> {
    if !(1..=super::config::MAX_REPLICAS).contains(&replicas) {
        bail!(
            "--replicas {replicas}: must be 1..={}",
            super::config::MAX_REPLICAS
        );
    }
    let addrs = loopback_addrs(replicas, base_port)?;
    let mut cfg = ClusterConfig::new(addrs);
    cfg.data_dir = data_dir;
    runtime()?.block_on(async {
        let cluster = LocalCluster::<Counter>::start(cfg).await?;
        println!("IronRSL counter cluster on loopback:");
        for (i, a) in cluster.config.replicas.iter().enumerate() {
            println!("  replica {i}: {a}");
        }
        let list: Vec<String> = cluster.addrs().iter().map(|a| a.to_string()).collect();
        if let Some(path) = &write_config {
            std::fs::write(path, cluster.config.to_toml())
                .with_context(|| format!("writing {}", path.display()))?;
            println!("Cluster file: {}", path.display());
            println!(
                "Try: ironfleet rsl client --config {} inc      (Ctrl-C to stop)",
                path.display()
            );
        } else {
            println!(
                "Try: ironfleet rsl client --replicas {} inc      (Ctrl-C to stop)",
                list.join(",")
            );
        }
        let signal = shutdown_signal().await?;
        println!("{signal}: stopping");
        for (i, s) in cluster.stats.iter().enumerate() {
            print_status(s, i);
        }
        cluster.stop().await?;
        Ok(0)
    })
}

/// Where a client finds the replicas: a cluster file, or addresses on the command line.
#[derive(Args, Clone, Debug)]
pub struct Target {
    /// The cluster file.
    #[arg(long, conflicts_with = "replicas")]
    pub config: Option<PathBuf>,
    /// The replicas' addresses, comma-separated, in configuration order (default: those of
    /// `ironfleet rsl local`).
    #[arg(long, value_delimiter = ',')]
    pub replicas: Option<Vec<SocketAddrV4>>,
}

impl Target {
    /// The replica addresses.
    pub fn addrs(&self) -> Result<Vec<SocketAddrV4>> {
        if let Some(path) = &self.config {
            return Ok(ClusterConfig::load(path)?.replicas);
        }
        Ok(self.replicas.clone().unwrap_or_else(|| {
            (0..3)
                .map(|i| SocketAddrV4::new([127, 0, 0, 1].into(), 4000 + i))
                .collect()
        }))
    }
}

/// `ironfleet rsl client inc|get`.
pub fn rsl_client(target: &Target, timeout: Duration, op: CounterOp) -> Result<i32> {
    let addrs = target.addrs()?;
    runtime()?.block_on(async {
        let mut c = RslClient::<Counter>::connect(addrs).await?;
        let reply = c.call(op, timeout).await?;
        println!("{reply}");
        Ok(0)
    })
}

/// What `rsl bench` compares against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Baseline {
    /// A raw UDP echo server on loopback.
    Echo,
}

/// Flags of `ironfleet rsl bench`.
#[derive(Args, Clone, Debug)]
pub struct BenchFlags {
    /// A running cluster's file; without it an in-process loopback cluster of `--local-replicas`
    /// is started for the run.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Replicas of the in-process cluster.
    #[arg(long, default_value_t = 3)]
    pub local_replicas: usize,
    /// Closed-loop clients (ignored with --sweep).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Client counts to measure one after the other, e.g. 1,4,16,64,256.
    #[arg(long, value_delimiter = ',')]
    pub sweep: Option<Vec<usize>>,
    /// Timing and output.
    #[command(flatten)]
    pub out: BenchOutput,
}

/// The timing and output flags every benchmark shares (`rsl bench`, `kv bench`).
#[derive(Args, Clone, Debug)]
pub struct BenchOutput {
    /// Measured time per point (10s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = bench::parse_duration)]
    pub duration: Duration,
    /// Unmeasured warm-up before each point.
    #[arg(long, default_value = "1s", value_parser = bench::parse_duration)]
    pub warmup: Duration,
    /// Also measure this baseline (same datagram size as the system's requests) at every
    /// client count.
    #[arg(long, value_enum)]
    pub baseline: Option<Baseline>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Draw the latency-throughput curve to this SVG file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

impl BenchOutput {
    /// How long each point runs.
    pub fn timing(&self) -> Timing {
        Timing {
            warmup: self.warmup,
            duration: self.duration,
        }
    }

    /// Says (on stderr, unless `--json`) what is about to be measured.
    pub fn announce(&self, what: &str) {
        if !self.json {
            eprintln!(
                "benchmarking {what}: {} s per point after {} s warm-up",
                self.duration.as_secs_f64(),
                self.warmup.as_secs_f64()
            );
        }
    }

    /// Shows one measured point as it comes in (on stderr, unless `--json`).
    pub fn progress(&self, p: &Point) {
        if !self.json {
            eprintln!(
                "  {:<6} {:>4} clients: {:>9.0} ops/s  p50 {} us",
                p.system, p.clients, p.throughput, p.p50_us
            );
        }
    }

    /// Prints the points (JSON with the `extra` fields, or a table), draws the SVG with
    /// `title`, and returns the exit code: 1 if the system (anything but the baseline)
    /// completed no request.
    pub fn report(
        &self,
        points: &[Point],
        extra: serde_json::Map<String, serde_json::Value>,
        title: &str,
    ) -> Result<i32> {
        if self.json {
            let mut doc = serde_json::Map::new();
            doc.insert("duration_s".into(), self.duration.as_secs_f64().into());
            doc.insert("warmup_s".into(), self.warmup.as_secs_f64().into());
            doc.extend(extra);
            doc.insert("points".into(), serde_json::to_value(points)?);
            println!("{}", serde_json::to_string_pretty(&doc)?);
        } else {
            print!("{}", bench::table(points));
        }
        if let Some(path) = &self.svg {
            std::fs::write(path, latency_chart(points, title).to_svg())
                .with_context(|| format!("writing {}", path.display()))?;
            if !self.json {
                println!("latency-throughput curve: {}", path.display());
            }
        }
        let ops: u64 = points
            .iter()
            .filter(|p| p.system != "echo")
            .map(|p| p.ops)
            .sum();
        if ops == 0 {
            eprintln!("no request completed: is the cluster running?");
            return Ok(1);
        }
        Ok(0)
    }
}

/// The most clients one benchmark point may have (each has a socket and a task).
pub const MAX_BENCH_CLIENTS: usize = 4096;

/// `ironfleet rsl bench`.
pub fn rsl_bench(f: &BenchFlags) -> Result<i32> {
    let counts = f.sweep.clone().unwrap_or_else(|| vec![f.clients]);
    if counts.is_empty() || counts.iter().any(|&c| c == 0 || c > MAX_BENCH_CLIENTS) {
        bail!("client counts must be 1..={MAX_BENCH_CLIENTS}, got {counts:?}");
    }
    let external = match &f.config {
        Some(p) => Some(ClusterConfig::load(p)?),
        None => None,
    };
    let out = &f.out;
    let t = out.timing();
    let points = runtime()?.block_on(async {
        let (addrs, local) = match external {
            Some(c) => (c.replicas, None),
            None => {
                let any = SocketAddrV4::new([127, 0, 0, 1].into(), 0);
                if f.local_replicas == 0 {
                    bail!("--local-replicas must be at least 1");
                }
                let cluster =
                    LocalCluster::<Counter>::start(ClusterConfig::new(vec![any; f.local_replicas]))
                        .await?;
                (cluster.addrs(), Some(cluster))
            }
        };
        let echo = match out.baseline {
            Some(Baseline::Echo) => Some(EchoServer::start().await?),
            None => None,
        };
        out.announce(&if local.is_some() {
            format!("an in-process cluster of {} replicas", addrs.len())
        } else {
            format!("the cluster at {addrs:?}")
        });
        let mut points: Vec<Point> = Vec::new();
        for &n in &counts {
            let p = bench::run_rsl(&addrs, n, t).await?;
            out.progress(&p);
            points.push(p);
            if let Some(e) = &echo {
                let p = bench::run_echo(e.addr, n, t).await?;
                out.progress(&p);
                points.push(p);
            }
        }
        if let Some(e) = echo {
            e.stop().await;
        }
        if let Some(c) = local {
            c.stop().await?;
        }
        Ok::<_, anyhow::Error>(points)
    })?;
    out.report(
        &points,
        serde_json::Map::new(),
        "IronRSL counter on loopback: latency vs throughput (labels: clients)",
    )
}

/// Latency (p50 solid, p99 dashed, in ms) against throughput, one colour per system.
pub fn latency_chart(points: &[Point], title: &str) -> Chart {
    let mut series = Vec::new();
    let mut systems: Vec<&str> = Vec::new();
    for p in points {
        if !systems.contains(&p.system.as_str()) {
            systems.push(&p.system);
        }
    }
    const PALETTE: [&str; 5] = ["#c0392b", "#27ae60", "#8e44ad", "#d35400", "#7f8c8d"];
    let mut next = PALETTE.iter().cycle();
    for system in systems {
        let colour = if system == "echo" {
            "#2c7fb8"
        } else {
            next.next().expect("a cycle")
        };
        let pts: Vec<&Point> = points.iter().filter(|p| p.system == system).collect();
        if pts.is_empty() {
            continue;
        }
        for (q, dashed) in [("p50", false), ("p99", true)] {
            series.push(Series {
                name: format!("{system} {q}"),
                colour: colour.into(),
                dashed,
                points: pts
                    .iter()
                    .map(|p| {
                        let us = if dashed { p.p99_us } else { p.p50_us };
                        (p.throughput, us as f64 / 1000.0, format!("{}", p.clients))
                    })
                    .collect(),
            });
        }
    }
    Chart {
        title: title.into(),
        x_label: "throughput (requests/s)".into(),
        y_label: "latency (ms)".into(),
        series,
    }
}

/// `ironfleet lock local --nodes N`: the ring lock over loopback UDP, printing each handover;
/// stops after `epochs` epochs (if given) or at Ctrl-C/SIGTERM.
pub fn lock_local(nodes: usize, hold_ms: u64, epochs: Option<u64>) -> Result<i32> {
    if !(1..=64).contains(&nodes) {
        bail!("--nodes {nodes}: must be 1..=64");
    }
    runtime()?.block_on(async {
        let mut sockets = Vec::new();
        for _ in 0..nodes {
            sockets.push(bind(SocketAddrV4::new([127, 0, 0, 1].into(), 0)).await?);
        }
        let addrs: Vec<SocketAddrV4> = sockets
            .iter()
            .map(|s| match s.local_addr() {
                Ok(std::net::SocketAddr::V4(a)) => Ok(a),
                other => bail!("unexpected local address {other:?}"),
            })
            .collect::<Result<_>>()?;
        let ring: Arc<Vec<Id>> = Arc::new(addrs.iter().map(|a| Id::from(*a)).collect());
        let (tx, rx) = watch::channel(false);
        let (events_tx, mut events) = mpsc::unbounded_channel::<(usize, u64)>();
        let mut handles = Vec::new();
        println!("IronLock ring of {nodes} on loopback:");
        for (me, socket) in sockets.into_iter().enumerate() {
            println!("  node {me}: {}", addrs[me]);
            let node = LockNode::new(LockConfig {
                ring: ring.clone(),
                me,
                hold_ms,
                mutation: None,
            });
            let ev = events_tx.clone();
            let mut last = 0;
            let cfg = RuntimeConfig::<LockNode> {
                peers: addrs.clone(),
                accept_from_stranger: |_| false,
                storage: None,
                seed: me as u64,
                observe: Some(Box::new(move |s: &LockState| {
                    if s.held && s.epoch > last {
                        last = s.epoch;
                        let _ = ev.send((me, s.epoch));
                    }
                })),
            };
            handles.push(tokio::spawn(run_actor(
                node,
                socket,
                cfg,
                Arc::new(Counters::default()),
                rx.clone(),
            )));
        }
        drop(events_tx);
        let started = tokio::time::Instant::now();
        let stop = shutdown_signal();
        tokio::pin!(stop);
        let mut seen = 0;
        loop {
            tokio::select! {
                s = &mut stop => { println!("{}: stopping", s?); break; }
                e = events.recv() => {
                    let Some((node, epoch)) = e else { break };
                    println!(
                        "{:>8.3}s  epoch {epoch:>4}: node {node} ({}) holds the lock",
                        started.elapsed().as_secs_f64(),
                        addrs[node]
                    );
                    seen = seen.max(epoch);
                    if epochs.is_some_and(|n| seen >= n) { break; }
                }
            }
        }
        let _ = tx.send(true);
        for h in handles {
            h.await.context("lock node panicked")??;
        }
        Ok(0)
    })
}

/// Flags of `ironfleet rsl soak`.
#[derive(Args, Clone, Debug)]
pub struct SoakFlags {
    /// Increments to run in all.
    #[arg(long, default_value_t = 1_000_000)]
    pub ops: u64,
    /// Closed-loop clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Replica processes.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// Sample the replicas' memory every this many increments.
    #[arg(long, default_value_t = 100_000)]
    pub sample_every: u64,
    /// Keep replica storage (written and fsynced on every durable change) in a temporary
    /// directory; without it the replicas run from memory only.
    #[arg(long)]
    pub durable: bool,
    /// Draw memory against operations to this SVG file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

/// Kills a child process on drop (the soak's replicas must not outlive it on an error).
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ironfleet rsl soak`: starts the replicas as child processes of this binary, runs `ops`
/// increments through them, and prints each replica's resident memory every `sample_every`
/// increments: with log truncation it must stay flat.
pub fn rsl_soak(f: &SoakFlags) -> Result<i32> {
    use std::sync::atomic::{AtomicU64, Ordering};
    if f.clients == 0 || f.clients > MAX_BENCH_CLIENTS {
        bail!("--clients must be 1..={MAX_BENCH_CLIENTS}");
    }
    if f.sample_every == 0 || f.ops < f.sample_every {
        bail!("--sample-every must be at least 1 and at most --ops");
    }
    if !(1..=super::config::MAX_REPLICAS).contains(&f.replicas) {
        bail!("--replicas must be 1..={}", super::config::MAX_REPLICAS);
    }
    let dir = std::env::temp_dir().join(format!("ironfleet-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let addrs: Vec<SocketAddrV4> = (0..f.replicas)
        .map(|_| {
            let s = std::net::UdpSocket::bind("127.0.0.1:0")?;
            match s.local_addr()? {
                std::net::SocketAddr::V4(a) => Ok(a),
                a => bail!("unexpected address {a}"),
            }
        })
        .collect::<Result<_>>()?;
    let mut cfg = ClusterConfig::new(addrs.clone());
    if f.durable {
        cfg.data_dir = Some(dir.join("data"));
    }
    let path = dir.join("cluster.toml");
    std::fs::write(&path, cfg.to_toml())?;
    let exe = std::env::current_exe().context("finding this executable")?;
    let mut children = Vec::new();
    for id in 0..f.replicas {
        let child = std::process::Command::new(&exe)
            .args(["rsl", "replica", "--config"])
            .arg(&path)
            .args(["--id", &id.to_string()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting replica {id}"))?;
        children.push(ChildGuard(child));
    }
    let pids: Vec<String> = children.iter().map(|c| c.0.id().to_string()).collect();
    println!(
        "soak: {} increments, {} clients, {} replica processes (pids {}), storage {}",
        f.ops,
        f.clients,
        f.replicas,
        pids.join(","),
        if f.durable { "on disk" } else { "off" }
    );
    println!(
        "{:>10} {:>8} {:>9}  {}",
        "ops",
        "secs",
        "ops/s",
        (0..f.replicas)
            .map(|i| format!("{:>12}", format!("rss{i} KiB")))
            .collect::<Vec<_>>()
            .join("")
    );
    let mut samples: Vec<(u64, Vec<u64>)> = Vec::new();
    let acked = Arc::new(AtomicU64::new(0));
    let final_value = runtime()?.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..f.clients {
            let mut c = RslClient::<Counter>::connect(addrs.clone()).await?;
            let (acked, total) = (acked.clone(), f.ops);
            tasks.push(tokio::spawn(async move {
                while acked.load(Ordering::Relaxed) < total {
                    c.call(CounterOp::Inc, Duration::from_secs(30)).await?;
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        let started = tokio::time::Instant::now();
        let mut next = f.sample_every;
        while next <= f.ops {
            let done = acked.load(Ordering::Relaxed);
            if done >= next {
                let rss: Vec<u64> = pids
                    .iter()
                    .map(|p| super::rsl::resident_kib_of(p).unwrap_or(0))
                    .collect();
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "{:>10} {:>8.1} {:>9.0}  {}",
                    done,
                    secs,
                    done as f64 / secs,
                    rss.iter()
                        .map(|r| format!("{r:>12}"))
                        .collect::<Vec<_>>()
                        .join("")
                );
                samples.push((done, rss));
                next += f.sample_every;
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if tasks.iter().all(|t| t.is_finished()) && acked.load(Ordering::Relaxed) < next {
                break;
            }
        }
        for t in tasks {
            t.await.context("soak client panicked")??;
        }
        let mut c = RslClient::<Counter>::connect(addrs.clone()).await?;
        c.call(CounterOp::Get, Duration::from_secs(30)).await
    })?;
    let total = acked.load(Ordering::Relaxed);
    for c in &children {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &c.0.id().to_string()])
            .status();
    }
    for mut c in children {
        let st = c.0.wait()?;
        if !st.success() {
            bail!("a replica exited with {st} on SIGTERM");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("final counter {final_value}, acknowledged increments {total}");
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let growth: Vec<String> = first
            .1
            .iter()
            .zip(&last.1)
            .map(|(a, b)| format!("{:+}", *b as i64 - *a as i64))
            .collect();
        println!(
            "resident memory from {} to {} ops: {} KiB per replica",
            first.0,
            last.0,
            growth.join(", ")
        );
    }
    if let Some(p) = &f.svg {
        let series = (0..f.replicas)
            .map(|i| Series {
                name: format!("replica {i}"),
                colour: ["#c0392b", "#2c7fb8", "#31a354", "#756bb1", "#e6550d"][i % 5].into(),
                dashed: false,
                points: samples
                    .iter()
                    .map(|(ops, rss)| (*ops as f64, rss[i] as f64 / 1024.0, String::new()))
                    .collect(),
            })
            .collect();
        let chart = Chart {
            title: "IronRSL replica resident memory under load".into(),
            x_label: "increments executed".into(),
            y_label: "resident set (MiB)".into(),
            series,
        };
        std::fs::write(p, chart.to_svg()).with_context(|| format!("writing {}", p.display()))?;
        println!("memory curve: {}", p.display());
    }
    if final_value != total {
        eprintln!("final counter {final_value} differs from the {total} acknowledged increments");
        return Ok(1);
    }
    Ok(0)
}
