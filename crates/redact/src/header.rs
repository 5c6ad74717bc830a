//! Header values.

use std::borrow::Cow;

use crate::rules::names::{Class, Norm};
use crate::rules::{API_KEY, BEARER};
use crate::{Engine, Report};

pub(crate) fn redact<'a>(
    eng: &Engine,
    name: &str,
    value: &'a str,
    report: &mut Report,
) -> Cow<'a, str> {
    let norm = Norm::new(name.as_bytes());
    let n = norm.as_ref().map_or(&b""[..], Norm::as_bytes);
    let (rule, keep_scheme) = match n {
        b"authorization" | b"proxyauthorization" => (BEARER, true),
        b"cookie" | b"setcookie" => (BEARER, false),
        _ if Class::of(n).credential() || n.ends_with(b"sign") => (API_KEY, false),
        // unknown or overlong names: patterns only
        _ => return eng.redact_text(value, report),
    };
    if value.trim().is_empty() {
        return Cow::Borrowed(value);
    }
    let mut start = 0;
    if keep_scheme {
        let v = value.trim_start();
        if let Some(sp) = v.find([' ', '\t']) {
            let scheme = &v[..sp];
            let rest = v[sp..].trim_start();
            if !scheme.is_empty()
                && !rest.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                start = value.len() - rest.len();
            }
        }
    }
    let mut out = String::with_capacity(start + 24);
    out.push_str(&value[..start]);
    eng.write_token(&mut out, rule, &value[start..], false);
    report.record(rule, eng.rule_name(rule), start, value.len() - start);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineConfig;

    fn red(name: &str, value: &str) -> String {
        let eng = Engine::new(&EngineConfig::default()).unwrap();
        redact(&eng, name, value, &mut Report::new()).into_owned()
    }

    #[test]
    fn credential_headers_are_masked_whole() {
        assert_eq!(
            red("Authorization", "Bearer abc.def"),
            "Bearer [REDACTED:bearer]"
        );
        assert_eq!(
            red("authorization", "Basic dXNlcjpwYXNz"),
            "Basic [REDACTED:bearer]"
        );
        assert_eq!(red("Authorization", "opaque-token"), "[REDACTED:bearer]");
        assert_eq!(
            red("Proxy-Authorization", "Digest a=b, c=d"),
            "Digest [REDACTED:bearer]"
        );
        assert_eq!(red("Cookie", "sid=1; theme=dark"), "[REDACTED:bearer]");
        assert_eq!(red("Set-Cookie", "sid=1; HttpOnly"), "[REDACTED:bearer]");
        assert_eq!(red("X-Api-Key", "k"), "[REDACTED:api-key]");
        assert_eq!(
            red("x-acs-dingtalk-access-token", "abc"),
            "[REDACTED:api-key]"
        );
        assert_eq!(red("sign", "abc="), "[REDACTED:api-key]");
        assert_eq!(red("Authorization", ""), "");
    }

    #[test]
    fn other_headers_go_through_patterns() {
        assert_eq!(
            red("Referer", "https://x.cn/cb?access_token=abc123&y=1"),
            "https://x.cn/cb?access_token=[REDACTED:url-secret]&y=1"
        );
        assert_eq!(red("User-Agent", "curl/8.5.0"), "curl/8.5.0");
        assert_eq!(red("X-Forwarded-For", "203.0.113.7"), "203.0.113.7");
        assert_eq!(red("timestamp", "1700000000000"), "1700000000000");
    }

    #[test]
    fn always_masked_even_with_rules_off() {
        let eng = Engine::new(&EngineConfig {
            builtin: vec![],
            ..EngineConfig::default()
        })
        .unwrap();
        let mut r = Report::new();
        assert_eq!(
            redact(&eng, "Authorization", "Bearer x", &mut r),
            "Bearer [REDACTED:bearer]"
        );
        assert_eq!(r.count("bearer"), 1);
    }
}
