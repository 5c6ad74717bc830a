//! Bypass detection: whether the bot can be reached without clawveil. At start and every
//! `upstream.exposure_check`, the listening sockets on the upstream's port (and, with
//! `[egress]`, every listening socket of the process that owns that port, when its
//! `/proc/<pid>/fd` is readable) are looked for on non-loopback addresses — `0.0.0.0`,
//! `::`, or any other. clawveil's own sockets are left out.
//!
//! Found: one log line when what is found changes (naming address and port, nothing
//! else of the bot), `clawveil_upstream_exposed` = 1, and, with
//! `upstream.require_loopback`, `/readyz` answers 503 with what to rebind. Linux only;
//! elsewhere the check says "unsupported" once and does nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use clawveil_config::Config;
use clawveil_telemetry::Metrics;
use tokio::sync::watch;

/// Why `/readyz` fails because of the bot's exposure, if it does; shared by the check
/// and the metrics listener.
#[derive(Clone, Default)]
pub(crate) struct ExposureState(Arc<ArcSwapOption<String>>);

impl ExposureState {
    pub(crate) fn readiness(&self) -> Result<(), String> {
        match self.0.load_full() {
            Some(reason) => Err(reason.as_ref().clone()),
            None => Ok(()),
        }
    }
}

/// What one look found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The exposed sockets (sorted, none twice), and whether, looking for the bot's
    /// other sockets, no process owning the upstream's port could be read.
    Seen {
        exposed: Vec<SocketAddr>,
        owner_hidden: bool,
    },
    /// The socket tables could not be read.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Unknown(String),
}

/// The check's settings and what it last said.
struct Check {
    port: u16,
    whole_bot: bool,
    require: bool,
    metrics: Arc<Metrics>,
    state: ExposureState,
    last: Option<Outcome>,
}

/// Runs the first check now (so `/readyz` is right from the first request) and the
/// others every `upstream.exposure_check` on a task, until `shutdown`.
pub(crate) fn start(
    cfg: &Config,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> ExposureState {
    let state = ExposureState::default();
    let Some(every) = cfg.upstream.exposure_check else {
        return state;
    };
    if !cfg!(target_os = "linux") {
        tracing::warn!("upstream.exposure_check is unsupported on this system: whether the bot listens beyond loopback is not checked");
        return state;
    }
    let Some(port) = upstream_port(&cfg.upstream.url) else {
        return state;
    };
    let mut check = Check {
        port,
        whole_bot: cfg.egress.is_some(),
        require: cfg.upstream.require_loopback,
        metrics,
        state: state.clone(),
        last: None,
    };
    check.apply(look(port, check.whole_bot));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => return,
            }
            let (port, whole_bot) = (check.port, check.whole_bot);
            match tokio::task::spawn_blocking(move || look(port, whole_bot)).await {
                Ok(outcome) => check.apply(outcome),
                Err(e) => tracing::warn!(error = %e, "exposure check failed to run"),
            }
        }
    });
    state
}

/// The port of `upstream.url` (80 or 443 when it has none).
fn upstream_port(url: &str) -> Option<u16> {
    let uri: http::Uri = url.parse().ok()?;
    let default = if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
        443
    } else {
        80
    };
    Some(uri.port_u16().unwrap_or(default))
}

