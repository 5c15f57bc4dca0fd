//! A local HTTP server that plays a provider API: it records what it was
//! sent, answers JSON and SSE with usage figures, and can answer 401, 429,
//! 500, hold a stream until released, close early, echo the credential it
//! was sent, or drip SSE events a few milliseconds apart.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Response, StatusCode};
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    Normal,
    Status(u16),
    /// Send the first SSE event, then the rest only after `release`.
    HoldStream,
    /// Send one SSE event, then drop the connection.
    CloseEarly,
    /// Answer with the credential it was sent: whole in an `x-echo-auth`
    /// header, and in the body whole, split over three chunks and as a
    /// 4-byte prefix (see [`echo_chunks`]), the chunks 30 ms apart; with a
    /// `content-length` unless the path contains `chunked`. It also sends
    /// hop-by-hop response headers and one named in its `Connection`.
    Echo,
    /// Send [`DRIP_EVENTS`] SSE events 5 ms apart, recording when each
    /// was handed to the connection (`Shared::sent`).
    Drip,
    /// Speak the three agents' wire protocols, streamed as SSE when asked:
    /// Anthropic's Messages API (`/v1/messages`), OpenAI's Responses API
    /// (`/responses`) and Gemini's `generateContent` and
    /// `streamGenerateContent`, each answering [`AGENT_ANSWER`] with
    /// usage figures.
    Agents,
    /// Answer with 256 MiB of body, in 1 MiB chunks, as fast as the
    /// connection takes them.
    Flood,
}

/// What [`Behavior::Agents`] answers every prompt with.
pub const AGENT_ANSWER: &str = "ANSWER-FROM-THE-LOCAL-UPSTREAM";

/// How many events [`Behavior::Drip`] sends.
pub const DRIP_EVENTS: usize = 12;

