//! `craik proxy`: a local reverse proxy that injects the credential, so the
//! agent never holds it. Clients present a random per-session token where
//! the family expects its API key; per request the proxy writes a durable
//! `call.started` receipt before anything goes upstream (503 if it cannot),
//! streams the response through as it arrives, and writes `call.finished`
//! with status, latency, bytes, model and token usage.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use bytes::Bytes;
use futures_util::Stream;
use rand::RngCore;
use subtle::ConstantTimeEq;
use tokio::sync::Notify;
use zeroize::Zeroizing;

use super::Started;
use super::usage;
use crate::audit::store::group::GroupCommitter;
use crate::audit::{NewReceipt, ReceiptKind, Status};
use crate::home::Home;
use crate::pool::{Outcome, PoolStore};
use crate::profile::{Profile, ProfileId};
use crate::provider::{self, CREDENTIAL_HEADERS, CREDENTIAL_QUERY_PARAMS, FamilyInfo};

/// Largest request body forwarded.
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;
/// How much of a response is kept to read token usage from.
const USAGE_CAPTURE_BYTES: usize = 1024 * 1024;
/// How long in-flight receipts may take to land at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// One credential the proxy can use: a session started by the pipeline
/// ([`super::Authorized::start_session`]), and where it goes.
pub struct Upstream {
    session: Arc<Started>,
    base_url: String,
}

impl Upstream {
    /// Refuses a marker profile (no material to inject) or one with no
    /// base URL.
    pub fn new(session: Arc<Started>) -> crate::Result<Upstream> {
        let base_url = super::base_url_of(session.profile())?;
        if session.delegated() {
            return Err(crate::Error::input(
                format!(
                    "profile {} has no credential to proxy (it delegates to the provider's CLI)",
                    session.profile().id
                ),
                "proxy a profile that holds a credential",
            ));
        }
        Ok(Upstream { session, base_url })
    }

    pub fn profile(&self) -> &Profile {
        self.session.profile()
    }
}

/// Everything a running proxy needs.
pub struct ProxyState {
    pub token: Zeroizing<String>,
    pub family: &'static FamilyInfo,
    pub upstreams: Vec<Upstream>,
    /// The pool (and the home holding its health), when proxying a pool.
    pub pool: Option<(Home, ProfileId)>,
    pub committer: GroupCommitter,
    pub client: reqwest::Client,
    inflight: AtomicUsize,
    drained: Notify,
}

/// Tells the proxy's operator (on stderr) what no client can be told: a
/// `call.finished` receipt that could not be made durable after the
/// response had gone. Later calls are refused on their own (their
/// `call.started` cannot be written either), so this is the one failure
/// that would otherwise go unseen.
fn warn_lost_receipt(started: &str, e: &crate::audit::AuditError) {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "craik proxy: warning: the call.finished receipt of the call started by {started} could not be written: {e}"
    );
}

/// A fresh random proxy token (what clients use as their API key).
pub fn new_token() -> Zeroizing<String> {
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    Zeroizing::new(format!("craik-proxy-{}", hex::encode(b)))
}

impl ProxyState {
    pub fn new(
        token: Zeroizing<String>,
        family: &'static FamilyInfo,
        upstreams: Vec<Upstream>,
        pool: Option<(Home, ProfileId)>,
        committer: GroupCommitter,
    ) -> crate::Result<ProxyState> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| {
                crate::Error::input(format!("cannot build the HTTP client: {e}"), "report this")
            })?;
        Ok(ProxyState {
            token,
            family,
            upstreams,
            pool,
            committer,
            client,
            inflight: AtomicUsize::new(0),
            drained: Notify::new(),
        })
    }

    /// What a client should set: the family's API-key and base-URL
    /// variables pointing at the proxy.
    pub fn client_env(&self, addr: SocketAddr) -> Vec<(&'static str, String)> {
        vec![
            (self.family.env_api_key, self.token.to_string()),
            (self.family.env_base_url, format!("http://{addr}")),
        ]
    }
}

/// Counts a request in flight until its last receipt has landed.
struct InflightGuard(Arc<ProxyState>);

