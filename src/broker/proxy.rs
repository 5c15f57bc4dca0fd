//! `craik proxy`: a local reverse proxy that injects the credential, so the
//! agent never holds it. Clients present a random per-session token where
//! the family expects its API key; per request the proxy writes a durable
//! `call.started` receipt before anything goes upstream (503 if it cannot),
//! streams the response through as it arrives, and writes `call.finished`
//! with status, latency, bytes, model and token usage.
//!
//! It serves its connections itself (hyper's HTTP/1 server) so it can
//! bound them: a header-read timeout that is also the idle keep-alive
//! timeout, a cap on connections past which a new one is told `503
//! craik_busy`, and `TCP_NODELAY` so streamed events are not held back.
//! It forwards only origin-form paths under the base URL, drops hop-by-hop
//! headers both ways, and masks the credential wherever an upstream echoes
//! it into a response.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use bytes::Bytes;
use futures_util::Stream;
use rand::RngCore;
use subtle::ConstantTimeEq;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use zeroize::{Zeroize, Zeroizing};

use super::Started;
use super::usage;
use crate::audit::store::group::GroupCommitter;
use crate::audit::{NewReceipt, ReceiptKind, Status};
use crate::home::Home;
use crate::pool::{Outcome, PoolStore};
use crate::profile::{Profile, ProfileId};
use crate::provider::{
    self, CREDENTIAL_HEADERS, CREDENTIAL_QUERY_PARAMS, FamilyInfo, HOP_BY_HOP_HEADERS,
};

/// Largest request body forwarded.
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;
/// How much of a response is kept to read token usage from.
const USAGE_CAPTURE_BYTES: usize = 1024 * 1024;
/// How long in-flight receipts may take to land at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may take to send a request's head, counted from
/// when it was accepted or its previous response ended: it bounds a client
/// that sends nothing, half a request line or headers byte by byte, and
/// it is the idle keep-alive timeout too.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Overrides [`HEADER_READ_TIMEOUT`], in milliseconds (for tests).
pub const HEADER_READ_TIMEOUT_VAR: &str = "CRAIK_PROXY_HEADER_TIMEOUT_MS";
/// Connections served at once; a connection past the cap is answered
/// `503 craik_busy` at once and closed.
pub const MAX_CONNECTIONS: usize = 256;
/// Overrides [`MAX_CONNECTIONS`].
pub const MAX_CONNECTIONS_VAR: &str = "CRAIK_PROXY_MAX_CONNECTIONS";
/// How long a write to a client may make no progress before the
/// connection is closed: a client that stops reading its response would
/// otherwise hold a connection (and the upstream's) for ever.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Overrides [`WRITE_STALL_TIMEOUT`], in milliseconds (for tests).
pub const WRITE_STALL_TIMEOUT_VAR: &str = "CRAIK_PROXY_WRITE_TIMEOUT_MS";
/// How long a request body may take to arrive in full (408 after).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections past the cap being answered at once; past this many more
/// are closed unanswered.
const BUSY_ANSWERS: usize = 64;
/// How long answering a connection past the cap may take.
const BUSY_ANSWER_TIMEOUT: Duration = Duration::from_secs(1);
/// What an echoed credential becomes, padded with `*` to the credential's
/// length (all `*` when the credential is shorter), so lengths hold.
pub const REDACTED: &str = "[craik: redacted]";
/// Request headers craik sets itself rather than forwarding: the upstream's
/// host and the body's length from reqwest, and no `accept-encoding`, so
/// the response comes as identity (usage is read from it, and the
/// credential is looked for in it).
const SET_BY_CRAIK: &[&str] = &["host", "content-length", "accept-encoding"];

/// One credential the proxy can use: a session started by the pipeline
/// ([`super::Authorized::start_session`]), and where it goes.
pub struct Upstream {
    session: Arc<Started>,
    base_url: String,
    /// Re-authorizes the session before each request.
    recheck: Arc<super::pipeline::Recheck>,
}

