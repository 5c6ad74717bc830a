//! Integration tests: the real binary on ephemeral ports, in front of a recording
//! upstream, driven by real clients (curl, openssl, rustls). One test binary.

mod cli;
mod common;
mod config_errors;
mod forwarding;
mod hyper_client;
mod leaks;
mod limits;
mod metrics;
mod plain_http;
mod readme;
mod reload;
mod shutdown;
mod tls;