impl InflightGuard {
    fn new(st: &Arc<ProxyState>) -> InflightGuard {
        st.inflight.fetch_add(1, Ordering::SeqCst);
        InflightGuard(st.clone())
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

fn json_error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"error": {"type": kind, "message": message}}).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("static response")
}

/// Every place a client may have put the proxy token, wherever its family
/// puts an API key.
fn presented_tokens(headers: &HeaderMap, query: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for n in ["authorization", "x-api-key", "x-goog-api-key", "api-key"] {
        for v in headers.get_all(n) {
            if let Ok(v) = v.to_str() {
                let t = v
                    .strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
                    .unwrap_or(v);
                out.push(t.trim().to_string());
            }
        }
    }
    if let Some(q) = query {
        out.extend(
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == "key")
                .map(|(_, v)| v.into_owned()),
        );
    }
    out
}

/// Constant-time comparison against every presented candidate.
fn token_ok(st: &ProxyState, presented: Vec<String>) -> bool {
    let want = st.token.as_bytes();
    let mut ok = subtle::Choice::from(0u8);
    for p in &presented {
        if p.len() == want.len() {
            ok |= p.as_bytes().ct_eq(want);
        }
    }
    bool::from(ok)
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
    // Ask for identity encoding, so usage can be read from the response.
    "accept-encoding",
];

/// Whether `path`, joined to the upstream's base URL, could leave the
/// base's path: a `.` or `..` segment, percent-encoded or not (the URL
/// standard resolves both when the URL is parsed), or a backslash (which
/// it reads as `/` in http URLs). With a base of `https://gw/tenant-a/v1`,
/// `/../../tenant-b/x` would carry the credential to another path.
fn escapes_base(path: &str) -> bool {
    path.contains('\\')
        || path.split('/').any(|seg| {
            let s = seg.to_ascii_lowercase().replace("%2e", ".");
            s == "." || s == ".."
        })
}

/// Path and query without credential query parameters.
fn clean_path(uri: &axum::http::Uri) -> String {
    let path = uri.path();
    match uri.query() {
        None => path.to_string(),
        Some(q) => {
            let kept: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| !CREDENTIAL_QUERY_PARAMS.contains(&k.as_ref()))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if kept.is_empty() {
                path.to_string()
            } else {
                let q = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(kept)
                    .finish();
                format!("{path}?{q}")
            }
        }
    }
}

/// A receipt about one request through `up`'s session: profile, operator,
/// run, capability, pool and credential identity filled in.
fn receipt(up: &Upstream, kind: ReceiptKind, status: Status) -> NewReceipt {
    up.session.receipt_about(kind, status)
}

/// Appends a receipt durably from async code.
async fn append(st: &Arc<ProxyState>, r: NewReceipt) -> crate::Result<crate::audit::Receipt> {
    Ok(st.committer.submit(r).wait().await?)
}

async fn record_health(st: &Arc<ProxyState>, member: &ProfileId, outcome: Outcome) {
    if let Some((home, pool)) = &st.pool {
        let (home, pool, member) = (home.clone(), pool.clone(), member.clone());
        let _ = tokio::task::spawn_blocking(move || {
            PoolStore::new(&home).record(&pool, &member, outcome)
        })
        .await;
    }
}

/// Picks the upstream for an attempt.
async fn pick(st: &Arc<ProxyState>, tried: &[ProfileId]) -> Option<usize> {
    match &st.pool {
        None => (tried.is_empty() && !st.upstreams.is_empty()).then_some(0),
        Some((home, pool)) => {
            let mut exclude = tried.to_vec();
            // Members that were not authorized at start are never used.
            let pool_members = PoolStore::new(home).get(pool).ok().flatten()?;
            for m in &pool_members.members {
                if !st.upstreams.iter().any(|u| u.profile().id == m.profile) {
                    exclude.push(m.profile.clone());
                }
            }
            let (home, pool) = (home.clone(), pool.clone());
            let id =
                tokio::task::spawn_blocking(move || PoolStore::new(&home).pick(&pool, &exclude))
                    .await
                    .ok()?
                    .ok()?;
            st.upstreams.iter().position(|u| u.profile().id == id)
        }
    }
}

