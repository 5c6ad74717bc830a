//! Samples cut to a maximum length, and bodies that are only a prefix: an
//! identifier across the boundary must not leave a recognisable piece, and no
//! mask token may be left half.

use clawveil_redact::{BodySample, Report};

use crate::engine;
use crate::support::{grouped, id_card, luhn_complete, pieces};

fn identifiers() -> Vec<String> {
    vec![
        "13812345678".into(),
        "+86 139 8765 4321".into(),
        "zhang.san@example.com".into(),
        id_card("11010519900307123"),
        grouped(&luhn_complete("622202123456789012"), " "),
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z".into(),
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r".into(),
        "$:LWCP_v1:$Aa1Bb2Cc3Dd4Ee5Ff6Gg7".into(),
    ]
}

fn text_of(s: BodySample) -> (String, bool) {
    match s {
        BodySample::Redacted {
            text, truncated, ..
        } => (text, truncated),
        other => panic!("{other:?}"),
    }
}

#[track_caller]
fn assert_no_piece(out: &str, id: &str, ctx: &str) {
    for p in pieces(id, 8) {
        assert!(!out.contains(&p), "{ctx}: `{p}` of `{id}` in {out:?}");
    }
}

/// Mask tokens are whole: every `[` opens a complete token.
#[track_caller]
fn assert_tokens_whole(out: &str) {
    for (i, _) in out.match_indices('[') {
        let rest = &out[i..];
        let close = rest
            .find(']')
            .unwrap_or_else(|| panic!("half a token at the end of {out:?}"));
        assert!(
            rest[..close].starts_with("[REDACTED:"),
            "odd token in {out:?}"
        );
    }
}

#[test]
fn identifiers_across_the_cut() {
    let eng = engine();
    for id in identifiers() {
        for ct in ["text/plain", "application/json"] {
            let lead = "x".repeat(20);
            let body = if ct == "text/plain" {
                format!("{lead} {id} tail")
            } else {
                format!(r#"{{"a":"{lead} {id} tail"}}"#)
            };
            let at = body.find(&id).unwrap();
            for max in at.saturating_sub(12)..=at + id.len() + 20 {
                let (out, _) = text_of(eng.redact_body(
                    body.as_bytes(),
                    Some(ct),
                    None,
                    max,
                    &mut Report::new(),
                ));
                assert!(out.len() <= max);
                assert_no_piece(&out, &id, &format!("{ct} max {max}"));
                assert_tokens_whole(&out);
            }
        }
    }
}

#[test]
fn identifiers_cut_off_by_a_captured_prefix() {
    let eng = engine();
    for id in identifiers() {
        for ct in [
            "text/plain",
            "application/json",
            "application/x-www-form-urlencoded",
        ] {
            let body = match ct {
                "application/json" => format!(r#"{{"note":"call {id} now","n":1}}"#),
                "application/x-www-form-urlencoded" => format!("note=call+{id}&n=1"),
                _ => format!("call {id} now"),
            };
            let at = body.find(&id).unwrap();
            for end in at + 1..at + id.len() {
                if !body.is_char_boundary(end) {
                    continue;
                }
                let prefix = &body.as_bytes()[..end];
                let (out, truncated) = text_of(eng.redact_body_prefix(
                    prefix,
                    Some(ct),
                    None,
                    4096,
                    &mut Report::new(),
                ));
                assert!(truncated);
                assert_no_piece(&out, &id, &format!("{ct} prefix {end}"));
                assert_tokens_whole(&out);
            }
        }
    }
}

#[test]
fn a_cut_inside_a_multibyte_character_is_not_invalid_utf8() {
    let eng = engine();
    let body = "电话 13812345678 中文".as_bytes();
    for end in 1..body.len() {
        let s = eng.redact_body_prefix(
            &body[..end],
            Some("text/plain"),
            None,
            1024,
            &mut Report::new(),
        );
        assert!(matches!(s, BodySample::Redacted { .. }), "{end}: {s:?}");
    }
    // but a complete body with a broken character is refused
    let s = eng.redact_body(
        &body[..4],
        Some("text/plain"),
        None,
        1024,
        &mut Report::new(),
    );
    assert_eq!(
        s,
        BodySample::Omitted(clawveil_redact::OmitReason::InvalidUtf8)
    );
}

#[test]
fn long_bodies_are_redacted_past_the_cut() {
    // masks are shorter than the JWTs they replace: the sample must still be
    // filled from further into the body, and nothing past the window leaks
    let eng = engine();
    let jwt = identifiers()[6].clone();
    let body = format!("{} 13812345678", format!("{jwt} ").repeat(2000));
    let (out, truncated) = text_of(eng.redact_body(
        body.as_bytes(),
        Some("text/plain"),
        None,
        1024,
        &mut Report::new(),
    ));
    assert!(truncated && out.len() > 1000 && out.len() <= 1024);
    assert_no_piece(&out, &jwt, "long body");
    assert_tokens_whole(&out);
}
