//! Limits that make no sense are refused with the key, the value and the valid range;
//! each bound is tested on both sides of its edge.

use std::time::Duration;

use clawveil_config::{Config, ErrorKind};

use crate::{err, parse, HTTPS};

/// `HTTPS` plus `key = value` (a TOML literal) in its section; the key is then at 4:1
/// (6:1 for a route, after its name and path_prefix).
fn set(key: &str, value: &str) -> String {
    let (section, name) = key.split_once('.').unwrap();
    match section {
        "route" => {
            format!("{HTTPS}[[route]]\nname = \"a\"\npath_prefix = \"/\"\n{name} = {value}\n")
        }
        _ => format!("{HTTPS}[{section}]\n{name} = {value}\n"),
    }
}

fn at(key: &str) -> String {
    match key.split_once('.').unwrap() {
        ("route", name) => format!("proxy.toml:6:1: route[0].{name}"),
        _ => format!("proxy.toml:4:1: {key}"),
    }
}

#[track_caller]
fn accepted(key: &str, value: &str) -> Config {
    parse(&set(key, value)).unwrap_or_else(|e| panic!("{key} = {value}: {e}"))
}

#[track_caller]
fn out_of_range(key: &str, value: &str, shown: &str, range: &str) {
    let msg = err(&set(key, value));
    assert_eq!(
        msg,
        format!("{}: \"{shown}\" is out of range; expected {range}", at(key)),
        "{key} = {value}"
    );
}

#[track_caller]
fn zero_refused(key: &str, value: &str, because: &str) {
    let msg = err(&set(key, value));
    assert!(
        msg.starts_with(&format!("{}: ", at(key))) && msg.contains(because),
        "{key} = {value}: {msg}"
    );
}

const LONGER_THAN_ZERO: &str = "it must be longer than zero";
const GREATER_THAN_ZERO: &str = "it must be greater than zero";

#[test]
fn max_header_bytes_from_1kib_to_1mib() {
    let key = "limits.max_header_bytes";
    let range = "1KiB to 1MiB";
    out_of_range(key, "1023", "1023", range);
    assert_eq!(accepted(key, "\"1KiB\"").limits.max_header_bytes, 1024);
    assert_eq!(accepted(key, "1048576").limits.max_header_bytes, 1 << 20);
    out_of_range(key, "1048577", "1048577", range);
    out_of_range(key, "\"100GiB\"", "100GiB", range);
    zero_refused(key, "0", GREATER_THAN_ZERO);
}

#[test]
fn max_body_up_to_64gib() {
    let key = "limits.max_body";
    let range = "1 byte to 64GiB";
    zero_refused(key, "0", GREATER_THAN_ZERO);
    assert_eq!(accepted(key, "1").limits.max_body, 1);
    assert_eq!(accepted(key, "\"64GiB\"").limits.max_body, 64 << 30);
    out_of_range(key, "68719476737", "68719476737", range);
    out_of_range(key, "\"65GiB\"", "65GiB", range);
}

#[test]
fn body_max_up_to_16mib() {
    let key = "log.body_max";
    let range = "1 byte to 16MiB";
    zero_refused(key, "0", GREATER_THAN_ZERO);
    assert_eq!(accepted(key, "1").log.body_max, 1);
    assert_eq!(accepted(key, "\"16MiB\"").log.body_max, 16 << 20);
    out_of_range(key, "16777217", "16777217", range);
}

#[test]
fn max_connections_from_1_to_a_million() {
    let key = "limits.max_connections";
    zero_refused(key, "0", "\"0\" is not a positive number");
    zero_refused(key, "-5", "\"-5\" is not a positive number");
    assert_eq!(accepted(key, "1").limits.max_connections, 1);
    assert_eq!(accepted(key, "1000000").limits.max_connections, 1_000_000);
    out_of_range(key, "1000001", "1000001", "1 to 1000000");
}

