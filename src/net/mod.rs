//! The real runtime: a UDP event loop that drives the same actors over sockets.
//!
//! Not built yet: the tokio runtime, codec, address book and timers are the subject of the
//! runtime issue. Until then the actors run only under the model checker and in simulation; this
//! module only fixes the one mapping every runtime needs.

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