impl Upstream {
    /// Refuses a marker profile (no material to inject) or one with no
    /// base URL.
    pub fn new(
        session: Arc<Started>,
        recheck: super::pipeline::Recheck,
    ) -> crate::Result<Upstream> {
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
        Ok(Upstream {
            session,
            base_url,
            recheck: Arc::new(recheck),
        })
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
    /// Requests refused for a missing or wrong token since the last
    /// receipt saying so, and when that receipt was written.
    bad_tokens: std::sync::Mutex<(u64, Option<Instant>)>,
}

/// At most one receipt per this long for requests with a wrong token: a
/// trace of someone probing the proxy, without letting them flood the log.
const BAD_TOKEN_RECEIPT_EVERY: Duration = Duration::from_secs(60);

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
            .tcp_nodelay(true)
            .build()
            .map_err(|e| crate::Error::internal("cannot build the HTTP client", e))?;
        Ok(ProxyState {
            token,
            family,
            upstreams,
            pool,
            committer,
            client,
            inflight: AtomicUsize::new(0),
            drained: Notify::new(),
            bad_tokens: std::sync::Mutex::new((0, None)),
        })
    }

    /// The token clients present.
    pub fn token(&self) -> &str {
        &self.token
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

/// Whether a header stays on its hop: a hop-by-hop header, or one that
/// `headers`' own `Connection` header names.
fn hop_by_hop(name: &HeaderName, headers: &HeaderMap) -> bool {
    let n = name.as_str();
    HOP_BY_HOP_HEADERS.contains(&n)
        || headers
            .get_all(axum::http::header::CONNECTION)
            .iter()
            .any(|v| {
                v.as_bytes()
                    .split(|b| *b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(n.as_bytes()))
            })
}

/// Why craik will not forward a request with this method and target, if
/// it will not: (error type, message). craik is a reverse proxy for one
/// base URL, so it takes origin-form targets only (`/path?query`), and a
/// path only when it stays under the base URL on every reading of it.
fn refused_target(method: &Method, uri: &Uri) -> Option<(&'static str, &'static str)> {
    const TARGET: &str = "craik_bad_target";
    if method == Method::CONNECT {
        return Some((
            TARGET,
            "CONNECT is refused: craik forwards requests to the provider's base URL, it opens no tunnels",
        ));
    }
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Some((
            TARGET,
            "absolute-form targets (http://host/path) are refused: send the path only",
        ));
    }
    if !uri.path().starts_with('/') {
        return Some((
            TARGET,
            "the target must be a path starting with '/' (asterisk-form '*' is refused)",
        ));
    }
    bad_path(uri.path()).map(|why| ("craik_bad_path", why))
}

/// Whether `path`, joined to the upstream's base URL, could leave the
/// base's path or be read otherwise by the upstream than by craik, and
/// why: a `.` or `..` segment, percent-encoded or not (the URL standard
/// resolves both when the URL is parsed); a backslash, or a
/// percent-encoded `/`, `\` or `;` (servers that decode before routing
/// read them as separators); a percent-encoded `%` (decoded twice,
/// `%252e%252e` is `..`, and so is `%25%32%65%25%32%65`); a `;` (path
/// parameters, as in `/..;/`, which some servers drop before routing).
/// With a base of `https://gw/tenant-a/v1`, `/../../tenant-b/x` would
/// carry the credential to another path.
fn bad_path(path: &str) -> Option<&'static str> {
    const DOTS: &str = "the path has a '.' or '..' segment or a backslash; craik forwards only paths under the provider's base URL";
    if path.contains('\\') {
        return Some(DOTS);
    }
    if path.contains(';') {
        return Some(
            "the path has a ';' (a path parameter); craik forwards only plain paths under the provider's base URL",
        );
    }
    let b = path.as_bytes();
    for i in memchr::memchr_iter(b'%', b) {
        match b
            .get(i + 1..i + 3)
            .map(<[u8]>::to_ascii_lowercase)
            .as_deref()
        {
            Some(b"2f" | b"5c" | b"3b") => {
                return Some(
                    "the path has a percent-encoded '/', '\\' or ';' (%2F, %5C, %3B); craik forwards only plain paths under the provider's base URL",
                );
            }
            Some(b"25") => {
                return Some(
                    "the path has a percent-encoded '%' (%25), which a server that decodes twice reads as another escape; craik forwards only plain paths under the provider's base URL",
                );
            }
            _ => {}
        }
    }
    // Spelled out, a dot segment is at most `%2e%2e`: six bytes.
    let dot_segment = path.split('/').any(|seg| {
        seg.len() <= 6 && {
            let s = seg.to_ascii_lowercase().replace("%2e", ".");
            s == "." || s == ".."
        }
    });
    dot_segment.then_some(DOTS)
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

