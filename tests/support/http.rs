//! A small HTTP/1.1 server on 127.0.0.1 for download tests, with injectable faults.
//!
//! Each route serves a body; a queue of [`Fault`]s decides how the next requests are answered
//! (one fault per request, then the route's default). Every request is logged with its
//! `Range` header, and the body bytes sent per path are counted.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How one request is answered.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Serve the body, honouring `Range`.
    Serve,
    /// Serve the whole body with 200, ignoring `Range`.
    IgnoreRange,
    /// Ignore `Range` (200, whole length announced) and close after this many body bytes.
    IgnoreRangeDropAfter(usize),
    /// Serve the whole body with 200 and no `Content-Length` (the body ends at close).
    NoLength,
    /// Honour `Range` in the headers, but close the connection after this many body bytes.
    DropAfter(usize),
    /// Answer with this status and a short text body.
    Status(u16),
    /// Answer 200 with a Google Drive style HTML warning page.
    Html,
    /// Accept the connection and send nothing for this long.
    Stall(Duration),
    /// Answer a range request with 206 but a Content-Range that starts at 0.
    WrongContentRange,
    /// Answer 200 without `Content-Length` and send the body over and over until the client
    /// hangs up (a server that never stops).
    Endless,
    /// Answer with this status and a `Retry-After` header with this value.
    RetryAfter(u16, String),
    /// Serve slowly: `chunk` bytes every `delay`.
    Slow {
        /// Bytes per write.
        chunk: usize,
        /// Pause between writes.
        delay: Duration,
    },
}

/// A logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The path requested.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
}

struct Route {
    body: Arc<Vec<u8>>,
    faults: VecDeque<Fault>,
    default: Fault,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    log: Vec<Request>,
}

/// The test server; it runs until the test process ends.
pub struct Server {
    port: u16,
    state: Arc<Mutex<State>>,
    sent: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>,
}

impl Server {
    /// Starts a server on a free port.
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let sent: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>> = Arc::default();
        let (st, se) = (state.clone(), sent.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (st, se) = (st.clone(), se.clone());
                thread::spawn(move || {
                    let _ = handle(stream, &st, &se);
                });
            }
        });
        Server { port, state, sent }
    }

    /// The URL of a path on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Serves `body` at `path`: the next requests get `faults` in order, later ones `default`.
    pub fn route(&self, path: &str, body: Vec<u8>, faults: Vec<Fault>, default: Fault) {
        self.state.lock().unwrap().routes.insert(
            path.to_string(),
            Route {
                body: Arc::new(body),
                faults: faults.into(),
                default,
            },
        );
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    /// Requests for one path.
    pub fn requests_for(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Body bytes sent so far for `path`.
    pub fn bytes_sent(&self, path: &str) -> u64 {
        self.counter(path).load(Ordering::SeqCst)
    }

    fn counter(&self, path: &str) -> Arc<AtomicU64> {
        counter(&self.sent, path)
    }
}

fn counter(sent: &Mutex<HashMap<String, Arc<AtomicU64>>>, path: &str) -> Arc<AtomicU64> {
    sent.lock()
        .unwrap()
        .entry(path.to_string())
        .or_default()
        .clone()
}

fn handle(
    stream: TcpStream,
    state: &Mutex<State>,
    sent: &Mutex<HashMap<String, Arc<AtomicU64>>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_string());
        }
    }
    let (body, fault) = {
        let mut st = state.lock().unwrap();
        st.log.push(Request {
            path: path.clone(),
            range: range.clone(),
        });
        match st.routes.get_mut(&path) {
            Some(route) => (
                route.body.clone(),
                route
                    .faults
                    .pop_front()
                    .unwrap_or_else(|| route.default.clone()),
            ),
            None => (Arc::new(Vec::new()), Fault::Status(404)),
        }
    };
    let count = counter(sent, &path);
    let mut out = stream;
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let total = body.len();
    match fault {
        Fault::Status(code) => {
            let text = format!("error {code}\n");
            write!(
                out,
                "HTTP/1.1 {code} Error\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            )?;
        }
        Fault::Html => {
            let page = "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head>\
                        <body>Google Drive can't scan this file for viruses.</body></html>";
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{page}",
                page.len()
            )?;
        }
        Fault::Stall(duration) => thread::sleep(duration),
        Fault::Endless => {
            write!(out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            loop {
                // Stops when the client closes the connection (the write fails).
                send(&mut out, &body, &count, None)?;
            }
        }
        Fault::RetryAfter(code, value) => {
            let text = format!("try again later ({code})\n");
            write!(
                out,
                "HTTP/1.1 {code} Busy\r\nRetry-After: {value}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{text}",
                text.len()
            )?;
        }
        Fault::IgnoreRangeDropAfter(n) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
            )?;
            send(&mut out, &body[..n.min(total)], &count, None)?;
        }
        Fault::NoLength => {
            write!(out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            send(&mut out, &body, &count, None)?;
        }
        Fault::IgnoreRange => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
            )?;
            send(&mut out, &body, &count, None)?;
        }
        Fault::WrongContentRange if start.is_some() => {
            write!(
                out,
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-{}/{total}\r\n\
                 Content-Length: {total}\r\nConnection: close\r\n\r\n",
                total - 1
            )?;
            send(&mut out, &body, &count, None)?;
        }
        Fault::Serve | Fault::DropAfter(_) | Fault::Slow { .. } | Fault::WrongContentRange => {
            let from = start.unwrap_or(0);
            if from >= total && start.is_some() {
                write!(
                    out,
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n"
                )?;
                return Ok(());
            }
            if start.is_some() {
                write!(
                    out,
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{total}\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    total - 1,
                    total - from
                )?;
            } else {
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
                )?;
            }
            let rest = &body[from..];
            match fault {
                Fault::DropAfter(n) => {
                    send(&mut out, &rest[..n.min(rest.len())], &count, None)?;
                    out.flush()?;
                    // Closing without sending the rest: the client sees a short body.
                    return Ok(());
                }
                Fault::Slow { chunk, delay } => send(&mut out, rest, &count, Some((chunk, delay)))?,
                _ => send(&mut out, rest, &count, None)?,
            }
        }
    }
    out.flush()
}

fn send(
    out: &mut TcpStream,
    bytes: &[u8],
    count: &AtomicU64,
    pace: Option<(usize, Duration)>,
) -> std::io::Result<()> {
    let chunk = pace.map_or(1 << 16, |(c, _)| c.max(1));
    for piece in bytes.chunks(chunk) {
        out.write_all(piece)?;
        count.fetch_add(piece.len() as u64, Ordering::SeqCst);
        if let Some((_, delay)) = pace {
            out.flush()?;
            thread::sleep(delay);
        }
    }
    Ok(())
}
