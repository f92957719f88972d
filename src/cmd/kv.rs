//! The IronKV runtime verbs of the `ironfleet` command: `kv host|local|get|set|del|shard|bench`.
//! Each returns the process exit code (0 fine, 1 a failed operation such as a shard move that was
//! not honoured or a benchmark with no completed request); errors (bad config, unreachable
//! hosts) become exit code 2 in `main`.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::time::Instant;

use super::bench::{self, ClientTask, EchoServer, Point, Timing};
use super::bench::{Baseline, BenchOutput, MAX_BENCH_CLIENTS};
use super::{check_member_id, loopback_addrs, runtime, serve_until_signal};
use crate::actors::kv::{Key, KeyRange, KvMsg, KvPayload};
use crate::net::codec;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::net::auth::ClusterKey;
use crate::net::config::KvClusterConfig;
use crate::net::config::MAX_HOSTS;
use crate::net::kv::{spawn_host, HostStats, KvRemote, LocalKv};
use crate::net::runtime::{bind_udp, shutdown_signal};
use crate::net::storage::Startup;

/// Where a client finds the hosts: a cluster file, or addresses on the command line.
#[derive(Args, Clone, Debug)]
pub struct KvTarget {
    /// The cluster file.
    #[arg(long, conflicts_with = "hosts")]
    pub config: Option<PathBuf>,
    /// The hosts' addresses, comma-separated, in configuration order (default: those of
    /// `ironfleet kv local`).
    #[arg(long, value_delimiter = ',')]
    pub hosts: Option<Vec<SocketAddrV4>>,
    /// Give up after this long.
    #[arg(long, default_value = "5s", value_parser = bench::parse_duration)]
    pub timeout: Duration,
}

impl KvTarget {
    /// The cluster key the cluster file names, if any (an admin's requests are sealed with it).
    pub fn key(&self) -> Result<Option<Arc<ClusterKey>>> {
        let Some(path) = &self.config else {
            return Ok(None);
        };
        match KvClusterConfig::load(path)?.key_file {
            Some(k) => Ok(Some(Arc::new(ClusterKey::load(&k)?))),
            None => Ok(None),
        }
    }

    /// The host addresses.
    pub fn addrs(&self) -> Result<Vec<SocketAddrV4>> {
        if let Some(path) = &self.config {
            return Ok(KvClusterConfig::load(path)?.hosts);
        }
        Ok(self.hosts.clone().unwrap_or_else(|| {
            (0..3)
                .map(|i| SocketAddrV4::new([127, 0, 0, 1].into(), 5000 + i))
                .collect()
        }))
    }
}

/// `ironfleet kv host --config FILE --id N [--init | --ephemeral]`: runs one host until
/// SIGINT/SIGTERM, printing a JSON status line every `status_every` (if set) and once more at
/// shutdown; exits non-zero at once if the host task ends by itself (a failed storage write).
pub fn kv_host(
    config: &Path,
    id: usize,
    startup: Startup,
    status_every: Option<Duration>,
) -> Result<i32> {
    let cluster = KvClusterConfig::load(config)?;
    check_member_id(config, id, cluster.hosts.len(), "hosts")?;
    runtime()?.block_on(async {
        let socket = bind_udp(cluster.hosts[id])?;
        let stats = HostStats::default();
        let (tx, rx) = watch::channel(false);
        crate::net::config::warn_if_unauthenticated(&cluster.key_file);
        let handle = spawn_host(&cluster, id, startup, socket, stats.clone(), rx)?;
        tracing::info!(id, addr = %cluster.hosts[id], "host serving");
        serve_until_signal(&format!("host {id}"), handle, tx, status_every, move || {
            stats.status_json(id).to_string()
        })
        .await
    })
}

/// `ironfleet kv local --hosts N`: a whole cluster in this process until Ctrl-C/SIGTERM.
pub fn kv_local(hosts: usize, base_port: u16, write_config: Option<PathBuf>) -> Result<i32> {
    if !(1..=MAX_HOSTS).contains(&hosts) {
        bail!("--hosts {hosts}: must be 1..={}", MAX_HOSTS);
    }
    let addrs = loopback_addrs(hosts, base_port)?;
    runtime()?.block_on(async {
        let cluster = LocalKv::start(KvClusterConfig::new(addrs)).await?;
        println!("IronKV cluster on loopback (host 0 owns every key at start):");
        for (i, a) in cluster.config.hosts.iter().enumerate() {
            println!("  host {i}: {a}");
        }
        let list: Vec<String> = cluster.addrs().iter().map(|a| a.to_string()).collect();
        let target = match &write_config {
            Some(path) => {
                std::fs::write(path, cluster.config.to_toml())
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("Cluster file: {}", path.display());
                format!("--config {}", path.display())
            }
            None => format!("--hosts {}", list.join(",")),
        };
        println!("Try: ironfleet kv set {target} 7 hello; ironfleet kv get {target} 7");
        println!("     ironfleet kv shard {target} --range 0..100 --to 1      (Ctrl-C to stop)");
        let signal = shutdown_signal().await?;
        println!("{signal}: stopping");
        for (i, s) in cluster.stats.iter().enumerate() {
            println!("{}", s.status_json(i));
        }
        cluster.stop().await?;
        Ok(0)
    })
}