/// Counts a request refused for its token, and leaves a `denial` receipt
/// (condition `proxy_token`, with the count) at most once a minute.
fn note_bad_token(st: &Arc<ProxyState>, uri: &axum::http::Uri) {
    let due = {
        let mut b = st.bad_tokens.lock().unwrap_or_else(|e| e.into_inner());
        b.0 += 1;
        if b.1.is_none_or(|t| t.elapsed() >= BAD_TOKEN_RECEIPT_EVERY) {
            let n = b.0;
            *b = (0, Some(Instant::now()));
            Some(n)
        } else {
            None
        }
    };
    let (Some(n), Some(up)) = (due, st.upstreams.first()) else {
        return;
    };
    let mut r = receipt(up, ReceiptKind::Denial, Status::Denied)
        .reason(format!(
            "{n} request(s) with a missing or wrong proxy token (receipts for them are written at most once a minute)"
        ))
        .detail("refused_requests", n)
        .detail("path", uri.path());
    r.policy_condition = Some("proxy_token".into());
    // Best effort, never waited for: the request is refused either way.
    let _ = st.committer.submit_deferred(r);
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

/// Runs `up`'s [`super::pipeline::Recheck`]: inline when nothing it
/// watches changed, else on a blocking thread (it reads files, may
/// refresh the operator's session and writes a denial receipt).
async fn reauthorize(up: &Upstream) -> Result<(), Response<Body>> {
    if up.recheck.unchanged() {
        return Ok(());
    }
    let recheck = up.recheck.clone();
    let result = tokio::task::spawn_blocking(move || recheck.check())
        .await
        .unwrap_or_else(|_| {
            Err(crate::Error::input(
                "the re-authorization failed",
                "see the proxy's stderr",
            ))
        });
    result.map_err(|e| {
        let (status, kind) = match &e {
            crate::Error::Audit(_) => (StatusCode::SERVICE_UNAVAILABLE, "craik_audit_unavailable"),
            crate::Error::ApprovalRequired { .. } => {
                (StatusCode::FORBIDDEN, "craik_approval_required")
            }
            _ => (StatusCode::FORBIDDEN, "craik_denied"),
        };
        json_error(status, kind, &e.to_string())
    })
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

async fn handle(st: Arc<ProxyState>, req: Request) -> Response<Body> {
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
        note_bad_token(&st, &parts.uri);
        return json_error(
            StatusCode::UNAUTHORIZED,
            "craik_unauthorized",
            "missing or wrong proxy token",
        );
    }
    if let Some((kind, why)) = refused_target(&parts.method, &parts.uri) {
        return json_error(StatusCode::BAD_REQUEST, kind, why);
    }
    let body = axum::body::to_bytes(body, MAX_REQUEST_BYTES);
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, body).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "craik_request_too_large",
                "the request body is larger than craik forwards (32 MiB)",
            );
        }
        Err(_) => {
            return json_error(
                StatusCode::REQUEST_TIMEOUT,
                "craik_request_timeout",
                "the request body did not arrive within 60 seconds",
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
        // A policy, grant, profile or session that changed since the
        // session started takes effect now (a denial receipt, 403).
        if let Err(resp) = reauthorize(up).await {
            return resp;
        }
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
            if SET_BY_CRAIK.contains(&n)
                || CREDENTIAL_HEADERS.contains(&n)
                || hop_by_hop(k, &parts.headers)
            {
                continue;
            }
            headers.append(k.clone(), v.clone());
        }
        let Some(credential) = up.session.material() else {
            // Upstream::new refuses sessions without material.
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "craik_internal_error",
                "the proxy has no credential for this upstream",
            );
        };
        let client_has = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
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
        let mut redacted = 0u64;
        for (k, v) in resp.headers() {
            if hop_by_hop(k, resp.headers()) {
                continue;
            }
            builder = builder.header(k, redact_header(v, credential.as_bytes(), &mut redacted));
        }
        let fin = finished_base(if status.is_success() {
            Status::Ok
        } else {
            Status::Error
        })
        .detail("status", status.as_u16());
        let st2 = st.clone();
        let started_id = started.id.clone();
        let done = move |end: TapEnd| {
            let mut r = fin
                .detail("bytes_out", end.bytes_out)
                .detail("latency_ms", t0.elapsed().as_millis() as u64);
            if let Some(t) = end.ttfb {
                r = r.detail("ttfb_ms", t.as_millis() as u64);
            }
            if redacted + end.redacted > 0 {
                r = r.detail("redacted", redacted + end.redacted);
            }
            if let Some(u) = usage::usage(&content_type, &end.captured) {
                r = r.detail("usage", serde_json::Value::Object(u));
            }
            if let Some(e) = end.error {
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
        let expected = if method == Method::HEAD
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
            received: 0,
            bytes: 0,
            captured: Vec::new(),
            t0,
            ttfb: None,
            redactor: Redactor::new(up.session.clone()),
            ended: false,
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

/// How a response body ended, for its `call.finished` receipt.
struct TapEnd {
    /// Bytes sent to the client.
    bytes_out: u64,
    /// The first MiB of what was sent, to read usage from.
    captured: Vec<u8>,
    /// Why it ended early, if it did.
    error: Option<String>,
    ttfb: Option<Duration>,
    /// Occurrences of the credential masked in the body.
    redacted: u64,
}

type Done = Box<dyn FnOnce(TapEnd) + Send>;

/// Passes the response body through chunk by chunk with the credential
/// masked, counting it and keeping the first MiB (for usage), and reports
/// when it ends, fails or the client goes away.
struct Tap {
    /// The body's length, when the upstream declared it.
    expected: Option<u64>,
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    /// Bytes received from the upstream.
    received: u64,
    /// Bytes passed on to the client.
    bytes: u64,
    captured: Vec<u8>,
    t0: Instant,
    ttfb: Option<Duration>,
    redactor: Redactor,
    /// The upstream's stream has ended (and what was held back is out).
    ended: bool,
    done: Option<Done>,
}

impl Tap {
    fn finish(&mut self, error: Option<String>) {
        if let Some(done) = self.done.take() {
            done(TapEnd {
                bytes_out: self.bytes,
                captured: std::mem::take(&mut self.captured),
                error,
                ttfb: self.ttfb,
                redacted: self.redactor.count,
            });
        }
    }

    /// Counts `out` as sent and keeps what fits of it for usage.
    fn pass(&mut self, out: &[u8]) {
        self.bytes += out.len() as u64;
        let room = USAGE_CAPTURE_BYTES.saturating_sub(self.captured.len());
        if room > 0 {
            let n = room.min(out.len());
            self.captured.extend_from_slice(&out[..n]);
        }
    }
}

impl Stream for Tap {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if this.ttfb.is_none() {
                        this.ttfb = Some(this.t0.elapsed());
                    }
                    this.received += chunk.len() as u64;
                    // A body of known length is complete once that many
                    // bytes have come: nothing is held back then.
                    let last = this.expected == Some(this.received);
                    let out = this.redactor.feed(chunk, last);
                    if out.is_empty() && !last {
                        continue;
                    }
                    this.pass(&out);
                    if last {
                        // The client may stop reading right then, before
                        // the stream reports its end.
                        this.finish(None);
                    }
                    return Poll::Ready(Some(Ok(out)));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finish(Some("the upstream response ended early".into()));
                    return Poll::Ready(Some(Err(std::io::Error::other(e))));
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    let rest = this.redactor.flush();
                    if !rest.is_empty() {
                        this.pass(&rest);
                        this.finish(None);
                        return Poll::Ready(Some(Ok(rest)));
                    }
                    this.finish(None);
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.finish(Some("the client closed the connection".into()));
    }
}

/// Masks the credential in a response body as it streams. Bytes at the
/// end of a chunk that could begin it are held back until the next chunk
/// shows whether they do; a chunk that neither holds it nor ends in a
/// beginning of it passes as it is, without a copy.
struct Redactor {
    session: Arc<Started>,
    /// Held back: the end of what came, a beginning of the credential.
    held: Vec<u8>,
    /// Occurrences masked.
    count: u64,
}

impl Redactor {
    fn new(session: Arc<Started>) -> Redactor {
        Redactor {
            session,
            held: Vec::new(),
            count: 0,
        }
    }

    /// What to send of `chunk` now (`last`: no more will come).
    fn feed(&mut self, chunk: Bytes, last: bool) -> Bytes {
        match self.session.material() {
            Some(key) => redact_chunk(key.as_bytes(), &mut self.held, &mut self.count, chunk, last),
            None => chunk,
        }
    }

    /// What was held back, once the body has ended without completing it.
    fn flush(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.held))
    }
}

