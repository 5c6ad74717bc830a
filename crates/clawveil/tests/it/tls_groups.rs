//! TLS key exchange and resumption: post-quantum X25519MLKEM768 offered and preferred,
//! X25519 and P-256 kept for older clients, the negotiated group in the access event
//! and the handshake metric, sessions resumed by rustls and OpenSSL clients.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use rustls::crypto::aws_lc_rs::{default_provider, kx_group};
use rustls::crypto::SupportedKxGroup;
use rustls::{HandshakeKind, NamedGroup};

use crate::common::{eventually, Harness};
use crate::rawconn::{exchange, Tls, TlsTarget};
use crate::setup::{access_events, raw_status, series};

const HANDSHAKES: &str = "clawveil_tls_handshakes_total";

fn target(h: &Harness) -> TlsTarget<'_> {
    TlsTarget {
        cert: &h.cert.cert,
        port: h.https,
    }
}

/// A rustls client configuration offering only `groups` (all of rustls' defaults with
/// `None`), ALPN http/1.1.
fn client(
    h: &Harness,
    groups: Option<&[&'static dyn SupportedKxGroup]>,
) -> Arc<rustls::ClientConfig> {
    let mut provider = default_provider();
    if let Some(groups) = groups {
        provider.kx_groups = groups.to_vec();
    }
    let mut cfg = target(h).client_config(Arc::new(provider));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

fn negotiated(tls: &Tls) -> Option<NamedGroup> {
    tls.conn.negotiated_key_exchange_group().map(|g| g.name())
}

/// Sends `GET path` on `tls` and checks the proxy answered it.
fn get(tls: &mut Tls, path: &str) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let answer = exchange(tls, request.as_bytes());
    assert_eq!(raw_status(&answer), 200, "{answer}");
}

/// The `tls_group` of the access event for `path`, once it is written.
fn logged_group(h: &Harness, path: &str) -> String {
    let mut group = None;
    let found = eventually(10, || {
        group = access_events(h)
            .iter()
            .find(|e| e["path"] == path)
            .map(|e| e["tls_group"].as_str().unwrap_or("(absent)").to_owned());
        group.is_some()
    });
    assert!(found, "no access event for {path}:\n{}", h.proxy.output());
    group.unwrap()
}

fn ok_with_group(h: &Harness, group: &str) -> f64 {
    series(
        h,
        HANDSHAKES,
        &["result=\"ok\"", &format!("group=\"{group}\"")],
    )
}

/// A client offering only `groups` is served over `want`, which the access event and
/// `clawveil_tls_handshakes_total{group}` show.
fn served_over(groups: Option<&[&'static dyn SupportedKxGroup]>, want: NamedGroup, label: &str) {
    let h = Harness::start();
    let before = ok_with_group(&h, label);
    let mut tls = target(&h).connect_with(client(&h, groups));
    assert_eq!(negotiated(&tls), Some(want));
    let path = format!("/kx-{label}");
    get(&mut tls, &path);
    assert_eq!(logged_group(&h, &path), label);
    assert_eq!(
        ok_with_group(&h, label),
        before + 1.0,
        "{}",
        h.metrics_text()
    );
}

#[test]
fn a_client_offering_only_x25519mlkem768_is_served() {
    served_over(
        Some(&[kx_group::X25519MLKEM768]),
        NamedGroup::X25519MLKEM768,
        "X25519MLKEM768",
    );
}

#[test]
fn a_client_offering_only_x25519_is_served() {
    served_over(Some(&[kx_group::X25519]), NamedGroup::X25519, "X25519");
}

#[test]
fn a_client_offering_only_p256_is_served() {
    served_over(
        Some(&[kx_group::SECP256R1]),
        NamedGroup::secp256r1,
        "secp256r1",
    );
}

#[test]
fn a_default_rustls_client_negotiates_x25519mlkem768() {
    // rustls' default groups list X25519MLKEM768 first (its `prefer-post-quantum`
    // feature, on in this workspace), as browsers and Go do.
    assert_eq!(
        default_provider().kx_groups[0].name(),
        NamedGroup::X25519MLKEM768
    );
    served_over(None, NamedGroup::X25519MLKEM768, "X25519MLKEM768");
}

#[test]
fn a_client_offering_x25519_first_and_x25519mlkem768_later_keeps_x25519() {
    // The client's order wins (switching would cost it a HelloRetryRequest): the
    // server does not force ML-KEM on a client that prefers X25519.
    let h = Harness::start();
    let groups: &[&'static dyn SupportedKxGroup] = &[kx_group::X25519, kx_group::X25519MLKEM768];
    let tls = target(&h).connect_with(client(&h, Some(groups)));
    assert_eq!(negotiated(&tls), Some(NamedGroup::X25519));
    assert_eq!(tls.conn.handshake_kind(), Some(HandshakeKind::Full));
}

#[test]
fn a_client_offering_only_groups_the_server_lacks_is_refused_and_counted_unknown() {
    let h = Harness::start();
    let groups: &[&'static dyn SupportedKxGroup] = &[kx_group::MLKEM768];
    let cfg = client(&h, Some(groups));
    let mut conn = rustls::ClientConnection::new(cfg, "localhost".try_into().unwrap()).unwrap();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", h.https)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut failed = false;
    while conn.is_handshaking() {
        if conn.complete_io(&mut tcp).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "a handshake over ML-KEM alone completed");
    assert!(eventually(5, || series(
        &h,
        HANDSHAKES,
        &["result=\"failed\"", "group=\"unknown\""]
    ) >= 1.0));
}

#[test]
fn a_rustls_client_resumes_its_session() {
    let h = Harness::start();
    let cfg = client(&h, None);
    let mut first = target(&h).connect_with(cfg.clone());
    assert_eq!(first.conn.handshake_kind(), Some(HandshakeKind::Full));
    // Reading the answer also reads the session tickets sent after the handshake.
    get(&mut first, "/first");
    let mut second = target(&h).connect_with(cfg);
    assert_eq!(second.conn.handshake_kind(), Some(HandshakeKind::Resumed));
    // TLS 1.3 resumption runs a fresh key exchange: the group is still post-quantum.
    assert_eq!(negotiated(&second), Some(NamedGroup::X25519MLKEM768));
    get(&mut second, "/second");
    assert_eq!(logged_group(&h, "/second"), "X25519MLKEM768");
}

/// `openssl s_client` against the proxy: writes `input`, waits until the server closes
/// (so TLS 1.3 session tickets are read), and returns everything it printed.
fn s_client(port: u16, args: &[&str], input: &str) -> String {
    let connect = format!("127.0.0.1:{port}");
    let mut child = Command::new("timeout")
        .args(["10", "openssl", "s_client", "-connect", &connect])
        .args(["-servername", "localhost", "-ign_eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const CLOSE: &str = "GET /openssl HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

#[test]
fn openssl_clients_with_x25519_or_p256_are_served() {
    // Debian 12's OpenSSL 3.0 has no ML-KEM (that came in 3.5), so only the classical
    // groups are tried with it; the rustls tests above cover X25519MLKEM768.
    let h = Harness::start();
    let x = s_client(h.https, &["-groups", "X25519", "-alpn", "http/1.1"], CLOSE);
    assert!(x.contains("Server Temp Key: X25519"), "{x}");
    assert!(x.contains("HTTP/1.1 200"), "{x}");
    let p = s_client(h.https, &["-groups", "P-256", "-alpn", "http/1.1"], CLOSE);
    assert!(p.contains("Server Temp Key: ECDH, prime256v1"), "{p}");
    let p12 = s_client(h.https, &["-groups", "P-256", "-tls1_2"], "");
    assert!(p12.contains("Server Temp Key: ECDH, prime256v1"), "{p12}");
    assert!(p12.contains("TLSv1.2"), "{p12}");
    for (version, group) in [
        ("TLSv1.3", "X25519"),
        ("TLSv1.3", "secp256r1"),
        ("TLSv1.2", "secp256r1"),
    ] {
        let labels = [
            "result=\"ok\"".to_owned(),
            format!("version=\"{version}\""),
            format!("group=\"{group}\""),
        ];
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        assert_eq!(
            series(&h, HANDSHAKES, &labels),
            1.0,
            "{version} {group}: {}",
            h.metrics_text()
        );
    }
}

/// Connects twice with OpenSSL, saving the session the first time and offering it the
/// second: the second handshake's summary line.
fn openssl_reconnect(h: &Harness, args: &[&str]) -> (String, String) {
    let sess = h.dir.path().join(format!("session-{}.pem", args.join("")));
    let sess = sess.to_str().unwrap();
    let mut first_args = vec!["-sess_out", sess];
    first_args.extend_from_slice(args);
    let first = s_client(h.https, &first_args, CLOSE);
    let mut second_args = vec!["-sess_in", sess];
    second_args.extend_from_slice(args);
    let second = s_client(h.https, &second_args, CLOSE);
    (first, second)
}

#[test]
fn openssl_resumes_tls_1_3_with_tickets_and_tls_1_2_from_the_session_cache() {
    let h = Harness::start();
    // TLS 1.3: a session ticket (stateless, keys rotated by rustls' Ticketer).
    let (first, second) = openssl_reconnect(&h, &["-tls1_3"]);
    assert!(first.contains("New, TLSv1.3"), "{first}");
    assert!(second.contains("Reused, TLSv1.3"), "{second}");
    // TLS 1.2 without tickets: the server's bounded session cache.
    let (first, second) = openssl_reconnect(&h, &["-tls1_2", "-no_ticket"]);
    assert!(first.contains("New, TLSv1.2"), "{first}");
    assert!(second.contains("Reused, TLSv1.2"), "{second}");
    // TLS 1.2 with a ticket.
    let (_, second) = openssl_reconnect(&h, &["-tls1_2"]);
    assert!(second.contains("Reused, TLSv1.2"), "{second}");
    // A resumed TLS 1.2 session has no key exchange: counted under `unknown`.
    assert_eq!(
        series(
            &h,
            HANDSHAKES,
            &["result=\"ok\"", "version=\"TLSv1.2\"", "group=\"unknown\""]
        ),
        2.0,
        "{}",
        h.metrics_text()
    );
}
