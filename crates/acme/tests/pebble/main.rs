//! clawveil-acme against a real ACME server: Pebble (Debian package `pebble`, with
//! `pebble-challtestsrv` as its DNS server), the real clawveil listeners running
//! in-process, and real TLS clients trusting Pebble's root. Nothing is skipped: without
//! Pebble installed these tests fail and say how to install it.

mod ari;
mod faults;
mod ip;
mod issuance;
mod mock_ca;
mod node;
mod profiles;
mod renewal;
mod storage;
mod support;
