//! `explore`: stateright's Explorer over the model, behind a small front of our own. The front
//! binds the address first, so a bad or busy address is a clear error rather than a panic inside
//! the library; it passes every request through to the Explorer, which serves on a private
//! loopback port, and adds what the stock page lacks for Raft: a key to the notation, and a
//! message when a link's path does not exist in the model (the stock page then silently shows
//! the initial state).

use crate::raft::{Action, RaftModel};
use crate::state::State;
use stateright::Model;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use tiny_http::{Header, Method, Request, Response, Server};

/// The script the front adds to the page; `LEGEND` is replaced by [`crate::display::LEGEND`].
const SCRIPT: &str = include_str!("explorer.js");

/// An Explorer bound to its address, not yet serving.
pub struct Explorer {
    model: RaftModel,
    front: Server,
    inner: SocketAddr,
}

/// Binds the Explorer for `model` to `addr` (`host:port`). Errors are one line, for the user.
pub fn bind(model: RaftModel, addr: &str) -> Result<Explorer, String> {
    let resolved = addr
        .to_socket_addrs()
        .map_err(|e| format!("--addr '{addr}' is not a host:port address: {e}"))?
        .next()
        .ok_or_else(|| format!("--addr '{addr}' resolves to no address"))?;
    let front = Server::http(resolved).map_err(|e| {
        format!(
            "cannot serve the Explorer on {addr}: {e}; is another Explorer running there? \
             Choose another port with --addr"
        )
    })?;
    // A free loopback port for stateright's own server.
    let inner = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free loopback port for the Explorer: {e}"))?;
    Ok(Explorer {
        model,
        front,
        inner,
    })
}

impl Explorer {
    /// The address the front listens on (the actual port when `addr` asked for port 0).
    pub fn addr(&self) -> String {
        self.front
            .server_addr()
            .to_ip()
            .map_or_else(|| "unknown".into(), |a| a.to_string())
    }

    /// Serves until the process ends.
    pub fn run(self) {
        let model = self.model.clone();
        let inner = self.inner;
        std::thread::spawn(move || {
            model.checker().threads(1).serve(inner);
        });
        for request in self.front.incoming_requests() {
            let model = self.model.clone();
            std::thread::spawn(move || answer(&model, inner, request));
        }
    }
}

fn answer(model: &RaftModel, inner: SocketAddr, mut request: Request) {
    let url = request.url().to_string();
    let response = if let Some(path) = url.strip_prefix("/.path") {
        json(&check_path(model, path))
    } else if url == "/raft.js" {
        let script = SCRIPT.replace("LEGEND", &crate::display::LEGEND.replace('\'', "\\'"));
        with_type(Response::from_string(script), "text/javascript")
    } else {
        let mut body = Vec::new();
        let _ = request.as_reader().read_to_end(&mut body);
        let method = request.method().clone();
        match fetch(inner, &method, &url, &body) {
            Ok((status, content_type, mut data)) => {
                if url == "/" && method == Method::Get {
                    let page = String::from_utf8_lossy(&data)
                        .replace("</body>", "<script src=\"/raft.js\"></script></body>");
                    data = page.into_bytes();
                }
                let mut r = Response::from_data(data).with_status_code(status);
                if let Some(t) = content_type {
                    r = with_type(r, &t);
                }
                r
            }
            Err(e) => Response::from_string(format!("the Explorer is not answering: {e}"))
                .with_status_code(502),
        }
    };
    let _ = request.respond(response);
}

fn with_type<R: Read>(r: Response<R>, content_type: &str) -> Response<R> {
    match Header::from_bytes("Content-Type", content_type) {
        Ok(h) => r.with_header(h),
        Err(()) => r,
    }
}

fn json(value: &serde_json::Value) -> Response<std::io::Cursor<Vec<u8>>> {
    with_type(
        Response::from_data(value.to_string().into_bytes()),
        "application/json",
    )
}

/// Whether `path` (`/0/3/1`, as in the page's `#/steps/0/3/1`) leads through the model: the
/// index of an initial state, then of an action offered at each state. Says where it does not.
pub fn check_path(model: &RaftModel, path: &str) -> serde_json::Value {
    let invalid = |message: String| serde_json::json!({ "valid": false, "message": message });
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut indices = Vec::new();
    for p in &parts {
        match p.parse::<usize>() {
            Ok(k) => indices.push(k),
            Err(_) => return invalid(format!("'{p}' is not a step number")),
        }
    }
    let Some((&first, rest)) = indices.split_first() else {
        return serde_json::json!({ "valid": true });
    };
    let inits = model.init_states();
    let Some(mut state) = inits.get(first).cloned() else {
        return invalid(format!(
            "there is no initial state {first}: the model has {} (0 to {})",
            inits.len(),
            inits.len() - 1
        ));
    };
    for (step, &k) in rest.iter().enumerate() {
        let mut actions: Vec<Action> = Vec::new();
        model.actions(&state, &mut actions);
        let Some(action) = actions.get(k).cloned() else {
            let at = if step == 0 {
                "the initial state".to_string()
            } else {
                format!("the state after step {step}")
            };
            return invalid(format!(
                "step {} asks for action {k}, but {at} offers {} actions (0 to {})",
                step + 1,
                actions.len(),
                actions.len().saturating_sub(1)
            ));
        };
        let next: Option<State> = model.next_state(&state, action.clone());
        match next {
            Some(s) => state = s,
            None => {
                return invalid(format!(
                    "step {} ({}) changes nothing: the model ignores it",
                    step + 1,
                    crate::display::action(&action)
                ))
            }
        }
    }
    serde_json::json!({ "valid": true })
}

/// One HTTP/1.0 request to the Explorer behind the front: its status, content type and body.
/// Retries for a few seconds while the Explorer starts.
fn fetch(
    inner: SocketAddr,
    method: &Method,
    url: &str,
    body: &[u8],
) -> std::io::Result<(u16, Option<String>, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut stream = loop {
        match TcpStream::connect(inner) {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    write!(
        stream,
        "{method} {url} HTTP/1.0\r\nHost: {inner}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let content_type = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-type")
            .then(|| value.trim().to_string())
    });
    Ok((status, content_type, raw[split + 4..].to_vec()))
}
