//! What the inbound listener refuses before it looks at routes: methods that must never
//! reach the bot (CONNECT, TRACE, asterisk-form targets), and a `Host` that is missing,
//! malformed, ambiguous, not one of `listen.server_names`, or not the name the client
//! asked for in the TLS handshake (domain fronting).

use clawveil_telemetry::Refusal;
use http::{header, Method, Request, Version};

/// Whether the request is a WebSocket opening: HTTP/1.1 `Upgrade: websocket` on a GET,
/// or an HTTP/2 extended CONNECT with `:protocol = websocket` (RFC 8441).
pub fn is_websocket<B>(req: &Request<B>) -> bool {
    if req.method() == Method::CONNECT {
        return req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
    }
    req.method() == Method::GET
        && req.version() == Version::HTTP_11
        && has_token(req.headers(), header::CONNECTION, "upgrade")
        && has_token(req.headers(), header::UPGRADE, "websocket")
}

fn has_token(h: &http::HeaderMap, name: header::HeaderName, token: &str) -> bool {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// What is decided about the method before routing.
#[derive(Debug, PartialEq, Eq)]
pub enum MethodCheck {
    /// Forward (TRACE only if the route allows it: see [`trace_allowed`]).
    Forward,
    /// Answer here.
    Local(Refusal),
}

/// CONNECT (other than a WebSocket opening) is never forwarded; `OPTIONS *` is answered
/// here; any other asterisk-form target is malformed.
pub fn method<B>(req: &Request<B>) -> MethodCheck {
    // Over HTTP/2 the target is `:path = *`, with an authority beside it.
    let asterisk = req.uri().path() == "*";
    match *req.method() {
        Method::CONNECT if !is_websocket(req) => MethodCheck::Local(Refusal::MethodNotAllowed),
        Method::OPTIONS if asterisk => MethodCheck::Local(Refusal::ServerOptions),
        _ if asterisk => MethodCheck::Local(Refusal::Malformed),
        _ => MethodCheck::Forward,
    }
}

/// TRACE echoes the request, cookies included (cross-site tracing): refused unless the
/// route says otherwise.
pub fn trace_allowed(method: &Method, route_allows: bool) -> Result<(), Refusal> {
    if method == Method::TRACE && !route_allows {
        Err(Refusal::MethodNotAllowed)
    } else {
        Ok(())
    }
}

/// Host names this listener serves (`listen.server_names`; empty: any).
#[derive(Debug, Clone, Default)]
pub struct ServerNames(Vec<String>);

impl ServerNames {
    pub fn new(names: &[String]) -> Self {
        ServerNames(names.iter().map(|n| n.to_ascii_lowercase()).collect())
    }

    fn serves(&self, host: &str) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|n| match n.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
                None => n == host,
            })
    }
}

/// The one authority of a request, validated: RFC 9112 §3.2 (HTTP/1.1 needs exactly one
/// valid `Host`) and RFC 9113 §8.3.1 (`:authority` and `host` must agree). Returns the
/// authority as the client wrote it (with port), for forwarding.
pub fn host<B>(
    req: &Request<B>,
    names: &ServerNames,
    sni: Option<&str>,
) -> Result<Option<String>, Refusal> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let header_host = match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(Refusal::Malformed),
        (Some(h), None) => Some(h.to_str().map_err(|_| Refusal::Malformed)?),
        (None, _) => None,
    };
    let uri_host = req.uri().authority().map(|a| a.as_str());
    let authority = match (req.version(), uri_host, header_host) {
        // h2/h3: :authority wins, and a host header must name the same thing.
        (Version::HTTP_2, Some(a), Some(h)) if !a.eq_ignore_ascii_case(h) => {
            return Err(Refusal::Malformed)
        }
        (Version::HTTP_2, Some(a), _) => Some(a),
        (Version::HTTP_2, None, h) => h,
        // HTTP/1.1 requires Host even with an absolute-form target (whose authority wins).
        (Version::HTTP_11, _, None) => return Err(Refusal::Malformed),
        (_, Some(a), _) => Some(a),
        (_, None, h) => h,
    };
    let Some(authority) = authority else {
        // HTTP/1.0 may omit Host; the TLS SNI is then all there is to hold to server_names.
        if !names.0.is_empty() && !sni.is_some_and(|s| names.serves(s.trim_end_matches('.'))) {
            return Err(Refusal::Misdirected);
        }
        return Ok(None);
    };
    let name = host_name(authority).ok_or(Refusal::Malformed)?;
    if !names.serves(&name) {
        return Err(Refusal::Misdirected);
    }
    if let Some(sni) = sni {
        if sni.trim_end_matches('.') != name {
            return Err(Refusal::Misdirected);
        }
    }
    Ok(Some(authority.to_owned()))
}

