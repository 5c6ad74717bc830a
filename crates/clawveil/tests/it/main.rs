//! Integration tests: the real binary on ephemeral ports, in front of a recording
//! upstream, driven by real clients (curl, openssl, rustls). One test binary.

mod cardinality;
mod cli;
mod common;
mod config_errors;
mod dingtalk;
mod dingtalk_event;
mod doctor;
mod egress_clients;
mod exposure;
mod forwarding;
mod host;
mod hyper_client;
mod idle;
mod idle_tunnel;
mod keys;
mod leaks;
mod limits;
mod malformed;
mod methods;
mod metrics;
mod plain_http;
mod prometheus;
mod rawconn;
mod readme;
mod reload;
mod secret_watch;
mod setup;
mod shutdown;
mod soak;
mod startup;
mod timeouts;
mod tls;
mod tls_groups;
mod websocket;
mod websocket_h2;
