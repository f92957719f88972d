//! The command layer: everything the `ironfleet` binary and the examples parse and print. Model
//! verbs ([`model`]: check, dfs, simulate, explore, for every system), RSL's default check of
//! several configurations ([`suite`]), the runtime verbs of each
//! system ([`rsl`], [`kv`], [`lock`]), the benchmarks ([`bench`]), the memory soak ([`soak`])
//! and the charts (`plot`).
//!
//! Each verb returns the process exit code: 0 fine, 1 a property violated or a failed run (a
//! benchmark with no completed request), and errors (a bad flag, config or environment) become
//! exit code 2 in `main`. This layer is public only so that the binary and the examples can
//! call it; it is not a library API.

pub mod bench;
mod interrupt;
pub mod kv;
pub mod lock;
pub mod model;
mod plot;
pub mod rsl;
pub mod sim;
pub mod soak;
pub mod suite;

use std::net::SocketAddrV4;

use anyhow::{Context, Result};

/// `ironfleet rsl keygen` / `kv keygen`: writes a new cluster key file (owner-readable only,
/// never overwriting one).
pub fn keygen(out: &std::path::Path) -> Result<i32> {
    crate::net::auth::ClusterKey::write_new(out)?;
    println!(
        "wrote {}: name it as key_file in the cluster file, and give every replica or host the same file",
        out.display()
    );
    Ok(0)
}

/// Checks a server verb's `--id` against the `members` (`what`: "replicas", "hosts") the
/// cluster file at `config` lists.
pub(crate) fn check_member_id(
    config: &std::path::Path,
    id: usize,
    members: usize,
    what: &str,
) -> Result<()> {
    if id >= members {
        anyhow::bail!(
            "--id {id}: {} has {members} {what} (ids 0..={})",
            config.display(),
            members.saturating_sub(1)
        );
    }
    Ok(())
}

/// Serves one actor task (`handle`, stopped through `stop`) until SIGINT/SIGTERM, printing
/// `status()` every `status_every` (if set) and once more at the end. If the task ends by itself
/// (a failed storage write, a panic), returns its error at once: the process exits non-zero
/// rather than linger without serving. `what` names the actor in messages ("replica 2").
pub(crate) async fn serve_until_signal(
    what: &str,
    mut handle: tokio::task::JoinHandle<Result<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    status_every: Option<std::time::Duration>,
    status: impl Fn() -> String + Send + Sync + Clone + 'static,
) -> Result<i32> {
    let ticker = {
        let status = status.clone();
        tokio::spawn(async move {
            let Some(every) = status_every else { return };
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                println!("{}", status());
            }
        })
    };
    let signal = tokio::select! {
        s = crate::net::runtime::shutdown_signal() => s?,
        ended = &mut handle => {
            ticker.abort();
            println!("{}", status());
            ended.with_context(|| format!("{what}: task panicked"))??;
            anyhow::bail!("{what} stopped by itself");
        }
    };
    tracing::info!(what, signal, "shutting down");
    ticker.abort();
    let _ = stop.send(true);
    handle
        .await
        .with_context(|| format!("{what}: task panicked"))??;
    println!("{}", status());
    Ok(0)
}

/// A tokio runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
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