/// The lowercase host of an authority `host[:port]`, or `None` when it is not a valid
/// reg-name, IPv4 or bracketed IPv6 (no userinfo, spaces, commas or empty parts).
fn host_name(authority: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (&authority[..v6.len() + 2], None),
            p => (&authority[..v6.len() + 2], Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse::<u16>().ok()?;
    }
    if !host.starts_with('[') {
        let h = host.strip_suffix('.').unwrap_or(host);
        if h.is_empty()
            || h.len() > 253
            || !h.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
        {
            return None;
        }
        return Some(h.to_ascii_lowercase());
    }
    Some(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Version, uri: &str, hosts: &[&str]) -> Request<()> {
        let mut b = Request::builder().version(version).uri(uri);
        for h in hosts {
            b = b.header(header::HOST, *h);
        }
        b.body(()).unwrap()
    }

    fn check(r: &Request<()>) -> Result<Option<String>, Refusal> {
        host(r, &ServerNames::default(), None)
    }

    #[test]
    fn hosts_that_rfc_9112_calls_invalid_are_malformed() {
        let h11 = Version::HTTP_11;
        for bad in [
            "a b",
            "a.example, for=6.6.6.6",
            "user@evil.example",
            "",
            "a..b",
            "a.example:",
            "a.example:99999",
            "[::1",
            "[zz]:1",
            "a/b",
        ] {
            assert_eq!(
                check(&req(h11, "/", &[bad])),
                Err(Refusal::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            check(&req(h11, "/", &["a.example", "b.example"])),
            Err(Refusal::Malformed)
        );
        assert_eq!(check(&req(h11, "/", &[])), Err(Refusal::Malformed));
        // HTTP/1.0 may omit it.
        assert_eq!(check(&req(Version::HTTP_10, "/", &[])), Ok(None));
        for good in [
            "bot.example.com",
            "127.0.0.1:8443",
            "[::1]:443",
            "Bot.Example.com.",
        ] {
            assert_eq!(
                check(&req(h11, "/", &[good])),
                Ok(Some(good.to_owned())),
                "{good}"
            );
        }
    }

    #[test]
    fn h2_authority_and_host_must_agree() {
        let h2 = Version::HTTP_2;
        assert_eq!(
            check(&req(h2, "https://a.example/", &["evil.example"])),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            check(&req(h2, "https://a.example/", &["A.example"])),
            Ok(Some("a.example".into()))
        );
        assert_eq!(
            check(&req(h2, "https://a.example/", &[])),
            Ok(Some("a.example".into()))
        );
    }

    #[test]
    fn server_names_and_sni() {
        let names = ServerNames::new(&["bot.example.com".into(), "*.example.org".into()]);
        let r = |h: &str| req(Version::HTTP_11, "/", &[h]);
        assert!(host(&r("bot.example.com:443"), &names, None).is_ok());
        assert!(host(&r("a.b.example.org"), &names, None).is_ok());
        assert_eq!(
            host(&r("example.org"), &names, None),
            Err(Refusal::Misdirected)
        );
        assert_eq!(
            host(&r("evil.example"), &names, None),
            Err(Refusal::Misdirected)
        );
        assert_eq!(
            host(
                &r("bot.example.com"),
                &ServerNames::default(),
                Some("other.example")
            ),
            Err(Refusal::Misdirected)
        );
        assert!(host(
            &r("BOT.example.com"),
            &ServerNames::default(),
            Some("bot.example.com")
        )
        .is_ok());
    }

    #[test]
    fn methods() {
        let r = |m: &str, uri: &str| Request::builder().method(m).uri(uri).body(()).unwrap();
        assert_eq!(
            method(&r("CONNECT", "evil.example:443")),
            MethodCheck::Local(Refusal::MethodNotAllowed)
        );
        assert_eq!(
            method(&r("OPTIONS", "*")),
            MethodCheck::Local(Refusal::ServerOptions)
        );
        assert_eq!(
            method(&r("GET", "*")),
            MethodCheck::Local(Refusal::Malformed)
        );
        assert_eq!(method(&r("GET", "/")), MethodCheck::Forward);
        assert_eq!(
            trace_allowed(&Method::TRACE, false),
            Err(Refusal::MethodNotAllowed)
        );
        assert!(trace_allowed(&Method::TRACE, true).is_ok());
        let mut ws = r("CONNECT", "https://a.example/ws");
        *ws.version_mut() = Version::HTTP_2;
        ws.extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        assert_eq!(method(&ws), MethodCheck::Forward);
        assert!(is_websocket(&ws));
    }
}
