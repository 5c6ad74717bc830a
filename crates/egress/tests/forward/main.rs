//! The forward proxy end to end on loopback: a raw CONNECT client and curl (`-p -x`,
//! `-x`) against `ForwardProxy::serve`, local destinations, real DNS for `localhost`.
//! One test binary.

mod common;
mod refusals;
mod tunnels;
