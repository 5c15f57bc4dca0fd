//! Workload identity and token exchange (issue 20): a local JWT issuer
//! stands in for GitHub Actions' OIDC endpoint (the
//! `ACTIONS_ID_TOKEN_REQUEST_*` protocol exactly: `GET $URL&audience=A`
//! with the request token as Bearer, `{"value": jwt}` back), for a
//! Kubernetes cluster's issuer (tokens written to a file that rotates), and
//! serves an RFC 8693 exchange endpoint that counts exchanges and can
//! refuse. Tokens are signed with Ed25519 (EdDSA), keys served as a JWKS.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use crate::common::*;

/// The Bearer GitHub's request endpoint wants.
const REQUEST_TOKEN: &str = "gh-request-token-canary-7731";

pub struct Shared {
    key: SigningKey,
    kid: String,
    issuer: Mutex<String>,
    /// Claims the GitHub endpoint puts in its tokens (besides iss, aud,
    /// iat, exp).
    pub github_claims: Mutex<Value>,
    pub github_requests: Mutex<Vec<String>>,
    /// How the exchange answers: `Ok(expires_in)` or `Err(error code)`.
    pub exchange: Mutex<Result<i64, String>>,
    /// The subject and audience of each exchange, in order.
    pub exchanges: Mutex<Vec<(String, String)>>,
    /// What the exchange issues instead of `sk-exchanged-<n>-canary`.
    pub issued: Mutex<Option<String>>,
}

pub struct WorkloadIssuer {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    _rt: tokio::runtime::Runtime,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Shared {
    /// A token with `claims` (iss, iat and exp filled in unless given),
    /// signed with this issuer's key.
    pub fn mint(&self, claims: Value) -> String {
        self.mint_with(&self.key, &self.kid, "EdDSA", claims)
    }

    fn mint_with(&self, key: &SigningKey, kid: &str, alg: &str, claims: Value) -> String {
        let mut c = claims.as_object().cloned().unwrap_or_default();
        c.entry("iss")
            .or_insert_with(|| Value::from(self.issuer.lock().unwrap().clone()));
        c.entry("iat").or_insert_with(|| Value::from(now()));
        c.entry("exp").or_insert_with(|| Value::from(now() + 600));
        let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(Value::Object(c).to_string())
        );
        let sig = key.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.to_bytes()))
    }
}

async fn discovery(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let iss = s.issuer.lock().unwrap().clone();
    // What GitHub's and Kubernetes' documents hold: no authorization
    // endpoint.
    axum::Json(json!({
        "issuer": iss,
        "jwks_uri": format!("{iss}/jwks"),
        "subject_types_supported": ["public"],
        "response_types_supported": ["id_token"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
    }))
}

async fn jwks(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let x = B64.encode(s.key.verifying_key().to_bytes());
    axum::Json(json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": s.kid, "use": "sig", "alg": "EdDSA"}
    ]}))
}

async fn github(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> axum::response::Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    s.github_requests
        .lock()
        .unwrap()
        .push(format!("{} audience={:?}", auth, q.get("audience")));
    // Each job has its own request token: this one's, or another job's
    // (`<REQUEST_TOKEN>-<job>`).
    if !auth.starts_with(&format!("Bearer {REQUEST_TOKEN}")) || !q.contains_key("api-version") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut claims = s.github_claims.lock().unwrap().clone();
    claims["aud"] = Value::from(q.get("audience").cloned().unwrap_or_default());
    let token = s.mint(claims);
    axum::Json(json!({"count": 1, "value": token})).into_response()
}