async fn handle(State(st): State<Arc<ProxyState>>, req: Request) -> Response<Body> {
    // Run the call in its own task: a client that goes away must not
    // cancel it halfway, between `call.started` and `call.finished`.
    match tokio::spawn(handle_call(st, req)).await {
        Ok(r) => r,
        Err(_) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "craik_internal_error",
            "the proxy failed while handling the request",
        ),
    }
}

async fn handle_call(st: Arc<ProxyState>, req: Request) -> Response<Body> {
    let guard = InflightGuard::new(&st);
    let t0 = Instant::now();
    let (parts, body) = req.into_parts();
    if !token_ok(&st, presented_tokens(&parts.headers, parts.uri.query())) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "craik_unauthorized",
            "missing or wrong proxy token",
        );
    }
    if escapes_base(parts.uri.path()) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "craik_bad_path",
            "the path has a '.' or '..' segment or a backslash; craik forwards only paths under the provider's base URL",
        );
    }
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "craik_request_too_large",
                "the request body is larger than craik forwards (32 MiB)",
            );
        }
    };
    let path = clean_path(&parts.uri);
    let model = usage::model(parts.uri.path(), &body);
    let method = parts.method.clone();
    let mut tried: Vec<ProfileId> = Vec::new();
    loop {
        let Some(i) = pick(&st, &tried).await else {
            return json_error(
                StatusCode::BAD_GATEWAY,
                "craik_no_upstream",
                "no healthy credential is available",
            );
        };
        let up = &st.upstreams[i];
        tried.push(up.profile().id.clone());
        let attempt = tried.len();
        let started = receipt(up, ReceiptKind::CallStarted, Status::Ok)
            .detail("method", method.as_str())
            .detail("path", parts.uri.path())
            .detail("attempt", attempt)
            .detail("model", model.clone());
        let started = match append(&st, started).await {
            Ok(r) => r,
            Err(e) => {
                return json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "craik_audit_unavailable",
                    &format!("the call was refused because its receipt could not be written: {e}"),
                );
            }
        };
        let url = provider::join(&up.base_url, &path);
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &parts.headers {
            let n = k.as_str();
            if HOP_BY_HOP.contains(&n) || CREDENTIAL_HEADERS.contains(&n) {
                continue;
            }
            headers.append(k.clone(), v.clone());
        }
        let client_has = |n: &str| {
            parts
                .headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let Some(credential) = up.session.material() else {
            // Upstream::new refuses sessions without material.
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "craik_internal_error",
                "the proxy has no credential for this upstream",
            );
        };
        for (n, v) in st.family.auth_headers(credential, client_has) {
            if let Ok(v) = HeaderValue::from_str(&v) {
                let mut v = v;
                v.set_sensitive(true);
                headers.insert(HeaderName::from_static(n), v);
            }
        }
        let sent = st
            .client
            .request(method.clone(), &url)
            .headers(headers)
            .body(body.clone())
            .send()
            .await;
        let finished_base = |status: Status| {
            receipt(up, ReceiptKind::CallFinished, status)
                .detail("started", started.id.as_str())
                .detail("method", method.as_str())
                .detail("path", parts.uri.path())
                .detail("model", model.clone())
                .detail("bytes_in", body.len())
                .detail("attempt", attempt)
        };
        let more = st.pool.is_some() && tried.len() < st.upstreams.len();
        let resp = match sent {
            Err(e) => {
                record_health(&st, &up.profile().id, Outcome::Failed).await;
                let why = if e.is_timeout() {
                    "upstream timed out".to_string()
                } else {
                    "upstream connection failed".to_string()
                };
                let r = finished_base(Status::UpstreamError)
                    .reason(why.clone())
                    .detail("latency_ms", t0.elapsed().as_millis() as u64);
                let _ = append(&st, r).await;
                if more {
                    continue;
                }
                return json_error(StatusCode::BAD_GATEWAY, "craik_upstream_error", &why);
            }
            Ok(r) => r,
        };
        let status = resp.status();
        let outcome = Outcome::from_status(Some(status.as_u16()));
        record_health(&st, &up.profile().id, outcome).await;
        if outcome != Outcome::Ok && more {
            // Nothing was sent to the client yet: try the next member.
            let r = finished_base(outcome.status())
                .detail("status", status.as_u16())
                .detail("latency_ms", t0.elapsed().as_millis() as u64)
                .detail("retried", true);
            let _ = append(&st, r).await;
            continue;
        }
        let mut builder = Response::builder().status(status);
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        for (k, v) in resp.headers() {
            if matches!(
                k.as_str(),
                "connection" | "keep-alive" | "transfer-encoding" | "te" | "trailer" | "upgrade"
            ) {
                continue;
            }
            builder = builder.header(k, v);
        }
        let fin = finished_base(if status.is_success() {
            Status::Ok
        } else {
            Status::Error
        })
        .detail("status", status.as_u16());
        let st2 = st.clone();
        let started_id = started.id.clone();
        let done = move |bytes_out: u64,
                         captured: Vec<u8>,
                         error: Option<String>,
                         ttfb: Option<Duration>| {
            let mut r = fin
                .detail("bytes_out", bytes_out)
                .detail("latency_ms", t0.elapsed().as_millis() as u64);
            if let Some(t) = ttfb {
                r = r.detail("ttfb_ms", t.as_millis() as u64);
            }
            if let Some(u) = usage::usage(&content_type, &captured) {
                r = r.detail("usage", serde_json::Value::Object(u));
            }
            if let Some(e) = error {
                r.status = Status::Incomplete;
                r = r.reason(e);
            }
            // The response has gone: this receipt may share the next
            // call's commit. The request counts as in flight until it is
            // durable, so a shutdown waits for it.
            let pending = st2.committer.submit_deferred(r);
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move {
                        if let Err(e) = pending.wait().await {
                            warn_lost_receipt(&started_id, &e);
                        }
                        drop(guard);
                    });
                }
                Err(_) => {
                    std::thread::spawn(move || {
                        if let Err(e) = pending.wait_blocking() {
                            warn_lost_receipt(&started_id, &e);
                        }
                        drop(guard);
                    });
                }
            }
        };
        // A body of known length is complete once that many bytes have
        // passed (the client may stop reading right then, before the
        // stream reports its end).
        let expected = if method == axum::http::Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Some(0)
        } else {
            resp.content_length()
        };
        let mut tap = Tap {
            expected,
            inner: Box::pin(resp.bytes_stream()),
            bytes: 0,
            captured: Vec::new(),
            t0,
            ttfb: None,
            done: Some(Box::new(done)),
        };
        if expected == Some(0) {
            tap.finish(None);
        }
        return builder.body(Body::from_stream(tap)).unwrap_or_else(|_| {
            json_error(
                StatusCode::BAD_GATEWAY,
                "craik_upstream_error",
                "bad upstream headers",
            )
        });
    }
}