/// A client operation of the command line.
#[derive(Clone, Debug)]
pub enum KvCliOp {
    /// `get KEY`
    Get(Key),
    /// `set KEY VALUE`
    Set(Key, String),
    /// `del KEY`
    Del(Key),
}

/// `ironfleet kv get|set|del`: one operation; prints the value (`get`; `(none)` if absent) or
/// `ok`, and which host answered.
pub fn kv_op(target: &KvTarget, op: KvCliOp) -> Result<i32> {
    let addrs = target.addrs()?;
    let shown: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let context = format!(
        "talking to hosts {} (is the cluster running?)",
        shown.join(",")
    );
    runtime()?.block_on(async {
        let mut c = KvRemote::connect(addrs).await?;
        let (key, line) = async {
            Ok::<_, anyhow::Error>(match op {
                KvCliOp::Get(k) => {
                    let v = c.get(k.clone(), target.timeout).await?;
                    let shown = match v {
                        None => "(none)".to_string(),
                        Some(b) => String::from_utf8_lossy(&b).into_owned(),
                    };
                    (k, shown)
                }
                KvCliOp::Set(k, v) => {
                    c.set(k.clone(), Some(v.into_bytes()), target.timeout)
                        .await?;
                    (k, "ok".to_string())
                }
                KvCliOp::Del(k) => {
                    c.set(k.clone(), None, target.timeout).await?;
                    (k, "ok".to_string())
                }
            })
        }
        .await
        .context(context)?;
        println!("{line}");
        if let Some(h) = c.known_owner(&key) {
            eprintln!("(answered by host {h}, after {} redirects)", c.redirects);
        }
        Ok(0)
    })
}

/// `ironfleet kv shard --range A..B --to HOST`: finds the owner of the range's first key, asks it
/// to move the range, and waits until host `to` answers for that key. Exit 1 if the move was not
/// honoured (the owner must own the whole range, have room in its delegation map, and the range's
/// pairs must fit one datagram).
pub fn kv_shard(target: &KvTarget, range: KeyRange, to: usize) -> Result<i32> {
    let addrs = target.addrs()?;
    if to >= addrs.len() {
        bail!("--to {to}: the cluster has hosts 0..{}", addrs.len());
    }
    let key = target.key()?;
    runtime()?.block_on(async {
        let mut c = KvRemote::connect(addrs).await?.with_key(key);
        let deadline = Instant::now() + target.timeout;
        let from = c.find_owner(range.lo.clone(), target.timeout).await?;
        if from == to {
            println!("host {to} already owns key {}", range.lo);
            return Ok(0);
        }
        c.shard(range.clone(), from, to, target.timeout).await?;
        while Instant::now() < deadline {
            if c.owns(to, range.lo.clone(), target.timeout).await? {
                println!("moved {range} from host {from} to host {to}");
                return Ok(0);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!(
            "host {from} did not move {range}: it must own the whole range, have room in its \
             delegation map (params.max_delegations), and the range's pairs must fit one \
             datagram (params.max_delegate_bytes); split the range or move its parts first"
        );
        Ok(1)
    })
}

/// Flags of `ironfleet kv bench`.
#[derive(Args, Clone, Debug)]
pub struct KvBenchFlags {
    /// A running cluster's file; without it in-process loopback clusters of `--local-hosts` are
    /// started for the run.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Host counts of the in-process clusters, measured one after the other, e.g. 1,3.
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    pub local_hosts: Vec<usize>,
    /// Closed-loop clients (ignored with --sweep).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Client counts to measure one after the other, e.g. 1,16,64.
    #[arg(long, value_delimiter = ',')]
    pub sweep: Option<Vec<usize>>,
    /// Keys `0..keys` are read and written (loaded before the run; with several hosts, spread
    /// evenly over them first).
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 128)]
    pub value_size: usize,
    /// Fraction of operations that are Gets (the rest are Sets).
    #[arg(long, default_value_t = 0.5)]
    pub get_ratio: f64,
    /// Also measure each in-process cluster with durable hosts (write-ahead log, fsync before
    /// replies) keeping their storage in a fresh directory under DIR: the disk under DIR is
    /// what is measured. Prints the bytes written per operation (write amplification).
    #[arg(long, value_name = "DIR")]
    pub durable: Option<PathBuf>,
    /// Timing and output.
    #[command(flatten)]
    pub out: BenchOutput,
}

