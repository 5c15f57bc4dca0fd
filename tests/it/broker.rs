//! The broker: `craik exec`, `craik proxy`, `craik auth test` and pools,
//! against a local server playing each provider.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::{Env, Run, canary, contains, files_under, receipts};
use crate::upstream::{Behavior, Upstream};

pub(crate) struct Proxy {
    child: Option<Child>,
    pub(crate) url: String,
    pub(crate) token: String,
    out: serde_json::Value,
}

impl Proxy {
    pub(crate) fn start(env: &Env, args: &[&str]) -> Proxy {
        let mut full = vec!["proxy", "--json"];
        full.extend_from_slice(args);
        let mut c = env.command(&full);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let out: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("proxy did not start: {line:?} {err}")
        });
        Proxy {
            url: format!("http://{}", out["listen"].as_str().unwrap()),
            token: out["token"].as_str().unwrap().to_string(),
            out,
            child: Some(child),
        }
    }

    /// `host:port`, for raw HTTP.
    fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    fn pid(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_raw(self.child.as_ref().unwrap().id() as i32).unwrap()
    }

    pub(crate) fn stop(mut self) -> Run {
        rustix::process::kill_process(self.pid(), rustix::process::Signal::TERM).unwrap();
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        crate::common::to_run(out)
    }
}

/// A failing test must not leave a proxy running.
impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn add_key(env: &Env, id: &str, key: &str, base: &str) {
    env.run_stdin(
        &[
            "auth",
            "add",
            id,
            "--kind=keyring-ref",
            "--stdin",
            "--base-url",
            base,
            "--allow-local-base-url",
        ],
        Some(key),
    )
    .ok();
}

fn header(s: &crate::upstream::Seen, name: &str) -> Option<String> {
    s.headers.get(name).map(|v| v.to_str().unwrap().to_string())
}

/// (profile id, key, request path, headers the upstream must see)
type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)]);