impl Drop for Redactor {
    fn drop(&mut self) {
        self.held.zeroize();
    }
}

/// The streaming step of [`Redactor`]: masks every whole `key` in
/// `held` + `chunk`, and holds back the end that could begin one, unless
/// `last`.
fn redact_chunk(
    key: &[u8],
    held: &mut Vec<u8>,
    count: &mut u64,
    chunk: Bytes,
    last: bool,
) -> Bytes {
    if key.is_empty() {
        return chunk;
    }
    if held.is_empty() && memchr::memmem::find(&chunk, key).is_none() {
        let keep = if last { 0 } else { prefix_at_end(&chunk, key) };
        if keep == 0 {
            return chunk;
        }
        let cut = chunk.len() - keep;
        held.extend_from_slice(&chunk[cut..]);
        return chunk.slice(..cut);
    }
    let mut buf = std::mem::take(held);
    buf.extend_from_slice(&chunk);
    let (n, end) = mask_all(&mut buf, key);
    *count += n;
    let keep = if last {
        0
    } else {
        prefix_at_end(&buf[end..], key)
    };
    *held = buf.split_off(buf.len() - keep);
    Bytes::from(buf)
}

/// The length of the longest end of `data` that is a beginning of `key`
/// (shorter than `key`): what the next chunk could complete into it.
fn prefix_at_end(data: &[u8], key: &[u8]) -> usize {
    let span = (key.len() - 1).min(data.len());
    let tail = &data[data.len() - span..];
    memchr::memchr_iter(key[0], tail)
        .find(|&i| key.starts_with(&tail[i..]))
        .map_or(0, |i| span - i)
}

