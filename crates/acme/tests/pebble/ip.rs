//! IP-address certificates (RFC 8738) against the scripted CA: ordered as `ip`
//! identifiers, validated by http-01 on the address itself, and served to clients that
//! connect by IP (rustls, like browsers, sends no SNI for an address).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rustls_pki_types::ServerName;
use serde_json::json;

use crate::mock_ca::{self, Script};
use crate::support::*;

async fn issue_and_serve(ip: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let addr: IpAddr = ip.parse().unwrap();
    let ports = Ports::new();
    let ca = mock_ca::start(
        tmp.path(),
        Script {
            profiles: vec![("shortlived", "160 hours")],
            http_port: ports.http,
            ..Script::default()
        },
    )
    .await;
    let mut cfg = config_for(
        tmp.path(),
        ports,
        upstream().await,
        &ca.directory(),
        &ca.tls_cert,
        "http-01",
    );
    cfg.listen.https = SocketAddr::new(addr, ports.https);
    cfg.listen.http = Some(SocketAddr::new(addr, ports.http));
    let acme = cfg.acme.as_mut().unwrap();
    acme.domains = vec![ip.to_owned()];
    acme.profile = Some("shortlived".into());
    let (node, started) = Node::start(cfg.clone(), ports, fast()).await;
    started.unwrap();
    node.wait_ready(Duration::from_secs(20)).await;

    {
        let st = ca.state.lock().unwrap();
        assert_eq!(
            st.orders[0]["identifiers"],
            json!([{"type": "ip", "value": ip}]),
            "{:?}",
            st.orders
        );
        assert_eq!(st.orders[0]["profile"], "shortlived");
        assert_eq!(st.csr_names, vec![vec![ip.to_owned()]]);
        // the CA fetched the http-01 answer from the address itself
        assert_eq!(
            st.validations,
            vec![(ip.to_owned(), SocketAddr::new(addr, ports.http))]
        );
    }
    // a client connecting by IP: no SNI, the certificate names the address
    let (status, body, _) = https_get(
        SocketAddr::new(addr, ports.https),
        ServerName::IpAddress(addr.into()),
        std::slice::from_ref(&ca.root),
        "/hello",
    )
    .await
    .unwrap();
    assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
    let st = clawveil_acme::status(cfg.acme.as_ref().unwrap()).unwrap();
    assert_eq!(st[0].names, vec![ip.to_owned()]);
    assert_eq!(st[0].problem, None);
    node.stop().await;
}

#[test]
fn an_ipv4_certificate_is_issued_by_http01_and_served_without_sni() {
    runtime().block_on(issue_and_serve("127.0.0.1"));
}

#[test]
fn an_ipv6_certificate_is_issued_by_http01_and_served_without_sni() {
    runtime().block_on(issue_and_serve("::1"));
}