async fn exchange(
    State(s): State<Arc<Shared>>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> axum::response::Response {
    // Long enough that concurrent craik processes overlap.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let bad =
        |code: &str| (StatusCode::BAD_REQUEST, axum::Json(json!({"error": code}))).into_response();
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:token-exchange")
        || !matches!(
            form.get("subject_token_type").map(String::as_str),
            Some(
                "urn:ietf:params:oauth:token-type:jwt"
                    | "urn:ietf:params:oauth:token-type:id_token"
            )
        )
    {
        return bad("invalid_request");
    }
    let Some(subject) = form
        .get("subject_token")
        .and_then(|t| t.split('.').nth(1))
        .and_then(|p| B64.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|c| c["sub"].as_str().map(str::to_string))
    else {
        return bad("invalid_request");
    };
    let audience = form.get("audience").cloned().unwrap_or_default();
    let answer = s.exchange.lock().unwrap().clone();
    match answer {
        Err(code) => bad(&code),
        Ok(expires_in) => {
            let n = {
                let mut e = s.exchanges.lock().unwrap();
                e.push((subject, audience));
                e.len()
            };
            let token = s
                .issued
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| format!("sk-exchanged-{n}-canary"));
            axum::Json(json!({
                "access_token": token,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": expires_in,
            }))
            .into_response()
        }
    }
}

