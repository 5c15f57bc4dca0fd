//! `craik receipts serve`: a read-only web page over the audit log, for
//! people (auditors, team leads) rather than scripts.
//!
//! The page uses the same queries as `receipts list/export/verify` and
//! the same filters (profile patterns as in policies). Everything it
//! serves is made here: HTML (maud, which escapes every value), one
//! stylesheet, SVG charts drawn on the server; no script at all, and a
//! Content-Security-Policy that lets the browser load nothing from
//! anywhere else.
//!
//! Access: a loopback address only; a random token printed at start,
//! exchanged on first use for an HttpOnly, SameSite=Strict cookie (the
//! address bar then drops it); a `Host` header naming that loopback
//! address (so a DNS-rebinding page in the user's browser is refused);
//! GET and HEAD only. The log holds no secret material, and the page
//! shows nothing but the log.

mod chart;
pub mod query;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, Response, StatusCode, header};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use crate::context::Context;

/// The cookie the token is exchanged for.
const COOKIE: &str = "craik_page";

/// What the browser may load: this page's own stylesheet, nothing else;
/// forms submit only here; no frames, no scripts, no plugins.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = include_str!("page.css");
/// The tab's icon (a browser asks for one; without it, a 404 in its console).
const ICON: &str = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><rect width='16' height='16' rx='3' fill='#24292f'/><path d='M4 8h8M8 4v8' stroke='#fff' stroke-width='2'/></svg>";

/// One answer of the page.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// `attachment; filename=…` for exports.
    pub disposition: Option<String>,
    /// A body streamed in chunks instead of `body` (an export).
    pub stream: Option<mpsc::Receiver<std::io::Result<bytes::Bytes>>>,
}

impl Reply {
    fn html(status: StatusCode, markup: maud::Markup) -> Reply {
        Reply {
            status,
            content_type: "text/html; charset=utf-8",
            body: markup.into_string().into_bytes(),
            disposition: None,
            stream: None,
        }
    }
}

/// A request handed to the thread that owns the log.
struct Job {
    path: String,
    query: String,
    reply: oneshot::Sender<Reply>,
}

struct Shared {
    token: Zeroizing<String>,
    /// The `Host` values a request may carry (`127.0.0.1:PORT`, ...).
    hosts: Vec<String>,
    jobs: mpsc::Sender<Job>,
}

/// A bound page, not yet serving.
pub struct Page {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    token: Zeroizing<String>,
}

impl Page {
    /// Binds `listen`, which must be a loopback address (the page shows
    /// who used which credential, and when).
    pub fn bind(listen: SocketAddr) -> crate::Result<Page> {
        if !listen.ip().is_loopback() {
            return Err(crate::Error::input(
                format!("{listen} is not a loopback address; the audit page is for this machine"),
                "listen on 127.0.0.1 (and reach it from elsewhere through an SSH tunnel)",
            ));
        }
        let listener = std::net::TcpListener::bind(listen).map_err(|e| {
            crate::Error::input(
                format!("cannot listen on {listen}: {e}"),
                "pick a free port, or 127.0.0.1:0 for any",
            )
        })?;
        let addr = listener.local_addr().map_err(|e| {
            crate::Error::input(format!("cannot read the bound address: {e}"), "try again")
        })?;
        let mut b = [0u8; 32];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut b[..]);
        Ok(Page {
            listener,
            addr,
            token: Zeroizing::new(format!("craik-page-{}", hex::encode(b))),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address to open: it carries the token once.
    pub fn url(&self) -> String {
        format!("http://{}/?token={}", self.addr, self.token.as_str())
    }

    /// Serves until the process is stopped. The log is read on one thread
    /// that owns `ctx`; the HTTP side only passes paths and answers.
    pub fn serve(self, ctx: Context) -> crate::Result<()> {
        let (tx, mut rx) = mpsc::channel::<Job>(64);
        let addr = self.addr;
        let worker = std::thread::spawn(move || {
            let mut ctx = ctx;
            while let Some(job) = rx.blocking_recv() {
                let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    views::respond(&mut ctx, &job.path, &job.query)
                }))
                .unwrap_or_else(|_| {
                    Reply::html(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        views::failure("this page failed; the others may still work"),
                    )
                });
                let _ = job.reply.send(reply);
            }
        });
        let mut hosts = vec![addr.to_string()];
        if addr.ip().is_ipv4() && addr.ip().to_string() == "127.0.0.1" {
            hosts.push(format!("localhost:{}", addr.port()));
        }
        let shared = Arc::new(Shared {
            token: self.token,
            hosts,
            jobs: tx,
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| crate::Error::input(format!("cannot start: {e}"), "try again"))?;
        let listener = self.listener;
        let result = rt.block_on(async move {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let app = axum::Router::new().fallback(handle).with_state(shared);
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
        });
        drop(rt);
        let _ = worker.join();
        result.map_err(|e| crate::Error::input(format!("the page stopped: {e}"), "start it again"))
    }
}

fn cookie_token(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(text.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Headers on every answer: nothing cached, nothing framed, nothing
/// loaded from elsewhere, no referrer (a URL may carry a filter).
fn harden(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response<Body> {
    harden(route(&sh, req).await)
}

async fn route(sh: &Shared, req: Request) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "the audit page is read-only\n",
        );
    }
    // A page elsewhere that resolves its own name to 127.0.0.1 (DNS
    // rebinding) sends its own name here: refused.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !sh.hosts.iter().any(|h| h == host) {
        return plain(
            StatusCode::MISDIRECTED_REQUEST,
            "open the address craik printed (the Host header must name it)\n",
        );
    }
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    // The token from the printed address: exchanged for a cookie, and
    // the address bar drops it.
    let given = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    if let Some(t) = given {
        if !same(&t, &sh.token) {
            return plain(StatusCode::UNAUTHORIZED, "wrong token\n");
        }
        let rest: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "token"),
            )
            .finish();
        let to = if rest.is_empty() {
            path.clone()
        } else {
            format!("{path}?{rest}")
        };
        let mut r = plain(StatusCode::SEE_OTHER, "");
        if let Ok(v) = HeaderValue::from_str(&to) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            sh.token.as_str()
        )) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        return r;
    }
    if !cookie_token(&req).is_some_and(|c| same(&c, &sh.token)) {
        return plain(
            StatusCode::UNAUTHORIZED,
            "open the address craik receipts serve printed (it carries the token)\n",
        );
    }
    let asset = match path.as_str() {
        "/page.css" => Some((STYLE, "text/css; charset=utf-8")),
        "/favicon.svg" => Some((ICON, "image/svg+xml")),
        _ => None,
    };
    if let Some((body, content_type)) = asset {
        let mut r = Response::new(Body::from(body));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        return r;
    }
    let (tx, rx) = oneshot::channel();
    let job = Job {
        path,
        query,
        reply: tx,
    };
    if sh.jobs.send(job).await.is_err() {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "the page is stopping\n");
    }
    let Ok(reply) = rx.await else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "no answer\n");
    };
    let body = match reply.stream {
        Some(rx) => Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        })),
        None => Body::from(reply.body),
    };
    let mut r = Response::new(body);
    *r.status_mut() = reply.status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    if let Some(d) = reply
        .disposition
        .and_then(|d| HeaderValue::from_str(&d).ok())
    {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, d);
    }
    r
}
