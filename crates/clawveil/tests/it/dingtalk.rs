//! DingTalk robot callbacks (`verify = "dingtalk-robot"`) through the real binary:
//! signatures computed here (HMAC-SHA256, checked against a vector computed with
//! Python), secrets from the environment and from a 0600 file, rotation by SIGHUP,
//! replays, and `allow_cidrs` with `X-Forwarded-For` from `trusted_proxies`. Every
//! refusal: its status, nothing at the upstream, the one counter that moved, and a
//! normal request served right after.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::common::{eventually, sha256_hex, stdout, Harness, Opts};
use crate::setup::{all_refusals, assert_one_refusal, refused, start, still_serving, top_level};

const CURRENT: &str = "envSecretCurrent0001";
const OLD: &str = "fileSecretOld0002";

/// `Base64(HMAC-SHA256(secret, timestamp + "\n" + secret))`, as DingTalk signs.
pub fn robot_sign(secret: &str, ts: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    STANDARD.encode(hmac::sign(&key, format!("{ts}\n{secret}").as_bytes()).as_ref())
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A millisecond timestamp near now that no other request of this test binary uses (a
/// signed pair is remembered with its body, so two bodies need two timestamps).
pub fn fresh_ts() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let mut last = LAST.load(Ordering::SeqCst);
    loop {
        let t = now_ms().max(last + 1);
        match LAST.compare_exchange(last, t, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return t,
            Err(seen) => last = seen,
        }
    }
}

/// Request headers as (name, value).
pub type Headers = Vec<(&'static str, String)>;

/// The `timestamp` and `sign` headers for `ts`, signed with `secret`.
pub fn signed(secret: &str, ts: u64) -> Headers {
    let ts = ts.to_string();
    vec![("sign", robot_sign(secret, &ts)), ("timestamp", ts)]
}

/// POSTs `body` (JSON) with `headers` through curl: (status, response body).
pub fn post(h: &Harness, path: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    let mut args: Vec<String> = [
        "-w",
        "\n%{http_code}",
        "-H",
        "Content-Type: application/json",
    ]
    .map(String::from)
    .to_vec();
    for (k, v) in headers {
        args.push("-H".into());
        args.push(format!("{k}: {v}"));
    }
    args.extend(["--data-binary".into(), body.into(), h.url(path)]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = stdout(&h.curl(&refs));
    let (text, code) = out.rsplit_once('\n').expect("curl printed the status");
    (code.parse().unwrap(), text.to_owned())
}

/// A proxy with robot routes `/dingtalk/` (the env secret, then the file secret) and
/// `/status/` (env secret only; the upstream answers the status in the path), both with
/// `max_skew`. Returns the harness and the secret file.
fn robot_proxy(max_skew: &str) -> (Harness, std::path::PathBuf) {
    let mut file = None;
    let h = start(
        &Opts::default(),
        None,
        &[("DT_SECRET", CURRENT)],
        |dir: &Path, text| {
            let path = dir.join("old_secret");
            std::fs::write(&path, format!("{OLD}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let routes = format!(
                "[[route]]\nname = \"dingtalk\"\npath_prefix = \"/dingtalk/\"\n\
                 verify = \"dingtalk-robot\"\nmax_skew = \"{max_skew}\"\n\
                 app_secrets = [\"${{env:DT_SECRET}}\", \"${{file:{}}}\"]\n\
                 [[route]]\nname = \"retry\"\npath_prefix = \"/status/\"\n\
                 verify = \"dingtalk-robot\"\nmax_skew = \"{max_skew}\"\n\
                 app_secrets = [\"${{env:DT_SECRET}}\"]\n",
                path.display()
            );
            file = Some(path);
            format!("{text}{routes}")
        },
    );
    (h, file.unwrap())
}

#[test]
fn the_test_signer_matches_a_vector_computed_with_python() {
    // python3 -c "import hmac,hashlib,base64; ts='1700000000000'; s='canarySecretNow01';
    //   print(base64.b64encode(hmac.new(s.encode(), (ts+'\n'+s).encode(),
    //   hashlib.sha256).digest()).decode())"
    assert_eq!(
        robot_sign("canarySecretNow01", "1700000000000"),
        "pzoqtttnUsYaZqblbrqtJEdOhhV5Ck7wsSsrnmYnAqk="
    );
}

#[test]
fn signed_callbacks_are_forwarded_intact_and_bad_ones_refused_with_401() {
    let (h, _) = robot_proxy("1h");

    // Current secret (from the environment): forwarded, body byte for byte.
    let body = r#"{"msgId":"fwd-1","text":{"content":"héllo"},"conversationId":"c1"}"#;
    let (code, text) = post(&h, "/dingtalk/sha", &signed(CURRENT, fresh_ts()), body);
    assert_eq!(
        (code, text.as_str()),
        (200, sha256_hex(body.as_bytes()).as_str())
    );
    let rec = h.upstream.requests_to("/dingtalk/sha");
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].body_len, body.len());

    // The rotated (second, file) secret is accepted too.
    let body = r#"{"msgId":"fwd-2","text":{"content":"rotated"}}"#;
    let (code, text) = post(&h, "/dingtalk/sha", &signed(OLD, fresh_ts()), body);
    assert_eq!(
        (code, text.as_str()),
        (200, sha256_hex(body.as_bytes()).as_str())
    );
    assert_eq!(h.upstream.requests_to("/dingtalk/").len(), 2);

    let ts = fresh_ts();
    let two_hours_ago = fresh_ts() - 2 * 3600 * 1000;
    let cases: Vec<(&str, Headers, &str, &str)> = vec![
        (
            "wrong secret",
            signed("notTheSecret", ts),
            "signature_invalid",
            "invalid signature\n",
        ),
        (
            "no headers",
            vec![],
            "signature_invalid",
            "invalid signature\n",
        ),
        (
            "timestamp only",
            vec![("timestamp", ts.to_string())],
            "signature_invalid",
            "invalid signature\n",
        ),
        (
            "2 h old, validly signed",
            signed(CURRENT, two_hours_ago),
            "timestamp_skew",
            "timestamp outside the accepted window\n",
        ),
        (
            "garbage timestamp, signed over it",
            vec![
                ("timestamp", "17e11".into()),
                ("sign", robot_sign(CURRENT, "17e11")),
            ],
            "signature_invalid",
            "invalid signature\n",
        ),
    ];
    for (n, (what, headers, reason, answer)) in cases.into_iter().enumerate() {
        let before = all_refusals(&h);
        let body = format!(r#"{{"msgId":"bad-{n}"}}"#);
        let (code, text) = post(&h, "/dingtalk/x", &headers, &body);
        assert_eq!((code, text.as_str()), (401, answer), "{what}");
        assert_eq!(
            h.upstream.requests_to("/dingtalk/").len(),
            2,
            "{what}: forwarded"
        );
        assert_one_refusal(&before, &all_refusals(&h), reason);
        still_serving(&h);
    }
    // Still accepting good callbacks after all that.
    let (code, _) = post(&h, "/dingtalk/x", &signed(CURRENT, fresh_ts()), "{}");
    assert_eq!(code, 200);
    assert_eq!(h.upstream.requests_to("/dingtalk/").len(), 3);
}

#[test]
fn a_delivered_callback_is_acknowledged_once_more_but_not_forwarded_again() {
    let (h, _) = robot_proxy("1h");
    let body = r#"{"msgId":"m1","text":{"content":"once"}}"#;
    let headers = signed(CURRENT, fresh_ts());
    assert_eq!(
        post(&h, "/dingtalk/msg", &headers, body),
        (200, "ok".into())
    );
    assert_eq!(h.upstream.requests_to("/dingtalk/").len(), 1);

    // The same request again (DingTalk retrying, or someone replaying it).
    let before = all_refusals(&h);
    assert_eq!(
        post(&h, "/dingtalk/msg", &headers, body),
        (200, "already delivered\n".into())
    );
    assert_eq!(
        h.upstream.requests_to("/dingtalk/").len(),
        1,
        "forwarded once"
    );
    assert_one_refusal(&before, &all_refusals(&h), "replay");
    still_serving(&h);

    // The same msgId under a fresh signature: still the same delivery.
    let before = all_refusals(&h);
    let (code, _) = post(&h, "/dingtalk/msg", &signed(CURRENT, fresh_ts()), body);
    assert_eq!(code, 200);
    assert_eq!(h.upstream.requests_to("/dingtalk/").len(), 1);
    assert_one_refusal(&before, &all_refusals(&h), "replay");

    // The captured (timestamp, sign) pair carrying another body: refused.
    let before = all_refusals(&h);
    let forged = r#"{"msgId":"m2","text":{"content":"substituted"}}"#;
    assert_eq!(
        post(&h, "/dingtalk/msg", &headers, forged),
        (401, "signature already used for another body\n".into())
    );
    assert_eq!(h.upstream.requests_to("/dingtalk/").len(), 1);
    assert_one_refusal(&before, &all_refusals(&h), "signature_invalid");
    still_serving(&h);
}

#[test]
fn a_delivery_the_bot_failed_with_5xx_may_be_retried() {
    let (h, _) = robot_proxy("1h");
    let body = r#"{"msgId":"r1","text":{"content":"retry me"}}"#;
    let headers = signed(CURRENT, fresh_ts());
    let before = all_refusals(&h);
    for attempt in 1..=2 {
        let (code, _) = post(&h, "/status/500", &headers, body);
        assert_eq!(code, 500, "attempt {attempt}: the bot's answer");
        assert_eq!(h.upstream.requests_to("/status/500").len(), attempt);
    }
    // The third attempt succeeds (the signature does not cover the path).
    let (code, _) = post(&h, "/status/200", &headers, body);
    assert_eq!(code, 200);
    assert_eq!(h.upstream.requests_to("/status/").len(), 3);
    assert_eq!(all_refusals(&h), before, "no retry was refused");
    // Now it is delivered.
    assert_eq!(
        post(&h, "/status/200", &headers, body),
        (200, "already delivered\n".into())
    );
    assert_eq!(h.upstream.requests_to("/status/").len(), 3);
    assert_one_refusal(&before, &all_refusals(&h), "replay");
    still_serving(&h);
}

#[test]
fn sighup_rotates_the_file_secret_without_a_restart() {
    const NEW: &str = "fileSecretNew0003";
    let (mut h, file) = robot_proxy("1h");
    let pid = h.proxy.pid();
    let body = |n: &str| format!(r#"{{"msgId":"rot-{n}"}}"#);
    assert_eq!(
        post(&h, "/dingtalk/a", &signed(OLD, fresh_ts()), &body("a")).0,
        200
    );
    assert_eq!(
        post(&h, "/dingtalk/a", &signed(NEW, fresh_ts()), &body("b")).0,
        401
    );

    std::fs::write(&file, format!("{NEW}\n")).unwrap();
    h.proxy.signal("HUP");
    let mut n = 0;
    assert!(
        eventually(10, || {
            n += 1;
            post(
                &h,
                "/dingtalk/a",
                &signed(NEW, fresh_ts()),
                &body(&format!("new-{n}")),
            )
            .0 == 200
        }),
        "the new file secret was never accepted:\n{}",
        h.proxy.output()
    );
    let forwarded = h.upstream.requests_to("/dingtalk/").len();
    assert_eq!(forwarded, 2);

    let before = all_refusals(&h);
    let (code, _) = post(&h, "/dingtalk/a", &signed(OLD, fresh_ts()), &body("old"));
    assert_eq!(code, 401, "the old file value is no longer accepted");
    assert_one_refusal(&before, &all_refusals(&h), "signature_invalid");
    assert_eq!(h.upstream.requests_to("/dingtalk/").len(), forwarded);
    // A secret file that turned unreadable (too open) keeps the secrets in force.
    std::fs::write(&file, "fileSecretBroken04\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    h.proxy.signal("HUP");
    assert!(
        eventually(10, || h.proxy.output().contains("could not be re-read")),
        "{}",
        h.proxy.output()
    );
    let (code, _) = post(&h, "/dingtalk/a", &signed(NEW, fresh_ts()), &body("kept"));
    assert_eq!(code, 200, "the previous secrets stay");
    let forwarded = forwarded + 1;
    let (code, _) = post(
        &h,
        "/dingtalk/a",
        &signed("fileSecretBroken04", fresh_ts()),
        &body("broken"),
    );
    assert_eq!(code, 401);
    assert_eq!(h.upstream.requests_to("/dingtalk/").len(), forwarded);
    // The environment secret was re-read too, and is unchanged.
    let (code, _) = post(
        &h,
        "/dingtalk/a",
        &signed(CURRENT, fresh_ts()),
        &body("env"),
    );
    assert_eq!(code, 200);
    assert_eq!(h.upstream.requests_to("/dingtalk/").len(), forwarded + 1);
    assert_eq!(h.proxy.pid(), pid);
    assert!(
        h.proxy.child.try_wait().unwrap().is_none(),
        "still the same process"
    );
    still_serving(&h);
}

/// A pair signed with a DingTalk clock ahead of ours stays valid for up to 2 × max_skew
/// after we first see it, so the replay cache must remember it that long (regression:
/// it once forgot pairs after max_skew).
#[test]
fn a_pair_signed_ahead_of_our_clock_cannot_carry_another_body_later() {
    let (h, _) = robot_proxy("2s");
    // DingTalk's clock 1.8 s ahead of ours: valid now, and until 3.8 s from now.
    let headers = signed(CURRENT, fresh_ts() + 1800);
    let (code, _) = post(&h, "/dingtalk/msg", &headers, r#"{"msgId":"ahead-1"}"#);
    assert_eq!(code, 200);
    std::thread::sleep(Duration::from_millis(2600));
    // Still inside the skew window (0.8 s off), so the signature is valid.
    let before = refused(&h, "signature_invalid");
    let (code, _) = post(&h, "/dingtalk/msg", &headers, r#"{"msgId":"ahead-2"}"#);
    assert_eq!(
        h.upstream.requests_to("/dingtalk/").len(),
        1,
        "substituted body forwarded"
    );
    assert_eq!(code, 401);
    assert_eq!(refused(&h, "signature_invalid"), before + 1.0);
}

/// The same signed request sent again while the first is still at the bot is
/// acknowledged, not forwarded (regression: `PairCheck::SameBody` used to let it through
/// before the first delivery was marked).
#[test]
fn a_replay_racing_the_original_is_not_forwarded_twice() {
    let (h, _) = robot_proxy("1h");
    let headers = signed(CURRENT, fresh_ts());
    let body = r#"{"msgId":"race-1","text":{"content":"transfer 100"}}"#;
    std::thread::scope(|s| {
        let first = s.spawn(|| post(&h, "/dingtalk/slow?s=1", &headers, body));
        std::thread::sleep(Duration::from_millis(300));
        let second = s.spawn(|| post(&h, "/dingtalk/slow?s=1", &headers, body));
        assert_eq!(first.join().unwrap().0, 200);
        assert_eq!(second.join().unwrap().0, 200);
    });
    assert_eq!(
        h.upstream.requests_to("/dingtalk/slow").len(),
        1,
        "forwarded twice"
    );
}

/// `allow_cidrs` on a route, with and without `trusted_proxies`.
fn cidr_proxy(trusted: bool) -> Harness {
    start(&Opts::default(), None, &[], |_, text| {
        let text = if trusted {
            top_level(text, "trusted_proxies = [\"127.0.0.1/32\"]")
        } else {
            text
        };
        format!(
            "{text}[[route]]\nname = \"internal\"\npath_prefix = \"/internal/\"\n\
             allow_cidrs = [\"10.9.9.0/24\"]\n"
        )
    })
}

fn get_from(h: &Harness, xff: Option<&str>) -> u16 {
    let header = xff.map(|x| format!("X-Forwarded-For: {x}"));
    let mut args = vec![];
    if let Some(hd) = &header {
        args.extend(["-H", hd.as_str()]);
    }
    let url = h.url("/internal/x");
    args.push(&url);
    h.status(&args)
}

#[test]
fn allow_cidrs_believes_x_forwarded_for_only_from_trusted_proxies() {
    let h = cidr_proxy(false);
    for xff in [None, Some("10.9.9.7")] {
        let before = all_refusals(&h);
        assert_eq!(get_from(&h, xff), 403, "{xff:?} from an untrusted peer");
        assert!(h.upstream.requests_to("/internal/").is_empty());
        assert_one_refusal(&before, &all_refusals(&h), "client_not_allowed");
        still_serving(&h);
    }

    let h = cidr_proxy(true);
    assert_eq!(get_from(&h, Some("10.9.9.7")), 200);
    let rec = h.upstream.requests_to("/internal/");
    assert_eq!(rec.len(), 1);
    for xff in [
        None,
        Some("10.9.8.7"),
        Some("10.9.9.7, 192.0.2.1"),
        Some("junk"),
    ] {
        let before = all_refusals(&h);
        assert_eq!(get_from(&h, xff), 403, "{xff:?}");
        assert_eq!(h.upstream.requests_to("/internal/").len(), 1, "{xff:?}");
        assert_one_refusal(&before, &all_refusals(&h), "client_not_allowed");
        still_serving(&h);
    }
}
