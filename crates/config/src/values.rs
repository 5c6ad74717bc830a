//! Parsers for the value types of `proxy.toml`: addresses, durations, sizes, URLs,
//! CIDRs, host names, header names. Each returns the `ErrorKind` that says what would
//! be valid; the caller adds file, line and key.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::error::ErrorKind;

/// `ip:port`, with a suggestion for the usual mistakes (`:443`, `443`, `localhost:443`).
pub(crate) fn parse_addr(value: &str, example_port: u16) -> Result<SocketAddr, ErrorKind> {
    if let Ok(addr) = value.trim().parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bad = |reason: &str, suggestion: String| ErrorKind::BadAddress {
        value: value.to_owned(),
        reason: reason.to_owned(),
        suggestion,
    };
    let default = format!("0.0.0.0:{example_port}");
    if value.parse::<IpAddr>().is_ok() {
        let suggestion = if value.contains(':') {
            format!("[{value}]:{example_port}")
        } else {
            format!("{value}:{example_port}")
        };
        return Err(bad("no port", suggestion));
    }
    if let Ok(port) = value.trim().trim_start_matches(':').parse::<u16>() {
        return Err(bad("no IP address", format!("0.0.0.0:{port}")));
    }
    if let Some((host, port)) = value.rsplit_once(':') {
        if let Ok(port) = port.parse::<u16>() {
            let ip = if host == "localhost" {
                "127.0.0.1"
            } else {
                "0.0.0.0"
            };
            return Err(bad(
                "a host name, not an IP address",
                format!("{ip}:{port}"),
            ));
        }
        return Err(bad("the port is not a number from 0 to 65535", default));
    }
    Err(bad("not ip:port", default))
}

/// A humantime duration greater than zero: `500ms`, `30s`, `1h`, `30d`.
pub(crate) fn parse_duration(value: &str) -> Result<Duration, ErrorKind> {
    let d = parse_duration_or_zero(value)?;
    if d.is_zero() {
        return Err(ErrorKind::BadDuration {
            value: value.to_owned(),
            reason: "it must be longer than zero".into(),
        });
    }
    Ok(d)
}