type Done = Box<dyn FnOnce(u64, Vec<u8>, Option<String>, Option<Duration>) + Send>;

/// Passes the response body through chunk by chunk, counting it and
/// keeping the first MiB (for usage), and reports when it ends, fails or
/// the client goes away.
struct Tap {
    /// The body's length, when the upstream declared it.
    expected: Option<u64>,
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    bytes: u64,
    captured: Vec<u8>,
    t0: Instant,
    ttfb: Option<Duration>,
    done: Option<Done>,
}

impl Tap {
    fn finish(&mut self, error: Option<String>) {
        if let Some(done) = self.done.take() {
            done(
                self.bytes,
                std::mem::take(&mut self.captured),
                error,
                self.ttfb,
            );
        }
    }
}

impl Stream for Tap {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if self.ttfb.is_none() {
                    self.ttfb = Some(self.t0.elapsed());
                }
                self.bytes += chunk.len() as u64;
                if self.expected == Some(self.bytes) {
                    let room = USAGE_CAPTURE_BYTES.saturating_sub(self.captured.len());
                    let n = room.min(chunk.len());
                    self.captured.extend_from_slice(&chunk[..n]);
                    self.finish(None);
                    return Poll::Ready(Some(Ok(chunk)));
                }
                let room = USAGE_CAPTURE_BYTES.saturating_sub(self.captured.len());
                if room > 0 {
                    let n = room.min(chunk.len());
                    self.captured.extend_from_slice(&chunk[..n]);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.finish(Some("the upstream response ended early".into()));
                Poll::Ready(Some(Err(std::io::Error::other(e))))
            }
            Poll::Ready(None) => {
                self.finish(None);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.finish(Some("the client closed the connection".into()));
    }
}

