//! HTTP egress policy: the component reaches only the configured Linear
//! origin, over https (plain http only on loopback, for tests), with bounded
//! time and body size. Redirects are never followed (wasi-http does not).
//!
//! Time has two bounds: each phase (connect, first byte, between bytes) gets
//! the configured timeout, and the whole request (connect + headers + body)
//! gets a deadline that also ends before the current call's deadline, so an
//! endpoint that drips one byte at a time is a transport error the component
//! handles, not a trap that discards its instance.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::Error;

/// Largest response body the host delivers to the component.
pub(crate) const MAX_RESPONSE_BODY: u64 = 1024 * 1024;

/// The one origin the component may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Refuses anything but https, except http to a loopback address.
    pub fn from_api_base(base: &str) -> Result<Self, Error> {
        let url = url::Url::parse(base).map_err(|e| Error::InvalidInput(format!("API base URL {base:?}: {e}")))?;
        let host = url.host_str().ok_or_else(|| Error::InvalidInput(format!("API base URL {base:?} has no host")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            other => {
                return Err(Error::InvalidInput(format!(
                    "API base URL must be https (http only on loopback), got {other}://{host}"
                )))
            }
        }
        let port = url.port_or_known_default().unwrap_or(443);
        Ok(Self { scheme: url.scheme().to_owned(), host, port })
    }

    fn permits(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("");
        let Some(host) = uri.host() else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        scheme == self.scheme && host == self.host && port == self.port
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `WasiHttpHooks` enforcing the origin, timeouts and body limit.
pub(crate) struct EgressPolicy {
    pub origin: Origin,
    /// Per phase; the whole request gets `PHASES` times this.
    pub timeout: Duration,
    /// When HTTP of the current call into the component must be over.
    call_ends: Option<Instant>,
}

/// Connect, first byte, body: a request that uses each phase's timeout once
/// takes this many timeouts.
const PHASES: u32 = 3;

impl EgressPolicy {
    pub fn new(origin: Origin, timeout: Duration) -> Self {
        Self { origin, timeout, call_ends: None }
    }

    /// A call into the component with this deadline starts now. Its requests
    /// end a margin earlier, leaving the component time to report the
    /// failure and release its lease.
    pub fn call_started(&mut self, call_deadline: Duration) {
        let margin = (call_deadline / 10).min(Duration::from_secs(2));
        self.call_ends = Instant::now().checked_add(call_deadline.saturating_sub(margin));
    }

    /// When a request sent now must have delivered its whole body.
    fn request_deadline(&self) -> Instant {
        let now = Instant::now();
        let whole = now.checked_add(self.timeout.saturating_mul(PHASES)).unwrap_or(now + Duration::from_secs(86_400));
        self.call_ends.map_or(whole, |end| whole.min(end))
    }
}

impl WasiHttpHooks for EgressPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                    HttpError,
                >,
            > + Send,
    > {
        drop(fut);
        if !self.origin.permits(request.uri()) {
            tracing::warn!(target: "linear_oauth", destination = %request.uri().host().unwrap_or(""), "refused an HTTP request outside the egress allowlist");
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        // The component may ask for shorter timeouts, never longer ones.
        let cap = |t: Option<Duration>| Some(t.map_or(self.timeout, |t| t.min(self.timeout)));
        let options = options.unwrap_or_default();
        let options = RequestOptions {
            connect_timeout: cap(options.connect_timeout),
            first_byte_timeout: cap(options.first_byte_timeout),
            between_bytes_timeout: cap(options.between_bytes_timeout),
        };
        let deadline = self.request_deadline();
        Box::new(async move {
            let deadline = tokio::time::Instant::from_std(deadline);
            let sent =
                tokio::time::timeout_at(deadline, wasmtime_wasi_http::default_send_request(request, Some(options)))
                    .await;
            let (resp, io) = sent.map_err(|_| HttpError::HttpResponseTimeout)??;
            let resp = resp.map(|b| {
                let timed = Deadline {
                    inner: b.boxed_unsync(),
                    sleep: Box::pin(tokio::time::sleep_until(deadline)),
                    expired: false,
                };
                Capped { inner: timed.boxed_unsync(), left: MAX_RESPONSE_BODY }.boxed_unsync()
            });
            Ok((resp, Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>))
        })
    }
}

/// A response body that fails once the whole-request deadline has passed,
/// however steadily its bytes trickle in.
struct Deadline {
    inner: WasiBody,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl Body for Deadline {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.expired = true;
            return Poll::Ready(Some(Err(HttpError::HttpResponseTimeout)));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        !self.expired && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that fails once it passes `MAX_RESPONSE_BODY`.
struct Capped {
    inner: WasiBody,
    left: u64,
}

impl Body for Capped {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            let len = frame.data_ref().map_or(0, |d| d.len() as u64);
            if len > self.left {
                self.left = 0;
                return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(MAX_RESPONSE_BODY)))));
            }
            self.left -= len;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Empty;
    use std::io::{Read, Write};

    fn request(uri: &str) -> http::Request<WasiBody> {
        let body = Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync();
        http::Request::post(uri).body(body).unwrap()
    }

    fn send(policy: &mut EgressPolicy, uri: &str) -> Result<Vec<u8>, HttpError> {
        let fut = policy.send_request(request(uri), None, Box::new(async { Ok(()) }));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let (resp, io) = Box::into_pin(fut).await?;
            tokio::spawn(Box::into_pin(io));
            Ok(resp.into_body().collect().await?.to_bytes().to_vec())
        })
    }

    /// A one-shot HTTP server answering with `body_len` bytes.
    fn serve_once(body_len: usize) -> u16 {
        serve(body_len, None)
    }

    #[test]
    fn requests_outside_the_allowlist_are_denied_and_bodies_are_capped() {
        let port = serve_once(10);
        let mut policy = EgressPolicy::new(
            Origin::from_api_base(&format!("http://127.0.0.1:{port}")).unwrap(),
            Duration::from_secs(5),
        );
        assert!(matches!(send(&mut policy, "http://127.0.0.2:9/oauth/token"), Err(HttpError::HttpRequestDenied)));
        assert!(matches!(send(&mut policy, "https://api.linear.app/oauth/token"), Err(HttpError::HttpRequestDenied)));
        assert_eq!(send(&mut policy, &format!("http://127.0.0.1:{port}/oauth/token")).unwrap(), b"xxxxxxxxxx");

        let port = serve_once(MAX_RESPONSE_BODY as usize + 10);
        policy.origin = Origin::from_api_base(&format!("http://127.0.0.1:{port}")).unwrap();
        let err = send(&mut policy, &format!("http://127.0.0.1:{port}/oauth/token")).unwrap_err();
        assert!(matches!(err, HttpError::HttpResponseBodySize(_)), "{err:?}");
    }

    /// A server that sends `body_len` bytes, one every `every`: each gap is
    /// far below any per-phase timeout, the whole is far above the deadline.
    fn serve_drip(body_len: usize, every: Duration) -> u16 {
        serve(body_len, Some(every))
    }

    /// A one-shot HTTP server: `body_len` bytes at once, or one per `drip`.
    fn serve(body_len: usize, drip: Option<Duration>) -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {body_len}\r\nConnection: close\r\n\r\n");
            let Some(every) = drip else {
                let _ = s.write_all(&vec![b'x'; body_len]);
                return;
            };
            for _ in 0..body_len {
                if s.write_all(b"x").and_then(|()| s.flush()).is_err() {
                    return;
                }
                std::thread::sleep(every);
            }
        });
        port
    }

    #[test]
    fn a_dripping_body_ends_at_the_whole_request_deadline() {
        let port = serve_drip(100, Duration::from_millis(50));
        let origin = Origin::from_api_base(&format!("http://127.0.0.1:{port}")).unwrap();
        let mut policy = EgressPolicy::new(origin.clone(), Duration::from_millis(200));
        let started = Instant::now();
        let err = send(&mut policy, &format!("http://127.0.0.1:{port}/oauth/token")).unwrap_err();
        assert!(matches!(err, HttpError::HttpResponseTimeout), "{err:?}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(550) && took < Duration::from_secs(3), "{took:?}");

        // The call's deadline wins when it comes first.
        let port = serve_drip(100, Duration::from_millis(50));
        let mut policy = EgressPolicy::new(
            Origin::from_api_base(&format!("http://127.0.0.1:{port}")).unwrap(),
            Duration::from_secs(5),
        );
        policy.call_started(Duration::from_millis(500));
        let started = Instant::now();
        let err = send(&mut policy, &format!("http://127.0.0.1:{port}/oauth/token")).unwrap_err();
        assert!(matches!(err, HttpError::HttpResponseTimeout), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn origins() {
        let o = Origin::from_api_base("https://api.linear.app").unwrap();
        assert!(o.permits(&"https://api.linear.app/oauth/token".parse().unwrap()));
        assert!(o.permits(&"https://API.linear.app:443/graphql".parse().unwrap()));
        assert!(!o.permits(&"http://api.linear.app/oauth/token".parse().unwrap()));
        assert!(!o.permits(&"https://evil.example/oauth/token".parse().unwrap()));
        assert!(!o.permits(&"https://api.linear.app:8443/x".parse().unwrap()));
        assert!(Origin::from_api_base("http://api.linear.app").is_err());
        assert!(Origin::from_api_base("http://127.0.0.1:9").is_ok());
        assert!(Origin::from_api_base("http://[::1]:9").is_ok());
        assert!(Origin::from_api_base("http://localhost:9").is_ok());
        assert!(Origin::from_api_base("ftp://127.0.0.1").is_err());
    }
}