impl WorkloadIssuer {
    pub fn start() -> WorkloadIssuer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
            kid: "test-key-1".into(),
            issuer: Mutex::new(format!("http://{addr}")),
            github_claims: Mutex::new(json!({
                "sub": "repo:my-org/app:environment:prod",
                "repository": "my-org/app",
                "repository_owner": "my-org",
                "ref": "refs/heads/main",
                "environment": "prod",
                "workflow": "ci",
                "run_id": "4242",
            })),
            github_requests: Mutex::new(Vec::new()),
            exchange: Mutex::new(Ok(3600)),
            exchanges: Mutex::new(Vec::new()),
            issued: Mutex::new(None),
        });
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/github/token", get(github))
            .route("/exchange", post(exchange))
            .with_state(shared.clone());
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WorkloadIssuer {
            addr,
            shared,
            _rt: rt,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An Env set up as a GitHub Actions job with `id-token: write`.
    pub fn github_env(&self) -> Env {
        let mut env = Env::new();
        env.set(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            &format!("{}/github/token?api-version=2.0", self.url()),
        )
        .set("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
        .set("CRAIK_WORKLOAD_ISSUER", &self.url());
        env
    }
}

fn write_policy(env: &Env, policy: Value) {
    std::fs::create_dir_all(&env.home).unwrap();
    let path = env.home.join("policy.json");
    std::fs::write(&path, policy.to_string()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn newest(env: &Env, kind: &str) -> Value {
    receipts(env, kind)
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} receipt"))
}

#[test]
fn a_github_actions_job_is_the_operator_and_policies_bind_its_claims() {
    let idp = WorkloadIssuer::start();
    let mut env = idp.github_env();
    env.set("CRAIK_WORKLOAD", "github")
        .set("CI_OPENAI_KEY", "sk-ci-key-canary-1");
    env.run(&[
        "auth",
        "add",
        "openai:ci",
        "--kind=api-key",
        "--env-var",
        "CI_OPENAI_KEY",
    ])
    .ok();
    // policies/github-actions.json, with this test's issuer for GitHub's.
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/github-actions.json"),
    )
    .unwrap()
    .replace("https://token.actions.githubusercontent.com", &idp.url());
    write_policy(&env, serde_json::from_str(&example).unwrap());

    // whoami: the job, by its token's claims; GitHub was asked with the
    // request token and the default audience.
    let w = env.run(&["whoami", "--json"]);
    w.ok();
    let v = w.json();
    assert_eq!(v["subject"], "repo:my-org/app:environment:prod");
    assert_eq!(v["workload"], "github");
    assert_eq!(v["claims"]["repository"], "my-org/app");
    let asked = idp.shared.github_requests.lock().unwrap().clone();
    assert_eq!(
        asked,
        vec![format!("Bearer {REQUEST_TOKEN} audience=Some(\"craik\")")]
    );

    // Allowed: the receipt names the workload and the claims that matched.
    env.run(&["auth", "check", "openai:ci"]).ok();
    let a = newest(&env, "authorization");
    assert_eq!(a["operator_subject"], "repo:my-org/app:environment:prod");
    assert_eq!(a["operator_issuer"], idp.url());
    assert_eq!(a["details"]["workload"]["source"], "github");
    assert_eq!(a["details"]["bound_claims"]["repository"], "my-org/app");
    assert_eq!(a["details"]["bound_claims"]["ref"], "refs/heads/main");
    let hash = a["operator_identity_hash"].as_str().unwrap().to_string();
    assert!(hash.starts_with("hmac-sha256:"));

    // A login receipt for the job, with its claims and no token.
    let login = newest(&env, "login");
    assert_eq!(login["details"]["flow"], "workload");
    assert_eq!(login["details"]["claims"]["workflow"], "ci");

    // Another repository's job on the same runner, sharing the home: its
    // own request token makes a new session (never the first job's), and
    // the bound claim denies it (exit 3), the receipt naming the
    // condition and the value it saw.
    idp.shared.github_claims.lock().unwrap()["repository"] = json!("other-org/app");
    idp.shared.github_claims.lock().unwrap()["sub"] =
        json!("repo:other-org/app:ref:refs/heads/main");
    env.set(
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        &format!("{REQUEST_TOKEN}-job2"),
    );
    let d = env.run(&["auth", "check", "openai:ci"]);
    d.code(3);
    assert!(d.stderr.contains("bound_claims"), "{}", d.stderr);
    assert!(
        d.stderr.contains("repository=other-org/app"),
        "{}",
        d.stderr
    );
    let denial = newest(&env, "denial");
    assert_eq!(denial["policy_condition"], "bound_claims");
    assert_ne!(denial["operator_identity_hash"], hash.as_str());

    // A person is not a workload: without CRAIK_WORKLOAD and with no
    // session, the policy asks for a workload (exit 6: logging in as one
    // fixes it).
    std::fs::remove_file(env.home.join("workload-session.json")).unwrap();
    env.unset("CRAIK_WORKLOAD");
    let p = env.run(&["auth", "check", "openai:ci"]);
    p.code(6);
    assert!(p.stderr.contains("CRAIK_WORKLOAD"), "{}", p.stderr);

    // craik login --workload github, then logout.
    env.set("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN);
    idp.shared.github_claims.lock().unwrap()["repository"] = json!("my-org/app");
    let l = env.run(&["login", "--workload", "github"]);
    l.ok();
    assert!(l.stdout.contains("logged in as workload"), "{}", l.stdout);
    env.run(&["auth", "check", "openai:ci"]).ok();
    let out = env.run(&["logout"]);
    out.ok();
    assert!(!env.home.join("workload-session.json").exists());

    // The request token never lands in CRAIK_HOME or any output.
    for (f, bytes) in files_under(&env.home) {
        assert!(
            !contains(&bytes, REQUEST_TOKEN),
            "{} holds the request token",
            f.display()
        );
    }
}

#[test]
fn tokens_that_must_not_pass_are_refused_with_a_receipt() {
    let idp = WorkloadIssuer::start();
    let env = Env::new();
    let file = env.dir.path().join("token");
    let login = |token: &str, extra: &[&str]| {
        std::fs::write(&file, token).unwrap();
        let spec = format!("file:{}", file.display());
        let mut args = vec!["login", "--workload", spec.as_str(), "--issuer"];
        let url = idp.url();
        args.push(&url);
        args.extend_from_slice(extra);
        env.run(&args)
    };
    let base = json!({"sub": "system:serviceaccount:ci:runner", "aud": "craik"});
    let good = idp.shared.mint(base.clone());
    login(&good, &[]).ok();

    let mut cases: Vec<(&str, String, &[&str])> = Vec::new();
    let mut expired = base.clone();
    expired["exp"] = json!(now() - 3600);
    expired["iat"] = json!(now() - 7200);
    cases.push(("expired", idp.shared.mint(expired), &[]));
    let mut other_aud = base.clone();
    other_aud["aud"] = json!("someone-else");
    cases.push(("audience", idp.shared.mint(other_aud), &[]));
    let mut other_iss = base.clone();
    other_iss["iss"] = json!("https://evil.example.com");
    cases.push(("issuer", idp.shared.mint(other_iss), &[]));
    let mut early = base.clone();
    early["nbf"] = json!(now() + 3600);
    cases.push(("not valid before", idp.shared.mint(early), &[]));
    // Signed by a key the issuer does not publish, under its kid.
    let rogue = SigningKey::generate(&mut rand::rngs::OsRng);
    cases.push((
        "signature",
        idp.shared
            .mint_with(&rogue, "test-key-1", "EdDSA", base.clone()),
        &[],
    ));
    // alg none, and HS256 with the public key as secret.
    let unsigned = {
        let h = B64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let p = B64.encode(
            idp.shared
                .mint(base.clone())
                .split('.')
                .nth(1)
                .map(|p| B64.decode(p).unwrap())
                .unwrap(),
        );
        format!("{h}.{p}.")
    };
    cases.push(("not allowed", unsigned, &[]));
    // The right token, but the audience craik is told to want differs.
    cases.push(("audience", good.clone(), &["--audience", "openai-sts"]));

    for (what, token, extra) in cases {
        let r = login(&token, extra);
        r.code(6);
        assert!(r.stderr.contains(what), "{what}: {}", r.stderr);
        assert!(r.stderr.contains("hint:"), "{what}: {}", r.stderr);
        assert!(
            !r.stderr.contains(&token[..20]),
            "{what}: the token is in the error"
        );
        let failed = newest(&env, "login");
        assert_eq!(failed["status"], "failed", "{what}");
        assert_eq!(failed["details"]["flow"], "workload");
    }

    // No issuer to trust for a cluster's token: exit 1, naming the fix.
    let spec = format!("file:{}", file.display());
    let r = env.run(&["login", "--workload", &spec]);
    r.code(1);
    r.error_with_hint("CRAIK_WORKLOAD_ISSUER");
    // An unknown source is refused.
    env.run(&["login", "--workload", "gitlab"])
        .code(1)
        .error_with_hint("--workload kubernetes");

    // A JWKS written into the home by another process is not trusted:
    // the forged cache is refused and the keys fetched again, so a token
    // signed by the forger's key still fails.
    let cache = env.home.join("workload-cache.json");
    let mut forged: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    let x = B64.encode(rogue.verifying_key().to_bytes());
    forged["jwks"] =
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "test-key-1"}]});
    std::fs::write(&cache, forged.to_string()).unwrap();
    let r = login(
        &idp.shared
            .mint_with(&rogue, "test-key-1", "EdDSA", base.clone()),
        &[],
    );
    r.code(6);
    assert!(r.stderr.contains("signature"), "{}", r.stderr);
}

