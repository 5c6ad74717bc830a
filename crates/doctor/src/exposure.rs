//! Exposure: who can reach the bot without going through clawveil.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use clawveil_config::Config;

use crate::check::{Check, Section, Status};
use crate::openclaw::OpenClawConfig;

const BIND_FIX: &str =
    "set gateway.bind = \"loopback\" in openclaw.json and reach the gateway through clawveil";

/// `gateway.bind` and `gateway.auth.mode` of one configuration.
pub fn check_gateway(cfg: &OpenClawConfig) -> Vec<Check> {
    let file = cfg.path.display();
    let c = |id, status, msg: String| {
        Check::new(Section::Exposure, id, status, format!("{file}: {msg}")).path(&cfg.path)
    };
    let bind = cfg.gateway_bind();
    // `custom` binds the host in customBindHost; an address written in `bind` itself
    // (older or hand-written configurations) is read the same way
    let host = match bind {
        Some("custom") => cfg.gateway_custom_host(),
        Some(b) if b.parse::<IpAddr>().is_ok() => Some(b),
        _ => None,
    };
    let open = |what: String| c("gateway.bind", Status::Fail, what).fix(BIND_FIX);
    let bind_check = match (bind, host) {
        (None, _) => c(
            "gateway.bind",
            Status::Pass,
            "gateway.bind is not set: loopback (OpenClaw's default)".into(),
        ),
        (Some("loopback"), _) => c("gateway.bind", Status::Pass, "gateway.bind = \"loopback\"".into()),
        (Some("lan"), _) => open(
            "gateway.bind = \"lan\": the gateway listens on every address (0.0.0.0) and can be reached without clawveil".into(),
        ),
        (Some("tailnet"), _) => c(
            "gateway.bind",
            Status::Warn,
            "gateway.bind = \"tailnet\": every machine on the tailnet reaches the gateway without clawveil".into(),
        )
        .fix(BIND_FIX),
        (Some("auto"), _) => c(
            "gateway.bind",
            Status::Warn,
            "gateway.bind = \"auto\": falls back to every address when loopback is not available".into(),
        )
        .fix(BIND_FIX),
        (Some(b), Some(h)) => match h.parse::<IpAddr>() {
            Ok(ip) if clawveil_sockets::is_loopback(ip) => {
                c("gateway.bind", Status::Pass, format!("gateway.bind = \"{b}\" on {ip} (loopback)"))
            }
            Ok(ip) => open(format!(
                "gateway.bind = \"{b}\" on {ip}: the gateway can be reached from other hosts without clawveil"
            )),
            Err(_) => open(format!(
                "gateway.bind = \"{b}\" on a host name: the gateway may be reachable without clawveil"
            )),
        },
        (Some("custom"), None) => open(
            "gateway.bind = \"custom\" without gateway.customBindHost".into(),
        ),
        (Some(b), None) => c(
            "gateway.bind",
            Status::Warn,
            format!("gateway.bind = \"{b}\" is not a bind mode the doctor knows"),
        )
        .fix(BIND_FIX),
    };
    let exposed = bind_check.status == Status::Fail;
    let token_fix =
        "set gateway.auth.mode = \"token\" and gateway.auth.token = \"${OPENCLAW_GATEWAY_TOKEN}\"";
    let auth_check = match cfg.gateway_auth_mode() {
        None => c(
            "gateway.auth",
            Status::Pass,
            "gateway.auth.mode is not set: token (OpenClaw's default)".into(),
        ),
        Some("none") => c(
            "gateway.auth",
            if exposed { Status::Fail } else { Status::Warn },
            "gateway.auth.mode = \"none\": whoever reaches the gateway controls the bot".into(),
        )
        .fix(token_fix),
        Some("token") if !cfg.gateway_auth_has("token") => c(
            "gateway.auth",
            Status::Pass,
            "gateway.auth.mode = \"token\" (the token comes from OPENCLAW_GATEWAY_TOKEN)".into(),
        ),
        Some(m @ ("token" | "password" | "trusted-proxy")) => c(
            "gateway.auth",
            Status::Pass,
            format!("gateway.auth.mode = \"{m}\""),
        ),
        Some(m) => c(
            "gateway.auth",
            Status::Warn,
            format!("gateway.auth.mode = \"{m}\" is not a mode the doctor knows"),
        )
        .fix(token_fix),
    };
    vec![bind_check, auth_check]
}