/// A humantime duration, zero included (`"0s"`).
pub(crate) fn parse_duration_or_zero(value: &str) -> Result<Duration, ErrorKind> {
    humantime::parse_duration(value.trim()).map_err(|e| ErrorKind::BadDuration {
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

/// A size greater than zero: `"16KiB"`, `"10MiB"`, `"10 MB"` or an integer of bytes.
pub(crate) fn parse_size(value: &toml::Value) -> Result<u64, ErrorKind> {
    let (shown, parsed) = match value {
        toml::Value::Integer(n) => (
            n.to_string(),
            u64::try_from(*n).map_err(|_| "it is negative".to_owned()),
        ),
        toml::Value::String(s) => (
            s.clone(),
            if s.trim_start().starts_with('-') {
                Err("it is negative".to_owned())
            } else {
                s.trim().parse::<bytesize::ByteSize>().map(|b| b.as_u64())
            },
        ),
        other => (
            other.to_string(),
            Err(format!(
                "a {} is neither a string nor an integer",
                other.type_str()
            )),
        ),
    };
    match parsed {
        Ok(0) => Err(ErrorKind::BadSize {
            value: shown,
            reason: "it must be greater than zero".into(),
        }),
        Ok(n) => Ok(n),
        Err(reason) => Err(ErrorKind::BadSize {
            value: shown,
            reason,
        }),
    }
}

/// One of a fixed set of spellings.
pub(crate) fn parse_enum<T>(
    value: &str,
    names: &'static [&'static str],
    from_name: fn(&str) -> Option<T>,
) -> Result<T, ErrorKind> {
    from_name(value).ok_or_else(|| ErrorKind::BadEnum {
        value: value.to_owned(),
        valid: names,
    })
}

/// What a URL may look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Schemes {
    HttpOrHttps,
    HttpsOnly,
}

/// `http(s)://host[:port][/path]`: a host, an optional numeric port, no user info, query or
/// fragment.
pub(crate) fn parse_url(value: &str, schemes: Schemes) -> Result<(), ErrorKind> {
    let expected = match schemes {
        Schemes::HttpOrHttps => {
            "http://host:port or https://host:port, e.g. \"http://127.0.0.1:8080\""
        }
        Schemes::HttpsOnly => "https://host[:port][/path], e.g. \"https://api.example.com\"",
    };
    let bad = |reason: &str| ErrorKind::BadUrl {
        value: value.to_owned(),
        reason: reason.to_owned(),
        expected,
    };
    let Some((scheme, rest)) = value.split_once("://") else {
        return Err(bad("no scheme"));
    };
    match (scheme, schemes) {
        ("https", _) | ("http", Schemes::HttpOrHttps) => {}
        ("http", Schemes::HttpsOnly) => {
            return Err(bad(
                "plain http is not allowed here; traffic must be verified TLS",
            ))
        }
        _ => return Err(bad("unsupported scheme")),
    }
    let authority = rest.split('/').next().unwrap_or("");
    if rest.contains(['?', '#']) {
        return Err(bad("query strings and fragments are not allowed"));
    }
    if authority.contains('@') {
        return Err(bad("user info is not allowed; put credentials in a secret"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((ip, after)) = v6.split_once(']') else {
            return Err(bad("unclosed [ in IPv6 host"));
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address in [ ]"));
        }
        (ip, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if !authority.starts_with('[') && !is_host_name(host) && host.parse::<IpAddr>().is_err() {
        return Err(bad("the host is not a valid host name or IP address"));
    }
    if let Some(port) = port {
        if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
            return Err(bad("the port is not a number from 1 to 65535"));
        }
    }
    Ok(())
}

/// An IP network (`10.0.0.0/8`) or a single address (`192.0.2.7`, taken as /32 or /128).
pub(crate) fn parse_cidr(value: &str) -> Result<ipnet::IpNet, ErrorKind> {
    let v = value.trim();
    if let Ok(net) = v.parse::<ipnet::IpNet>() {
        return Ok(net);
    }
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Ok(ip.into());
    }
    Err(ErrorKind::BadValue {
        value: value.to_owned(),
        reason: "is not an IP network".into(),
        expected: "CIDR notation like \"10.0.0.0/8\" or \"2001:db8::/32\", or a single IP".into(),
    })
}

/// A `listen.server_names` entry: an exact DNS name, `*.` and a DNS name, or an IP
/// address (IPv6 with or without brackets). Returned lowercase; an IP in its canonical
/// form, IPv6 without brackets.
pub(crate) fn parse_server_name(value: &str) -> Result<String, ErrorKind> {
    let bad = |reason: &str| {
        ErrorKind::BadValue {
        value: value.to_owned(),
        reason: reason.to_owned(),
        expected: "a host name such as \"bot.example.com\" or \"*.example.org\", or an IP address (no scheme, port or path)".into(),
    }
    };
    let name = value.to_ascii_lowercase();
    let unbracketed = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(&name);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    if name.contains("://") {
        return Err(bad("has a scheme"));
    }
    if name.contains(['/', '?', '#']) {
        return Err(bad("has a path"));
    }
    if let Some((_, port)) = name.rsplit_once(':') {
        if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("has a port"));
        }
    }
    if name == "*" {
        return Err(bad(
            "matches everything; leave server_names empty to serve any host",
        ));
    }
    let (wildcard, host) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name.as_str()),
    };
    if host.contains('*') {
        return Err(bad("has a wildcard other than a leading \"*.\""));
    }
    if wildcard && host.parse::<IpAddr>().is_ok() {
        return Err(bad("puts a wildcard before an IP address"));
    }
    if !is_host_name(host) {
        return Err(bad("is not a DNS name"));
    }
    Ok(name)
}

