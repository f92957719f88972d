//! The command layer: everything the `ironfleet` binary and the examples parse and print. Model
//! verbs ([`model`]: check, dfs, simulate, explore, for every system), the runtime verbs of each
//! system ([`rsl`], [`kv`], [`lock`]), the benchmarks ([`bench`]), the memory soak ([`soak`])
//! and the charts (`plot`).
//!
//! Each verb returns the process exit code: 0 fine, 1 a property violated or a failed run (a
//! benchmark with no completed request), and errors (a bad flag, config or environment) become
//! exit code 2 in `main`. This layer is public only so that the binary and the examples can
//! call it; it is not a library API.

pub mod bench;
pub mod kv;
pub mod lock;
pub mod model;
mod plot;
pub mod rsl;
pub mod soak;

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