/// A port to look for among the listening sockets, and whose it is.
#[derive(Debug, Clone)]
pub struct Watched {
    pub port: u16,
    pub what: String,
    pub fix: String,
}

/// Sockets listening on a watched port on a non-loopback address.
pub fn check_listeners(proc_net: &Path, watched: &[Watched]) -> Vec<Check> {
    let c = |status, msg: String| Check::new(Section::Exposure, "listen", status, msg);
    let Ok(listening) = clawveil_sockets::read_listening_from(proc_net) else {
        return vec![c(
            Status::Skipped,
            format!(
                "listening sockets: {} cannot be read (not Linux?)",
                proc_net.join("tcp").display()
            ),
        )];
    };
    let mut out = Vec::new();
    for w in watched {
        let on_port: Vec<SocketAddr> = listening
            .iter()
            .map(|l| l.addr)
            .filter(|a| a.port() == w.port)
            .collect();
        let exposed: Vec<String> = on_port
            .iter()
            .filter(|a| !clawveil_sockets::is_loopback(a.ip()))
            .map(|a| a.to_string())
            .collect();
        out.push(if !exposed.is_empty() {
            c(
                Status::Fail,
                format!(
                    "port {} ({}) listens on {}: reachable without clawveil",
                    w.port,
                    w.what,
                    exposed.join(", ")
                ),
            )
            .fix(&w.fix)
        } else if on_port.is_empty() {
            c(
                Status::Skipped,
                format!(
                    "nothing listens on port {} ({}): not running?",
                    w.port, w.what
                ),
            )
        } else {
            c(
                Status::Pass,
                format!("port {} ({}) listens on loopback only", w.port, w.what),
            )
        });
    }
    out
}

/// clawveil's metrics listener: off loopback it needs a token.
pub fn check_metrics(cfg: &Config) -> Check {
    let c = |status, msg: String| Check::new(Section::Exposure, "metrics", status, msg);
    match cfg.listen.metrics {
        None => c(Status::Pass, "clawveil's metrics listener is off".into()),
        Some(a) if clawveil_sockets::is_loopback(a.ip()) => {
            c(Status::Pass, format!("clawveil's metrics listener is on loopback ({a})"))
        }
        Some(a) if !cfg.metrics.tokens.is_empty() => c(
            Status::Pass,
            format!("clawveil's metrics listener is on {a} and requires a token"),
        ),
        Some(a) => c(
            Status::Fail,
            format!("clawveil's metrics listener is on {a} without a token"),
        )
        .fix("set listen.metrics = \"127.0.0.1:9464\", or metrics.token = \"${file:/run/secrets/metrics_token}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(s: &str) -> OpenClawConfig {
        OpenClawConfig {
            path: "oc.json".into(),
            root: json5::from_str(s).unwrap(),
        }
    }

    fn statuses(s: &str) -> Vec<Status> {
        check_gateway(&cfg(s)).iter().map(|c| c.status).collect()
    }

    #[test]
    fn bind_modes() {
        use Status::*;
        assert_eq!(statuses("{}"), [Pass, Pass]);
        assert_eq!(
            statuses("{gateway:{bind:'lan', auth:{mode:'none'}}}"),
            [Fail, Fail]
        );
        assert_eq!(
            statuses("{gateway:{bind:'loopback', auth:{mode:'none'}}}"),
            [Pass, Warn]
        );
        assert_eq!(statuses("{gateway:{bind:'tailnet'}}"), [Warn, Pass]);
        assert_eq!(statuses("{gateway:{bind:'0.0.0.0'}}"), [Fail, Pass]);
        assert_eq!(
            statuses("{gateway:{bind:'custom', customBindHost:'127.0.0.1'}}"),
            [Pass, Pass]
        );
        assert_eq!(
            statuses("{gateway:{bind:'custom', customBindHost:'192.168.1.2'}}"),
            [Fail, Pass]
        );
        assert_eq!(
            statuses("{gateway:{bind:'sideways', auth:{mode:'magic'}}}"),
            [Warn, Warn]
        );
    }
}
