//! The closed-loop benchmarks behind `ironfleet rsl bench` and `kv bench`, their raw UDP echo
//! baseline, and the timing and output flags and report they share.
//!
//! Each client is a tokio task with its own socket and one request in flight: it sends, waits for
//! the reply, records the latency, and sends the next. Requests completed during the warm-up are
//! not recorded. The echo baseline runs the same number of clients with datagrams of the same
//! size against a server that sends every datagram straight back, so an RSL figure can be read as
//! a fraction of what this machine's loopback and runtime can do at all.

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::plot::{Chart, Series};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::actors::rsl::{Counter, CounterOp, RslMsg};
use crate::net::codec;
use crate::net::rsl::RslClient;
use crate::net::runtime::bind_udp;

/// A benchmark client's task: its latencies (us) and its given-up requests.
pub(crate) type ClientTask = JoinHandle<Result<(Vec<u64>, u64)>>;

/// One measured point: a system at a client count.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// `rsl` or `echo`.
    pub system: String,
    /// Closed-loop clients.
    pub clients: usize,
    /// Seconds measured (after the warm-up).
    pub seconds: f64,
    /// Requests completed in that time.
    pub ops: u64,
    /// Requests per second.
    pub throughput: f64,
    /// Median latency, microseconds.
    pub p50_us: u64,
    /// 99th percentile latency, microseconds.
    pub p99_us: u64,
    /// 99.9th percentile latency, microseconds.
    pub p999_us: u64,
    /// Largest latency, microseconds.
    pub max_us: u64,
    /// Requests that timed out and were given up (counted, not in the latencies).
    pub errors: u64,
}

/// The `q`-quantile (0..=1) of sorted latencies, nearest rank.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn point(system: &str, clients: usize, seconds: f64, mut lat: Vec<u64>, errors: u64) -> Point {
    lat.sort_unstable();
    Point {
        system: system.to_string(),
        clients,
        seconds,
        ops: lat.len() as u64,
        throughput: lat.len() as f64 / seconds,
        p50_us: quantile(&lat, 0.50),
        p99_us: quantile(&lat, 0.99),
        p999_us: quantile(&lat, 0.999),
        max_us: lat.last().copied().unwrap_or(0),
        errors,
    }
}

/// How long a benchmark point runs.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Not recorded.
    pub warmup: Duration,
    /// Recorded.
    pub duration: Duration,
}

/// Runs `clients` closed-loop counter clients (`Inc`) against the replicas at `replicas`.
pub async fn run_rsl(replicas: &[SocketAddrV4], clients: usize, t: Timing) -> Result<Point> {
    let start = Instant::now();
    let record_from = start + t.warmup;
    let end = record_from + t.duration;
    let mut tasks: Vec<ClientTask> = Vec::new();
    for _ in 0..clients {
        let mut c = RslClient::<Counter>::connect(replicas.to_vec()).await?;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let r = c.call(CounterOp::Inc, Duration::from_secs(5)).await;
                let done = Instant::now();
                match r {
                    Ok(_) if now >= record_from && done <= end => {
                        lat.push((done - now).as_micros() as u64)
                    }
                    Ok(_) => {}
                    Err(_) => errors += 1,
                }
            }
            Ok((lat, errors))
        }));
    }
    collect("rsl", clients, t, tasks).await
}

pub(crate) async fn collect(
    system: &str,
    clients: usize,
    t: Timing,
    tasks: Vec<ClientTask>,
) -> Result<Point> {
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (lat, e) = task.await.context("benchmark client panicked")??;
        all.extend(lat);
        errors += e;
    }
    Ok(point(
        system,
        clients,
        t.duration.as_secs_f64(),
        all,
        errors,
    ))
}

/// A raw UDP echo server on loopback: every datagram goes straight back to its sender.
pub struct EchoServer {
    /// Its address.
    pub addr: SocketAddrV4,
    shutdown: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl EchoServer {
    /// Starts one on a free loopback port.
    pub async fn start() -> Result<Self> {
        let socket = bind_udp(SocketAddrV4::new([127, 0, 0, 1].into(), 0))?;
        let addr = match socket.local_addr()? {
            std::net::SocketAddr::V4(a) => a,
            a => bail!("unexpected address {a}"),
        };
        let (tx, mut rx) = watch::channel(false);
        let handle = tokio::spawn(async move {
            let mut buf = vec![0u8; codec::MAX_DATAGRAM + 1];
            loop {
                tokio::select! {
                    _ = rx.changed() => return,
                    r = socket.recv_from(&mut buf) => {
                        if let Ok((n, from)) = r {
                            let _ = socket.send_to(&buf[..n], from).await;
                        }
                    }
                }
            }
        });
        Ok(EchoServer {
            addr,
            shutdown: tx,
            handle,
        })
    }

    /// Stops it.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.handle.await;
    }
}

