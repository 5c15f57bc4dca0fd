//! The broker: `craik exec`, `craik proxy`, `craik auth test` and pools,
//! against a local server playing each provider.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::{Env, Run, canary, contains, files_under, receipts};
use crate::upstream::{Behavior, Upstream};

struct Proxy {
    child: Option<Child>,
    url: String,
    token: String,
    out: serde_json::Value,
}

impl Proxy {
    fn start(env: &Env, args: &[&str]) -> Proxy {
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

    fn pid(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_raw(self.child.as_ref().unwrap().id() as i32).unwrap()
    }

    fn stop(mut self) -> Run {
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
    // Only loopback unless --allow-remote.
    env.run(&["proxy", "--profile", "openai:k", "--listen", "0.0.0.0:0"])
        .code(1)
        .error_with_hint("--allow-remote");
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
    assert!(receipts(&env, "call.started")[0]["seq"].as_i64() < fin["seq"].as_i64());
    // A missing command.
    env.run(&["exec", "--profile", "openai:k", "--", "/nonexistent/cmd"])
        .code(1)
        .error_with_hint("PATH");
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
    let flag = env.dir.path().join("got-term");
    let script = format!(
        "trap 'echo term > {}; exit 7' TERM; while true; do sleep 0.1; done",
        flag.display()
    );
    let mut c = env.command(&["exec", "--profile", "openai:k", "--", "sh", "-c", &script]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(flag.exists(), "the child got SIGTERM");
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
