//! `ironfleet lock local`: the IronLock ring over loopback UDP, printing each handover.

use std::net::SocketAddrV4;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use stateright::actor::Id;
use tokio::sync::{mpsc, watch};

use super::runtime;
use crate::actors::lock::{LockConfig, LockNode, LockState};
use crate::net::runtime::{bind_udp, run_actor, shutdown_signal, Counters, RuntimeConfig};

/// `ironfleet lock local --nodes N`: the ring lock over loopback UDP, printing each handover;
/// stops after `epochs` epochs (if given) or at Ctrl-C/SIGTERM.
pub fn lock_local(nodes: usize, hold_ms: u64, epochs: Option<u64>) -> Result<i32> {
    if !(1..=64).contains(&nodes) {
        bail!("--nodes {nodes}: must be 1..=64");
    }
    if epochs == Some(0) {
        bail!("--epochs 0: stop after at least one epoch (leave it out to run until Ctrl-C)");
    }
    runtime()?.block_on(async {
        let mut sockets = Vec::new();
        for _ in 0..nodes {
            sockets.push(bind_udp(SocketAddrV4::new([127, 0, 0, 1].into(), 0))?);
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
                key: None,
                accept_from_stranger: |_| false,
                storage: None,
                init: false,
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