/// Serves until `shutdown` resolves, then lets requests in flight finish
/// and their receipts land.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ProxyState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(state.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    while state.inflight.load(Ordering::SeqCst) > 0 {
        let wait = state.drained.notified();
        if state.inflight.load(Ordering::SeqCst) == 0 {
            break;
        }
        if tokio::time::timeout_at(deadline, wait).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Resolves on SIGTERM, SIGINT or SIGHUP (never, if the handlers cannot
/// be installed).
pub async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = hup.recv() => {}
    }
}

/// A proxy bound to its address and ready to serve: `craik proxy`.
pub struct Proxy {
    rt: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

impl Proxy {
    /// Refuses a listen address off loopback unless `allow_remote`: the
    /// proxy hands the credential's power to whoever can reach it.
    pub fn check_listen(addr: SocketAddr, allow_remote: bool) -> crate::Result<()> {
        if !addr.ip().is_loopback() && !allow_remote {
            return Err(crate::Error::input(
                format!(
                    "{addr} is not a loopback address; the proxy would hand the credential's power to the network"
                ),
                "listen on 127.0.0.1, or pass --allow-remote if you mean it",
            ));
        }
        Ok(())
    }

    /// Authorizes and starts a session with every member the request may
    /// use ([`super::start_proxy`]), opens the group committer its
    /// per-request receipts go through, and binds `listen`.
    pub fn bind(
        ctx: &mut crate::context::Context,
        spec: &super::CallSpec,
        listen: SocketAddr,
        allow_remote: bool,
    ) -> crate::Result<Proxy> {
        Proxy::check_listen(listen, allow_remote)?;
        let sessions = super::start_proxy(ctx, spec)?;
        let family = crate::provider::info(sessions.upstreams[0].profile().provider_family);
        let committer = GroupCommitter::start(ctx.open_audit_log()?)?;
        let state = Arc::new(ProxyState::new(
            new_token(),
            family,
            sessions.upstreams,
            sessions.pool.map(|p| (ctx.home.clone(), p)),
            committer,
        )?);
        let rt = runtime(None)?;
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(listen))
            .map_err(|e| {
                crate::Error::input(
                    format!("cannot listen on {listen}: {e}"),
                    "pick another --listen address",
                )
            })?;
        let addr = listener.local_addr().map_err(|e| {
            crate::Error::input(
                format!("cannot read the address the proxy listens on: {e}"),
                "report this",
            )
        })?;
        Ok(Proxy {
            rt,
            listener,
            addr,
            state,
        })
    }

    /// The address it listens on (the port chosen when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token clients present as their API key.
    pub fn token(&self) -> &str {
        self.state.token.as_str()
    }

    /// What a client should set (see [`ProxyState::client_env`]).
    pub fn client_env(&self) -> Vec<(&'static str, String)> {
        self.state.client_env(self.addr)
    }

    /// Serves until SIGTERM, SIGINT or SIGHUP, then lets requests in
    /// flight finish and their receipts land.
    pub fn serve(self) -> crate::Result<()> {
        self.rt
            .block_on(serve(self.listener, self.state, termination()))
            .map_err(|e| crate::Error::input(format!("the proxy failed: {e}"), "see the receipts"))
    }
}

/// The async runtime the proxy runs on (`workers` threads, else one per
/// core).
pub(super) fn runtime(workers: Option<usize>) -> crate::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.enable_all().build().map_err(|e| {
        crate::Error::input(
            format!("cannot start the async runtime: {e}"),
            "report this",
        )
    })
}