#[test]
fn proxy_injects_each_familys_credential_and_strips_the_clients() {
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    let cases: &[Case] = &[
        (
            "openai:k",
            "sk-openai-1",
            "/chat/completions",
            &[("authorization", "Bearer sk-openai-1")],
        ),
        (
            "chat_completions:k",
            "sk-local-1",
            "/chat/completions",
            &[("authorization", "Bearer sk-local-1")],
        ),
        (
            "anthropic:k",
            "sk-ant-api03-abc",
            "/v1/messages",
            &[
                ("x-api-key", "sk-ant-api03-abc"),
                ("anthropic-version", "2023-06-01"),
            ],
        ),
        (
            "anthropic:oauth",
            "sk-ant-oat01-abc",
            "/v1/messages",
            &[
                ("authorization", "Bearer sk-ant-oat01-abc"),
                ("anthropic-beta", "oauth-2025-04-20"),
            ],
        ),
        (
            "gemini:k",
            "AIzaSyTest",
            "/v1beta/models/gemini-pro:generateContent",
            &[("x-goog-api-key", "AIzaSyTest")],
        ),
        (
            "gemini:oauth",
            "ya29.token",
            "/v1beta/models/gemini-pro:generateContent",
            &[("authorization", "Bearer ya29.token")],
        ),
    ];
    for (id, key, path, want) in cases {
        add_key(&env, id, key, &up.url());
        let p = Proxy::start(&env, &["--profile", id]);
        let family = id.split(':').next().unwrap();
        let env_block = &p.out["env"];
        assert!(
            env_block
                .as_object()
                .unwrap()
                .values()
                .any(|v| v == p.token.as_str())
        );
        // The client presents the token where its family expects a key,
        // plus a credential of its own that must not pass.
        let mut req = client()
            .post(format!("{}{path}?key=client-query-key&x=1", p.url))
            .header(
                "x-api-key",
                if family == "anthropic" {
                    p.token.as_str()
                } else {
                    "client-own-key"
                },
            )
            .body(r#"{"model":"m-1"}"#);
        req = match family {
            "anthropic" => req,
            "gemini" => req
                .header("x-goog-api-key", p.token.as_str())
                .header("authorization", "Bearer client-own"),
            _ => req.header("authorization", format!("Bearer {}", p.token)),
        };
        let resp = req.send().unwrap();
        assert_eq!(resp.status(), 200, "{id}");
        let seen = up.seen().pop().unwrap();
        for (h, v) in *want {
            assert_eq!(header(&seen, h).as_deref(), Some(*v), "{id}: {h}");
        }
        for h in ["x-api-key", "authorization", "x-goog-api-key"] {
            if let Some(v) = header(&seen, h) {
                assert!(
                    !v.contains("client-own") && !v.contains(&p.token),
                    "{id}: {h} leaked {v}"
                );
            }
        }
        assert!(
            !seen.path_and_query.contains("client-query-key"),
            "{}",
            seen.path_and_query
        );
        assert!(
            seen.path_and_query.ends_with("?x=1"),
            "{}",
            seen.path_and_query
        );
        assert_eq!(seen.body, br#"{"model":"m-1"}"#);
        p.stop().ok();
    }
    // Receipts name model, status, bytes and usage.
    let fin = receipts(&env, "call.finished");
    assert_eq!(fin.len(), cases.len());
    let openai = fin
        .iter()
        .find(|r| r["auth_profile_id"] == "openai:k")
        .unwrap();
    assert_eq!(
        openai["status"], "ok",
        "a complete JSON response is not incomplete"
    );
    assert!(fin.iter().all(|r| r["status"] == "ok"), "{fin:#?}");
    assert_eq!(openai["details"]["model"], "m-1");
    assert_eq!(openai["details"]["status"], 200);
    assert_eq!(openai["details"]["usage"]["total_tokens"], 7);
    assert!(
        openai["auth_identity_hash"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    let gem = fin
        .iter()
        .find(|r| r["auth_profile_id"] == "gemini:k")
        .unwrap();
    assert_eq!(gem["details"]["model"], "gemini-pro");
    // Two profiles holding the same key hash alike.
    let h = env.run_stdin(
        &["receipts", "hash", "--family", "openai"],
        Some("sk-openai-1"),
    );
    assert_eq!(openai["auth_identity_hash"], h.stdout.trim());
    env.run(&["receipts", "verify"]).ok();
}

/// A path with a `.` or `..` segment (plain or percent-encoded) or a
/// backslash would leave the base URL's path once joined and resolved, with
/// the credential: refused with 400, nothing upstream, no receipt. Sent as
/// raw HTTP, since an HTTP client resolves the dots itself.
#[test]
fn paths_that_leave_the_base_are_refused() {
    use std::io::Write;
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-1", &format!("{}/v1", up.url()));
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    let addr = p.url.trim_start_matches("http://").to_string();
    for path in [
        "/../../etc/passwd",
        "/models/../../x",
        "/%2e%2e/x",
        "/.%2E/x",
        "/./models",
        "/..\\x",
    ] {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            p.token
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains("craik_bad_path"), "{path}: {answer}");
    }
    assert!(up.seen().is_empty(), "nothing went upstream");
    assert!(receipts(&env, "call.started").is_empty());
    // A plain path still goes through, under the base.
    let resp = client()
        .get(format!("{}/models", p.url))
        .header("authorization", format!("Bearer {}", p.token))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.seen()[0].path_and_query, "/v1/models");
    p.stop().ok();
}

#[test]
fn wrong_token_is_refused_and_nothing_goes_upstream() {
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-1", &up.url());
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    for auth in [
        None,
        Some("Bearer wrong"),
        Some(&*format!("Bearer {}x", p.token)),
    ] {
        let mut req = client().get(format!("{}/models", p.url));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().unwrap();
        assert_eq!(resp.status(), 401);
        let v: serde_json::Value = serde_json::from_str(&resp.text().unwrap()).unwrap();
        assert_eq!(v["error"]["type"], "craik_unauthorized");
    }
    assert!(up.seen().is_empty());
    assert!(receipts(&env, "call.started").is_empty());
    p.stop().ok();
    // The refusals leave a trace: one denial for the first, then at most
    // one a minute (the two others are counted into the next).
    let denials: Vec<_> = receipts(&env, "denial")
        .into_iter()
        .filter(|d| d["policy_condition"] == "proxy_token")
        .collect();
    assert_eq!(denials.len(), 1, "{denials:#?}");
    assert_eq!(denials[0]["details"]["refused_requests"], 1);
    assert_eq!(denials[0]["capability"], "proxy");
    // Only loopback unless --allow-remote.
    env.run(&["proxy", "--profile", "openai:k", "--listen", "0.0.0.0:0"])
        .code(1)
        .error_with_hint("--allow-remote");
    // localhost:PORT is the IPv4 loopback address.
    let p = Proxy::start(&env, &["--profile", "openai:k", "--listen", "localhost:0"]);
    assert!(p.url.starts_with("http://127.0.0.1:"), "{}", p.url);
    p.stop().ok();
}

#[test]
fn streams_arrive_incrementally_and_sigterm_drains() {
    let up = Upstream::start(Behavior::HoldStream);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-1", &up.url());
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    let mut resp = client()
        .post(format!("{}/chat/completions", p.url))
        .header("authorization", format!("Bearer {}", p.token))
        .body(r#"{"model":"m","stream":true}"#)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The first event arrives while the upstream still holds the rest.
    let mut buf = [0u8; 256];
    let n = resp.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains(r#"{"n":1}"#));
    // SIGTERM now: the request in flight finishes and its receipt lands.
    rustix::process::kill_process(p.pid(), rustix::process::Signal::TERM).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    up.release();
    let mut rest = String::new();
    resp.read_to_string(&mut rest).unwrap();
    assert!(rest.contains(r#"{"n":2"#), "{rest}");
    let mut p = p;
    let out = p.child.take().unwrap().wait_with_output().unwrap();
    assert!(out.status.success());
    let fin = receipts(&env, "call.finished");
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0]["status"], "ok");
    assert_eq!(fin[0]["details"]["usage"]["output_tokens"], 5);
}

#[test]
fn early_close_and_upstream_failure() {
    let up = Upstream::start(Behavior::CloseEarly);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-1", &up.url());
    add_key(&env, "openai:dead", "sk-2", "http://127.0.0.1:9");
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    let resp = client()
        .post(format!("{}/chat/completions", p.url))
        .header("authorization", format!("Bearer {}", p.token))
        .body("{}")
        .send()
        .unwrap();
    let _ = resp.text();
    p.stop().ok();
    let fin = receipts(&env, "call.finished");
    assert_eq!(fin[0]["status"], "incomplete", "{:#?}", fin[0]);
    let p = Proxy::start(&env, &["--profile", "openai:dead"]);
    let resp = client()
        .get(format!("{}/models", p.url))
        .header("authorization", format!("Bearer {}", p.token))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 502);
    let v: serde_json::Value = serde_json::from_str(&resp.text().unwrap()).unwrap();
    assert_eq!(v["error"]["type"], "craik_upstream_error");
    p.stop().ok();
    assert_eq!(
        receipts(&env, "call.finished")[0]["status"],
        "upstream_error"
    );
}

#[test]
fn exec_injects_env_and_returns_the_childs_status() {
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-exec-1", &up.url());
    let dump = env.dir.path().join("env.txt");
    let script = format!("env > {}; exit 3", dump.display());
    let mut envx = Env::new();
    envx.vars = env.vars.clone();
    envx.set("ANTHROPIC_API_KEY", "outer-key-must-go");
    let r = envx.run(&["exec", "--profile", "openai:k", "--", "sh", "-c", &script]);
    r.code(3);
    let seen = std::fs::read_to_string(&dump).unwrap();
    assert!(seen.contains("OPENAI_API_KEY=sk-exec-1"));
    assert!(seen.contains(&format!("OPENAI_BASE_URL={}", up.url())));
    assert!(
        !seen.contains("outer-key-must-go"),
        "other credentials are removed"
    );
    let fin = &receipts(&env, "call.finished")[0];
    assert_eq!(fin["details"]["exit_code"], 3);
    assert_eq!(fin["status"], "error");
    let started = &receipts(&env, "call.started")[0];
    assert!(started["seq"].as_i64() < fin["seq"].as_i64());
    // The start names the credential too, as the finish does.
    assert_eq!(started["auth_identity_hash"], fin["auth_identity_hash"]);
    assert!(
        started["auth_identity_hash"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    // The decision has its own receipt, as auth check's and a proxy's:
    // written with call.started, just before it, in the same run.
    let auth = receipts(&env, "authorization");
    assert_eq!(auth.len(), 1, "{auth:?}");
    assert_eq!(auth[0]["status"], "allowed");
    assert_eq!(auth[0]["capability"], "exec");
    assert_eq!(auth[0]["run_id"], started["run_id"]);
    assert_eq!(auth[0]["auth_identity_hash"], started["auth_identity_hash"]);
    assert_eq!(
        auth[0]["seq"].as_i64().unwrap() + 1,
        started["seq"].as_i64().unwrap()
    );
    let list = env.run(&["receipts", "list"]);
    assert!(list.stdout.contains("VIA"), "{list:?}");
    assert!(
        list.stdout
            .lines()
            .any(|l| l.contains("call.started") && l.split_whitespace().any(|w| w == "exec")),
        "{list:?}"
    );
    // A missing command: 127, as a shell says; one that cannot be run: 126.
    env.run(&["exec", "--profile", "openai:k", "--", "/nonexistent/cmd"])
        .code(127)
        .error_with_hint("PATH");
    let not_exec = env.dir.path().join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    env.run(&[
        "exec",
        "--profile",
        "openai:k",
        "--",
        not_exec.to_str().unwrap(),
    ])
    .code(126)
    .error_with_hint("chmod +x");
}

#[test]
fn exec_via_proxy_keeps_the_credential_out_of_the_child() {
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    let secret = canary();
    add_key(&env, "openai:k", &secret, &up.url());
    let dump = env.dir.path().join("env.txt");
    let script = format!(
        "env > {d}; curl -s -o /dev/null -w '%{{http_code}}' \"$OPENAI_BASE_URL/chat/completions\" -H \"authorization: Bearer $OPENAI_API_KEY\" -d '{{\"model\":\"m\"}}' >> {d}.code",
        d = dump.display()
    );
    let r = env.run(&[
        "exec",
        "--profile",
        "openai:k",
        "--via-proxy",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    r.ok();
    let child_env = std::fs::read_to_string(&dump).unwrap();
    assert!(
        !child_env.contains(&secret),
        "the real key entered the child"
    );
    assert!(child_env.contains("OPENAI_API_KEY=craik-proxy-"));
    assert_eq!(
        std::fs::read_to_string(format!("{}.code", dump.display())).unwrap(),
        "200"
    );
    let seen = up.seen().pop().unwrap();
    assert_eq!(
        header(&seen, "authorization").unwrap(),
        format!("Bearer {secret}")
    );
    assert!(!r.stdout.contains(&secret) && !r.stderr.contains(&secret));
    for (path, bytes) in files_under(&env.home) {
        assert!(!contains(&bytes, &secret), "{}", path.display());
    }
    // exec's own receipts plus the proxied request's.
    assert_eq!(receipts(&env, "call.started").len(), 2);
    env.run(&["receipts", "verify"]).ok();
}

#[test]
fn fail_closed_exec_never_starts_the_child() {
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-1", &up.url());
    // Make the audit log unusable: a directory where the database was.
    for f in ["audit.db", "audit.db-wal", "audit.db-shm"] {
        let _ = std::fs::remove_file(env.file(f));
    }
    std::fs::create_dir(env.file("audit.db")).unwrap();
    let marker = env.dir.path().join("child-ran");
    let r = env.run(&[
        "exec",
        "--profile",
        "openai:k",
        "--",
        "touch",
        marker.to_str().unwrap(),
    ]);
    r.code(5);
    assert!(r.stderr.contains("audit log unavailable"), "{}", r.stderr);
    assert!(!marker.exists(), "the child must not run");
    env.run(&["proxy", "--profile", "openai:k"]).code(5);
    assert!(up.seen().is_empty());
}

#[test]
fn auth_test_records_status() {
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-1", &up.url());
    add_key(&env, "openai:dead", "sk-2", "http://127.0.0.1:9");
    let r = env.run(&["auth", "test", "openai:k", "--json"]);
    r.ok();
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(up.seen().pop().unwrap().path_and_query, "/models");
    for (b, status, code) in [
        (Behavior::Status(401), "rejected", 7),
        (Behavior::Status(429), "rate_limited", 1),
        (Behavior::Status(503), "unreachable", 1),
    ] {
        up.set(b);
        let r = env.run(&["auth", "test", "openai:k", "--json"]);
        r.code(code);
        assert_eq!(r.json()["status"], status);
        let st = env.run(&["auth", "status", "--json"]).json();
        let p = st["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == "openai:k")
            .unwrap()
            .clone();
        assert_eq!(p["last_status"], status);
        assert!(p["last_validated_at"].is_string());
        // The table and doctor show the provider's answer, not just
        // "secret present".
        let table = env.run(&["auth", "status"]);
        assert!(
            table
                .stdout
                .contains(&format!("the last auth test ended {status}")),
            "{table:?}"
        );
        let doctor = env.run(&["doctor", "--json"]).json();
        assert!(
            doctor["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "profile openai:k last test" && c["level"] == "fail"),
            "{doctor}"
        );
    }
    let r = env.run(&["auth", "test", "openai:dead", "--json"]);
    assert_eq!(r.json()["status"], "unreachable");
    let file = env.read_json("auth-profiles.json");
    crate::common::assert_schema("auth-profiles.schema.json", &file);
}

#[test]
fn pool_fails_over_and_backs_off() {
    let bad = Upstream::start(Behavior::Status(429));
    let good = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:a", "sk-a", &bad.url());
    add_key(&env, "openai:b", "sk-b", &good.url());
    add_key(&env, "anthropic:x", "sk-ant-api-x", &good.url());
    env.run(&[
        "auth",
        "pool",
        "create",
        "openai:team",
        "--strategy",
        "failover",
        "--member",
        "openai:a",
        "--member",
        "openai:b",
    ])
    .ok();
    env.run(&[
        "auth",
        "pool",
        "create",
        "openai:mixed",
        "--strategy",
        "failover",
        "--member",
        "openai:a",
        "--member",
        "anthropic:x",
    ])
    .code(1)
    .error_with_hint("share its family");
    let p = Proxy::start(&env, &["--pool", "openai:team"]);
    let send = || {
        client()
            .post(format!("{}/chat/completions", p.url))
            .header("authorization", format!("Bearer {}", p.token))
            .body(r#"{"model":"m"}"#)
            .send()
            .unwrap()
    };
    assert_eq!(send().status(), 200, "retried on the next member");
    assert_eq!(bad.seen().len(), 1);
    assert_eq!(good.seen().len(), 1);
    // a is backing off now: the next request goes straight to b.
    assert_eq!(send().status(), 200);
    assert_eq!(bad.seen().len(), 1);
    assert_eq!(good.seen().len(), 2);
    p.stop().ok();
    let st = env.run(&["auth", "pool", "status", "--json"]).json();
    let a = &st["pools"][0]["members"][0]["health"];
    assert_eq!(a["last_outcome"], "rate_limited");
    assert_eq!(a["consecutive_failures"], 1);
    assert!(a["backoff_until"].is_string());
    // Every pooled receipt names the pool and the member.
    for r in receipts(&env, "call.finished") {
        assert_eq!(r["pool_id"], "openai:team");
        assert!(r["auth_profile_id"] == "openai:a" || r["auth_profile_id"] == "openai:b");
    }
    // exec with a pool picks a healthy member.
    let dump = env.dir.path().join("pool-env.txt");
    env.run(&[
        "exec",
        "--pool",
        "openai:team",
        "--",
        "sh",
        "-c",
        &format!("env > {}", dump.display()),
    ])
    .ok();
    assert!(
        std::fs::read_to_string(&dump)
            .unwrap()
            .contains("OPENAI_API_KEY=sk-b")
    );
    env.run(&["auth", "pool", "remove", "openai:team"]).ok();
}

#[test]
fn policy_denial_and_approval_on_exec_and_proxy() {
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:prod-1", "sk-1", &up.url());
    let deny = env.dir.path().join("deny.json");
    std::fs::write(
        &deny,
        r#"{"version":1,"denied_credential_profiles":["openai:prod-*"]}"#,
    )
    .unwrap();
    let approve = env.dir.path().join("approve.json");
    std::fs::write(&approve, r#"{"version":1,"require_approval":"each_run"}"#).unwrap();
    let marker = env.dir.path().join("ran");
    let touch = ["--", "touch", marker.to_str().unwrap()];
    let mut args = vec![
        "exec",
        "--profile",
        "openai:prod-1",
        "--policy",
        deny.to_str().unwrap(),
    ];
    args.extend_from_slice(&touch);
    env.run(&args).code(3);
    assert!(!marker.exists());
    env.run(&[
        "proxy",
        "--profile",
        "openai:prod-1",
        "--policy",
        deny.to_str().unwrap(),
    ])
    .code(3);
    let mut args = vec![
        "exec",
        "--profile",
        "openai:prod-1",
        "--run",
        "run_x",
        "--policy",
        approve.to_str().unwrap(),
    ];
    args.extend_from_slice(&touch);
    let r = env.run(&args);
    r.code(4);
    assert!(
        r.stderr
            .contains("craik auth approve openai:prod-1 --run=run_x")
    );
    assert!(!marker.exists());
    env.run(&[
        "auth",
        "approve",
        "openai:prod-1",
        "--run=run_x",
        "--policy",
        approve.to_str().unwrap(),
    ])
    .ok();
    env.run(&args).ok();
    assert!(marker.exists());
    assert!(
        up.seen().is_empty(),
        "exec without --via-proxy makes no upstream call itself"
    );
}

#[test]
fn exec_forwards_signals_and_proxy_limits() {
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-1", &up.url());
    // SIGTERM to craik reaches the child, whose status craik returns.
    sigterm_reaches_the_child(&env, &[]);
    assert_eq!(
        receipts(&env, "call.finished")[0]["details"]["exit_code"],
        7
    );

    // --token-file writes the token 0600; oversized bodies get 413.
    let tf = env.dir.path().join("token");
    let p = Proxy::start(
        &env,
        &[
            "--profile",
            "openai:k",
            "--token-file",
            tf.to_str().unwrap(),
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::read_to_string(&tf).unwrap(), p.token);
    assert_eq!(
        std::fs::metadata(&tf).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let resp = client()
        .post(format!("{}/chat/completions", p.url))
        .header("authorization", format!("Bearer {}", p.token))
        .body(vec![b'x'; 33 * 1024 * 1024])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert!(up.seen().is_empty());
    p.stop().ok();
}

#[test]
fn proxy_fails_closed_at_runtime_and_waits_for_approval() {
    crate::common::require_root("makes audit.db immutable under a running proxy (chattr +i)");
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-1", &up.url());
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    let send = || {
        client()
            .get(format!("{}/models", p.url))
            .header("authorization", format!("Bearer {}", p.token))
            .send()
            .unwrap()
    };
    assert_eq!(send().status(), 200);
    // The log becomes unwritable under the running proxy.
    let wal = env.file("audit.db-wal");
    let db = env.file("audit.db");
    let immutable = |on: bool| {
        for f in [&db, &wal] {
            let st = std::process::Command::new("chattr")
                .arg(if on { "+i" } else { "-i" })
                .arg(f)
                .status()
                .expect("chattr (e2fsprogs) is needed for this test");
            assert!(st.success(), "chattr failed on {}", f.display());
        }
    };
    immutable(true);
    let before = up.seen().len();
    let resp = send();
    immutable(false);
    assert_eq!(resp.status(), 503);
    let v: serde_json::Value = serde_json::from_str(&resp.text().unwrap()).unwrap();
    assert_eq!(v["error"]["type"], "craik_audit_unavailable");
    assert_eq!(up.seen().len(), before, "the upstream saw nothing");
    p.stop().ok();

    // A proxy under an approval policy waits for the approval, then serves.
    let policy = env.dir.path().join("each-run.json");
    std::fs::write(&policy, r#"{"version":1,"require_approval":"each_run"}"#).unwrap();
    let mut c = env.command(&[
        "proxy",
        "--json",
        "--profile",
        "openai:k",
        "--run",
        "run_p",
        "--policy",
        policy.to_str().unwrap(),
        "--wait=30s",
    ]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    assert!(crate::idp::wait_until(Duration::from_secs(20), || {
        !receipts(&env, "approval_requested").is_empty()
    }));
    env.run(&[
        "auth",
        "approve",
        "openai:k",
        "--run=run_p",
        "--policy",
        policy.to_str().unwrap(),
    ])
    .ok();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["run"], "run_p");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn concurrent_pool_health_updates_lose_nothing() {
    let env = Env::new();
    add_key(&env, "openai:a", "sk-a", "http://127.0.0.1:9");
    add_key(&env, "openai:b", "sk-b", "http://127.0.0.1:9");
    env.run(&[
        "auth",
        "pool",
        "create",
        "openai:team",
        "--strategy",
        "round_robin",
        "--member",
        "openai:a",
        "--member",
        "openai:b",
    ])
    .ok();
    // 8 processes each make 5 test calls through the pool to a dead
    // upstream: every failure is counted.
    let children: Vec<_> = (0..8)
        .map(|_| {
            let mut c = std::process::Command::new("sh");
            c.arg("-c").arg(r#"for i in 1 2 3 4 5; do "$CRAIK" auth test openai:team >/dev/null 2>&1; done; exit 0"#);
            let cmd = env.command(&[]);
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => c.env(k, v),
                    None => c.env_remove(k),
                };
            }
            c.env("CRAIK", crate::common::craik_bin());
            c.spawn().unwrap()
        })
        .collect();
    for mut ch in children {
        ch.wait().unwrap();
    }
    let finished = receipts(&env, "call.finished").len();
    let st = env.run(&["auth", "pool", "status", "--json"]).json();
    let failures: u64 = st["pools"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["health"]["consecutive_failures"].as_u64().unwrap())
        .sum();
    // Members back off after failing, so some calls find none healthy;
    // every call that ran was recorded.
    assert!(finished >= 2, "{finished}");
    assert_eq!(
        failures as usize, finished,
        "one health update per finished call"
    );
}

#[test]
fn a_call_refused_after_its_start_receipt_still_gets_an_end() {
    let env = Env::new();
    env.run(&["auth", "add", "anthropic:m", "--kind=marker"])
        .ok();
    env.run(&[
        "exec",
        "--profile",
        "anthropic:m",
        "--via-proxy",
        "--",
        "true",
    ])
    .code(1)
    .error_with_hint("drop --via-proxy");
    add_key(&env, "gemini:k", "AIzaTest", "http://127.0.0.1:9");
    env.run(&["auth", "add", "gemini:m", "--kind=marker"]).ok();
    env.run(&["auth", "test", "gemini:m"]).code(1);
    let started = receipts(&env, "call.started");
    let finished = receipts(&env, "call.finished");
    assert_eq!(started.len(), 2);
    assert_eq!(
        finished.len(),
        2,
        "every call.started has its call.finished"
    );
    assert!(
        finished.iter().all(|r| r["status"] == "not_called"),
        "{finished:#?}"
    );
    env.run(&["receipts", "verify"]).ok();
}

/// Sends `request` as raw bytes and reads the whole answer (the request
/// should say `Connection: close`; the proxy closes after a 503 anyway).
fn raw(addr: &str, request: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A GET of `target` with the proxy token, closing the connection after.
fn raw_get(p: &Proxy, target: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        p.addr(),
        p.token
    )
}

/// Reads one response with a `content-length` from a kept-alive
/// connection: (status line and headers, body).
fn read_response(s: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed mid-head: {buf:?}");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head, body)
}

/// Whether the peer has closed `s` within `limit` (EOF or a reset; any
/// bytes before that, such as a 408, are read and ignored).
fn closed_within(s: &mut std::net::TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut sink = Vec::new();
    match s.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// A header's value in a raw response head, by lowercase name.
fn raw_header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// Issue 16, item 8: idle connections cannot starve the proxy. Past the
/// cap (256 by default) a connection is told `503 craik_busy` at once
/// instead of waiting; a connection that sends nothing, half a request
/// line, or nothing more after a response is closed after the
/// header-read timeout (shortened here through its test variable).
#[test]
fn idle_connections_are_closed_and_the_cap_answers_busy() {
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::Instant;
    let up = Upstream::start(Behavior::Normal);
    let mut env = Env::new();
    add_key(&env, "openai:k", "sk-1", &up.url());

    // The default cap.
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    let idle: Vec<TcpStream> = (0..256)
        .map(|_| TcpStream::connect(p.addr()).unwrap())
        .collect();
    let answer = raw(&p.addr(), &raw_get(&p, "/models"));
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert_eq!(raw_header(head, "content-type"), ["application/json"]);
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["error"]["type"], "craik_busy", "{body}");
    assert!(up.seen().is_empty(), "a busy answer sends nothing upstream");
    assert!(receipts(&env, "call.started").is_empty());
    // Once they go, requests are served again.
    drop(idle);
    assert!(crate::idp::wait_until(Duration::from_secs(10), || {
        raw(&p.addr(), &raw_get(&p, "/models")).starts_with("HTTP/1.1 200")
    }));
    p.stop().ok();

    // A cap of 4 and a timeout of 1 s.
    env.set("CRAIK_PROXY_MAX_CONNECTIONS", "4");
    env.set("CRAIK_PROXY_HEADER_TIMEOUT_MS", "1000");
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    let t0 = Instant::now();
    let mut silent = TcpStream::connect(p.addr()).unwrap();
    let mut half = TcpStream::connect(p.addr()).unwrap();
    half.write_all(b"GET /mod").unwrap();
    let mut kept = TcpStream::connect(p.addr()).unwrap();
    write!(
        kept,
        "GET /models HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        p.addr(),
        p.token
    )
    .unwrap();
    let (head, _) = read_response(&mut kept);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let kept_idle_from = Instant::now();
    let mut fourth = TcpStream::connect(p.addr()).unwrap();
    let answer = raw(&p.addr(), &raw_get(&p, "/models"));
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("craik_busy"), "{answer}");
    for (name, s, since) in [
        ("silent", &mut silent, t0),
        ("half a request line", &mut half, t0),
        ("kept alive", &mut kept, kept_idle_from),
        ("fourth", &mut fourth, t0),
    ] {
        assert!(
            closed_within(s, Duration::from_secs(8)),
            "{name}: still open"
        );
        let waited = since.elapsed();
        assert!(
            waited >= Duration::from_millis(900),
            "{name}: closed after {waited:?}, before the timeout"
        );
    }
    let answer = raw(&p.addr(), &raw_get(&p, "/models"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    p.stop().ok();
}

/// Issue 16, item 8: request targets a reverse proxy must not forward:
/// refused with 400 before any receipt or upstream traffic. Raw HTTP, as
/// a client library would normalize or refuse them.
#[test]
fn targets_a_reverse_proxy_must_not_forward_are_refused() {
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-1", &format!("{}/v1", up.url()));
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    let token = p.token.clone();
    let line = |method: &str, target: &str| {
        format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
            p.addr()
        )
    };
    for (method, target, kind) in [
        ("CONNECT", "evil.example:443", "craik_bad_target"),
        ("OPTIONS", "*", "craik_bad_target"),
        ("GET", "http://evil.example/models", "craik_bad_target"),
        ("GET", "/models%2fx", "craik_bad_path"),
        ("GET", "/models%2F..%2Fx", "craik_bad_path"),
        ("GET", "/models%5cx", "craik_bad_path"),
        ("GET", "/models%5C..%5Cx", "craik_bad_path"),
        ("GET", "/%252e%252e/x", "craik_bad_path"),
        ("GET", "/models%252fx", "craik_bad_path"),
        ("GET", "/x%25%32%65%25%32%65/y", "craik_bad_path"),
        ("GET", "/models/..;/x", "craik_bad_path"),
        ("GET", "/v1;x/models", "craik_bad_path"),
    ] {
        let answer = raw(&p.addr(), &line(method, target));
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{method} {target}: {answer}"
        );
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert_eq!(raw_header(head, "content-type"), ["application/json"]);
        let v: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{method} {target}: {e}: {body}"));
        assert_eq!(v["error"]["type"], kind, "{method} {target}: {body}");
        assert!(v["error"]["message"].is_string());
    }
    assert!(
        up.seen().is_empty(),
        "nothing went upstream: {:?}",
        up.seen()
    );
    assert!(receipts(&env, "call.started").is_empty());
    // An ordinary request, percent-encoding and all, still goes through.
    let answer = raw(&p.addr(), &raw_get(&p, "/models?q=a%2Fb"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(up.seen()[0].path_and_query, "/v1/models?q=a%2Fb");
    p.stop().ok();
}

/// Issue 16, item 8: hop-by-hop headers, and every header the
/// `Connection` header names, stay on their hop: neither the upstream nor
/// the client sees the other side's.
#[test]
fn hop_by_hop_headers_stay_on_their_hop() {
    let up = Upstream::start(Behavior::Echo);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-hop-by-hop-key", &up.url());
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    let answer = raw(
        &p.addr(),
        &format!(
            "GET /echo HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Connection: close, X-Client-Hop\r\nX-Client-Hop: 1\r\nKeep-Alive: timeout=5\r\n\
             Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: x-t\r\n\
             Proxy-Authorization: Basic dXA6cHc=\r\nUpgrade: h2c\r\nX-Kept: 1\r\n\r\n",
            p.addr(),
            p.token
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = up.seen().pop().unwrap();
    for h in [
        "connection",
        "x-client-hop",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "proxy-authorization",
        "upgrade",
    ] {
        assert!(header(&seen, h).is_none(), "{h} went upstream");
    }
    assert_eq!(header(&seen, "x-kept").as_deref(), Some("1"));
    // The upstream does send its own (asked directly)...
    let direct = raw(
        &up.addr.to_string(),
        "GET /echo HTTP/1.1\r\nHost: up\r\nAuthorization: Bearer sk-direct-key\r\nConnection: close\r\n\r\n",
    );
    let (direct_head, _) = direct.split_once("\r\n\r\n").unwrap();
    let hop = [
        "x-upstream-hop",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "trailer",
        "upgrade",
    ];
    for h in hop {
        assert!(
            !raw_header(direct_head, h).is_empty(),
            "the test upstream sends {h}: {direct_head}"
        );
    }
    // ...and none of them reaches the client.
    let (head, _) = answer.split_once("\r\n\r\n").unwrap();
    for h in hop {
        assert!(
            raw_header(head, h).is_empty(),
            "{h} reached the client: {head}"
        );
    }
    assert!(
        raw_header(head, "connection")
            .iter()
            .all(|v| !v.contains("x-upstream-hop")),
        "{head}"
    );
    p.stop().ok();
}

/// Issue 16, item 8: an upstream that echoes the credential hands it to
/// nobody. It is masked (same length, so `content-length` holds) in
/// response headers and in the body, also when split over chunks, and
/// `call.finished` counts the redactions.
#[test]
fn an_echoed_credential_is_redacted_from_headers_and_streamed_bodies() {
    let up = Upstream::start(Behavior::Echo);
    let env = Env::new();
    let secret = canary();
    add_key(&env, "openai:k", &secret, &up.url());
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    let marker = "[craik: redacted]";
    let mask = format!("{marker}{}", "*".repeat(secret.len() - marker.len()));
    let (_, want) = crate::upstream::echo_chunks(secret.as_bytes(), mask.as_bytes());
    for path in ["/echo", "/echo/chunked"] {
        let resp = client()
            .get(format!("{}{path}", p.url))
            .header("authorization", format!("Bearer {}", p.token))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        for (k, v) in resp.headers() {
            assert!(
                !contains(v.as_bytes(), &secret),
                "{path}: {k} carries the credential"
            );
        }
        assert_eq!(
            resp.headers()["x-echo-auth"].to_str().unwrap(),
            format!("Bearer {mask}"),
            "{path}"
        );
        if path == "/echo" {
            assert_eq!(resp.content_length(), Some(want.len() as u64));
        }
        let body = resp.bytes().unwrap();
        assert!(!contains(&body, &secret), "{path}: the body carries it");
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&want),
            "{path}"
        );
    }
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        header(&seen[0], "authorization").unwrap(),
        format!("Bearer {secret}"),
        "the upstream still gets the credential"
    );
    p.stop().ok();
    let fin = receipts(&env, "call.finished");
    assert_eq!(fin.len(), 2);
    for r in &fin {
        assert_eq!(r["status"], "ok", "{r:#}");
        // One header and two body occurrences.
        assert_eq!(r["details"]["redacted"], 3, "{r:#}");
    }
    // A response without the credential records no redaction.
    up.set(Behavior::Normal);
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    let resp = client()
        .get(format!("{}/models", p.url))
        .header("authorization", format!("Bearer {}", p.token))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes();
    p.stop().ok();
    let fin = receipts(&env, "call.finished");
    let plain = fin
        .iter()
        .find(|r| r["details"]["path"] == "/models")
        .unwrap();
    assert!(plain["details"].get("redacted").is_none(), "{plain:#}");
}

/// Issue 16, item 8 (and issue 23): accepted connections have Nagle's
/// algorithm off, so SSE events sent 5 ms apart arrive as they are sent
/// rather than held for the client's delayed ACK (~40 ms, seen on a
/// kept-alive connection). Timing on a shared machine: three tries, and
/// one held event per try is forgiven; Nagle holds several in every try.
#[test]
fn streamed_events_are_not_held_back() {
    use std::time::Instant;
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-1", &up.url());
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    let c = client();
    let send = |path: &str| {
        let r = c
            .post(format!("{}{path}", p.url))
            .header("authorization", format!("Bearer {}", p.token))
            .body(r#"{"model":"m","stream":true}"#)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        r
    };
    let mut tries = Vec::new();
    for _ in 0..3 {
        // A kept-alive connection, as an agent's client has: past its
        // first exchanges the client's kernel delays its ACKs.
        up.set(Behavior::Normal);
        for _ in 0..3 {
            let _ = send("/models").bytes();
        }
        up.set(Behavior::Drip);
        up.shared.sent.lock().unwrap().clear();
        let mut resp = send("/chat/completions");
        let mut got = String::new();
        let mut arrived = Vec::new();
        let mut buf = [0u8; 4096];
        while arrived.len() < crate::upstream::DRIP_EVENTS {
            let n = resp.read(&mut buf).unwrap();
            assert!(n > 0, "the stream ended early: {got}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
            let now = Instant::now();
            while got.contains(&format!("{{\"n\":{}}}", arrived.len())) {
                arrived.push(now);
            }
        }
        let _ = resp.bytes();
        let sent = up.shared.sent.lock().unwrap().clone();
        let late: Vec<Duration> = sent.iter().zip(&arrived).map(|(s, a)| *a - *s).collect();
        let held = late
            .iter()
            .filter(|l| **l > Duration::from_millis(20))
            .count();
        if held <= 1 {
            p.stop().ok();
            return;
        }
        tries.push(late);
    }
    panic!("events were held back in every try: {tries:#?}");
}

#[test]
fn a_running_proxy_stops_when_its_approval_expires() {
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-1", &up.url());
    let policy = env.dir.path().join("ttl.json");
    std::fs::write(
        &policy,
        r#"{"version":1,"require_approval":"each_run","approval_ttl":"4s"}"#,
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    env.run(&["auth", "check", "openai:k", "--run", "r1", "--policy", p])
        .code(4);
    env.run(&["auth", "approve", "openai:k", "--run=r1", "--policy", p])
        .ok();
    let proxy = Proxy::start(
        &env,
        &["--profile", "openai:k", "--run", "r1", "--policy", p],
    );
    let send = || {
        client()
            .get(format!("{}/models", proxy.url))
            .header("authorization", format!("Bearer {}", proxy.token))
            .send()
            .unwrap()
    };
    assert_eq!(send().status(), 200);
    // No file changed; the approval's expiry alone makes the proxy ask
    // again, and nothing more goes upstream.
    std::thread::sleep(std::time::Duration::from_secs(5));
    let seen = up.seen().len();
    let resp = send();
    assert_eq!(resp.status(), 403);
    let v: serde_json::Value = serde_json::from_str(&resp.text().unwrap()).unwrap();
    assert_eq!(v["error"]["type"], "craik_approval_required");
    assert_eq!(up.seen().len(), seen);
    proxy.stop().ok();
}

#[test]
fn a_running_proxy_makes_the_automatic_checkpoint() {
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-cp", &up.url());
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    let seq = || -> i64 {
        let cp: serde_json::Value =
            serde_json::from_slice(&std::fs::read(env.file("audit-checkpoint.json")).unwrap())
                .unwrap();
        cp["seq"].as_i64().unwrap()
    };
    // The first receipts (the profile, the proxy's authorization) made one.
    let first = seq();
    assert!(first <= 2, "{first}");
    // 1,000 receipts later (two per call) the proxy makes the next one
    // itself, without any other craik command running.
    let c = client();
    for _ in 0..505 {
        let r = c
            .get(format!("{}/models", p.url))
            .header("authorization", format!("Bearer {}", p.token))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seq() < first + 1_000 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seq() >= first + 1_000, "checkpoint at seq {}", seq());
    p.stop().ok();
    env.run(&["receipts", "verify"]).ok();
}

/// Runs a child that traps SIGTERM (exit 7) through `craik exec
/// [extra]`, sends craik SIGTERM once the child is ready, and checks the
/// child got it and its status came back.
fn sigterm_reaches_the_child(env: &Env, extra: &[&str]) {
    let work = tempfile::tempdir_in(env.dir.path()).unwrap();
    let script =
        "trap 'echo term > got-term; exit 7' TERM; echo > ready; while true; do sleep 0.1; done";
    let mut args = vec!["exec", "--profile", "openai:k"];
    args.extend_from_slice(extra);
    args.extend(["--", "sh", "-c", script]);
    let mut c = env.command(&args);
    c.current_dir(work.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !work.path().join("ready").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        work.path().join("ready").exists(),
        "the child never started"
    );
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        work.path().join("got-term").exists(),
        "the child got SIGTERM"
    );
}

#[test]
fn a_sandboxed_child_gets_the_signals_craik_gets() {
    crate::common::require_tool("bwrap", "apt-get install bubblewrap");
    crate::common::require_tool("keyctl", "apt-get install keyutils");
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    add_key(&env, "openai:k", "sk-1", &up.url());
    sigterm_reaches_the_child(&env, &["--sandbox"]);
    sigterm_reaches_the_child(&env, &["--sandbox", "--via-proxy"]);
    // The child's own arguments pass through the relay untouched (craik's
    // reading of `--wait 5` as `--wait=5` is for craik's command line).
    let work = tempfile::tempdir_in(env.dir.path()).unwrap();
    let mut c = env.command(&[
        "exec",
        "--profile",
        "openai:k",
        "--sandbox",
        "--via-proxy",
        "--",
        "sh",
        "-c",
        "echo \"args: $*\"",
        "x",
        "--wait",
        "5",
    ]);
    c.current_dir(work.path());
    let r = crate::common::to_run(c.output().unwrap());
    assert_eq!(r.stdout, "args: --wait 5\n", "{r:?}");
}

#[test]
fn a_client_that_stops_reading_is_cut_off() {
    use std::io::Write as _;
    let up = Upstream::start(Behavior::Flood);
    let mut env = Env::new();
    add_key(&env, "openai:k", "sk-flood", &up.url());
    env.set("CRAIK_PROXY_WRITE_TIMEOUT_MS", "500")
        .set("CRAIK_PROXY_MAX_CONNECTIONS", "1");
    let p = Proxy::start(&env, &["--profile", "openai:k"]);
    // It asks for a large answer and reads none of it.
    let mut stalled = std::net::TcpStream::connect(p.addr()).unwrap();
    write!(
        stalled,
        "GET /models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\r\n",
        p.token
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // While it holds the only connection, another client is told busy.
    let busy = client()
        .get(format!("{}/models", p.url))
        .header("authorization", format!("Bearer {}", p.token))
        .send()
        .unwrap();
    assert_eq!(busy.status(), 503);
    // Half a second without progress, and the proxy lets it go.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let served = loop {
        std::thread::sleep(Duration::from_millis(200));
        let r = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("authorization: Bearer {}", p.token))
            .arg(format!("{}/models", p.url))
            .output()
            .unwrap();
        let code = String::from_utf8_lossy(&r.stdout).to_string();
        if code == "200" || std::time::Instant::now() > deadline {
            break code;
        }
    };
    assert_eq!(served, "200", "the stalled connection still holds the slot");
    drop(stalled);
    p.stop().ok();
    // The cut-off call has its finish, short of the whole answer.
    let fin = receipts(&env, "call.finished");
    assert_eq!(fin.len(), 2, "{fin:#?}");
    assert_eq!(fin[1]["status"], "incomplete", "{:#?}", fin[1]);
}

/// The relay of a sandbox without network, pushed past its descriptors
/// (`ulimit -n 64`, and the child opening as many connections as it
/// can): it waits and goes on, so the child's requests reach the proxy
/// again once the shortage passes (before, the relay stopped accepting
/// for good); and its socket directory is gone when craik ends. No
/// request after the shortage waits its 5 s out: when a relay outside
/// connected onwards to the proxy's port, its connections could hold
/// every descriptor the proxy needed to accept them, and the requests
/// after stalled (in CI, all 30 of them).
#[test]
fn the_sandbox_relay_outlasts_a_descriptor_shortage_and_cleans_up() {
    crate::common::require_tool("bwrap", "apt-get install bubblewrap");
    crate::common::require_tool("python3", "apt-get install python3");
    let up = Upstream::start(Behavior::Normal);
    let mut env = Env::new();
    add_key(&env, "openai:k", "sk-1", &up.url());
    let tmp = env.dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    env.set("TMPDIR", tmp.to_str().unwrap());
    let work = tempfile::tempdir_in(env.dir.path()).unwrap();
    let script = r#"
import os, socket, time, urllib.request
base = os.environ['OPENAI_BASE_URL']
host, port = base.split('//')[1].split('/')[0].rsplit(':', 1)
held = []
for _ in range(200):
    try:
        held.append(socket.create_connection((host, int(port)), timeout=5))
    except OSError:
        pass
print('held', len(held) > 20)
for s in held:
    s.close()
req = urllib.request.Request(base + '/models', headers={'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY']})
# The dead connections ahead of it drain first; a relay that stopped
# answers none of these.
for _ in range(30):
    try:
        print('after', urllib.request.urlopen(req, timeout=5).status)
        break
    except OSError as e:
        print('failed', repr(e))
        time.sleep(1)
"#;
    let craik = env.command(&[
        "exec",
        "--profile",
        "openai:k",
        "--sandbox",
        "--via-proxy",
        "--",
        "python3",
        "-c",
        script,
    ]);
    let line = std::iter::once(craik.get_program())
        .chain(craik.get_args())
        .map(|a| format!("'{}'", a.to_str().unwrap().replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = std::process::Command::new("sh");
    c.args(["-c", &format!("ulimit -n 64 && exec {line}")])
        .current_dir(work.path());
    for (k, v) in craik.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let r = crate::common::to_run(c.output().unwrap());
    assert!(r.stdout.contains("held True"), "{r:?}");
    assert!(r.stdout.contains("after 200"), "{r:?}");
    assert!(!r.stdout.contains("timed out"), "{r:?}");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
}