#[test]
fn a_pods_rotating_token_file_is_read_again_and_nested_claims_bind() {
    let idp = WorkloadIssuer::start();
    let mut env = Env::new();
    let file = env.dir.path().join("projected-token");
    env.set("CRAIK_WORKLOAD", "kubernetes")
        .set("CRAIK_WORKLOAD_TOKEN_FILE", &file.display().to_string())
        .set("CRAIK_WORKLOAD_ISSUER", &idp.url())
        .set("CI_OPENAI_KEY", "sk-pod-key-canary-2");
    let pod = |ns: &str, exp: i64| {
        json!({
            "sub": format!("system:serviceaccount:{ns}:agent"),
            "aud": ["craik"],
            "exp": exp,
            "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": "agent"}},
        })
    };
    // With CRAIK_WORKLOAD set and no token, nothing runs as nobody.
    let r = env.run(&[
        "auth",
        "add",
        "openai:pod",
        "--kind=api-key",
        "--env-var",
        "CI_OPENAI_KEY",
    ]);
    r.code(6);
    assert!(r.stderr.contains("projected-token"), "{}", r.stderr);
    // A token about to expire: every command reads the file again.
    let first = now() + 20;
    std::fs::write(&file, idp.shared.mint(pod("ci", first))).unwrap();
    env.run(&[
        "auth",
        "add",
        "openai:pod",
        "--kind=api-key",
        "--env-var",
        "CI_OPENAI_KEY",
    ])
    .ok();
    write_policy(
        &env,
        json!({
            "version": 1,
            "allowed_workload_issuers": [idp.url()],
            "bound_claims": {"kubernetes.io.namespace": "ci", "kubernetes.io.serviceaccount.name": "agent"},
        }),
    );
    env.run(&["auth", "check", "openai:pod"]).ok();
    let a = newest(&env, "authorization");
    assert_eq!(
        a["details"]["bound_claims"]["kubernetes.io.namespace"],
        "ci"
    );
    // The kubelet rotates it: the next command sees the new one.
    let second = now() + 3600;
    std::fs::write(&file, idp.shared.mint(pod("ci", second))).unwrap();
    let w = env.run(&["whoami", "--json"]);
    w.ok();
    let exp = chrono::DateTime::parse_from_rfc3339(w.json()["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert_eq!(exp, second);
    // Another namespace's pod, once its token replaced the session's.
    std::fs::remove_file(env.home.join("workload-session.json")).unwrap();
    std::fs::write(&file, idp.shared.mint(pod("prod", now() + 3600))).unwrap();
    let d = env.run(&["auth", "check", "openai:pod"]);
    d.code(3);
    assert!(
        d.stderr.contains("kubernetes.io.namespace=prod"),
        "{}",
        d.stderr
    );
    // The session never outlives its token: an expired token with nothing
    // to renew it from removes the session (exit 6).
    std::fs::remove_file(env.home.join("workload-session.json")).unwrap();
    std::fs::write(&file, idp.shared.mint(pod("ci", now() + 2))).unwrap();
    env.run(&["auth", "check", "openai:pod"]).ok();
    std::fs::remove_file(&file).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    env.unset("CRAIK_WORKLOAD");
    let r = env.run(&["whoami"]);
    r.code(6);
    assert!(!env.home.join("workload-session.json").exists());
}

fn exchange_profile(env: &Env, idp: &WorkloadIssuer, id: &str, audience: &str) {
    env.run(&[
        "auth",
        "add",
        id,
        "--kind=oidc-exchange",
        "--exchange-url",
        &format!("{}/exchange", idp.url()),
        "--audience",
        audience,
        "--scope",
        "model.request",
        "--force",
    ])
    .ok();
}

/// What a child run by `exec --profile id` gets as OPENAI_API_KEY.
pub fn key_in_child(env: &Env, id: &str) -> Run {
    env.run(&[
        "exec",
        "--profile",
        id,
        "--",
        "sh",
        "-c",
        "printf %s \"$OPENAI_API_KEY\"",
    ])
}

#[test]
fn oidc_exchange_trades_the_workloads_token_once_across_processes() {
    let idp = WorkloadIssuer::start();
    let mut env = idp.github_env();
    env.set("CRAIK_WORKLOAD", "github");
    exchange_profile(&env, &idp, "openai:ci", "openai");

    // Eight processes at once: one exchange, every child gets its token.
    let children: Vec<_> = (0..8)
        .map(|_| {
            let mut c = env.command(&[
                "exec",
                "--profile",
                "openai:ci",
                "--",
                "sh",
                "-c",
                "printf %s \"$OPENAI_API_KEY\"",
            ]);
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        let r = to_run(c.wait_with_output().unwrap());
        r.ok();
        assert_eq!(r.stdout, "sk-exchanged-1-canary");
    }
    let ex = idp.shared.exchanges.lock().unwrap().clone();
    assert_eq!(
        ex,
        vec![(
            "repo:my-org/app:environment:prod".to_string(),
            "openai".to_string()
        )]
    );
    let r = receipts(&env, "credential_exchanged");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["details"]["audience"], "openai");
    assert_eq!(r[0]["operator_subject"], "repo:my-org/app:environment:prod");
    assert_eq!(receipts(&env, "call.started").len(), 8);

    // Another job (another subject) never gets the cached token.
    std::fs::remove_file(env.home.join("workload-session.json")).unwrap();
    idp.shared.github_claims.lock().unwrap()["sub"] = json!("repo:my-org/app:ref:refs/heads/dev");
    assert_eq!(
        key_in_child(&env, "openai:ci").stdout,
        "sk-exchanged-2-canary"
    );

    // A short-lived token is exchanged again once within 60 s of expiry.
    *idp.shared.exchange.lock().unwrap() = Ok(61);
    exchange_profile(&env, &idp, "openai:short", "openai");
    assert_eq!(
        key_in_child(&env, "openai:short").stdout,
        "sk-exchanged-3-canary"
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        key_in_child(&env, "openai:short").stdout,
        "sk-exchanged-4-canary"
    );

    // Refusals: exit 7, the endpoint's error code and a hint; no token.
    for (code, hint) in [
        ("invalid_target", "--audience"),
        ("invalid_request", "--requested-token-type"),
    ] {
        *idp.shared.exchange.lock().unwrap() = Err(code.into());
        exchange_profile(&env, &idp, "openai:refused", "nobody");
        let r = key_in_child(&env, "openai:refused");
        r.code(7);
        r.error_with_hint(code);
        assert!(r.stderr.contains(hint), "{}", r.stderr);
        assert_eq!(r.stdout, "");
    }

    // Without a workload operator there is nothing to exchange.
    std::fs::remove_file(env.home.join("workload-session.json")).unwrap();
    env.unset("CRAIK_WORKLOAD");
    let r = key_in_child(&env, "openai:ci");
    r.code(7);
    r.error_with_hint("craik login --workload");

    // The exchanged tokens are nowhere in plain files.
    for (f, bytes) in files_under(&env.home) {
        assert!(
            !contains(&bytes, "sk-exchanged-"),
            "{} holds a token",
            f.display()
        );
        assert!(!contains(&bytes, REQUEST_TOKEN), "{}", f.display());
    }
}

#[test]
fn a_sandboxed_child_cannot_read_the_workloads_token_file() {
    require_tool("bwrap", "apt-get install bubblewrap");
    let idp = WorkloadIssuer::start();
    let mut env = Env::new();
    // The token in the project directory, which the sandbox binds
    // writable: only craik's own bind hides it.
    let project = env.dir.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let file = project.join("token");
    let token = idp
        .shared
        .mint(json!({"sub": "system:serviceaccount:ci:agent", "aud": "craik"}));
    std::fs::write(&file, &token).unwrap();
    env.set("CRAIK_WORKLOAD", &format!("file:{}", file.display()))
        .set("CRAIK_WORKLOAD_ISSUER", &idp.url())
        .set("CI_OPENAI_KEY", "sk-sandbox-canary-3");
    env.run(&[
        "auth",
        "add",
        "openai:ci",
        "--kind=api-key",
        "--env-var",
        "CI_OPENAI_KEY",
    ])
    .ok();
    let read = |sandbox: bool| {
        let mut args = vec!["exec", "--profile", "openai:ci"];
        if sandbox {
            args.push("--sandbox");
        }
        args.extend_from_slice(&["--", "sh", "-c", "cat token; echo; echo done"]);
        let mut c = env.command(&args);
        c.current_dir(&project);
        to_run(c.output().unwrap())
    };
    let plain = read(false);
    plain.ok();
    assert!(
        plain.stdout.contains(&token),
        "without the sandbox the file is readable: {plain:?}"
    );
    let boxed = read(true);
    boxed.ok();
    assert!(boxed.stdout.contains("done"), "{boxed:?}");
    assert!(
        !boxed.stdout.contains(&token[..40]),
        "the sandbox let the child read the token"
    );
}

#[test]
fn a_logged_in_person_exchanges_their_id_token() {
    let idp = crate::idp::Idp::start(&[]);
    let sts = WorkloadIssuer::start();
    let mut env = Env::new();
    idp.configure(&mut env);
    crate::idp::login_as(&env, &idp, "alice");
    let me = env.run(&["whoami", "--json"]).json()["subject"]
        .as_str()
        .unwrap()
        .to_string();
    exchange_profile(&env, &sts, "openai:me", "openai");
    for _ in 0..2 {
        let r = key_in_child(&env, "openai:me");
        r.ok();
        assert_eq!(r.stdout, "sk-exchanged-1-canary");
    }
    // Once, for alice, with her ID token.
    assert_eq!(
        sts.shared.exchanges.lock().unwrap().clone(),
        vec![(me.clone(), "openai".to_string())]
    );
    let r = receipts(&env, "credential_exchanged");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["operator_subject"], me.as_str());
    // Logged out: the ID token is gone with the session.
    env.run(&["logout"]).ok();
    key_in_child(&env, "openai:me")
        .code(7)
        .error_with_hint("craik login");
}
