//! Recovery time of a durable IronKV host: writes the storage a host holding `--keys` pairs
//! would have (a snapshot, then `--log-records` journaled writes in groups of 64, each group
//! fsynced), then times what a restart does: read and check the snapshot, replay the log, and
//! start the host from the result.
//!
//! `cargo run --release --example kv-recovery [-- --keys 1000000 --log-records 100000 --dir DIR --cold]`
//! (DIR's disk is what is measured; default: the system's temporary directory; `--cold` reads
//! it from the disk rather than the page cache).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use ironfleet::actors::kv::{
    DelegationMap, Host, HostConfig, HostRecord, HostSave, HostStorage, Key, KvModelSwitches,
    KvParams, Persistence, SingleDelivery,
};
use ironfleet::net::journal::HostLog;
use ironfleet::net::storage::Store;
use stateright::actor::{Actor, Id, Out};

/// Recovery time of a host with a large table.
#[derive(Parser, Debug)]
struct Cli {
    /// Pairs in the host's table.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 128)]
    value_size: usize,
    /// Journaled writes after the snapshot (the default snapshot interval is 200,000 records).
    #[arg(long, default_value_t = 100_000)]
    log_records: u64,
    /// Where to write the storage.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Drop the kernel's page cache before the restart (Linux, root), so the storage is read
    /// from the disk as after a machine restart, not from memory.
    #[arg(long)]
    cold: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let dir = cli
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("ironfleet-kv-recovery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let base = dir.join("host-0");
    let identity = "cluster recovery host 0".to_string();

    let t = Instant::now();
    let mut st = HostStorage {
        delegation: DelegationMap::new(Id::from(0)),
        table: Default::default(),
        sd: SingleDelivery::new(1),
        restarts: 0,
    };
    for k in 0..cli.keys {
        st.table.insert(Key::from(k), vec![b'v'; cli.value_size]);
    }
    let mut log = HostLog::new(&base, identity.clone());
    log.init()?;
    let snapshot_bytes = log.save_all(vec![HostSave::Snapshot(st)])?;
    let mut log_bytes = 0;
    let mut written = 0;
    while written < cli.log_records {
        let group: Vec<HostSave> = (0..64.min(cli.log_records - written))
            .map(|i| {
                let k = (written + i) % cli.keys.max(1);
                HostSave::Journal(vec![HostRecord::Put(
                    Key::from(k),
                    vec![b'w'; cli.value_size],
                )])
            })
            .collect();
        written += group.len() as u64;
        log_bytes += log.save_all(group)?;
    }
    drop(log);
    println!(
        "wrote {} pairs of {} bytes: snapshot {:.1} MB, log {} records {:.1} MB ({:.1} s)",
        cli.keys,
        cli.value_size,
        snapshot_bytes as f64 / 1e6,
        cli.log_records,
        log_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    if cli.cold {
        std::process::Command::new("sync").status()?;
        std::fs::write("/proc/sys/vm/drop_caches", "3")
            .context("dropping the page cache (needs root)")?;
    }
    let t = Instant::now();
    let stored = HostLog::new(&base, identity).load()?;
    let loaded = t.elapsed();
    let host = Host::new(HostConfig {
        hosts: Arc::new(vec![Id::from(0), Id::from(1)]),
        me: 0,
        epoch: 2,
        params: KvParams::default(),
        switches: KvModelSwitches::default(),
        persistence: Persistence::Journal,
    });
    let t2 = Instant::now();
    let state = host.on_start(Id::from(0), &stored, &mut Out::new());
    let started = t2.elapsed();
    assert_eq!(state.table.len() as u64, cli.keys, "every pair recovered");
    assert_eq!(state.sd.epoch, 1, "the stored epoch is kept");
    println!(
        "recovery ({}): load and replay {:.2} s, host start {:.2} s, total {:.2} s",
        if cli.cold {
            "cold page cache"
        } else {
            "warm page cache"
        },
        loaded.as_secs_f64(),
        started.as_secs_f64(),
        (loaded + started).as_secs_f64()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