/// Masks every occurrence of `key` in `buf` in place, left to right:
/// (how many, where the last one ends).
fn mask_all(buf: &mut [u8], key: &[u8]) -> (u64, usize) {
    let (mut n, mut at) = (0, 0);
    while let Some(i) = memchr::memmem::find(&buf[at..], key) {
        let p = at + i;
        let mask = &mut buf[p..p + key.len()];
        let marker = REDACTED.as_bytes();
        if mask.len() >= marker.len() {
            mask[..marker.len()].copy_from_slice(marker);
            mask[marker.len()..].fill(b'*');
        } else {
            mask.fill(b'*');
        }
        n += 1;
        at = p + key.len();
    }
    (n, at)
}

/// A response header's value with the credential masked (counted in
/// `count`).
fn redact_header(v: &HeaderValue, key: &[u8], count: &mut u64) -> HeaderValue {
    if key.is_empty() || memchr::memmem::find(v.as_bytes(), key).is_none() {
        return v.clone();
    }
    let mut b = v.as_bytes().to_vec();
    let (n, _) = mask_all(&mut b, key);
    *count += n;
    HeaderValue::from_bytes(&b).unwrap_or_else(|_| HeaderValue::from_static(REDACTED))
}

/// The bounds on a proxy's connections: [`MAX_CONNECTIONS`] and
/// [`HEADER_READ_TIMEOUT`] unless their variables say otherwise.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_connections: usize,
    header_timeout: Duration,
    write_timeout: Duration,
}

