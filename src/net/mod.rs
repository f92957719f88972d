//! The real runtime: the same actors over UDP.
//!
//! * [`codec`]: the wire format (header + postcard), decoding that never panics.
//! * [`driver`]: the sans-IO process driver (filtering, the step, saves before sends, timers).
//! * [`runtime`]: the tokio back end over the driver: one actor on one socket; graceful shutdown.
//! * [`auth`]: the cluster key and the MAC on every peer datagram.
//! * [`fs`]: the file-system calls of the storage code, over the system's files or simulated.
//! * [`journal`]: a durable IronKV host's snapshot and write-ahead log.
//! * [`storage`]: durable storage files: checksummed, carrying the cluster's identity, written
//!   atomically; missing, corrupt or foreign files refused.
//! * [`config`]: the TOML cluster files, validated with errors that name the field.
//! * [`kv`]: IronKV hosts on sockets, loopback clusters, a redirect-following client.
//! * [`rsl`]: IronRSL replicas on sockets, loopback clusters, gauges, a leader-tracking client.
//!
//! Nothing here parses flags or prints: the command layer (`cmd`) does that. Actors never look
//! inside an `Id`: in models it is a small index, here it encodes the peer's socket address.

pub mod auth;
pub mod codec;
pub mod config;
pub mod driver;
pub mod fs;
pub mod journal;
pub mod kv;
pub mod rsl;
pub mod runtime;
pub mod storage;

#[cfg(test)]
mod tests {
    use std::net::SocketAddrV4;

    use stateright::actor::Id;

    #[test]
    fn id_round_trips_socket_address() {
        let addr: SocketAddrV4 = "127.0.0.1:4001".parse().unwrap();
        assert_eq!(SocketAddrV4::from(Id::from(addr)), addr);
    }
}
