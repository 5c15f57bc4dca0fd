//! A fast local OpenAI-compatible upstream for load tests
//! (benches/proxy_load.sh): `POST /chat/completions` and `GET /models`
//! answer a small fixed JSON body with `usage` (a chat request with
//! `"stream":true` gets 6 server-sent events 5 ms apart, then `[DONE]`); a request without an
//! `authorization` header gets 401. `GET /stats` (no header needed) tells
//! how many requests were answered 200, so a load test can count what
//! reached the upstream.
//!
//! Usage: bench_upstream [PORT] [--threads N]
//! Listens on 127.0.0.1:PORT (0, the default, picks a free port) and prints
//! the port as the first line of standard output. Serves until killed.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Response, StatusCode};
use axum::routing::{get, post};

const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}"#;
const MODELS: &str = r#"{"object":"list","data":[{"id":"bench-model","object":"model","owned_by":"bench"}],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}"#;
const UNAUTHORIZED: &str =
    r#"{"error":{"type":"invalid_request_error","message":"missing authorization header"}}"#;

fn json(status: StatusCode, body: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("static response")
}

/// Requests answered 200 since start.
static SERVED: AtomicU64 = AtomicU64::new(0);

fn answer(headers: &HeaderMap, body: &'static str) -> Response<Body> {
    if headers.contains_key("authorization") {
        SERVED.fetch_add(1, Ordering::Relaxed);
        json(StatusCode::OK, body)
    } else {
        json(StatusCode::UNAUTHORIZED, UNAUTHORIZED)
    }
}

/// Events of a streamed answer, and the time between them.
const EVENTS: usize = 6;
const EVENT_GAP: std::time::Duration = std::time::Duration::from_millis(5);

async fn chat(headers: HeaderMap, body: Bytes) -> Response<Body> {
    let streamed = body
        .windows(b"\"stream\":true".len())
        .any(|w| w == b"\"stream\":true");
    if !streamed || !headers.contains_key("authorization") {
        return answer(&headers, COMPLETION);
    }
    SERVED.fetch_add(1, Ordering::Relaxed);
    let events = futures_util::stream::unfold(0usize, |i| async move {
        if i > EVENTS {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(EVENT_GAP).await;
        }
        let data = if i == EVENTS {
            "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"model\":\"bench-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":6,\"total_tokens\":18}}\n\ndata: [DONE]\n\n".to_string()
        } else {
            format!(
                "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"model\":\"bench-model\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{i}\"}}}}]}}\n\n"
            )
        };
        Some((Ok::<_, std::io::Error>(Bytes::from(data)), i + 1))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(events))
        .expect("stream response")
}

async fn models(headers: HeaderMap) -> Response<Body> {
    answer(&headers, MODELS)
}

async fn stats() -> Response<Body> {
    let body = format!(r#"{{"served":{}}}"#, SERVED.load(Ordering::Relaxed));
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("stats response")
}

fn usage() -> ! {
    eprintln!("usage: bench_upstream [PORT] [--threads N]");
    std::process::exit(2);
}

fn main() {
    let mut port: u16 = 0;
    let mut threads: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .or_else(|| usage());
            }
            "-h" | "--help" => usage(),
            p => port = p.parse().unwrap_or_else(|_| usage()),
        }
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = threads {
        rt.worker_threads(n);
    }
    let rt = rt.build().expect("tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| {
                eprintln!("bench_upstream: cannot listen on 127.0.0.1:{port}: {e}");
                std::process::exit(1);
            });
        let bound = listener.local_addr().expect("local address");
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", bound.port());
            let _ = out.flush();
        }
        let app = Router::new()
            .route("/chat/completions", post(chat))
            .route("/v1/chat/completions", post(chat))
            .route("/models", get(models))
            .route("/v1/models", get(models))
            .route("/stats", get(stats));
        // Each event goes out when it is written (TCP_NODELAY), as from a
        // provider.
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.expect("serve");
    });
}