impl Limits {
    fn from_env() -> Limits {
        let num = |var: &str, max: u64| -> Option<u64> {
            let v = std::env::var(var).ok()?;
            match v.trim().parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => Some(n),
                _ => {
                    use std::io::Write as _;
                    let _ = writeln!(
                        std::io::stderr(),
                        "craik proxy: warning: {var}={v:?} is not a number from 1 to {max}; using the default"
                    );
                    None
                }
            }
        };
        Limits {
            max_connections: num(MAX_CONNECTIONS_VAR, 65_536)
                .map_or(MAX_CONNECTIONS, |n| n as usize),
            header_timeout: num(HEADER_READ_TIMEOUT_VAR, 600_000)
                .map_or(HEADER_READ_TIMEOUT, Duration::from_millis),
            write_timeout: num(WRITE_STALL_TIMEOUT_VAR, 3_600_000)
                .map_or(WRITE_STALL_TIMEOUT, Duration::from_millis),
        }
    }
}

/// Serves until `shutdown` resolves, then lets requests in flight finish
/// and their receipts land. Each accepted connection (loopback ones with
/// `TCP_NODELAY`) holds one of the [`MAX_CONNECTIONS`] permits until it closes; past
/// them it is answered 503 `craik_busy`. `sandbox` is a sandbox's socket
/// ([`super::sandbox::Isolation`]), served like the loopback listener: a
/// sandboxed child's connection costs this process one descriptor, and
/// waits on nothing but this loop (a relay that connected onwards to
/// `listener` held descriptors the proxy then could not accept with).
pub async fn serve(
    listener: tokio::net::TcpListener,
    sandbox: Option<tokio::net::UnixListener>,
    state: Arc<ProxyState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = Limits::from_env();
    let admit = Admit {
        permits: Arc::new(Semaphore::new(limits.max_connections)),
        busy: Arc::new(Semaphore::new(BUSY_ANSWERS)),
        limits,
        state: state.clone(),
        closing: watch::channel(false),
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Streamed events go out as they are written, not when
                    // the client's delayed ACK lets Nagle's algorithm send
                    // them.
                    let _ = stream.set_nodelay(true);
                    admit.serve(stream);
                }
                Err(e) => accept_failed(e).await,
            },
            accepted = accept_unix(sandbox.as_ref()) => match accepted {
                Ok(stream) => admit.serve(stream),
                Err(e) => accept_failed(e).await,
            },
            () = shutdown.as_mut() => break,
        }
    }
    drop(sandbox);
    let Admit {
        permits, closing, ..
    } = admit;
    let closing = closing.0;
    drop(listener);
    // Idle connections close now, the others after their response; each
    // gives its permit back when it ends.
    let _ = closing.send(true);
    let _ = permits.acquire_many(limits.max_connections as u32).await;
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

/// A connection's permit, or a busy answer past the cap.
struct Admit {
    permits: Arc<Semaphore>,
    busy: Arc<Semaphore>,
    limits: Limits,
    state: Arc<ProxyState>,
    closing: (watch::Sender<bool>, watch::Receiver<bool>),
}

impl Admit {
    fn serve<S>(&self, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(connection(
                    stream,
                    self.state.clone(),
                    self.limits,
                    permit,
                    self.closing.1.clone(),
                ));
            }
            Err(_) => {
                if let Ok(permit) = self.busy.clone().try_acquire_owned() {
                    tokio::spawn(answer_busy(stream, self.limits.max_connections, permit));
                }
            }
        }
    }
}

