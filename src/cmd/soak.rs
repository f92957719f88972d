//! `ironfleet rsl soak`: replicas as child processes under a long run of increments, their
//! resident memory sampled and plotted; with log truncation it must stay flat.

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::bench::MAX_BENCH_CLIENTS;
use super::plot::{Chart, Series};
use super::runtime;
use crate::actors::rsl::{Counter, CounterOp};
use crate::net::config::{self, RslClusterConfig};
use crate::net::rsl::{resident_kib_of, RslClient};

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
    /// Every increment from a new client with an address of its own (a fresh socket on its own
    /// loopback IP, 127.1.x.y, so no two share an address): shows how replica memory grows with
    /// the number of distinct clients (each keeps a reply-cache entry).
    #[arg(long)]
    pub fresh_clients: bool,
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
    if f.ops == 0 {
        bail!("--ops 0: the soak needs at least one increment");
    }
    if f.sample_every == 0 || f.ops < f.sample_every {
        bail!(
            "--sample-every {} must be at least 1 and at most --ops ({})",
            f.sample_every,
            f.ops
        );
    }
    if !(1..=config::MAX_REPLICAS).contains(&f.replicas) {
        bail!("--replicas must be 1..={}", config::MAX_REPLICAS);
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
    let mut cfg = RslClusterConfig::new(addrs.clone());
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
            .arg(if f.durable { "--init" } else { "--ephemeral" })
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
    // Loopback IPs 127.1.0.0 and up for fresh clients (65,536 of them; then they repeat).
    let next_ip = Arc::new(AtomicU64::new(0));
    let final_value = runtime()?.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..f.clients {
            let mut c = RslClient::<Counter>::connect(addrs.clone()).await?;
            let (acked, total, fresh) = (acked.clone(), f.ops, f.fresh_clients);
            let (addrs, next_ip) = (addrs.clone(), next_ip.clone());
            tasks.push(tokio::spawn(async move {
                while acked.load(Ordering::Relaxed) < total {
                    if fresh {
                        let n = next_ip.fetch_add(1, Ordering::Relaxed);
                        let ip = [127, 1, (n >> 8) as u8, n as u8];
                        let local = SocketAddrV4::new(ip.into(), 0);
                        c = RslClient::<Counter>::connect_from(local, addrs.clone()).await?;
                    }
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
                    .map(|p| resident_kib_of(p).unwrap_or(0))
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
