//! The loopback leg of an install: a listener on the redirect URI that
//! answers only the callback path, and the flow around it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use linear_oauth_host::{AuthCode, Error, InstallParams, Installed, PendingInstall, Resolver};

use crate::error::CliError;

pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:8080/oauth/callback";

/// Bound loopback sockets for one redirect URI.
#[derive(Debug)]
pub struct Listener {
    sockets: Vec<TcpListener>,
    path: String,
}

impl Listener {
    /// Binds loopback addresses only (RFC 8252 section 7.3): `localhost` gets
    /// both 127.0.0.1 and ::1, an IP literal gets just itself. For
    /// `localhost` both must bind: the browser may resolve it to either, and
    /// another program on the other address would get the authorization
    /// code. Only a machine without IPv6 gets 127.0.0.1 alone.
    pub fn bind(redirect_uri: &str) -> Result<Self, CliError> {
        let invalid = |m: String| CliError::Lib(Error::InvalidInput(m));
        let url = url::Url::parse(redirect_uri).map_err(|e| invalid(format!("redirect URI {redirect_uri:?}: {e}")))?;
        if url.scheme() != "http" {
            return Err(invalid(format!("redirect URI must be http on loopback (RFC 8252), got {redirect_uri}")));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        if port == 0 {
            // Port 0 would bind a random port while Linear redirects to `:0`.
            return Err(invalid(format!("redirect URI must name the port to listen on, got port 0 in {redirect_uri}")));
        }
        let localhost = url.host() == Some(url::Host::Domain("localhost"));
        let addr: SocketAddr = match url.host() {
            _ if localhost => ([127, 0, 0, 1], port).into(),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => (ip, port).into(),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => (ip, port).into(),
            _ => {
                return Err(invalid(format!(
                    "redirect URI must point at localhost or a loopback address, got {redirect_uri}"
                )))
            }
        };
        let cannot = |addr: SocketAddr, e: std::io::Error| {
            let fix = if e.kind() == ErrorKind::AddrInUse {
                "another program is listening there: stop it, or register another port in the Linear app's callback URL and pass that URL with --redirect-uri"
            } else {
                "pass --redirect-uri with a loopback address and port this user can listen on, registered as the Linear app's callback URL"
            };
            CliError::Io(format!("cannot listen on {addr} for the redirect URI {redirect_uri}: {e}; {fix}"))
        };
        let mut sockets = vec![listen(addr).map_err(|e| cannot(addr, e))?];
        if localhost {
            let v6: SocketAddr = (std::net::Ipv6Addr::LOCALHOST, port).into();
            match listen(v6) {
                Ok(s) => sockets.push(s),
                Err(e) if no_ipv6(&e) => {
                    tracing::debug!(target: "linear_oauth", error = %e, "no IPv6 loopback here; listening for localhost on {addr} only");
                }
                Err(e) if e.kind() == ErrorKind::AddrInUse => {
                    let literal = format!("http://{addr}{}", url.path());
                    return Err(CliError::Io(format!(
                        "cannot listen on {v6} for the redirect URI {redirect_uri}: {e}; a browser resolving localhost to ::1 \
                         would hand the authorization code to the program listening there. Stop it to free the port, or \
                         register {literal} as the Linear app's callback URL and pass --redirect-uri {literal}"
                    )));
                }
                Err(e) => return Err(cannot(v6, e)),
            }
        }
        Ok(Self { sockets, path: url.path().to_owned() })
    }

    /// Serves requests until the callback arrives or `timeout` passes, by the
    /// clock. Connections are read concurrently, each on its own thread with
    /// its own deadline, so a client that never finishes its request cannot
    /// hold up the real callback. Other paths get 404, and a callback whose
    /// `state` is not ours gets an error page; the wait goes on after both.
    /// With `pasted`, redirect URLs pasted on stdin (one per line) are taken
    /// as the callback too: the headless install, where the browser runs on a
    /// machine that cannot reach this listener.
    pub fn wait(
        &self,
        r: &Resolver,
        pending: &PendingInstall,
        timeout: Duration,
        pasted: Option<&mpsc::Receiver<String>>,
    ) -> Result<AuthCode, CliError> {
        let deadline = Instant::now().checked_add(timeout).ok_or_else(|| {
            CliError::Lib(Error::InvalidInput(format!("--timeout {} s is too large", timeout.as_secs())))
        })?;
        let (tx, rx) = mpsc::channel::<(TcpStream, Option<String>)>();
        let open = Arc::new(AtomicUsize::new(0));
        loop {
            for socket in &self.sockets {
                loop {
                    match socket.accept() {
                        Ok((stream, _)) => read_concurrently(stream, &tx, &open),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted || e.kind() == ErrorKind::ConnectionAborted => {
                            break
                        }
                        Err(e) => return Err(CliError::Io(format!("accepting the callback: {e}"))),
                    }
                }
            }
            while let Some(line) = pasted.and_then(|p| p.try_recv().ok()) {
                if let Some(done) = pasted_callback(&line, r, pending) {
                    return done;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(CliError::Timeout(timeout));
            }
            match rx.recv_timeout(POLL.min(deadline - now)) {
                Ok((stream, target)) => {
                    if let Some(done) = self.answer(stream, target, r, pending) {
                        return done;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => unreachable!("the loop holds a sender"),
            }
        }
    }

    /// Answers one request; `Some` ends the wait.
    fn answer(
        &self,
        mut stream: TcpStream,
        target: Option<String>,
        r: &Resolver,
        pending: &PendingInstall,
    ) -> Option<Result<AuthCode, CliError>> {
        let _ = stream.set_write_timeout(Some(CONNECTION_DEADLINE));
        let Some(target) = target else {
            respond(&mut stream, 400, "Bad request", "<p>Bad request.</p>");
            return None;
        };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path != self.path {
            respond(&mut stream, 404, "Not found", "<p>Not found.</p>");
            return None;
        }
        match r.parse_callback(pending, query) {
            Ok(code) => {
                respond(
                    &mut stream,
                    200,
                    "Linear workspace connected",
                    "<p>You can close this tab and return to the terminal.</p>",
                );
                Some(Ok(code))
            }
            Err(Error::Authorization { code: Some(c), .. }) if c == "state_mismatch" => {
                respond(
                    &mut stream,
                    400,
                    "Not this install",
                    "<p>This callback does not belong to the install that is waiting (state mismatch); nothing was stored. \
                     Use the link the terminal printed.</p>",
                );
                eprintln!("linear-oauth: ignored a callback whose state does not match this install (another tab or process); still waiting");
                None
            }
            Err(e) => {
                let reason = match &e {
                    Error::Authorization { code: Some(c), .. } if c == "access_denied" => {
                        "The authorization was declined.".to_owned()
                    }
                    other => html_escape(&other.to_string()),
                };
                respond(
                    &mut stream,
                    400,
                    "Installation failed",
                    &format!("<p>{reason}</p><p>See the terminal for what to do next.</p>"),
                );
                Some(Err(e.into()))
            }
        }
    }
}

/// One pasted line: the redirect URL (or just its query); `Some` ends the
/// wait. A line that is not this install's callback (a typo, a cut-off
/// URL, another install's state) is reported and the wait goes on; only
/// Linear's answer that the user declined ends it.
fn pasted_callback(line: &str, r: &Resolver, pending: &PendingInstall) -> Option<Result<AuthCode, CliError>> {
    let line = line.trim();
    let query = match url::Url::parse(line) {
        Ok(u) => u.query().unwrap_or("").to_owned(),
        Err(_) => line.trim_start_matches('?').to_owned(),
    };
    let has = |k: &str| url::form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == k);
    if !(has("state") && (has("code") || has("error"))) {
        eprintln!("linear-oauth: the pasted line is not the redirect URL (no code and state in it); paste the whole address the browser was sent to; still waiting");
        return None;
    }
    match r.parse_callback(pending, &query) {
        Ok(code) => Some(Ok(code)),
        Err(e) if matches!(&e, Error::Authorization { code: Some(c), .. } if c == "access_denied") => {
            Some(Err(e.into()))
        }
        Err(Error::Authorization { code: Some(c), .. }) if c == "state_mismatch" => {
            eprintln!("linear-oauth: the pasted URL belongs to another install (state mismatch); nothing was stored. Paste the URL of the link printed above; still waiting");
            None
        }
        Err(e) => {
            eprintln!("linear-oauth: the pasted line is not the redirect URL ({e}); paste the whole address the browser was sent to; still waiting");
            None
        }
    }
}

/// Lines from stdin, each on `tx`, until stdin ends (a thread the process
/// does not wait for: a blocking read cannot be interrupted).
pub fn read_pasted_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if !line.trim().is_empty() && tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A nonblocking listener on `addr`.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = TcpListener::bind(addr)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Binding ::1 failed because this machine has no IPv6 loopback (disabled,
/// or ::1 not configured), not because anything else holds the port.
fn no_ipv6(e: &std::io::Error) -> bool {
    // std has no ErrorKind for EAFNOSUPPORT (97 on Linux, 47 on the BSDs and macOS).
    const EAFNOSUPPORT: i32 = if cfg!(target_os = "linux") { 97 } else { 47 };
    e.kind() == ErrorKind::AddrNotAvailable || e.raw_os_error() == Some(EAFNOSUPPORT)
}

/// How long one connection may take to send its request.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// Connections being read at once; more are closed unanswered.
const MAX_OPEN: usize = 64;
/// How often the accept loop looks at the sockets and the clock.
const POLL: Duration = Duration::from_millis(20);

/// Reads the request on a thread of its own and hands it to the accept loop.
fn read_concurrently(stream: TcpStream, tx: &mpsc::Sender<(TcpStream, Option<String>)>, open: &Arc<AtomicUsize>) {
    if open.fetch_add(1, Ordering::SeqCst) >= MAX_OPEN {
        open.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let (tx, count) = (tx.clone(), open.clone());
    let spawned = std::thread::Builder::new().name("callback-conn".into()).spawn(move || {
        let mut stream = stream;
        let target = read_request_target(&mut stream, Instant::now() + CONNECTION_DEADLINE);
        count.fetch_sub(1, Ordering::SeqCst);
        let _ = tx.send((stream, target));
    });
    if spawned.is_err() {
        // Out of threads: the connection is dropped unanswered.
        open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The request target of a GET, read with a size bound and a deadline for
/// the whole request (not per read: a client sending a byte at a time would
/// otherwise never run out).
fn read_request_target(stream: &mut TcpStream, deadline: Instant) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while buf.len() < 16 * 1024 {
        let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        stream.set_read_timeout(Some(left)).ok()?;
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                return (req.method == Some("GET")).then(|| req.path.unwrap_or("/").to_owned());
            }
            Ok(httparse::Status::Partial) => continue,
            Err(_) => return None,
        }
    }
    None
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn respond(stream: &mut TcpStream, status: u16, title: &str, body: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>{title}</h1>{body}</body></html>"
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = stream.flush();
}

/// The whole install as `setup` runs it (and `smoke`, playing the browser).
#[derive(Debug, Clone)]
pub struct Flow {
    pub timeout: Duration,
    pub open_browser: bool,
    pub spinner: bool,
    pub installed_by: String,
    /// Also take a redirect URL pasted on stdin.
    pub paste: bool,
}

impl Flow {
    /// `announce` gets the authorization URL once the listener is up, when no
    /// browser is opened (or opening one failed).
    pub fn run(
        &self,
        r: &Resolver,
        params: &InstallParams,
        announce: impl FnOnce(&str),
    ) -> Result<Installed, CliError> {
        let pending = r.begin_install(params)?;
        let listener = Listener::bind(&params.redirect_uri)?;
        if !(self.open_browser && webbrowser::open(&pending.authorize_url).is_ok()) {
            announce(&pending.authorize_url);
        }
        let spinning = Arc::new(AtomicBool::new(self.spinner));
        let spinner = self.spinner.then(|| spawn_spinner(spinning.clone()));
        let pasted = self.paste.then(read_pasted_lines);
        let code = listener.wait(r, &pending, self.timeout, pasted.as_ref());
        spinning.store(false, Ordering::SeqCst);
        if let Some(s) = spinner {
            let _ = s.join();
        }
        Ok(r.complete_install(params, pending, code?, &self.installed_by)?)
    }
}

fn spawn_spinner(running: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let frames = ['|', '/', '-', '\\'];
        let started = Instant::now();
        let mut i = 0;
        while running.load(Ordering::SeqCst) {
            eprint!(
                "\r{} waiting for the browser... {}s (Ctrl-C to cancel) ",
                frames[i % 4],
                started.elapsed().as_secs()
            );
            i += 1;
            std::thread::sleep(Duration::from_millis(120));
        }
        eprint!("\r{:60}\r", "");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_ipv6_is_told_apart_from_a_taken_port() {
        assert!(no_ipv6(&std::io::Error::from(ErrorKind::AddrNotAvailable)));
        #[cfg(target_os = "linux")]
        for errno in [97, 99] {
            // EAFNOSUPPORT (IPv6 disabled), EADDRNOTAVAIL (no ::1 configured)
            assert!(no_ipv6(&std::io::Error::from_raw_os_error(errno)), "{errno}");
        }
        assert!(!no_ipv6(&std::io::Error::from(ErrorKind::AddrInUse)));
        assert!(!no_ipv6(&std::io::Error::from(ErrorKind::PermissionDenied)));
    }
}
