//! The plain-HTTP listener never proxies. It answers ACME HTTP-01 challenges and sends
//! everything else to https with a 308, counting each as `plaintext_refused`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use clawveil_telemetry::{method_label, status_class, FailReason, Listener, Metrics};
use clawveil_tls::Http01Tokens;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::Watcher;
use tokio::net::TcpStream;

use crate::conn_io::Watched;
use crate::idle::{Activity, Timeouts};
use crate::linger::Lingering;
use crate::listener::Slot;
use crate::refused::{ClientLabel, ConnLog};

const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// What every connection of the plain listener shares.
pub struct PlainContext {
    pub tokens: Http01Tokens,
    /// The https listener's port, for the redirect target (omitted when 443).
    pub https_port: u16,
    pub metrics: Arc<Metrics>,
    pub builder: Builder<TokioExecutor>,
    pub timeouts: Timeouts,
    /// How access events (of refused requests) show the client.
    pub client: ClientLabel,
}

pub async fn serve_plain(
    ctx: Arc<PlainContext>,
    stream: TcpStream,
    peer: SocketAddr,
    watcher: Watcher,
    slot: Slot,
) {
    let log = Arc::new(ConnLog {
        metrics: ctx.metrics.clone(),
        listener: Listener::Http.as_str(),
        peer,
        tls_version: "",
        tls_group: "",
        alpn: "",
        client: Some(ctx.client.clone()),
    });
    let act = Activity::new();
    let io = Watched::new(
        Lingering::holding(stream, slot),
        act.clone(),
        Some(log.on_reset()),
    );
    let (c, a) = (ctx.clone(), act.clone());
    let svc = hyper::service::service_fn(move |req| {
        let in_flight = a.request();
        let resp = answer(&c, req);
        in_flight.respond(std::future::ready(Ok::<_, Infallible>(resp)))
    });
    let conn = ctx
        .builder
        .serve_connection(TokioIo::new(io), svc)
        .into_owned();
    crate::listener::guard(watcher.watch(conn), act, ctx.timeouts, &log).await;
}

fn answer(ctx: &PlainContext, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let path = req.uri().path();
    let (resp, route) = if let Some(token) = path.strip_prefix(CHALLENGE_PREFIX) {
        let resp = match ctx.tokens.get(token) {
            Some(key_auth) => reply(StatusCode::OK, Bytes::from(key_auth)),
            None => reply(
                StatusCode::NOT_FOUND,
                Bytes::from_static(b"no such challenge\n"),
            ),
        };
        (resp, "acme-challenge")
    } else {
        ctx.metrics.fail_closed(FailReason::PlaintextRefused);
        (redirect(ctx, &req), "redirect")
    };
    let m = &ctx.metrics;
    let listener = Listener::Http.as_str();
    m.requests
        .with_label_values(&[
            listener,
            route,
            method_label(req.method().as_str()),
            status_class(resp.status().as_u16()),
        ])
        .inc();
    m.request_duration
        .with_label_values(&[listener, route])
        .observe(start.elapsed().as_secs_f64());
    resp
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// `308 https://<host>[:port]<path>?<query>`; the host comes from the request (without
/// its port), as nginx's `return 308 https://$host$request_uri` does.
fn redirect(ctx: &PlainContext, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .map(strip_port)
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost");
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let location = if ctx.https_port == 443 {
        format!("https://{host}{pq}")
    } else {
        format!("https://{host}:{}{pq}", ctx.https_port)
    };
    let mut r = reply(
        StatusCode::PERMANENT_REDIRECT,
        Bytes::from_static(b"use https\n"),
    );
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => *r.status_mut() = StatusCode::BAD_REQUEST,
    }
    r
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port → keep the brackets
        return rest.find(']').map(|i| &host[..i + 2]).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("bot.example.com:80"), "bot.example.com");
        assert_eq!(strip_port("bot.example.com"), "bot.example.com");
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("127.0.0.1:80"), "127.0.0.1");
    }
}