impl Check {
    /// Publishes an outcome: the gauge, readiness, and a log line when it changed.
    fn apply(&mut self, outcome: Outcome) {
        if self.last.as_ref() == Some(&outcome) {
            return;
        }
        let before: &[SocketAddr] = match &self.last {
            Some(Outcome::Seen { exposed, .. }) => exposed,
            _ => &[],
        };
        let was_exposed = !before.is_empty();
        // Said again only when the sockets change, or after the tables were unreadable.
        let news = self.last.is_none()
            || matches!(&self.last, Some(Outcome::Unknown(_)))
            || matches!(&outcome, Outcome::Seen { exposed, .. } if exposed.as_slice() != before);
        let was_hidden = matches!(
            &self.last,
            Some(Outcome::Seen {
                owner_hidden: true,
                ..
            })
        );
        let unready = match &outcome {
            Outcome::Seen {
                exposed,
                owner_hidden,
            } => {
                self.metrics.set_upstream_exposed(!exposed.is_empty());
                if *owner_hidden && !was_hidden {
                    tracing::warn!(port = self.port, "the bot's other listening sockets cannot be checked: the process listening on the upstream's port is not readable (run clawveil as the bot's user to check them); its port is still checked");
                }
                if exposed.is_empty() {
                    if was_exposed {
                        tracing::info!("the bot no longer listens beyond loopback");
                    }
                    None
                } else {
                    let reason = reason(exposed);
                    let list = join(exposed);
                    if news && self.require {
                        tracing::error!(exposed = %list, "{reason}");
                    } else if news {
                        tracing::warn!(exposed = %list, "{reason} (upstream.require_loopback = false: still ready)");
                    }
                    Some(reason)
                }
            }
            Outcome::Unknown(why) => {
                let reason = format!("cannot tell whether the bot is reachable without clawveil: {why}; let clawveil read /proc/self/net, or set upstream.require_loopback = false");
                if self.require {
                    tracing::error!("{reason}");
                } else {
                    tracing::warn!("{reason}");
                }
                Some(reason)
            }
        };
        let unready = unready.filter(|_| self.require).map(Arc::new);
        self.state.0.store(unready);
        self.last = Some(outcome);
    }
}

/// What `/readyz` and the log say: where the bot listens, and what to do.
fn reason(exposed: &[SocketAddr]) -> String {
    format!(
        "the bot listens on {}, reachable without clawveil; bind it to 127.0.0.1",
        join(exposed)
    )
}

/// `a`, `a and b`, `a, b and c`.
fn join(addrs: &[SocketAddr]) -> String {
    let all: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    match all.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// The exposed sockets among `listening`: on `port` or (with `bot`) held by the bot's
/// process, not held by clawveil (`own`), and on an address other than loopback. An
/// IPv4-mapped IPv6 address counts as its IPv4 address.
fn exposed_among(
    listening: &[(SocketAddr, u64)],
    port: u16,
    own: &std::collections::HashSet<u64>,
    bot: Option<&std::collections::HashSet<u64>>,
) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = listening
        .iter()
        .filter(|(_, inode)| !own.contains(inode))
        .filter(|(addr, inode)| addr.port() == port || bot.is_some_and(|b| b.contains(inode)))
        .filter(|(addr, _)| !clawveil_sockets::is_loopback(addr.ip()))
        .map(|(addr, _)| *addr)
        .collect();
    out.sort();
    out.dedup();
    out
}