/// The datagram the echo clients send: an encoded RSL request, so both systems carry the same
/// bytes per request.
pub fn request_datagram() -> Vec<u8> {
    codec::encode(&RslMsg::<Counter>::Request {
        seqno: 1,
        op: CounterOp::Inc,
    })
    .expect("a request always encodes")
}

/// Runs `clients` closed-loop echo clients against `server` with RSL-request-sized datagrams.
pub async fn run_echo(server: SocketAddrV4, clients: usize, t: Timing) -> Result<Point> {
    run_echo_with(server, clients, t, request_datagram()).await
}

/// Runs `clients` closed-loop echo clients against `server`, each sending `payload`.
pub async fn run_echo_with(
    server: SocketAddrV4,
    clients: usize,
    t: Timing,
    payload: Vec<u8>,
) -> Result<Point> {
    let start = Instant::now();
    let record_from = start + t.warmup;
    let end = record_from + t.duration;
    let mut tasks: Vec<ClientTask> = Vec::new();
    for _ in 0..clients {
        let socket = bind_udp(SocketAddrV4::new([127, 0, 0, 1].into(), 0))?;
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut buf = vec![0u8; codec::MAX_DATAGRAM + 1];
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                socket.send_to(&payload, server).await?;
                let r =
                    tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await;
                let done = Instant::now();
                match r {
                    Ok(Ok(_)) if now >= record_from && done <= end => {
                        lat.push((done - now).as_micros() as u64)
                    }
                    Ok(Ok(_)) => {}
                    _ => errors += 1,
                }
            }
            Ok((lat, errors))
        }));
    }
    collect("echo", clients, t, tasks).await
}

/// Parses a duration like `10s`, `500ms`, `2m` or `1.5` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (try 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use ms, s or m)")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("'{s}' must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The points as a table, with RSL/echo throughput ratios where both were measured.
pub fn table(points: &[Point]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>7}  {:<7} {:>9} {:>11} {:>9} {:>9} {:>9} {:>9} {:>6}  vs echo",
        "clients", "system", "ops", "ops/s", "p50 us", "p99 us", "p99.9 us", "max us", "errors",
    );
    for p in points {
        let ratio = match (p.system.as_str(), echo_at(points, p.clients)) {
            (system, Some(e)) if system != "echo" && e.throughput > 0.0 => {
                format!("{:.2}x", p.throughput / e.throughput)
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:>7}  {:<7} {:>9} {:>11.0} {:>9} {:>9} {:>9} {:>9} {:>6}  {}",
            p.clients,
            p.system,
            p.ops,
            p.throughput,
            p.p50_us,
            p.p99_us,
            p.p999_us,
            p.max_us,
            p.errors,
            ratio
        );
    }
    out
}

fn echo_at(points: &[Point], clients: usize) -> Option<&Point> {
    points
        .iter()
        .find(|p| p.system == "echo" && p.clients == clients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(quantile(&v, 0.5), 500);
        assert_eq!(quantile(&v, 0.99), 990);
        assert_eq!(quantile(&v, 0.999), 999);
        assert_eq!(quantile(&v, 1.0), 1000);
        assert_eq!(quantile(&[7], 0.999), 7);
        assert_eq!(quantile(&[], 0.5), 0);
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn table_gives_ratio_to_echo() {
        let p = |system: &str, tput: f64| Point {
            system: system.into(),
            clients: 4,
            seconds: 1.0,
            ops: tput as u64,
            throughput: tput,
            p50_us: 1,
            p99_us: 2,
            p999_us: 3,
            max_us: 4,
            errors: 0,
        };
        let t = table(&[p("rsl", 300.0), p("echo", 1000.0)]);
        assert!(t.contains("0.30x"), "{t}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn echo_baseline_measures_round_trips() {
        let server = EchoServer::start().await.unwrap();
        let t = Timing {
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(200),
        };
        let p = run_echo(server.addr, 2, t).await.unwrap();
        server.stop().await;
        assert_eq!(p.system, "echo");
        assert!(p.ops > 10, "{p:?}");
        assert!(p.p50_us > 0 && p.p50_us <= p.p99_us && p.p99_us <= p.max_us);
    }
}

/// The most clients one benchmark point may have (each has a socket and a task).
pub const MAX_BENCH_CLIENTS: usize = 4096;

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
    /// Also measure a second in-process cluster whose replicas authenticate every datagram
    /// between them with the cluster key (system `rsl+mac`), at every client count.
    #[arg(long, conflicts_with = "config")]
    pub mac: bool,
    /// Timing and output.
    #[command(flatten)]
    pub out: BenchOutput,
}

/// The timing and output flags every benchmark shares (`rsl bench`, `kv bench`).
#[derive(Args, Clone, Debug)]
pub struct BenchOutput {
    /// Measured time per point (10s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured warm-up before each point.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
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
            print!("{}", table(points));
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