/// The next connection on a sandbox's socket; with none, never.
async fn accept_unix(
    sandbox: Option<&tokio::net::UnixListener>,
) -> std::io::Result<tokio::net::UnixStream> {
    match sandbox {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

/// After a failed `accept`: nothing to wait for when one connection
/// failed; a pause when the process is out of descriptors or memory, so
/// the loop does not spin until connections close.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Serves one connection (HTTP/1.1, kept alive) until it closes, times
/// out waiting for a request head, or the proxy shuts down.
async fn connection<S>(
    stream: S,
    st: Arc<ProxyState>,
    limits: Limits,
    _permit: OwnedSemaphorePermit,
    mut closing: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let st = st.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(st, req.map(Body::new)).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let stream = StallLimit::new(stream, limits.write_timeout);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = closing.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// A client connection whose writes fail once one has waited `limit`
/// without the client taking a byte: hyper then closes the connection,
/// and the call's `call.finished` says the client went away.
struct StallLimit<S> {
    inner: S,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> StallLimit<S> {
    fn new(inner: S, limit: Duration) -> Self {
        StallLimit {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Clears the clock on progress; starts it, or fails when it ran out,
    /// while the write waits.
    fn watch<T>(
        &mut self,
        cx: &mut TaskContext<'_>,
        p: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        use std::future::Future as _;
        match p {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.limit;
                let clock = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match clock.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client stopped reading its response",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for StallLimit<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for StallLimit<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let p = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, p)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let p = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, p)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        let p = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, p)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Tells a connection past the cap that the proxy is busy, and closes it.
/// What the client sent is read (until it closes, within a second), so
/// the close does not reset the connection before the answer is read.
async fn answer_busy<S>(mut stream: S, cap: usize, _permit: OwnedSemaphorePermit)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = serde_json::json!({"error": {
        "type": "craik_busy",
        "message": format!("the proxy is serving {cap} connections, its limit; retry when one closes"),
    }})
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(BUSY_ANSWER_TIMEOUT, async {
        // The request's head first (up to 16 KiB, for at most 200 ms): an
        // answer that arrives before the client has sent its request is
        // one HTTP clients refuse as unexpected.
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), async {
            while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// SIGTERM, SIGINT and SIGHUP, caught from the moment this is made (in a
/// runtime's context): a signal that arrives before the proxy serves
/// still drains it rather than kill it.
pub struct Termination(
    Option<(
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
    )>,
);

impl Termination {
    /// Installs the handlers (none, if they cannot be installed).
    pub fn install() -> Termination {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(t), Ok(i), Ok(h)) => Termination(Some((t, i, h))),
            _ => Termination(None),
        }
    }

    /// Resolves on the first of the signals (never, without handlers).
    pub async fn wait(self) {
        let Some((mut term, mut int, mut hup)) = self.0 else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
    }
}

/// A proxy bound to its address and ready to serve: `craik proxy`.
pub struct Proxy {
    rt: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: Arc<ProxyState>,
    termination: Termination,
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
        super::auto_checkpoints(ctx, &committer);
        super::ship_to_team(&ctx.home);
        let state = Arc::new(ProxyState::new(
            new_token(),
            family,
            sessions.upstreams,
            sessions.pool.map(|p| (ctx.home.clone(), p)),
            committer,
        )?);
        let rt = runtime(None)?;
        // Before the address is known to anyone who could signal it.
        let termination = {
            let _in_rt = rt.enter();
            Termination::install()
        };
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(listen))
            .map_err(|e| {
                crate::Error::input(
                    format!("cannot listen on {listen}: {e}"),
                    "pick another --listen address",
                )
            })?;
        let addr = listener.local_addr().map_err(|e| {
            crate::Error::internal("cannot read the address the proxy listens on", e)
        })?;
        Ok(Proxy {
            rt,
            listener,
            addr,
            state,
            termination,
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
            .block_on(serve(
                self.listener,
                None,
                self.state,
                self.termination.wait(),
            ))
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
    b.enable_all()
        .build()
        .map_err(|e| crate::Error::internal("cannot start the async runtime", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `chunks` through the streaming redaction as a body would go:
    /// (what the client gets, occurrences masked).
    fn stream(key: &[u8], chunks: &[&[u8]]) -> (Vec<u8>, u64) {
        let (mut held, mut count, mut out) = (Vec::new(), 0, Vec::new());
        for c in chunks {
            let sent = redact_chunk(key, &mut held, &mut count, Bytes::copy_from_slice(c), false);
            out.extend_from_slice(&sent);
        }
        out.extend_from_slice(&held);
        (out, count)
    }

    #[test]
    fn the_credential_is_masked_wherever_the_chunks_split_it() {
        let key = b"sk-proj-0123456789abcdefghij";
        let mask = format!("{REDACTED}{}", "*".repeat(key.len() - REDACTED.len()));
        let body = [&b"a "[..], key, b" b ", key, key, b" sk-pr c"].concat();
        let want = [
            &b"a "[..],
            mask.as_bytes(),
            b" b ",
            mask.as_bytes(),
            mask.as_bytes(),
            b" sk-pr c",
        ]
        .concat();
        // Every split into two and three chunks, empty ones included.
        for i in 0..=body.len() {
            assert_eq!(stream(key, &[&body[..i], &body[i..]]), (want.clone(), 3));
            for j in i..=body.len() {
                let parts = [&body[..i], &body[i..j], &body[j..]];
                assert_eq!(stream(key, &parts), (want.clone(), 3), "{i} {j}");
            }
        }
        // Byte by byte.
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(stream(key, &bytes), (want, 3));
        // A beginning that never completes reaches the client as it was.
        assert_eq!(stream(key, &[b"x sk-pro", b"j-0"]).0, b"x sk-proj-0");
        // A credential shorter than the marker is masked with '*'.
        assert_eq!(stream(b"k3y!", &[b"[k3", b"y!]"]), (b"[****]".to_vec(), 1));
    }

    #[test]
    fn a_chunk_without_the_credential_passes_uncopied() {
        let key = b"sk-proj-0123456789";
        let chunk = Bytes::from_static(b"data: {\"choices\":[]}\n\n");
        let (mut held, mut count) = (Vec::new(), 0);
        let out = redact_chunk(key, &mut held, &mut count, chunk.clone(), false);
        assert_eq!(out.as_ptr(), chunk.as_ptr());
        assert_eq!(out.len(), chunk.len());
        assert!(held.is_empty());
        // Its end could begin the credential: held back, the rest uncopied.
        let chunk = Bytes::from_static(b"data: sk-pr");
        let out = redact_chunk(key, &mut held, &mut count, chunk.clone(), false);
        assert_eq!((out.as_ptr(), &out[..]), (chunk.as_ptr(), &b"data: "[..]));
        assert_eq!(held, b"sk-pr");
        // Unless it is the last.
        held.clear();
        let out = redact_chunk(key, &mut held, &mut count, chunk.clone(), true);
        assert_eq!(&out[..], &chunk[..]);
        assert_eq!(count, 0);
    }

    #[test]
    fn headers_are_masked() {
        let mut n = 0;
        let v = HeaderValue::from_static(
            "Bearer sk-proj-0123456789abcdefghij, again sk-proj-0123456789abcdefghij",
        );
        let out = redact_header(&v, b"sk-proj-0123456789abcdefghij", &mut n);
        assert_eq!(n, 2);
        assert_eq!(
            out.to_str().unwrap(),
            "Bearer [craik: redacted]***********, again [craik: redacted]***********"
        );
    }

    #[test]
    fn targets_and_paths() {
        let t = |m: &str, u: &str| {
            refused_target(&m.parse().unwrap(), &u.parse().unwrap()).map(|(k, _)| k)
        };
        assert_eq!(t("CONNECT", "evil.example:443"), Some("craik_bad_target"));
        assert_eq!(t("OPTIONS", "*"), Some("craik_bad_target"));
        assert_eq!(
            t("GET", "http://evil.example/v1/models"),
            Some("craik_bad_target")
        );
        for bad in [
            "/../x",
            "/a/%2E%2e/x",
            "/.%2e",
            "/a\\b",
            "/a%2fb",
            "/a%2Fb",
            "/a%5cb",
            "/a%5Cb",
            "/a%3bb",
            "/%252e%252e/x",
            "/a%25%32%65",
            "/a%252F",
            "/a%25",
            "/..;/x",
            "/v1;x/models",
        ] {
            assert_eq!(t("GET", bad), Some("craik_bad_path"), "{bad}");
        }
        for good in [
            "/v1/models",
            "/v1beta/models/gemini-pro:generateContent",
            "/v1/files/a.b..c",
            "/v1/x%20y?q=%2F..%2F;",
            "/a%zz",
            "/a%2",
            "/...",
        ] {
            assert_eq!(t("GET", good), None, "{good}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, X-Hop ,x-other"),
        );
        h.insert("x-hop", HeaderValue::from_static("1"));
        let is = |n: &str| hop_by_hop(&HeaderName::from_bytes(n.as_bytes()).unwrap(), &h);
        for n in [
            "connection",
            "keep-alive",
            "proxy-connection",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "proxy-authorization",
            "proxy-authenticate",
            "x-hop",
            "x-other",
        ] {
            assert!(is(n), "{n}");
        }
        assert!(!is("x-kept") && !is("content-type"));
    }
}