/// A duration key bounded by `1ms..=max`: zero keeps its "longer than zero" message.
#[track_caller]
fn timeout(key: &str, max: &str, above: &str, get: fn(&Config) -> Duration) {
    let range = format!("1ms to {max}");
    zero_refused(key, "\"0s\"", LONGER_THAN_ZERO);
    out_of_range(key, "\"999us\"", "999us", &range);
    assert_eq!(get(&accepted(key, "\"1ms\"")), Duration::from_millis(1));
    let max_value = humantime::parse_duration(max).unwrap();
    assert_eq!(get(&accepted(key, &format!("\"{max}\""))), max_value);
    out_of_range(key, &format!("\"{above}\""), above, &range);
}

#[test]
fn timeouts_up_to_a_day() {
    timeout("limits.request_timeout", "24h", "86401s", |c| {
        c.limits.request_timeout
    });
    timeout("upstream.response_timeout", "24h", "25h", |c| {
        c.upstream.response_timeout
    });
    timeout("limits.idle_timeout", "24h", "86401s", |c| {
        c.limits.idle_timeout
    });
    timeout("limits.tunnel_idle_timeout", "24h", "2d", |c| {
        c.limits.tunnel_idle_timeout
    });
    timeout("route.max_skew", "24h", "86401s", |c| c.routes[0].max_skew);
}

#[test]
fn shorter_timeouts() {
    timeout("limits.header_read_timeout", "10m", "601s", |c| {
        c.limits.header_read_timeout
    });
    timeout("upstream.connect_timeout", "5m", "301s", |c| {
        c.upstream.connect_timeout
    });
}

#[test]
fn drain_timeout_from_zero_to_an_hour() {
    let key = "limits.drain_timeout";
    assert_eq!(accepted(key, "\"0s\"").limits.drain_timeout, Duration::ZERO);
    assert_eq!(
        accepted(key, "\"1h\"").limits.drain_timeout,
        Duration::from_secs(3600)
    );
    out_of_range(key, "\"3601s\"", "3601s", "0s to 1h");
    let c = accepted(key, "\"0s\"");
    let out = c.effective_toml();
    assert!(out.contains("drain_timeout = \"0s\""), "{out}");
    assert_eq!(parse(&out).unwrap().limits.drain_timeout, Duration::ZERO);
}

#[test]
fn watch_interval_from_100ms_to_an_hour() {
    let key = "tls.watch_interval";
    zero_refused(key, "\"0s\"", LONGER_THAN_ZERO);
    out_of_range(key, "\"99ms\"", "99ms", "100ms to 1h");
    assert_eq!(
        accepted(key, "\"100ms\"").tls.watch_interval,
        Duration::from_millis(100)
    );
    assert_eq!(
        accepted(key, "\"1h\"").tls.watch_interval,
        Duration::from_secs(3600)
    );
    out_of_range(key, "\"61m\"", "61m", "100ms to 1h");
}

#[test]
fn out_of_range_is_structured() {
    let e = parse(&set("limits.max_header_bytes", "\"100GiB\"")).unwrap_err();
    assert_eq!(
        (e.line, e.key.as_str()),
        (Some(4), "limits.max_header_bytes")
    );
    match e.kind() {
        ErrorKind::OutOfRange { value, min, max } => {
            assert_eq!(
                (value.as_str(), min.as_str(), max.as_str()),
                ("100GiB", "1KiB", "1MiB")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn exposure_check_from_100ms_to_an_hour_or_off() {
    let key = "upstream.exposure_check";
    assert_eq!(
        parse(HTTPS).unwrap().upstream.exposure_check,
        Some(Duration::from_secs(30))
    );
    assert_eq!(accepted(key, "\"0s\"").upstream.exposure_check, None);
    out_of_range(key, "\"99ms\"", "99ms", "100ms to 1h");
    assert_eq!(
        accepted(key, "\"100ms\"").upstream.exposure_check,
        Some(Duration::from_millis(100))
    );
    assert_eq!(
        accepted(key, "\"1h\"").upstream.exposure_check,
        Some(Duration::from_secs(3600))
    );
    out_of_range(key, "\"61m\"", "61m", "100ms to 1h");
    zero_refused(key, "\"soon\"", "soon");
}