/// The body chunks [`Behavior::Echo`] sends for `key` (at least 7 bytes),
/// and what a client must receive once `key` is masked as `mask`.
pub fn echo_chunks(key: &[u8], mask: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let cat = |parts: &[&[u8]]| parts.concat();
    let chunks = vec![
        cat(&[b"{\"whole\":\"", key, b"\",\"split\":\"", &key[..3]]),
        key[3..6].to_vec(),
        cat(&[&key[6..], b"\",\"partial\":\"", &key[..4]]),
        b"x\"}".to_vec(),
    ];
    let want = cat(&[
        b"{\"whole\":\"",
        mask,
        b"\",\"split\":\"",
        mask,
        b"\",\"partial\":\"",
        &key[..4],
        b"x\"}",
    ]);
    (chunks, want)
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

pub struct Shared {
    /// When set, POST /token is a Google-style token endpoint that checks
    /// JWT-bearer assertions with this RSA public key (PEM).
    pub token_key: Mutex<Option<Vec<u8>>>,
    pub minted: Mutex<u32>,
    /// Agent refresh tokens already used: each is good once (rotation),
    /// so a login refreshed twice with one token fails the second time.
    pub spent: Mutex<Vec<String>>,
    pub behavior: Mutex<Behavior>,
    pub seen: Mutex<Vec<Seen>>,
    pub release: Notify,
    /// When each [`Behavior::Drip`] event was handed to the connection.
    pub sent: Mutex<Vec<Instant>>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    _rt: tokio::runtime::Runtime,
}

impl Upstream {
    pub fn start(behavior: Behavior) -> Upstream {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Shared {
            token_key: Mutex::new(None),
            minted: Mutex::new(0),
            spent: Mutex::new(Vec::new()),
            behavior: Mutex::new(behavior),
            seen: Mutex::new(Vec::new()),
            release: Notify::new(),
            sent: Mutex::new(Vec::new()),
        });
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        // No Nagle delay on this side, so a test of the proxy's streaming
        // measures the proxy.
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream {
            addr,
            shared,
            _rt: rt,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    pub fn set(&self, b: Behavior) {
        *self.shared.behavior.lock().unwrap() = b;
    }

    pub fn release(&self) {
        self.shared.release.notify_one();
    }
}

fn sse_event(data: &str) -> bytes::Bytes {
    bytes::Bytes::from(format!("data: {data}\n\n"))
}

/// An SSE response of named events.
fn sse_named(events: Vec<(&str, serde_json::Value)>) -> Response<Body> {
    let body: String = events
        .into_iter()
        .map(|(name, data)| {
            if name.is_empty() {
                format!("data: {data}\n\n")
            } else {
                format!("event: {name}\ndata: {data}\n\n")
            }
        })
        .collect();
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(Body::from(body))
        .unwrap()
}

/// [`Behavior::Agents`]: one answer per protocol.
fn agents(method: &axum::http::Method, path: &str, body: &[u8]) -> Response<Body> {
    use serde_json::json;
    let ok_json = |v: serde_json::Value| {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap()
    };
    let req: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let stream = req.get("stream").and_then(|s| s.as_bool()) == Some(true);
    if path.ends_with("/wham/accounts/check") {
        // chatgpt.com's account check, which Codex makes for a ChatGPT login.
        return ok_json(json!({"accounts": [{"id": "acct-test",
            "workspace_backend_origin": "https://chatgpt.com",
            "account_routing_override": "NO_CONSTRAINT"}],
            "account_ordering": ["acct-test"], "default_account_id": "acct-test"}));
    }
    if method == axum::http::Method::HEAD || method == axum::http::Method::GET {
        return ok_json(json!({"data": [], "models": []}));
    }
    if path.contains("/v1internal:") {
        // Code Assist, which Gemini CLI talks to with a Google login: its
        // answers are Gemini's, wrapped in `response`.
        if path.ends_with(":loadCodeAssist") {
            return ok_json(json!({"currentTier": {"id": "free-tier"},
                "cloudaicompanionProject": "test-project"}));
        }
        if path.contains("enerateContent") {
            let answer = json!({"response": {"candidates": [{"content": {"parts": [{"text": AGENT_ANSWER}],
                "role": "model"}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 22, "totalTokenCount": 33},
                "modelVersion": "gemini-test"}});
            if path.contains(":stream") {
                return sse_named(vec![("", answer)]);
            }
            return ok_json(answer);
        }
        return ok_json(json!({}));
    }
    if path.contains("/messages") && !path.contains("count_tokens") {
        let msg = json!({"id": "msg_1", "type": "message", "role": "assistant",
            "model": "claude-test", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 11, "output_tokens": 1}});
        if !stream {
            let mut m = msg.clone();
            m["content"] = json!([{"type": "text", "text": AGENT_ANSWER}]);
            m["stop_reason"] = json!("end_turn");
            m["usage"] = json!({"input_tokens": 11, "output_tokens": 22});
            return ok_json(m);
        }
        return sse_named(vec![
            (
                "message_start",
                json!({"type": "message_start", "message": msg}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": AGENT_ANSWER}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": 22}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ]);
    }
    if path.ends_with("/responses") {
        let item = json!({"type": "message", "id": "msg_1", "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": AGENT_ANSWER, "annotations": []}]});
        let usage = json!({"input_tokens": 11, "output_tokens": 22, "total_tokens": 33,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0}});
        return sse_named(vec![
            (
                "response.created",
                json!({"type": "response.created",
                "response": {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}}),
            ),
            (
                "response.output_text.delta",
                json!({"type": "response.output_text.delta",
                "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": AGENT_ANSWER}),
            ),
            (
                "response.output_item.done",
                json!({"type": "response.output_item.done",
                "output_index": 0, "item": item}),
            ),
            (
                "response.completed",
                json!({"type": "response.completed",
                "response": {"id": "resp_1", "object": "response", "status": "completed",
                    "model": "gpt-test", "output": [item], "usage": usage}}),
            ),
        ]);
    }
    if path.contains(":generateContent") || path.contains(":streamGenerateContent") {
        let answer = json!({"candidates": [{"content": {"parts": [{"text": AGENT_ANSWER}],
            "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 22, "totalTokenCount": 33},
            "modelVersion": "gemini-test"});
        if path.contains(":stream") {
            return sse_named(vec![("", answer)]);
        }
        return ok_json(answer);
    }
    Response::builder()
        .status(404)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"error":{"message":"not found"}}"#))
        .unwrap()
}

async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 24)
        .await
        .unwrap_or_default();
    sh.seen.lock().unwrap().push(Seen {
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts.headers.clone(),
        body: body.to_vec(),
    });
    let behavior = *sh.behavior.lock().unwrap();
    let json = |status: u16, v: serde_json::Value| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap()
    };
    if parts.uri.path() == "/token" {
        return token_endpoint(&sh, &parts.headers, &body, json);
    }
    match behavior {
        Behavior::Status(s) => {
            return json(
                s,
                serde_json::json!({"error": {"message": format!("status {s}")}}),
            );
        }
        Behavior::Normal => {}
        Behavior::Agents => return agents(&parts.method, parts.uri.path(), &body),
        Behavior::Echo => return echo(&parts),
        Behavior::Flood => {
            let chunk = bytes::Bytes::from(vec![b'x'; 1 << 20]);
            let stream = futures_util::stream::iter(
                (0..256).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            return Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/octet-stream")
                .body(Body::from_stream(stream))
                .unwrap();
        }
        Behavior::Drip => {
            let sh2 = sh.clone();
            let stream = futures_util::stream::unfold(0usize, move |i| {
                let sh = sh2.clone();
                async move {
                    if i == DRIP_EVENTS {
                        return None;
                    }
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    sh.sent.lock().unwrap().push(Instant::now());
                    let ev: Result<bytes::Bytes, std::io::Error> =
                        Ok(sse_event(&format!(r#"{{"n":{i}}}"#)));
                    Some((ev, i + 1))
                }
            });
            return Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap();
        }
        Behavior::HoldStream | Behavior::CloseEarly => {
            let sh2 = sh.clone();
            let close = behavior == Behavior::CloseEarly;
            let stream = async_stream(sh2, close);
            return Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap();
        }
    }
    let streaming = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("stream").and_then(|s| s.as_bool()))
        .unwrap_or(false);
    if streaming {
        let events: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
            Ok(sse_event(
                r#"{"type":"message_start","message":{"usage":{"input_tokens":11}}}"#,
            )),
            Ok(sse_event(r#"{"choices":[{"delta":{"content":"hi"}}]}"#)),
            Ok(sse_event(
                r#"{"type":"message_delta","usage":{"output_tokens":22}}"#,
            )),
            Ok(sse_event("[DONE]")),
        ];
        return Response::builder()
            .status(200)
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(futures_util::stream::iter(events)))
            .unwrap();
    }
    if parts.uri.path().ends_with("/models") {
        return json(200, serde_json::json!({"data": [{"id": "m"}]}));
    }
    json(
        200,
        serde_json::json!({"id": "x", "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}),
    )
}

/// [`Behavior::Echo`]'s answer.
fn echo(parts: &axum::http::request::Parts) -> Response<Body> {
    let auth = parts
        .headers
        .get("authorization")
        .or_else(|| parts.headers.get("x-api-key"))
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let key = auth.strip_prefix(b"Bearer ").unwrap_or(&auth).to_vec();
    if key.len() < 7 {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Body::from("echo needs a credential of 7 bytes or more"))
            .unwrap();
    }
    let (chunks, _) = echo_chunks(&key, &key);
    let len: usize = chunks.iter().map(Vec::len).sum();
    let stream = futures_util::stream::unfold(0usize, move |i| {
        let chunk = chunks.get(i).cloned();
        async move {
            let chunk = chunk?;
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            let c: Result<bytes::Bytes, std::io::Error> = Ok(bytes::Bytes::from(chunk));
            Some((c, i + 1))
        }
    });
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("x-echo-auth", auth)
        .header("connection", "x-upstream-hop")
        .header("x-upstream-hop", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-authenticate", "Basic realm=\"up\"")
        .header("proxy-connection", "keep-alive")
        .header("trailer", "x-never")
        .header("upgrade", "h2c");
    if !parts.uri.path().contains("chunked") {
        b = b.header("content-length", len);
    }
    b.body(Body::from_stream(stream)).unwrap()
}

/// First event now; the rest after `release` (or an early close).
fn async_stream(
    sh: Arc<Shared>,
    close: bool,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::unfold(0u8, move |state| {
        let sh = sh.clone();
        async move {
            match state {
                0 => Some((Ok(sse_event(r#"{"n":1}"#)), 1)),
                1 if close => {
                    // Let the first event reach the client, then drop.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    Some((Err(std::io::Error::other("closed early")), 9))
                }
                1 => {
                    sh.release.notified().await;
                    Some((Ok(sse_event(r#"{"n":2,"usage":{"output_tokens":5}}"#)), 2))
                }
                _ => None,
            }
        }
    })
}

/// A Google-style token endpoint: the JWT bearer grant (the assertion's
/// signature, issuer, audience and scope are checked) and the refresh
/// grant of an authorized_user ADC file.
fn token_endpoint(
    sh: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    json: impl Fn(u16, serde_json::Value) -> Response<Body>,
) -> Response<Body> {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body).into_owned().collect();
    // Anthropic's and OpenAI's token endpoints take JSON.
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice(body) {
        form = m
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
            .collect();
    }
    let deny = |why: &str| {
        json(
            400,
            serde_json::json!({"error": "invalid_grant", "error_description": why}),
        )
    };
    match form.get("grant_type").map(String::as_str) {
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            let Some(key) = sh.token_key.lock().unwrap().clone() else {
                return deny("no key");
            };
            let Some(assertion) = form.get("assertion") else {
                return deny("no assertion");
            };
            let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
            v.set_audience(&[format!("http://{host}/token")]);
            v.set_issuer(&["craik-test@example.iam.gserviceaccount.com"]);
            let dk = jsonwebtoken::DecodingKey::from_rsa_pem(&key).unwrap();
            match jsonwebtoken::decode::<serde_json::Value>(assertion, &dk, &v) {
                Ok(t)
                    if t.claims["scope"]
                        .as_str()
                        .is_some_and(|s| s.contains("generative-language")) => {}
                Ok(_) => return deny("scope"),
                Err(e) => return deny(&e.to_string()),
            }
        }
        Some("refresh_token")
            if form.contains_key("refresh_token") && agent_client(&form).is_some() =>
        {
            return agent_refresh(sh, &form, json);
        }
        Some("refresh_token") => {
            if form.get("refresh_token").map(String::as_str) != Some("adc-refresh-token")
                || form.get("client_secret").map(String::as_str) != Some("adc-client-secret")
            {
                return deny("bad refresh token");
            }
        }
        _ => return deny("unsupported grant"),
    }
    let mut n = sh.minted.lock().unwrap();
    *n += 1;
    json(
        200,
        serde_json::json!({"access_token": format!("ya29.minted-{n}"), "expires_in": 3600, "token_type": "Bearer"}),
    )
}

/// The agent whose OAuth client a refresh request names (by client id),
/// with the prefix of the tokens it answers.
fn agent_client(form: &std::collections::HashMap<String, String>) -> Option<&'static str> {
    match form.get("client_id").map(String::as_str)? {
        "9d1c250a-e61b-44d9-88ed-5944d1962f5e" => Some("sk-ant-oat01-refreshed-"),
        "app_EMoamEEZ73f0CkXaXp7hrann" => Some("codex-refreshed-"),
        "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com" => {
            Some("ya29.refreshed-")
        }
        _ => None,
    }
}

/// An agent vendor's refresh grant: each refresh token is good once, and
/// the answer rotates it.
fn agent_refresh(
    sh: &Shared,
    form: &std::collections::HashMap<String, String>,
    json: impl Fn(u16, serde_json::Value) -> Response<Body>,
) -> Response<Body> {
    let prefix = agent_client(form).expect("checked");
    let rt = form["refresh_token"].clone();
    let mut spent = sh.spent.lock().unwrap();
    if spent.contains(&rt) {
        return json(
            400,
            serde_json::json!({"error": "invalid_grant", "error_description": "refresh token already used"}),
        );
    }
    spent.push(rt.clone());
    let mut n = sh.minted.lock().unwrap();
    *n += 1;
    let base = rt.split("-rotated-").next().unwrap_or(&rt).to_string();
    json(
        200,
        serde_json::json!({"access_token": format!("{prefix}{n}"),
            "refresh_token": format!("{base}-rotated-{n}"),
            "expires_in": 3600, "token_type": "Bearer"}),
    )
}