fn look(port: u16, whole_bot: bool) -> Outcome {
    let listening = match clawveil_sockets::read_listening() {
        Ok(l) => l,
        Err(e) => return Outcome::Unknown(e.to_string()),
    };
    let own =
        clawveil_sockets::socket_inodes(std::path::Path::new("/proc/self")).unwrap_or_default();
    let pairs: Vec<(SocketAddr, u64)> = listening.iter().map(|l| (l.addr, l.inode)).collect();
    let on_port: std::collections::HashSet<u64> = pairs
        .iter()
        .filter(|(addr, inode)| addr.port() == port && !own.contains(inode))
        .map(|(_, inode)| *inode)
        .collect();
    let bot = (whole_bot && !on_port.is_empty())
        .then(|| clawveil_sockets::sockets_of_holders(&on_port))
        .flatten();
    Outcome::Seen {
        exposed: exposed_among(&pairs, port, &own, bot.as_ref()),
        owner_hidden: whole_bot && !on_port.is_empty() && bot.is_none(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn only_non_loopback_sockets_on_the_port_or_of_the_bot_and_not_ours() {
        let table: Vec<(SocketAddr, u64)> = [
            ("0.0.0.0:8080", 1),
            ("127.0.0.1:8080", 2),
            ("[::1]:8080", 3),
            ("[::ffff:127.0.0.1]:8080", 4),
            ("127.0.0.2:8080", 5),
            ("[::]:8080", 6),
            ("[::ffff:0.0.0.0]:8080", 7),
            ("192.0.2.7:8080", 8),
            ("0.0.0.0:8080", 9),
            ("0.0.0.0:9000", 10),
            ("0.0.0.0:443", 11),
            ("127.0.0.1:18789", 12),
        ]
        .iter()
        .map(|(a, i)| (a.parse().unwrap(), *i))
        .collect();
        let none = HashSet::new();
        assert_eq!(
            exposed_among(&table, 8080, &none, None),
            addrs(&[
                "0.0.0.0:8080",
                "192.0.2.7:8080",
                "[::]:8080",
                "[::ffff:0.0.0.0]:8080"
            ])
        );
        // clawveil's own sockets are never the bot's.
        let own: HashSet<u64> = [1, 6, 7, 8, 9, 11].into();
        assert_eq!(exposed_among(&table, 8080, &own, None), []);
        assert_eq!(exposed_among(&table, 443, &own, None), []);
        // With the bot's process known, its other sockets count too.
        let bot: HashSet<u64> = [2, 10, 12].into();
        assert_eq!(
            exposed_among(&table, 8080, &own, Some(&bot)),
            addrs(&["0.0.0.0:9000"])
        );
    }

    #[test]
    fn the_reason_says_where_and_what_to_do() {
        assert_eq!(
            reason(&addrs(&["0.0.0.0:8080"])),
            "the bot listens on 0.0.0.0:8080, reachable without clawveil; bind it to 127.0.0.1"
        );
        assert_eq!(
            join(&addrs(&["0.0.0.0:8080", "[::]:8080"])),
            "0.0.0.0:8080 and [::]:8080"
        );
        assert_eq!(
            join(&addrs(&["0.0.0.0:1", "0.0.0.0:2", "0.0.0.0:3"])),
            "0.0.0.0:1, 0.0.0.0:2 and 0.0.0.0:3"
        );
        assert_eq!(upstream_port("http://127.0.0.1:8080/bot"), Some(8080));
        assert_eq!(upstream_port("http://localhost"), Some(80));
        assert_eq!(upstream_port("https://[::1]"), Some(443));
    }

    fn check(require: bool) -> Check {
        Check {
            port: 8080,
            whole_bot: false,
            require,
            metrics: Arc::new(Metrics::new("test")),
            state: ExposureState::default(),
            last: None,
        }
    }

    fn gauge(c: &Check) -> i64 {
        c.metrics
            .upstream_exposed
            .with_label_values::<&str>(&[])
            .get()
    }

    fn seen(list: &[&str]) -> Outcome {
        Outcome::Seen {
            exposed: addrs(list),
            owner_hidden: false,
        }
    }

    #[test]
    fn readiness_and_gauge_follow_the_outcome() {
        let mut c = check(true);
        c.apply(seen(&["0.0.0.0:8080"]));
        assert_eq!(gauge(&c), 1);
        assert_eq!(
            c.state.readiness().unwrap_err(),
            "the bot listens on 0.0.0.0:8080, reachable without clawveil; bind it to 127.0.0.1"
        );
        c.apply(seen(&[]));
        assert_eq!((gauge(&c), c.state.readiness()), (0, Ok(())));
        // Unreadable tables: not ready (the gauge keeps what was last known).
        c.apply(Outcome::Unknown(
            "cannot read /proc/self/net/tcp: denied".into(),
        ));
        assert!(c
            .state
            .readiness()
            .unwrap_err()
            .starts_with("cannot tell whether the bot is reachable without clawveil: cannot read /proc/self/net/tcp: denied;"));

        // Not required: the gauge says it, readiness does not.
        let mut c = check(false);
        c.apply(seen(&["[::]:8080"]));
        assert_eq!((gauge(&c), c.state.readiness()), (1, Ok(())));
        c.apply(Outcome::Unknown("x".into()));
        assert_eq!(c.state.readiness(), Ok(()));
    }
}
