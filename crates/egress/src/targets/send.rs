//! One request to a target, read top to bottom:
//!
//! client token (401) → bounded body read (400 if the bot breaks it) → model label →
//! headers cleaned and injected → primary → on a `fallback_on` cause, and when the
//! body was buffered whole, the fallback once → the response streamed back, or 502/504.
//!
//! Fallback causes: `connect` (TCP, TLS — including a certificate that fails
//! verification — or the connect timeout), `timeout` (no response head within
//! `response_timeout`) and `5xx` (a 5xx head: nothing has gone back to the bot yet).
//! Other failures (the primary reset the exchange after taking the request) are never
//! replayed: the request may have been acted on. When the fallback fails after a
//! primary 5xx, the bot gets that 5xx as the primary sent it.

use std::sync::Arc;

use clawveil_config::FallbackCause;
use clawveil_telemetry::{method_label, ErrorClass, Refusal};
use http::header::{EXPECT, HOST};
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::body::{self, Metered, RequestBody, UpstreamBody};
use super::event::{count_upstream_failure, upstream_label, Exchange, Leg};
use super::tls::classify;
use super::Target;
use crate::connect::ProxyBody;
use crate::plain::strip_hop_by_hop;

/// What one attempt came to.
enum Attempt {
    Answered(Response<Incoming>),
    Failed {
        class: ErrorClass,
        /// The fallback cause this failure is, if any.
        cause: Option<FallbackCause>,
    },
}

impl Target {
    /// Serves one request whose target is this one; `rest` is what follows `/<name>`.
    pub(crate) async fn serve(
        self: &Arc<Self>,
        req: Request<Incoming>,
        rest: &str,
    ) -> Response<ProxyBody> {
        let mut ex = Exchange::new(
            self.metrics.clone(),
            self.name.clone(),
            method_label(req.method().as_str()),
        );
        if !self.secrets.admits(req.headers()) {
            return ex.answer(Refusal::ClientTokenInvalid);
        }
        let (Some(primary), fallback) = (
            self.primary.uri(rest),
            self.fallback.as_ref().and_then(|f| f.uri(rest)),
        ) else {
            return ex.answer(Refusal::Malformed);
        };
        let (parts, body) = req.into_parts();
        let body = match RequestBody::read(body, self.replay_buffer).await {
            Ok(body) => body,
            Err(_) => return ex.answer(Refusal::BrokenBody),
        };
        ex.model = Some(self.model_label(body.head()));
        let headers = self.outgoing(parts.headers);
        // Where and what to replay, if the fallback may be used at all.
        let retry = match (fallback, body.replay()) {
            (Some(uri), Some(bytes)) => Some((uri, bytes)),
            _ => None,
        };
        let replay = retry.is_some();
        let body = body.into_upstream(ex.bytes_in.clone());

        ex.leg = Some(Leg::Primary);
        // The cause, and what the bot gets should the fallback fail too: the primary's
        // 5xx as it is, or the primary's failure.
        let (cause, held) = match self.attempt(&parts.method, &headers, primary, body).await {
            Attempt::Answered(resp)
                if resp.status().is_server_error()
                    && self.falls_back(FallbackCause::Status5xx, replay) =>
            {
                (FallbackCause::Status5xx, Ok(resp))
            }
            Attempt::Answered(resp) => return self.respond(ex, resp),
            Attempt::Failed { class, cause } => {
                count_upstream_failure(&self.metrics, &ex.upstream_label(), class);
                match cause.filter(|c| self.falls_back(*c, replay)) {
                    Some(cause) => (cause, Err(class)),
                    None => return ex.answer(Refusal::UpstreamFailed(class)),
                }
            }
        };
        let Some((uri, bytes)) = retry else {
            return ex.answer(Refusal::UpstreamFailed(ErrorClass::Connect));
        };

        self.metrics
            .fallbacks
            .with_label_values(&[&*self.name, cause.as_str()])
            .inc();
        ex.fallback = Some(cause);
        ex.leg = Some(Leg::Fallback);
        match self
            .attempt(&parts.method, &headers, uri, body::whole(bytes))
            .await
        {
            Attempt::Answered(resp) => self.respond(ex, resp),
            Attempt::Failed { class, .. } => {
                count_upstream_failure(
                    &self.metrics,
                    &upstream_label(&self.name, Leg::Fallback),
                    class,
                );
                match held {
                    Ok(resp) => {
                        ex.leg = Some(Leg::Primary);
                        ex.fallback_error = Some(class);
                        self.respond(ex, resp)
                    }
                    Err(_) => ex.answer(Refusal::UpstreamFailed(class)),
                }
            }
        }
    }

    /// Whether a failure of this kind goes to the fallback (`replay`: there is one,
    /// and the body was buffered whole).
    fn falls_back(&self, cause: FallbackCause, replay: bool) -> bool {
        replay && self.fallback_on.contains(&cause)
    }

    /// The bot's headers as the target gets them: hop-by-hop headers, `Host` (the
    /// client sets the target's), `Expect` (the body is already here) and the bot's
    /// credentials out, the injected headers in.
    fn outgoing(&self, mut headers: HeaderMap) -> HeaderMap {
        strip_hop_by_hop(&mut headers);
        headers.remove(HOST);
        headers.remove(EXPECT);
        self.secrets.apply(&mut headers);
        headers
    }

    async fn attempt(
        &self,
        method: &Method,
        headers: &HeaderMap,
        uri: Uri,
        body: UpstreamBody,
    ) -> Attempt {
        let mut req = Request::new(body);
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = headers.clone();
        match tokio::time::timeout(self.response_timeout, self.client.request(req)).await {
            Ok(Ok(resp)) => Attempt::Answered(resp),
            Ok(Err(e)) => Attempt::Failed {
                class: classify(&e),
                cause: e.is_connect().then_some(FallbackCause::Connect),
            },
            Err(_) => Attempt::Failed {
                class: ErrorClass::Timeout,
                cause: Some(FallbackCause::Timeout),
            },
        }
    }

    /// Streams the target's response back.
    fn respond(&self, mut ex: Exchange, resp: Response<Incoming>) -> Response<ProxyBody> {
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts.version = Version::HTTP_11;
        ex.status = parts.status.as_u16();
        Response::from_parts(parts, Metered::new(body, ex).boxed())
    }
}
