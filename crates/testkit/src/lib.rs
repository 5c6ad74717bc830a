//! Test support (dev-dependency only): a recording upstream that stands in for the bot,
//! certificates made at test time, free ports, and a handle on a spawned clawveil
//! process that is killed by its own PID when dropped. Never fixed ports, never
//! committed keys.

mod certs;
mod process;
mod upstream;

pub use certs::TestCert;
pub use process::{free_port, wait_port, ProxyProcess};
pub use upstream::{Recorded, TestUpstream};
