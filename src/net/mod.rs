//! The real runtime: the same actors over UDP.
//!
//! * [`codec`]: the wire format (header + postcard), decoding that never panics.
//! * [`runtime`]: the tokio event loop driving one actor on one socket; graceful shutdown.
//! * [`config`]: the TOML cluster file, validated with errors that name the field.
//! * [`kv`]: IronKV hosts on sockets, loopback clusters, a redirect-following client.
//! * [`rsl`]: IronRSL replicas on sockets, loopback clusters, gauges, a leader-tracking client.
//! * [`bench`]: the closed-loop benchmark and the raw UDP echo baseline.
//! * [`commands`]: the runtime verbs of the `ironfleet` command.

pub mod bench;
pub mod codec;
pub mod commands;
pub mod config;
pub mod kv;
pub mod kv_commands;
pub mod rsl;
pub mod runtime;

use std::net::SocketAddrV4;

use stateright::actor::Id;

/// Maps a socket address to the opaque actor [`Id`] a runtime hands to actors. Actors never look
/// inside an `Id`; in models it is a small index, at run time it encodes the address.
pub fn id_of(addr: SocketAddrV4) -> Id {
    Id::from(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_round_trips_socket_address() {
        let addr: SocketAddrV4 = "127.0.0.1:4001".parse().unwrap();
        assert_eq!(SocketAddrV4::from(id_of(addr)), addr);
    }
}
