//! A route's proof that a callback comes from DingTalk, wired to the pure checks in
//! [`crate::dingtalk`]: the secrets (re-read on SIGHUP), the clock, the replay cache,
//! and the mapping of every failure to its [`Refusal`].
//!
//! Robot callbacks are checked in two steps: the signed headers before any of the body
//! is read (a forged request costs nothing), then, with the body buffered (bounded by
//! `limits.max_body`), the replay checks. Event pushes sign the body, so they are
//! checked once it is buffered.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use clawveil_config::{ConfigError, Route, Secret, Verify};
use clawveil_telemetry::Refusal;

use crate::dingtalk::{self, EventError, EventParams, PairCheck, ReplayCache, RobotError};

/// How many deliveries and signed pairs the replay cache remembers per route.
const REPLAY_CAPACITY: usize = 100_000;

/// The secrets of a route as they are now (swapped whole on SIGHUP).
struct Keys {
    app_secrets: Vec<String>,
    event_token: String,
    event_aes_key: Option<String>,
}

pub struct Verifier {
    verify: Verify,
    templates: Route,
    keys: ArcSwap<Keys>,
    max_skew: Duration,
    replay: Option<ReplayCache>,
    /// Deliveries forwarded and not yet answered: a copy racing the original is a replay.
    in_flight: Arc<Mutex<HashSet<String>>>,
}

/// What a verified request leaves behind: the key under which its delivery is recorded
/// once the bot answers 2xx. While it lives, the delivery is in flight.
#[derive(Debug, Default)]
pub struct Delivery {
    key: Option<String>,
    in_flight: Option<Arc<Mutex<HashSet<String>>>>,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let (Some(set), Some(key)) = (&self.in_flight, &self.key) {
            set.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        }
    }
}

fn keys_of(route: &Route) -> Keys {
    Keys {
        app_secrets: route
            .app_secrets
            .iter()
            .map(|s| s.expose().to_owned())
            .collect(),
        event_token: route
            .event_token
            .as_ref()
            .map(|s| s.expose().to_owned())
            .unwrap_or_default(),
        event_aes_key: route.event_aes_key.as_ref().map(|s| s.expose().to_owned()),
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Verifier {
    /// The verifier of a route, or `None` for `verify = "none"`.
    pub fn from_route(route: &Route) -> Option<Verifier> {
        if route.verify == Verify::None {
            return None;
        }
        Some(Verifier {
            verify: route.verify,
            keys: ArcSwap::from_pointee(keys_of(route)),
            templates: route.clone(),
            max_skew: route.max_skew,
            replay: route.replay.then(|| ReplayCache::new(REPLAY_CAPACITY)),
            in_flight: Arc::default(),
        })
    }

    /// Re-reads `${env:..}`/`${file:..}` secrets; on any error the old ones stay.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let reload = |s: &Secret| s.reload().map(|s| s.expose().to_owned());
        let t = &self.templates;
        let keys = Keys {
            app_secrets: t.app_secrets.iter().map(reload).collect::<Result<_, _>>()?,
            event_token: t
                .event_token
                .as_ref()
                .map(reload)
                .transpose()?
                .unwrap_or_default(),
            event_aes_key: t.event_aes_key.as_ref().map(reload).transpose()?,
        };
        self.keys.store(Arc::new(keys));
        Ok(())
    }

    /// Whether the signature covers the body (event pushes), so nothing without one
    /// can pass.
    pub fn signs_body(&self) -> bool {
        self.verify == Verify::DingtalkEvent
    }

    /// The checks that need no body: a robot callback's signed headers.
    pub fn check_head(&self, headers: &http::HeaderMap) -> Result<(), Refusal> {
        if self.verify != Verify::DingtalkRobot {
            return Ok(());
        }
        let keys = self.keys.load();
        let secrets: Vec<&[u8]> = keys.app_secrets.iter().map(|s| s.as_bytes()).collect();
        dingtalk::verify_robot(
            headers.get("timestamp").map(|v| v.as_bytes()),
            headers.get("sign").map(|v| v.as_bytes()),
            &secrets,
            now_ms(),
            self.max_skew,
        )
        .map_err(|e| match e {
            RobotError::Skew => Refusal::TimestampSkew,
            _ => Refusal::SignatureInvalid,
        })
    }

    /// The checks on the buffered body: an event push's signature (and decryption),
    /// then replay.
    pub fn check_body(
        &self,
        headers: &http::HeaderMap,
        query: Option<&str>,
        body: &[u8],
    ) -> Result<Delivery, Refusal> {
        let now = Instant::now();
        match self.verify {
            Verify::DingtalkEvent => {
                let params = EventParams::from_query(query.unwrap_or(""));
                let keys = self.keys.load();
                dingtalk::verify_event(
                    &params,
                    body,
                    &keys.event_token,
                    keys.event_aes_key.as_deref(),
                    self.templates.event_owner_key.as_deref(),
                    now_ms(),
                    Some(self.max_skew),
                )
                .map_err(|e| match e {
                    EventError::Skew => Refusal::TimestampSkew,
                    _ => Refusal::SignatureInvalid,
                })?;
                let Some(cache) = &self.replay else {
                    return Ok(Delivery::default());
                };
                // The signature covers the whole body: it names the delivery.
                let key = params.signature.unwrap_or_default().to_ascii_lowercase();
                self.fresh(cache, key, now)
            }
            Verify::DingtalkRobot => {
                let Some(cache) = &self.replay else {
                    return Ok(Delivery::default());
                };
                let text = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                };
                let digest = dingtalk::digest(body);
                match cache.check_pair(text("timestamp"), text("sign"), digest, now, self.window())
                {
                    PairCheck::OtherBody => return Err(Refusal::ReplayTampered),
                    PairCheck::Fresh | PairCheck::SameBody => {}
                }
                // DingTalk names each delivery with a msgId; without one, the signed
                // pair (already tied to this body above) names it.
                let key = dingtalk::msg_id(body)
                    .map(|id| format!("msg:{id}"))
                    .unwrap_or_else(|| format!("pair:{}\n{}", text("timestamp"), text("sign")));
                self.fresh(cache, key, now)
            }
            Verify::None => Ok(Delivery::default()),
        }
    }

    /// How long a delivery is remembered: a timestamp is accepted from `max_skew` before
    /// it to `max_skew` after it, so one signed pair stays usable for twice the skew.
    fn window(&self) -> Duration {
        self.max_skew * 2
    }

    fn fresh(&self, cache: &ReplayCache, key: String, now: Instant) -> Result<Delivery, Refusal> {
        if cache.seen_delivered(&key, now, self.window()) {
            return Err(Refusal::Replay);
        }
        if !self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone())
        {
            return Err(Refusal::Replay);
        }
        Ok(Delivery {
            key: Some(key),
            in_flight: Some(self.in_flight.clone()),
        })
    }

    /// The bot answered 2xx: the same delivery is not forwarded again inside the window.
    pub fn delivered(&self, delivery: &Delivery) {
        if let (Some(cache), Some(key)) = (&self.replay, &delivery.key) {
            cache.mark_delivered(key, Instant::now());
        }
    }
}