impl KvBenchFlags {
    fn check(&self) -> Result<Vec<usize>> {
        let counts = self.sweep.clone().unwrap_or_else(|| vec![self.clients]);
        if counts.is_empty() || counts.iter().any(|&c| c == 0 || c > MAX_BENCH_CLIENTS) {
            bail!("client counts must be 1..={MAX_BENCH_CLIENTS}, got {counts:?}");
        }
        if !(0.0..=1.0).contains(&self.get_ratio) {
            bail!("--get-ratio {}: must be in 0..=1", self.get_ratio);
        }
        if !(1..=10_000_000).contains(&self.keys) {
            bail!("--keys {}: must be 1..=10000000", self.keys);
        }
        if self.value_size > 8192 {
            bail!("--value-size {}: at most 8192 bytes", self.value_size);
        }
        if self.config.is_none()
            && (self.local_hosts.is_empty()
                || self.local_hosts.iter().any(|&h| h == 0 || h > MAX_HOSTS))
        {
            bail!(
                "--local-hosts: host counts must be 1..={}, got {:?}",
                MAX_HOSTS,
                self.local_hosts
            );
        }
        Ok(counts)
    }
}

/// Bench key number `k`: its decimal digits padded to ten, so that byte order is number order and
/// ranges of numbers are ranges of keys.
pub fn bench_key(k: u64) -> Key {
    Key::from(format!("{k:010}").as_str())
}