/// A `route.allowed_origins` entry: a web origin `https://host[:port]` or
/// `http://host[:port]`. Returned lowercase and without a default port (`:443` for https,
/// `:80` for http), as browsers send it.
pub(crate) fn parse_origin(value: &str) -> Result<String, ErrorKind> {
    let bad = |reason: &str| {
        ErrorKind::BadValue {
        value: value.to_owned(),
        reason: reason.to_owned(),
        expected: "a web origin such as \"https://bot.example.com\" or \"http://127.0.0.1:8080\": scheme, host and optional port, without path, query, user info or trailing slash".into(),
    }
    };
    let origin = value.to_ascii_lowercase();
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(bad("has no scheme"));
    };
    let default_port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return Err(bad("is not an https:// or http:// origin")),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(end);
    match after {
        "" => {}
        "/" => return Err(bad("ends with a slash, which browsers do not send")),
        _ if after.starts_with('?') => return Err(bad("has a query")),
        _ if after.starts_with('#') => return Err(bad("has a fragment")),
        _ => return Err(bad("has a path")),
    }
    if authority.contains('@') {
        return Err(bad("has user info"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((ip, after)) = v6.split_once(']') else {
            return Err(bad("has an unclosed [ in its IPv6 host"));
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("has no IPv6 address in [ ]"));
        }
        match after {
            "" => (&authority[..ip.len() + 2], None),
            _ => match after.strip_prefix(':') {
                Some(p) => (&authority[..ip.len() + 2], Some(p)),
                None => return Err(bad("has text after its IPv6 host")),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    if !host.starts_with('[') && !is_host_name(host) && host.parse::<IpAddr>().is_err() {
        return Err(bad("has a host that is not a DNS name or IP address"));
    }
    match port {
        None => Ok(format!("{scheme}://{host}")),
        Some(p) if p == default_port => Ok(format!("{scheme}://{host}")),
        Some(p) if matches!(p.parse::<u16>(), Ok(n) if n > 0) && !p.starts_with('0') => {
            Ok(format!("{scheme}://{host}:{p}"))
        }
        Some(_) => Err(bad("has a port that is not a number from 1 to 65535")),
    }
}

/// A DNS name: labels of letters, digits and `-`, separated by dots.
pub(crate) fn is_host_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// An HTTP header name (RFC 9110 token).
pub(crate) fn is_header_name(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// Text that may go into an HTTP header value (no control characters).
pub(crate) fn is_header_value(value: &str) -> bool {
    !value.chars().any(|c| c.is_control() && c != '\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggestion(value: &str) -> String {
        match parse_addr(value, 443).unwrap_err() {
            ErrorKind::BadAddress { suggestion, .. } => suggestion,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn addresses_and_suggestions() {
        assert_eq!(parse_addr("0.0.0.0:443", 443).unwrap().port(), 443);
        assert!(parse_addr("[::1]:9464", 443).unwrap().ip().is_loopback());
        assert_eq!(suggestion(":443"), "0.0.0.0:443");
        assert_eq!(suggestion("8443"), "0.0.0.0:8443");
        assert_eq!(suggestion("localhost:8080"), "127.0.0.1:8080");
        assert_eq!(suggestion("10.0.0.1"), "10.0.0.1:443");
        assert_eq!(suggestion("::1"), "[::1]:443");
        assert_eq!(suggestion("1.2.3.4:99999"), "0.0.0.0:443");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert!(matches!(
            parse_duration("30"),
            Err(ErrorKind::BadDuration { .. })
        ));
        assert!(parse_duration("0s")
            .unwrap_err()
            .to_string()
            .contains("longer than zero"));
    }

    #[test]
    fn sizes() {
        let s = |v: &str| parse_size(&toml::Value::String(v.into()));
        assert_eq!(s("16KiB").unwrap(), 16 * 1024);
        assert_eq!(s("10MiB").unwrap(), 10 * 1024 * 1024);
        assert_eq!(s("10 MB").unwrap(), 10_000_000);
        assert_eq!(parse_size(&toml::Value::Integer(4096)).unwrap(), 4096);
        assert!(parse_size(&toml::Value::Integer(-1))
            .unwrap_err()
            .to_string()
            .contains("negative"));
        assert!(s("-5KiB").is_err());
        assert!(s("ten").unwrap_err().to_string().contains("\"16KiB\""));
        assert!(parse_size(&toml::Value::Boolean(true)).is_err());
        assert!(parse_size(&toml::Value::Integer(0)).is_err());
    }

    #[test]
    fn urls() {
        let any = Schemes::HttpOrHttps;
        assert!(parse_url("http://127.0.0.1:8080", any).is_ok());
        assert!(parse_url("http://bot.internal/prefix", any).is_ok());
        assert!(parse_url("https://[::1]:8443", any).is_ok());
        assert!(parse_url("127.0.0.1:8080", any).is_err());
        assert!(parse_url("ftp://x", any).is_err());
        assert!(parse_url("http://:80", any).is_err());
        assert!(parse_url("http://host:0", any).is_err());
        assert!(parse_url("http://u:p@host", any).is_err());
        assert!(parse_url("http://host/?q", any).is_err());
        assert!(parse_url("http://api.example.com", Schemes::HttpsOnly)
            .unwrap_err()
            .to_string()
            .contains("plain http is not allowed"));
    }

    #[test]
    fn durations_or_zero() {
        assert_eq!(parse_duration_or_zero("0s").unwrap(), Duration::ZERO);
        assert!(parse_duration_or_zero("soon").is_err());
    }

    #[test]
    fn server_names() {
        let ok = |v: &str| parse_server_name(v).unwrap();
        let reason = |v: &str| match parse_server_name(v).unwrap_err() {
            ErrorKind::BadValue { reason, .. } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(ok("Bot.Example.COM"), "bot.example.com");
        assert_eq!(ok("*.Example.org"), "*.example.org");
        assert_eq!(ok("192.0.2.7"), "192.0.2.7");
        assert_eq!(ok("[2001:DB8::1]"), "2001:db8::1");
        assert_eq!(ok("::1"), "::1");
        assert_eq!(reason("https://bot.example.com"), "has a scheme");
        assert_eq!(reason("bot.example.com:443"), "has a port");
        assert_eq!(reason("192.0.2.7:443"), "has a port");
        assert_eq!(reason("bot.example.com/x"), "has a path");
        assert!(reason("*").contains("leave server_names empty"));
        assert!(reason("a.*.example.org").contains("wildcard"));
        assert!(reason("*.192.0.2.7").contains("IP address"));
        assert_eq!(reason("bot..example.com"), "is not a DNS name");
        assert_eq!(reason("bot.example.com."), "is not a DNS name");
        assert_eq!(reason(""), "is not a DNS name");
        assert_eq!(reason("*."), "is not a DNS name");
    }

    #[test]
    fn origins() {
        let ok = |v: &str| parse_origin(v).unwrap();
        let reason = |v: &str| match parse_origin(v).unwrap_err() {
            ErrorKind::BadValue { reason, .. } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(ok("https://Bot.Example.com"), "https://bot.example.com");
        assert_eq!(ok("HTTPS://bot.example.com:443"), "https://bot.example.com");
        assert_eq!(ok("http://127.0.0.1:80"), "http://127.0.0.1");
        assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(
            ok("https://bot.example.com:80"),
            "https://bot.example.com:80"
        );
        assert_eq!(ok("https://[::1]:8443"), "https://[::1]:8443");
        assert_eq!(ok("https://[::1]"), "https://[::1]");
        assert_eq!(reason("bot.example.com"), "has no scheme");
        assert!(reason("wss://bot.example.com").contains("https:// or http://"));
        assert!(reason("https://bot.example.com/").contains("slash"));
        assert_eq!(reason("https://bot.example.com/app"), "has a path");
        assert_eq!(reason("https://bot.example.com?x"), "has a query");
        assert_eq!(reason("https://bot.example.com#x"), "has a fragment");
        assert_eq!(reason("https://u:p@bot.example.com"), "has user info");
        assert_eq!(reason("https://"), "has no host");
        assert!(reason("https://bot.example.com:0").contains("port"));
        assert!(reason("https://bot.example.com:08443").contains("port"));
        assert!(reason("https://bot.example.com:x").contains("port"));
        assert!(reason("https://bot_example.com").contains("not a DNS name"));
        assert!(reason("https://[::1").contains("unclosed"));
        assert!(reason("https://[::1]x").contains("after"));
        assert!(reason("null").contains("no scheme"));
    }

    #[test]
    fn cidrs_hosts_headers() {
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().prefix_len(), 8);
        assert_eq!(parse_cidr("192.0.2.7").unwrap().prefix_len(), 32);
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(is_host_name("api.dingtalk.com") && !is_host_name("a..b") && !is_host_name("-a.b"));
        assert!(is_header_name("X-Api-Key") && !is_header_name("Bad Header"));
        assert!(is_header_value("Bearer x") && !is_header_value("a\r\nb"));
    }
}
