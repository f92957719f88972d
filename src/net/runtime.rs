//! The tokio UDP back end that drives any stateright [`Actor`] over real sockets.
//!
//! Everything between a datagram and the actor (decoding and filtering, MACs, size limits, the
//! step, saves before sends, timer deadlines, counters, the start from storage) is the sans-IO
//! [`Driver`] of [`super::driver`], which the simulator runs too. What only this back end does,
//! and the simulator therefore does not check, is all in this file: binding the socket with
//! large buffers, reading datagrams (and taking those already waiting as one group), sending
//! the driver's datagrams, sleeping until the next timer deadline on the real clock, and
//! stopping on the shutdown signal. A failed storage write ends the task with the error.
//!
//! **Group commit.** For an actor with storage, after a datagram the loop takes every datagram
//! already waiting (up to [`MAX_GROUP`]) and runs their steps one after the other, keeping their
//! commands; then it makes all their saves durable at once (one fsync for a journal) and only then
//! sends their messages. Holding messages back until a later point is always allowed (the network
//! may delay them), so a group behaves like its steps run back to back with slow links. Without
//! storage each datagram's messages leave at once (grouping then only delays them: measured 7-18%
//! fewer requests/s on the RSL bench).

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use stateright::actor::{Actor, Id, Out};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;

use super::codec::MAX_DATAGRAM;
pub use super::driver::{Counters, Observer, RuntimeConfig};
use super::driver::{Driver, Outgoing};

/// Socket buffer size asked for (the kernel caps it at `net.core.rmem_max`/`wmem_max`): bursts
/// of a leader's broadcasts and of hundreds of clients overflow the 208 KiB default, and a
/// datagram dropped there costs a retransmission period.
pub(crate) const SOCKET_BUFFER: usize = 4 << 20;

/// Binds a UDP socket at `addr` with 4 MiB kernel buffers, for tokio.
pub fn bind_udp(addr: SocketAddrV4) -> Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .context("creating a UDP socket")?;
    // Best effort: a smaller buffer only costs performance.
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.bind(&SocketAddr::V4(addr).into())
        .with_context(|| format!("binding {addr}"))?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into()).context("registering the socket with tokio")
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM: the signals that ask a server to stop gracefully.
pub async fn shutdown_signal() -> Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        tokio::select! {
            _ = term.recv() => Ok("SIGTERM"),
            _ = int.recv() => Ok("SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        Ok("Ctrl-C")
    }
}

/// The most datagrams whose steps are made durable together (see the module doc).
pub const MAX_GROUP: usize = 64;

/// Runs `actor` on `socket` until `shutdown` turns true. Everything but the socket, the clock
/// and the signal is the [`Driver`]'s.
pub async fn run_actor<A>(
    actor: A,
    socket: UdpSocket,
    cfg: RuntimeConfig<A>,
    counters: Arc<Counters>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()>
where
    A: Actor,
    A::Msg: Serialize + DeserializeOwned,
    A::Timer: Ord,
{
    let local = match socket.local_addr()? {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => bail!("actor sockets must be IPv4, got {a}"),
    };
    let epoch = Instant::now();
    let now = || u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let (mut driver, sends) = Driver::start(actor, Id::from(local), cfg, counters, now())?;
    send_all(&socket, sends).await;
    // Without storage there is nothing to commit: each datagram's messages leave at once.
    let max_group = if driver.has_store() { MAX_GROUP } else { 1 };
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let deadline = next_wake(&driver, epoch, Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return Ok(()); }
            }
            r = socket.recv_from(&mut buf) => {
                let mut out: Out<A> = Out::new();
                let mut next = Some(r);
                let mut taken = 0;
                while let Some(r) = next.take() {
                    taken += 1;
                    match r {
                        Ok((n, from)) => {
                            if let Some((from, msg)) = driver.admit(&buf[..n], from) {
                                driver.step(from, msg, &mut out);
                            }
                        }
                        // ICMP errors (a peer not listening yet) surface here on some systems.
                        Err(e) => tracing::debug!(%e, "recv error"),
                    }
                    if taken < max_group {
                        next = match socket.try_recv_from(&mut buf) {
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                            r => Some(r),
                        };
                    }
                }
                let sends = driver.commit(out, now())?;
                send_all(&socket, sends).await;
            }
            _ = tokio::time::sleep_until(deadline) => {
                let sends = driver.fire_due(now())?;
                send_all(&socket, sends).await;
            }
        }
    }
}

/// Sends the driver's datagrams (a send error is logged: the network may lose any datagram).
/// When a process must next wake: its driver's earliest timer deadline (on the clock that
/// started at `epoch`), or `latest` if that is sooner or no timer is armed.
pub(crate) fn next_wake<A>(driver: &Driver<A>, epoch: Instant, latest: Instant) -> Instant
where
    A: Actor,
    A::Msg: Serialize + DeserializeOwned,
    A::Timer: Ord,
{
    driver
        .next_deadline()
        .map(|d| epoch + Duration::from_nanos(d))
        .map_or(latest, |d| d.min(latest))
}

