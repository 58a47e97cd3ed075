//! A deliberately tiny HTTP/1.1 client over `std::net::TcpStream`: one request
//! per connection (`Connection: close`), reading until EOF. Enough to drive
//! the test server without pulling an HTTP client crate into the workspace.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use sha2::{Digest, Sha256};

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("status {} body is not JSON ({e}): {}", self.status, self.text()))
    }

    /// Asserts an OAuth error response and returns its description.
    pub fn oauth_error(&self, status: u16, error: &str) -> String {
        assert_eq!(self.status, status, "unexpected status, body: {}", self.text());
        let v = self.json();
        assert_eq!(v["error"], error, "body: {v}");
        v["error_description"].as_str().unwrap_or_default().to_string()
    }
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(20)))?;
    Ok(stream)
}

pub fn raw_request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends one request and returns whatever bytes came back before EOF (or the
/// transport error, e.g. a reset).
pub fn send_raw(addr: SocketAddr, request: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = connect(addr)?;
    stream.write_all(request)?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out)?;
    Ok(out)
}

pub fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header terminator in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).expect("header is not UTF-8");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let mut body = raw[split + 4..].to_vec();
    let resp = HttpResponse { status, headers, body: Vec::new() };
    assert!(resp.header("transfer-encoding").is_none(), "chunked responses are not supported by this client");
    if let Some(len) = resp.header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        assert!(body.len() >= len, "short body: {} < {len}", body.len());
        body.truncate(len);
    }
    HttpResponse { body, ..resp }
}

pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let raw = send_raw(addr, &raw_request(method, path, headers, body))
        .unwrap_or_else(|e| panic!("{method} {path}: transport error {e}"));
    parse_response(&raw)
}

pub fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    request(addr, "GET", path, &[], b"")
}

pub fn encode_form(params: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

pub fn form_request(path: &str, params: &[(&str, &str)], extra: &[(&str, &str)]) -> Vec<u8> {
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    headers.extend_from_slice(extra);
    raw_request("POST", path, &headers, encode_form(params).as_bytes())
}

pub fn post_form(addr: SocketAddr, path: &str, params: &[(&str, &str)]) -> HttpResponse {
    post_form_with(addr, path, params, &[])
}

pub fn post_form_with(
    addr: SocketAddr,
    path: &str,
    params: &[(&str, &str)],
    extra_headers: &[(&str, &str)],
) -> HttpResponse {
    let raw = send_raw(addr, &form_request(path, params, extra_headers))
        .unwrap_or_else(|e| panic!("POST {path}: transport error {e}"));
    parse_response(&raw)
}

pub fn post_json(addr: SocketAddr, path: &str, body: &serde_json::Value) -> HttpResponse {
    request(addr, "POST", path, &[("Content-Type", "application/json")], body.to_string().as_bytes())
}

pub fn graphql(addr: SocketAddr, access_token: Option<&str>) -> HttpResponse {
    let auth = access_token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let body = serde_json::json!({"query": "{ viewer { id name email } organization { id name urlKey } }"});
    request(addr, "POST", "/graphql", &headers, body.to_string().as_bytes())
}
