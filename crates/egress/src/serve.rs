//! The egress listener: loopback only, HTTP/1.1 (the forward-proxy protocol, and what
//! the bot speaks to its model targets), and a drain on shutdown: no new connections,
//! in-flight requests and open tunnels get `drain` to finish, then they are closed.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::connect::ForwardProxy;
use crate::service::Egress;
use crate::targets::Targets;

/// The largest request head the listener reads.
const MAX_HEAD: usize = 64 * 1024;

/// Binds the egress listener, refusing any address that is not loopback.
pub async fn bind_loopback(addr: SocketAddr) -> io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the egress listener binds only to loopback, not {addr}"),
        ));
    }
    TcpListener::bind(addr).await
}

impl ForwardProxy {
    /// Serves the forward proxy alone (no targets) on `listener`: see [`Egress::serve`].
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let own = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => {
                tracing::error!(target: "clawveil::egress", error = %e, "egress listener has no address");
                return;
            }
        };
        Egress::new(self, Arc::new(Targets::default()), own)
            .serve(listener)
            .await;
    }
}

impl Egress {
    /// Accepts connections until shutdown, then waits until every connection and
    /// tunnel has ended (each is bounded by the drain time).
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let stopping = crate::tunnel::stopping(self.forward.shutdown.clone());
        tokio::pin!(stopping);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        let _ = stream.set_nodelay(true);
                        let egress = self.clone();
                        tokio::spawn(async move { egress.serve_connection(stream).await });
                    }
                    // Out of file descriptors and the like: back off, keep serving.
                    Err(e) => {
                        tracing::warn!(target: "clawveil::egress", error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
                () = &mut stopping => break,
            }
        }
        drop(listener);
        self.forward.tracker.wait_closed().await;
    }

    /// Serves one client connection.
    pub async fn serve_connection<IO>(self: Arc<Self>, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let proxy = &self.forward;
        let _guard = proxy.tracker.enter();
        let egress = self.clone();
        let service = service_fn(move |req| {
            let egress = egress.clone();
            async move { Ok::<_, Infallible>(egress.handle(req).await) }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(proxy.policy.header_timeout)
            .max_buf_size(MAX_HEAD)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => return,
            () = crate::tunnel::stopping(proxy.shutdown.clone()) => {}
        }
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(proxy.policy.drain, conn).await;
    }
}
