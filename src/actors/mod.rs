//! Protocol code: every host of every system is a stateright [`Actor`](stateright::actor::Actor)
//! whose handlers are pure step functions (no clock, socket, thread or unseeded randomness).
//!
//! * [`rsl`]: IronRSL, MultiPaxos with batching, log truncation, state transfer and a bounded client session table.
//! * [`kv`]: IronKV, the sharded hash table with delegation and SingleDelivery.
//! * [`lock`]: IronLock, the ring lock with epochs.

/// Declares a mutation enum (a deliberately broken protocol variant per variant) with its
/// command-line names: `ALL`, `name`, and `parse`, whose error lists every name.
macro_rules! mutations {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $kebab:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every mutation, in declaration order.
            pub const ALL: &'static [$name] = &[$( $name::$variant, )+];

            /// The kebab-case name used on the command line.
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $kebab, )+
                }
            }

            /// Parses a name given by [`Self::name`]; the error names every mutation.
            pub fn parse(s: &str) -> Result<$name, String> {
                Self::ALL.iter().copied().find(|m| m.name() == s).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|m| m.name()).collect();
                    format!("unknown mutation '{s}': use one of {}", names.join(", "))
                })
            }
        }
    };
}

pub mod kv;
pub mod lock;
pub mod rsl;