/// Sends a step's datagrams; a send error is a lost datagram (the protocol's retransmissions
/// cover it), logged.
pub(crate) async fn send_all<M>(socket: &UdpSocket, sends: Vec<Outgoing<M>>) {
    for o in sends {
        if let Err(e) = socket.send_to(&o.bytes, o.to).await {
            tracing::debug!(to = %o.to, %e, "send failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::net::codec;

    /// Saves every number it receives, then echoes it back: its reply promises the save.
    #[derive(Clone, Debug)]
    struct Recorder;

    impl Actor for Recorder {
        type Msg = u64;
        type Timer = ();
        type State = u64;
        type Storage = u64;
        type Random = ();

        fn on_start(&self, _: Id, storage: &Option<u64>, _: &mut Out<Self>) -> u64 {
            storage.unwrap_or(0)
        }

        fn on_msg(&self, _: Id, state: &mut Cow<u64>, src: Id, msg: u64, o: &mut Out<Self>) {
            *state.to_mut() = msg;
            o.save(msg);
            o.send(src, msg);
        }
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ironfleet-rt-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    async fn run_recorder(
        file: crate::net::storage::StorageFile,
    ) -> (UdpSocket, SocketAddrV4, tokio::task::JoinHandle<Result<()>>) {
        let socket = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        let SocketAddr::V4(addr) = socket.local_addr().unwrap() else {
            unreachable!()
        };
        let peer = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        let cfg = RuntimeConfig::<Recorder> {
            peers: vec![],
            key: None,
            accept_from_stranger: |_| true,
            storage: Some(Box::new(file)),
            init: false,
            seed: 0,
            observe: None,
        };
        let (_tx, rx) = watch::channel(false);
        let h = tokio::spawn(async move {
            let _keep = _tx;
            run_actor(Recorder, socket, cfg, Arc::new(Counters::default()), rx).await
        });
        (peer, addr, h)
    }

    #[tokio::test]
    async fn a_stored_step_releases_its_messages() {
        let d = temp_dir("stored");
        let file = crate::net::storage::StorageFile::new(d.join("a.storage"), "test".into());
        file.init::<u64>().unwrap();
        let (peer, addr, h) = run_recorder(file.clone()).await;
        peer.send_to(&codec::encode(&7u64).unwrap(), addr)
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
            .await
            .expect("the reply comes")
            .unwrap();
        assert_eq!(codec::decode::<u64>(&buf[..n]).unwrap(), 7);
        assert_eq!(file.load::<u64>().unwrap(), Some(7));
        h.abort();
    }

    /// Regression: a failed storage write used to be logged while the step's messages (which
    /// promise what was stored) left anyway and the actor went on serving.
    #[tokio::test]
    async fn a_failed_storage_write_stops_the_actor_before_its_messages_leave() {
        let d = temp_dir("failed");
        let file = crate::net::storage::StorageFile::new(d.join("a.storage"), "test".into());
        file.init::<u64>().unwrap();
        // A directory where the temporary file goes: the next write fails (even for root).
        std::fs::create_dir(d.join("a.tmp")).unwrap();
        let (peer, addr, h) = run_recorder(file.clone()).await;
        peer.send_to(&codec::encode(&7u64).unwrap(), addr)
            .await
            .unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), h)
            .await
            .expect("the actor stops")
            .unwrap();
        let e = ended.expect_err("the actor reports the failed write");
        assert!(format!("{e:#}").contains("a.tmp"), "{e:#}");
        let mut buf = [0u8; 64];
        let reply =
            tokio::time::timeout(Duration::from_millis(300), peer.recv_from(&mut buf)).await;
        assert!(reply.is_err(), "a reply promising an unstored write left");
        assert_eq!(
            file.load::<u64>().unwrap(),
            None,
            "the file still holds the last good record"
        );
    }

    /// Counts the steps that found commands already in their `Out` (from an earlier step of the
    /// same group), and answers each datagram with that count.
    #[derive(Clone, Debug)]
    struct OutWatcher;

    impl Actor for OutWatcher {
        type Msg = u64;
        type Timer = ();
        type State = u64;
        type Storage = ();
        type Random = ();

        fn on_start(&self, _: Id, _: &Option<()>, _: &mut Out<Self>) -> u64 {
            0
        }

        fn on_msg(&self, _: Id, state: &mut Cow<u64>, src: Id, _: u64, o: &mut Out<Self>) {
            if o.iter().next().is_some() {
                *state.to_mut() += 1;
            }
            o.send(src, **state);
        }
    }

    /// Regression: group commit handed every step of a group the group's `Out`, so a step saw
    /// the commands of the steps before it (an IronKV host then journaled their messages again:
    /// 3,559 instead of about 400 bytes written per operation at 64 clients).
    #[tokio::test]
    async fn each_step_of_a_group_gets_its_own_out() {
        let socket = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        let SocketAddr::V4(addr) = socket.local_addr().unwrap() else {
            unreachable!()
        };
        let peer = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        let cfg = RuntimeConfig::<OutWatcher> {
            peers: vec![],
            key: None,
            accept_from_stranger: |_| true,
            storage: None,
            init: false,
            seed: 0,
            observe: None,
        };
        let (tx, rx) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let h = tokio::spawn(run_actor(OutWatcher, socket, cfg, counters, rx));
        // A burst: many datagrams wait at once, so they are stepped as groups.
        let n = 200;
        for _ in 0..n {
            peer.send_to(&codec::encode(&0u64).unwrap(), addr)
                .await
                .unwrap();
        }
        let mut buf = [0u8; 64];
        let mut last = 0;
        for _ in 0..n {
            let (k, _) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
                .await
                .expect("every datagram is answered")
                .unwrap();
            last = codec::decode::<u64>(&buf[..k]).unwrap();
        }
        assert_eq!(last, 0, "steps saw commands of earlier steps");
        tx.send(true).unwrap();
        h.await.unwrap().unwrap();
    }
}