/// Spreads keys `0..keys` (as [`bench_key`]s) evenly over the hosts (moving each part from host 0; ranges are moved
/// in pieces small enough for one datagram), then loads every key with a value.
pub async fn spread_and_load(
    hosts: &[SocketAddrV4],
    keys: u64,
    value_size: usize,
    timeout: Duration,
) -> Result<()> {
    let mut admin = KvRemote::connect(hosts.to_vec()).await?;
    let n = hosts.len() as u64;
    for i in 1..n {
        let (lo, hi) = (keys * i / n, keys * (i + 1) / n);
        let hi = if i == n - 1 { None } else { Some(hi) };
        let range = KeyRange::new(bench_key(lo), hi.map(bench_key));
        if range.is_empty() {
            continue;
        }
        admin.shard(range.clone(), 0, i as usize, timeout).await?;
        let deadline = Instant::now() + timeout;
        while !admin.owns(i as usize, bench_key(lo), timeout).await? {
            if Instant::now() >= deadline {
                bail!("host {i} did not take {range} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let value = vec![b'v'; value_size];
    for k in 0..keys {
        admin
            .set(bench_key(k), Some(value.clone()), timeout)
            .await?;
    }
    Ok(())
}

/// Runs `clients` closed-loop KV clients against `hosts`: each picks a uniformly random key of
/// `0..keys` and does a Get (with probability `get_ratio`) or a Set of a `value_size`-byte value.
/// Client `i`'s choices come from a ChaCha8 generator seeded with `i`.
pub async fn run_kv(
    system: &str,
    hosts: &[SocketAddrV4],
    clients: usize,
    t: Timing,
    keys: u64,
    value_size: usize,
    get_ratio: f64,
) -> Result<Point> {
    let start = Instant::now();
    let record_from = start + t.warmup;
    let end = record_from + t.duration;
    let mut tasks: Vec<ClientTask> = Vec::new();
    for i in 0..clients {
        let mut c = KvRemote::connect(hosts.to_vec()).await?;
        let value = vec![b'x'; value_size];
        tasks.push(tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
            let mut lat = Vec::new();
            let mut errors = 0;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let key = bench_key(rng.random_range(0..keys));
                let r = if rng.random_bool(get_ratio) {
                    c.get(key, Duration::from_secs(5)).await.map(|_| ())
                } else {
                    c.set(key, Some(value.clone()), Duration::from_secs(5))
                        .await
                };
                let done = Instant::now();
                match r {
                    Ok(()) if now >= record_from && done <= end => {
                        lat.push((done - now).as_micros() as u64)
                    }
                    Ok(()) => {}
                    Err(_) => errors += 1,
                }
            }
            Ok((lat, errors))
        }));
    }
    bench::collect(system, clients, t, tasks).await
}

/// `ironfleet kv bench`.
pub fn kv_bench(f: &KvBenchFlags) -> Result<i32> {
    let counts = f.check()?;
    let external = match &f.config {
        Some(p) => Some(KvClusterConfig::load(p)?),
        None => None,
    };
    let out = &f.out;
    let t = out.timing();
    let setup_timeout = Duration::from_secs(10);
    let points = runtime()?.block_on(async {
        let echo = match out.baseline {
            Some(Baseline::Echo) => Some(EchoServer::start().await?),
            None => None,
        };
        let set_datagram = codec::encode(&KvMsg::Single {
            epoch: 1,
            to: 0,
            seqno: 1,
            payload: KvPayload::Set {
                key: bench_key(f.keys.saturating_sub(1)),
                value: Some(vec![b'x'; f.value_size]),
            },
        })?;
        out.announce(&format!(
            "{} keys, {}-byte values, {:.0}% gets",
            f.keys,
            f.value_size,
            f.get_ratio * 100.0
        ));
        let mut points: Vec<Point> = Vec::new();
        let measure = |p: Point, points: &mut Vec<Point>| {
            out.progress(&p);
            points.push(p);
        };
        // (name, local host count, storage directory)
        let mut setups: Vec<(String, Option<usize>, Option<PathBuf>)> = match &external {
            Some(_) => vec![("kv".to_string(), None, None)],
            None => f
                .local_hosts
                .iter()
                .map(|&h| (format!("kv{h}"), Some(h), None))
                .collect(),
        };
        if let (Some(dir), None) = (&f.durable, &external) {
            for &h in &f.local_hosts {
                let d = dir.join(format!("ironfleet-kv-bench-{}-{h}", std::process::id()));
                setups.push((format!("kv{h}+disk"), Some(h), Some(d)));
            }
        }
        for (system, local, data_dir) in setups {
            let (addrs, cluster) = match (local, &external) {
                (Some(h), _) => {
                    let any = SocketAddrV4::new([127, 0, 0, 1].into(), 0);
                    let mut cfg = KvClusterConfig::new(vec![any; h]);
                    if let Some(d) = &data_dir {
                        let _ = std::fs::remove_dir_all(d);
                        cfg.data_dir = Some(d.clone());
                    }
                    let c = LocalKv::start(cfg).await?;
                    (c.addrs(), Some(c))
                }
                (None, Some(cfg)) => (cfg.hosts.clone(), None),
                (None, None) => unreachable!("one or the other"),
            };
            if cluster.is_some() {
                spread_and_load(&addrs, f.keys, f.value_size, setup_timeout)
                    .await
                    .context("spreading and loading the keys")?;
            }
            for &n in &counts {
                let written = |c: &Option<LocalKv>| -> u64 {
                    c.iter()
                        .flat_map(|c| c.stats.iter())
                        .map(|s| s.counters.saved_bytes.load(Ordering::Relaxed))
                        .sum()
                };
                let before = written(&cluster);
                let p = run_kv(&system, &addrs, n, t, f.keys, f.value_size, f.get_ratio).await?;
                if data_dir.is_some() && p.ops > 0 {
                    let bytes = written(&cluster) - before;
                    eprintln!(
                        "  {system} {n} clients: {bytes} bytes written to storage for {} \
                         operations ({:.0} bytes per operation, {}-byte values)",
                        p.ops,
                        bytes as f64 / p.ops as f64,
                        f.value_size
                    );
                }
                measure(p, &mut points);
            }
            if let Some(c) = cluster {
                c.stop().await?;
            }
            if let Some(d) = data_dir {
                let _ = std::fs::remove_dir_all(d);
            }
        }
        if let Some(e) = echo {
            for &n in &counts {
                let p = bench::run_echo_with(e.addr, n, t, set_datagram.clone()).await?;
                measure(p, &mut points);
            }
            e.stop().await;
        }
        Ok::<_, anyhow::Error>(points)
    })?;
    let mut extra = serde_json::Map::new();
    extra.insert("keys".into(), f.keys.into());
    extra.insert("value_size".into(), f.value_size.into());
    extra.insert("get_ratio".into(), f.get_ratio.into());
    let title = format!(
        "IronKV on loopback, {}-byte values, {:.0}% gets: latency vs throughput (labels: clients)",
        f.value_size,
        f.get_ratio * 100.0
    );
    out.report(&points, extra, &title)
}
