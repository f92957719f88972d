//! IronRSL over UDP: a whole cluster of replicas on loopback in one process, and an async client
//! that sends a request to every replica and retransmits until a reply arrives.

use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use stateright::actor::Id;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::codec;
use super::runtime::{run_actor, Counters, RuntimeConfig};
use crate::actors::rsl::{App, Params, Replica, ReplicaConfig, RslMsg};

/// Replicas running as tasks of this process, on loopback.
pub struct LocalCluster {
    /// The replicas' addresses, in configuration order.
    pub addrs: Vec<SocketAddrV4>,
    /// Each replica's counters.
    pub counters: Vec<Arc<Counters>>,
    shutdown: watch::Sender<bool>,
    handles: Vec<JoinHandle<Result<()>>>,
}

fn v4(a: SocketAddr) -> Result<SocketAddrV4> {
    match a {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(a) => bail!("expected an IPv4 address, got {a}"),
    }
}

impl LocalCluster {
    /// Starts `n` replicas of app `A` on `127.0.0.1`, at `base_port..base_port+n` or, with
    /// `base_port` 0, on free ports. With `data_dir`, each replica keeps its storage there.
    pub async fn start<A: App>(
        n: usize,
        base_port: u16,
        params: Params,
        data_dir: Option<PathBuf>,
    ) -> Result<Self> {
        if n == 0 {
            bail!("a cluster needs at least one replica");
        }
        let mut sockets = Vec::new();
        for i in 0..n {
            let port = if base_port == 0 {
                0
            } else {
                base_port + i as u16
            };
            let s = UdpSocket::bind(("127.0.0.1", port))
                .await
                .with_context(|| format!("binding replica {i} to 127.0.0.1:{port}"))?;
            sockets.push(s);
        }
        let addrs = sockets
            .iter()
            .map(|s| v4(s.local_addr()?))
            .collect::<Result<Vec<_>>>()?;
        let ids: Arc<Vec<Id>> = Arc::new(addrs.iter().map(|a| Id::from(*a)).collect());
        if let Some(d) = &data_dir {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let (tx, rx) = watch::channel(false);
        let mut counters = Vec::new();
        let mut handles = Vec::new();
        for (me, socket) in sockets.into_iter().enumerate() {
            let replica = Replica::<A>::new(ReplicaConfig {
                replicas: ids.clone(),
                me,
                params: params.clone(),
            });
            let c = Arc::new(Counters::default());
            counters.push(c.clone());
            let cfg = RuntimeConfig {
                peers: addrs.clone(),
                accept_from_stranger: |m: &RslMsg<A>| matches!(m, RslMsg::Request { .. }),
                storage: data_dir
                    .as_ref()
                    .map(|d| d.join(format!("replica-{me}.json"))),
                seed: me as u64,
            };
            handles.push(tokio::spawn(run_actor(replica, socket, cfg, c, rx.clone())));
        }
        Ok(LocalCluster {
            addrs,
            counters,
            shutdown: tx,
            handles,
        })
    }

    /// Stops every replica and waits for them.
    pub async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(true);
        for h in self.handles {
            h.await.context("replica task panicked")??;
        }
        Ok(())
    }
}

/// A client of an IronRSL cluster: one request in flight, sent to every replica, retransmitted
/// every `retransmit` until a reply with its sequence number comes back.
pub struct RslClient<A: App> {
    socket: UdpSocket,
    replicas: Vec<SocketAddrV4>,
    next_seqno: u64,
    /// Retransmission period.
    pub retransmit: Duration,
    _app: std::marker::PhantomData<A>,
}

impl<A: App> RslClient<A> {
    /// A client on a fresh loopback socket.
    pub async fn connect(replicas: Vec<SocketAddrV4>) -> Result<Self> {
        let socket = UdpSocket::bind(("127.0.0.1", 0)).await?;
        Ok(RslClient {
            socket,
            replicas,
            next_seqno: 1,
            retransmit: Duration::from_millis(200),
            _app: std::marker::PhantomData,
        })
    }

    /// Executes `op`, waiting at most `timeout`.
    pub async fn call(&mut self, op: A::Op, timeout: Duration) -> Result<A::Reply> {
        let seqno = self.next_seqno;
        let bytes = codec::encode(&RslMsg::<A>::Request {
            seqno,
            op: op.clone(),
        })?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = vec![0u8; codec::MAX_DATAGRAM + 1];
        loop {
            for r in &self.replicas {
                self.socket.send_to(&bytes, r).await?;
            }
            let tick = (tokio::time::Instant::now() + self.retransmit).min(deadline);
            loop {
                match tokio::time::timeout_at(tick, self.socket.recv_from(&mut buf)).await {
                    Err(_) => break,
                    Ok(Err(e)) => {
                        tracing::debug!(%e, "client recv error");
                        continue;
                    }
                    Ok(Ok((n, from))) => {
                        let from_replica =
                            matches!(from, SocketAddr::V4(a) if self.replicas.contains(&a));
                        if !from_replica {
                            continue;
                        }
                        if let Ok(RslMsg::Reply { seqno: s, reply }) =
                            codec::decode::<RslMsg<A>>(&buf[..n])
                        {
                            if s == seqno {
                                self.next_seqno += 1;
                                return Ok(reply);
                            }
                        }
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("no reply to {op:?} (seqno {seqno}) within {timeout:?}");
            }
        }
    }
}
