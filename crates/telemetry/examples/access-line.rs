//! The cost of formatting access events, for callgrind (instructions do not move with
//! the machine's load): `N` events through the JSON line format into a counting sink.
//!
//!     cargo build --release -p clawveil-telemetry --example access-line
//!     valgrind --tool=callgrind target/release/examples/access-line 10000 [body]
//!
//! With `body`, each event also carries a redacted JSON request body and a text
//! response body, as with `log.bodies = "redacted"`.

use std::sync::{Arc, Mutex};

use clawveil_telemetry::{AccessEvent, BodyField, JsonLines};

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<usize>>);

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Sink {
    type Writer = Sink;
    fn make_writer(&'a self) -> Sink {
        self.clone()
    }
}

const JSON: &str = r#"{"msgtype":"text","text":{"content":"please call [REDACTED:phone] or mail [REDACTED:email] about card [REDACTED:bank-card]"},"msgId":"msgABC123","createAt":1732450000000,"conversationType":"1","conversationId":"[REDACTED:dingtalk]","senderId":"[REDACTED:dingtalk]","senderNick":"[REDACTED:dingtalk]","senderCorpId":"[REDACTED:dingtalk]","senderStaffId":"[REDACTED:dingtalk]","chatbotUserId":"[REDACTED:dingtalk]","sessionWebhook":"[REDACTED:dingtalk]","sessionWebhookExpiredTime":1732457200000,"isAdmin":false}"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let body = args.next().is_some();
    let sink = Sink::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(sink.clone())
        .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
        .event_format(JsonLines::new())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..n {
            AccessEvent {
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
                listener: "https",
                route: "default",
                method: "POST",
                path: Some("/dingtalk/"),
                status: 200,
                latency: std::time::Duration::from_micros(300 + i % 100),
                bytes_in: 523,
                bytes_out: 82,
                upstream: "127.0.0.1:8080",
                tls_version: "TLSv1.3",
                alpn: "none",
                http_version: "http/1.1",
                client: "127.0.0.1",
                request_body: body.then_some(BodyField::Json(JSON)),
                response_body: body.then_some(BodyField::Text("a reply with \"quotes\"")),
                ..AccessEvent::default()
            }
            .emit();
        }
    });
    let bytes = *sink.0.lock().unwrap_or_else(|e| e.into_inner());
    println!("{n} events, {bytes} bytes");
}
