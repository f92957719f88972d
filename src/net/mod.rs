//! The real runtime: the same actors over UDP.
//!
//! * [`codec`]: the wire format (header + postcard), decoding that never panics.
//! * [`runtime`]: the tokio event loop driving one actor on one socket.
//! * [`rsl`]: IronRSL clusters on loopback and an async client.
//!
//! Not yet built (runtime issue): the TOML cluster file, `ironfleet rsl replica`, the benchmark
//! and the echo baseline, the failover test.

pub mod codec;
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
