//! `stigmem-ref` profiles against a local stigmem-style node: the
//! credential is a fact read at each use, never cached, so a revocation at
//! the node holds at the next call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use crate::common::*;

pub const NODE_KEY: &str = "node-api-key-canary-5521";

/// (entity, relation, scope) -> (value, revoked)
type Facts = HashMap<(String, String, String), (String, bool)>;

#[derive(Default)]
struct Node {
    facts: Mutex<Facts>,
    reads: Mutex<usize>,
    /// Answer 410 instead of `"revoked": true`.
    gone: Mutex<bool>,
    slow_ms: Mutex<u64>,
}

pub struct NodeServer {
    addr: SocketAddr,
    node: Arc<Node>,
    _rt: tokio::runtime::Runtime,
}

async fn facts(
    State(n): State<Arc<Node>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> axum::response::Response {
    *n.reads.lock().unwrap() += 1;
    let slow = *n.slow_ms.lock().unwrap();
    if slow > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(slow)).await;
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {NODE_KEY}"))
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let key = (
        q.get("entity").cloned().unwrap_or_default(),
        q.get("relation").cloned().unwrap_or_default(),
        q.get("scope").cloned().unwrap_or_default(),
    );
    let fact = n.facts.lock().unwrap().get(&key).cloned();
    match fact {
        None => (StatusCode::NOT_FOUND, "no such fact").into_response(),
        Some((_, true)) if *n.gone.lock().unwrap() => StatusCode::GONE.into_response(),
        Some((value, revoked)) => {
            axum::Json(json!({"value": value, "revoked": revoked})).into_response()
        }
    }
}

impl NodeServer {
    pub fn start() -> NodeServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let node = Arc::new(Node::default());
        let app = axum::Router::new()
            .route("/v1/facts", axum::routing::get(facts))
            .with_state(node.clone());
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        NodeServer {
            addr,
            node,
            _rt: rt,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn put(&self, entity: &str, relation: &str, scope: &str, value: &str, revoked: bool) {
        self.node.facts.lock().unwrap().insert(
            (entity.into(), relation.into(), scope.into()),
            (value.into(), revoked),
        );
    }

    pub fn reads(&self) -> usize {
        *self.node.reads.lock().unwrap()
    }
}

use crate::workload::key_in_child;

#[test]
fn stigmem_ref_reads_the_fact_at_each_use_and_refuses_a_revoked_one() {
    let node = NodeServer::start();
    let env = Env::new();
    let value = format!("sk-{}", canary());
    node.put(
        "team/openai",
        "craik:credential:value",
        "team",
        &value,
        false,
    );
    let add = |id: &str, extra: &[&str], key: Option<&str>| {
        let mut argv = vec!["auth", "add", id, "--kind=stigmem-ref", "--node"];
        let url = node.url();
        argv.push(&url);
        argv.extend_from_slice(extra);
        if key.is_some() {
            argv.push("--stdin");
        }
        env.run_stdin(&argv, key)
    };
    add(
        "openai:mem",
        &["--entity", "team/openai", "--scope", "team"],
        Some(NODE_KEY),
    )
    .ok();
    // Adding, status and doctor read nothing from the node.
    env.run(&["auth", "status"]).ok();
    env.run(&["doctor"]);
    assert_eq!(node.reads(), 0);

    // Each use reads the fact again: nothing is cached.
    assert_eq!(key_in_child(&env, "openai:mem").stdout, value);
    assert_eq!(key_in_child(&env, "openai:mem").stdout, value);
    assert_eq!(node.reads(), 2);

    // Revoked at the node: refused at the next call (exit 7), both as
    // `"revoked": true` and as HTTP 410.
    node.put(
        "team/openai",
        "craik:credential:value",
        "team",
        &value,
        true,
    );
    for gone in [false, true] {
        *node.node.gone.lock().unwrap() = gone;
        let r = key_in_child(&env, "openai:mem");
        r.code(7);
        r.error_with_hint("revoked");
        assert_eq!(r.stdout, "");
    }
    let finished = receipts(&env, "call.finished");
    assert_eq!(finished[0]["status"], "credential_unavailable");

    // A fact the node does not hold, a wrong API key, a node too slow.
    add(
        "openai:other",
        &["--entity", "team/anthropic", "--scope", "team"],
        Some(NODE_KEY),
    )
    .ok();
    key_in_child(&env, "openai:other")
        .code(7)
        .error_with_hint("holds no");
    add(
        "openai:badkey",
        &["--entity", "team/openai", "--scope", "team"],
        Some("wrong-key"),
    )
    .ok();
    key_in_child(&env, "openai:badkey")
        .code(7)
        .error_with_hint("API key");
    add(
        "openai:nokey",
        &["--entity", "team/openai", "--scope", "team"],
        None,
    )
    .ok();
    key_in_child(&env, "openai:nokey")
        .code(7)
        .error_with_hint("API key");
    node.put(
        "team/openai",
        "craik:credential:value",
        "team",
        &value,
        false,
    );
    *node.node.slow_ms.lock().unwrap() = 3000;
    add(
        "openai:slow",
        &[
            "--entity",
            "team/openai",
            "--scope",
            "team",
            "--timeout",
            "300ms",
        ],
        Some(NODE_KEY),
    )
    .ok();
    let t = std::time::Instant::now();
    key_in_child(&env, "openai:slow")
        .code(7)
        .error_with_hint("within 300 ms");
    assert!(t.elapsed() < std::time::Duration::from_secs(3));
    *node.node.slow_ms.lock().unwrap() = 0;

    // Bad input is refused before anything is stored.
    for (extra, needle) in [
        (&["--entity", "x", "--scope", "galaxy"][..], "scope"),
        (&["--scope", "team"][..], "entity"),
        (&["--entity", "x", "--timeout", "5m"][..], "timeout"),
    ] {
        let r = add("openai:bad", extra, None);
        assert_ne!(r.code, 0, "{extra:?}");
        assert!(r.stderr.contains(needle), "{extra:?}: {}", r.stderr);
    }
    let r = env.run(&[
        "auth",
        "add",
        "openai:bad",
        "--kind=stigmem-ref",
        "--node",
        "http://stigmem.example.com",
        "--entity",
        "x",
    ]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("https"), "{}", r.stderr);
    env.run(&[
        "auth",
        "add",
        "openai:bad2",
        "--kind=api-key",
        "--node",
        "https://n.example.com",
    ])
    .code(1)
    .error_with_hint("stigmem");

    // Neither the value nor the node's key is in a file or a receipt.
    for (f, bytes) in files_under(&env.home) {
        assert!(!contains(&bytes, &value), "{} holds the value", f.display());
        assert!(
            !contains(&bytes, NODE_KEY),
            "{} holds the node key",
            f.display()
        );
    }
    let all = env.run(&["receipts", "export", "--format", "jsonl"]);
    assert!(!all.stdout.contains(&value) && !all.stdout.contains(NODE_KEY));
}
