//! HTTP over `wasi:http/outgoing-handler`: small, bounded, no redirects.

use crate::wasi::http::outgoing_handler;
use crate::wasi::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};
use crate::wasi::io::streams::StreamError;

/// Larger answers are refused: a token response is a few hundred bytes.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The `Retry-After` header, verbatim (rate limits and outages).
    pub retry_after: Option<String>,
}

/// Why a request got no answer, split by whether it may have reached the
/// server: only a request that provably did not is safe to send again.
#[derive(Debug)]
pub enum Failure {
    NotSent(String),
    MaybeSent(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotSent(m) | Self::MaybeSent(m) => f.write_str(m),
        }
    }
}

/// POSTs `body`; a 3xx comes back as a status, never followed.
pub fn post(
    url: &str,
    content_type: &str,
    body: &[u8],
    bearer: Option<&str>,
    timeout_ms: u64,
) -> Result<Response, String> {
    post_detailed(url, content_type, body, bearer, timeout_ms).map_err(|e| e.to_string())
}

/// [`post`], telling a request that never left from one that may have arrived.
pub fn post_detailed(
    url: &str,
    content_type: &str,
    body: &[u8],
    bearer: Option<&str>,
    timeout_ms: u64,
) -> Result<Response, Failure> {
    let not_sent = |m: &str| Failure::NotSent(m.to_owned());
    let parsed = url::Url::parse(url).map_err(|e| not_sent(&format!("bad endpoint URL: {e}")))?;
    let scheme = match parsed.scheme() {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        other => return Err(not_sent(&format!("unsupported URL scheme {other:?}"))),
    };
    let host = parsed.host_str().ok_or_else(|| not_sent("endpoint URL has no host"))?;
    let authority = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let mut path = parsed.path().to_owned();
    if let Some(q) = parsed.query() {
        path.push('?');
        path.push_str(q);
    }

    let mut headers: Vec<(String, Vec<u8>)> = vec![
        ("content-type".into(), content_type.as_bytes().to_vec()),
        ("content-length".into(), body.len().to_string().into_bytes()),
        ("accept".into(), b"application/json".to_vec()),
        ("user-agent".into(), concat!("linear-oauth/", env!("CARGO_PKG_VERSION")).as_bytes().to_vec()),
    ];
    if let Some(token) = bearer {
        headers.push(("authorization".into(), format!("Bearer {token}").into_bytes()));
    }
    let fields = Fields::from_list(&headers).map_err(|e| not_sent(&format!("bad request header: {e:?}")))?;
    let req = OutgoingRequest::new(fields);
    let ok = req.set_method(&Method::Post).is_ok()
        && req.set_scheme(Some(&scheme)).is_ok()
        && req.set_authority(Some(&authority)).is_ok()
        && req.set_path_with_query(Some(&path)).is_ok();
    if !ok {
        return Err(not_sent("request could not be built"));
    }
    let out_body = req.body().map_err(|()| not_sent("request body unavailable"))?;

    let timeout_ns = timeout_ms.saturating_mul(1_000_000);
    let options = RequestOptions::new();
    // Each setter fails only if the host does not support that timeout.
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));

    // Send first, then stream the body: the host buffers only one chunk.
    let future = outgoing_handler::handle(req, Some(options)).map_err(classify)?;
    let mut write_failed = None;
    {
        let stream = out_body.write().map_err(|()| not_sent("request stream unavailable"))?;
        for chunk in body.chunks(4096) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                write_failed = Some(format!("sending request: {e:?}"));
                break;
            }
        }
    }
    if write_failed.is_none() {
        OutgoingBody::finish(out_body, None).map_err(classify)?;
    }
    // A refused connection shows up as a closed body stream first; the
    // response future says what happened.
    future.subscribe().block();
    let resp = match future.get() {
        Some(Ok(Ok(resp))) => resp,
        Some(Ok(Err(code))) => return Err(classify(code)),
        Some(Err(())) | None => return Err(Failure::MaybeSent("response already taken".into())),
    };
    if let Some(m) = write_failed {
        return Err(Failure::MaybeSent(m));
    }
    let maybe_sent = |m: String| Failure::MaybeSent(m);
    let status = resp.status();
    let retry_after = resp.headers().get("retry-after").into_iter().next().and_then(|v| String::from_utf8(v).ok());
    let incoming = resp.consume().map_err(|()| maybe_sent("response body unavailable".into()))?;
    let stream = incoming.stream().map_err(|()| maybe_sent("response stream unavailable".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BODY {
                    return Err(maybe_sent(format!("response body exceeds {MAX_BODY} bytes")));
                }
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(maybe_sent(format!("reading response: {}", e.to_debug_string())));
            }
        }
    }
    Ok(Response { status, body, retry_after })
}

/// Failures before a connection exists (name resolution, connect, TLS
/// handshake, egress policy) never carried the request.
fn classify(code: ErrorCode) -> Failure {
    let not_sent = matches!(
        code,
        ErrorCode::DnsTimeout
            | ErrorCode::DnsError(_)
            | ErrorCode::DestinationNotFound
            | ErrorCode::DestinationUnavailable
            | ErrorCode::DestinationIpProhibited
            | ErrorCode::DestinationIpUnroutable
            | ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionLimitReached
            | ErrorCode::TlsProtocolError
            | ErrorCode::TlsCertificateError
            | ErrorCode::TlsAlertReceived(_)
            | ErrorCode::HttpRequestDenied
    );
    let m = describe(code);
    if not_sent {
        Failure::NotSent(m)
    } else {
        Failure::MaybeSent(m)
    }
}

fn describe(code: ErrorCode) -> String {
    match code {
        ErrorCode::HttpRequestDenied => "request refused by the host's egress policy".into(),
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTimeout => "connect timed out".into(),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => "response timed out".into(),
        ErrorCode::HttpResponseBodySize(_) => format!("response body exceeds {MAX_BODY} bytes"),
        other => format!("HTTP error: {other:?}"),
    }
}
