//! The loopback leg of an install: a listener on the redirect URI that
//! answers only the callback path, and the flow around it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    /// both 127.0.0.1 and ::1, an IP literal gets just itself.
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
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(url::Host::Domain("localhost")) => vec![([127, 0, 0, 1], port).into(), (std::net::Ipv6Addr::LOCALHOST, port).into()],
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => vec![(ip, port).into()],
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => vec![(ip, port).into()],
            _ => return Err(invalid(format!("redirect URI must point at localhost or a loopback address, got {redirect_uri}"))),
        };
        let mut sockets = Vec::new();
        let mut last_err = None;
        for addr in addrs {
            match TcpListener::bind(addr) {
                Ok(s) => {
                    s.set_nonblocking(true).map_err(|e| CliError::Io(format!("listener {addr}: {e}")))?;
                    sockets.push(s);
                }
                Err(e) => last_err = Some(format!("cannot listen on {addr}: {e}")),
            }
        }
        if sockets.is_empty() {
            return Err(CliError::Io(last_err.unwrap_or_else(|| "no address to listen on".into())));
        }
        Ok(Self { sockets, path: url.path().to_owned() })
    }


    /// Serves requests until the callback arrives or `timeout` passes. Other
    /// paths get 404 and the wait goes on.
    pub fn wait(&self, r: &Resolver, pending: &PendingInstall, timeout: Duration) -> Result<AuthCode, CliError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut idle = true;
            for socket in &self.sockets {
                match socket.accept() {
                    Ok((stream, _)) => {
                        idle = false;
                        if let Some(done) = self.handle(stream, r, pending) {
                            return done;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(CliError::Io(format!("accepting the callback: {e}"))),
                }
            }
            if Instant::now() >= deadline {
                return Err(CliError::Timeout(timeout));
            }
            if idle {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// `Some` ends the wait.
    fn handle(&self, mut stream: TcpStream, r: &Resolver, pending: &PendingInstall) -> Option<Result<AuthCode, CliError>> {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let Some(target) = read_request_target(&mut stream) else {
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
                respond(&mut stream, 200, "Linear workspace connected", "<p>You can close this tab and return to the terminal.</p>");
                Some(Ok(code))
            }
            Err(e) => {
                let reason = match &e {
                    Error::Authorization { code: Some(c), .. } if c == "access_denied" => "The authorization was declined.".to_owned(),
                    Error::Authorization { .. } => "This callback does not belong to the install that is waiting (state mismatch); nothing was stored.".to_owned(),
                    other => html_escape(&other.to_string()),
                };
                respond(&mut stream, 400, "Installation failed", &format!("<p>{reason}</p><p>See the terminal for what to do next.</p>"));
                Some(Err(e.into()))
            }
        }
    }
}

/// The request target of a GET, read with a size bound.
fn read_request_target(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while buf.len() < 16 * 1024 {
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
}

impl Flow {
    /// `announce` gets the authorization URL once the listener is up, when no
    /// browser is opened (or opening one failed).
    pub fn run(&self, r: &Resolver, params: &InstallParams, announce: impl FnOnce(&str)) -> Result<Installed, CliError> {
        let pending = r.begin_install(params)?;
        let listener = Listener::bind(&params.redirect_uri)?;
        if !(self.open_browser && webbrowser::open(&pending.authorize_url).is_ok()) {
            announce(&pending.authorize_url);
        }
        let spinning = Arc::new(AtomicBool::new(self.spinner));
        let spinner = self.spinner.then(|| spawn_spinner(spinning.clone()));
        let code = listener.wait(r, &pending, self.timeout);
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
            eprint!("\r{} waiting for the browser... {}s (Ctrl-C to cancel) ", frames[i % 4], started.elapsed().as_secs());
            i += 1;
            std::thread::sleep(Duration::from_millis(120));
        }
        eprint!("\r{:60}\r", "");
    })
}
