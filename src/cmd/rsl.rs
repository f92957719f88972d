//! IronRSL's runtime verbs: `rsl replica|local|client|bench`.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use tokio::sync::watch;

use super::bench::{self, Baseline, BenchFlags, EchoServer, Point, MAX_BENCH_CLIENTS};
use super::{check_member_id, loopback_addrs, runtime, serve_until_signal};
use crate::actors::rsl::{Counter, CounterOp};
use crate::net::auth::ClusterKey;
use crate::net::config::{self, RslClusterConfig};
use crate::net::rsl::{spawn_replica, LocalCluster, ReplicaStats, RslClient, Startup};
use crate::net::runtime::{bind_udp, shutdown_signal};

/// `ironfleet rsl replica --config FILE --id N [--init | --ephemeral]`: runs one replica until
/// SIGINT/SIGTERM, printing a JSON status line every `status_every` (if set) and once more at
/// shutdown. If the replica stops by itself (a failed storage write, a panic), the error is
/// returned at once: the process exits non-zero rather than linger without serving.
pub fn rsl_replica(
    config: &Path,
    id: usize,
    startup: Startup,
    status_every: Option<Duration>,
) -> Result<i32> {
    let cluster = RslClusterConfig::load(config)?;
    check_member_id(config, id, cluster.replicas.len(), "replicas")?;
    runtime()?.block_on(async {
        let socket = bind_udp(cluster.replicas[id])?;
        let stats = ReplicaStats::default();
        let (tx, rx) = watch::channel(false);
        config::warn_if_unauthenticated(&cluster.key_file);
        let handle = spawn_replica::<Counter>(&cluster, id, startup, socket, stats.clone(), rx)?;
        tracing::info!(id, addr = %cluster.replicas[id], "replica serving");
        serve_until_signal(
            &format!("replica {id}"),
            handle,
            tx,
            status_every,
            move || stats.status_json(id).to_string(),
        )
        .await
    })
}

/// `ironfleet rsl local`: a whole cluster in this process until Ctrl-C/SIGTERM.
pub fn rsl_local(
    replicas: usize,
    base_port: u16,
    data_dir: Option<PathBuf>,
    write_config: Option<PathBuf>,
) -> Result<i32> {
    if !(1..=config::MAX_REPLICAS).contains(&replicas) {
        bail!(
            "--replicas {replicas}: must be 1..={}",
            config::MAX_REPLICAS
        );
    }
    let addrs = loopback_addrs(replicas, base_port)?;
    let mut cfg = RslClusterConfig::new(addrs);
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
            println!("{}", s.status_json(i));
        }
        cluster.stop().await?;
        Ok(0)
    })
}

/// Where a client finds the replicas: a cluster file, or addresses on the command line.
#[derive(Args, Clone, Debug)]
pub struct RslTarget {
    /// The cluster file.
    #[arg(long, conflicts_with = "replicas")]
    pub config: Option<PathBuf>,
    /// The replicas' addresses, comma-separated, in configuration order (default: those of
    /// `ironfleet rsl local`).
    #[arg(long, value_delimiter = ',')]
    pub replicas: Option<Vec<SocketAddrV4>>,
}

impl RslTarget {
    /// The replica addresses.
    pub fn addrs(&self) -> Result<Vec<SocketAddrV4>> {
        if let Some(path) = &self.config {
            return Ok(RslClusterConfig::load(path)?.replicas);
        }
        Ok(self.replicas.clone().unwrap_or_else(|| {
            (0..3)
                .map(|i| SocketAddrV4::new([127, 0, 0, 1].into(), 4000 + i))
                .collect()
        }))
    }
}

/// `ironfleet rsl client inc|get`.
pub fn rsl_client(target: &RslTarget, timeout: Duration, op: CounterOp) -> Result<i32> {
    let addrs = target.addrs()?;
    runtime()?.block_on(async {
        let mut c = RslClient::<Counter>::connect(addrs).await?;
        let reply = c.call(op, timeout).await?;
        println!("{reply}");
        Ok(0)
    })
}

/// `ironfleet rsl bench`.
pub fn rsl_bench(f: &BenchFlags) -> Result<i32> {
    let counts = f.sweep.clone().unwrap_or_else(|| vec![f.clients]);
    if counts.is_empty() || counts.iter().any(|&c| c == 0 || c > MAX_BENCH_CLIENTS) {
        bail!("client counts must be 1..={MAX_BENCH_CLIENTS}, got {counts:?}");
    }
    let external = match &f.config {
        Some(p) => Some(RslClusterConfig::load(p)?),
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
                let cluster = LocalCluster::<Counter>::start(RslClusterConfig::new(vec![
                        any;
                        f.local_replicas
                    ]))
                .await?;
                (cluster.addrs(), Some(cluster))
            }
        };
        let echo = match out.baseline {
            Some(Baseline::Echo) => Some(EchoServer::start().await?),
            None => None,
        };
        let key_file =
            std::env::temp_dir().join(format!("ironfleet-bench-{}.key", std::process::id()));
        let keyed = if f.mac {
            let _ = std::fs::remove_file(&key_file);
            ClusterKey::write_new(&key_file)?;
            let mut cfg = RslClusterConfig::new(vec![
                SocketAddrV4::new([127, 0, 0, 1].into(), 0);
                f.local_replicas
            ]);
            cfg.key_file = Some(key_file.clone());
            Some(LocalCluster::<Counter>::start(cfg).await?)
        } else {
            None
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
            if let Some(k) = &keyed {
                let mut p = bench::run_rsl(&k.addrs(), n, t).await?;
                p.system = "rsl+mac".into();
                out.progress(&p);
                points.push(p);
            }
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
        if let Some(c) = keyed {
            c.stop().await?;
            let _ = std::fs::remove_file(&key_file);
        }
        Ok::<_, anyhow::Error>(points)
    })?;
    out.report(
        &points,
        serde_json::Map::new(),
        "IronRSL counter on loopback: latency vs throughput (labels: clients)",
    )
}
