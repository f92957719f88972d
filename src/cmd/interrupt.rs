//! Ctrl-C during a long check. While a search listens ([`listen`]), the first Ctrl-C asks it to
//! stop: it ends at its next poll and prints its report (what it found so far, said to be not
//! exhaustive), and the command exits with status 130. A second Ctrl-C, or one while no search
//! listens (a simulation, the explorer), quits at once with status 130, as without a handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The exit status of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
pub(crate) const INTERRUPTED: i32 = 130;

/// Whether a search is listening for a stop request now.
static LISTENING: AtomicBool = AtomicBool::new(false);

/// The stop request the searches poll, once the handler is installed (`None`: it could not be).
static REQUEST: OnceLock<Option<Arc<AtomicBool>>> = OnceLock::new();

fn request() -> Option<Arc<AtomicBool>> {
    REQUEST
        .get_or_init(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let set = flag.clone();
            ctrlc::set_handler(move || {
                if LISTENING.load(Ordering::SeqCst) && !set.swap(true, Ordering::SeqCst) {
                    eprintln!("\nStopping: the report follows (Ctrl-C again quits at once).");
                } else {
                    std::process::exit(INTERRUPTED);
                }
            })
            .ok()
            .map(|()| flag)
        })
        .clone()
}

/// While alive, Ctrl-C asks the search to stop through [`Listening::flag`].
pub(crate) struct Listening {
    flag: Option<Arc<AtomicBool>>,
}

impl Listening {
    /// The flag to hand to the search (`None` if no handler could be installed: Ctrl-C then
    /// quits at once, as it always did).
    pub(crate) fn flag(&self) -> Option<Arc<AtomicBool>> {
        self.flag.clone()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        LISTENING.store(false, Ordering::SeqCst);
    }
}

/// Starts listening for Ctrl-C on behalf of one search (installing the handler the first time).
pub(crate) fn listen() -> Listening {
    let flag = request();
    if let Some(f) = &flag {
        f.store(false, Ordering::SeqCst);
    }
    LISTENING.store(true, Ordering::SeqCst);
    Listening { flag }
}
