//! Provider onboarding: `auth setup`, `auth login` per provider (OpenAI
//! OAuth against the test IdP, a fake `claude` on PATH, Google tokens from
//! a local token endpoint), and `craik doctor`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use crate::common::{Env, assert_schema, canary, contains, files_under, receipts};
use crate::idp::Idp;
use crate::upstream::{Behavior, Upstream};

fn profile(env: &Env, id: &str) -> serde_json::Value {
    let f = env.read_json("auth-profiles.json");
    assert_schema("auth-profiles.schema.json", &f);
    f["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn setup_writes_a_profile_and_a_pool() {
    let env = Env::new();
    let r = env.run(&["auth", "setup", "openai", "--json"]);
    r.ok();
    let v = r.json();
    assert_eq!(v["id"], "openai:default");
    assert_eq!(v["health"]["ok"], false);
    assert!(v["next_step"].as_str().unwrap().contains("OPENAI_API_KEY"));
    assert_eq!(profile(&env, "openai:default")["kind"], "api-key");
    let pools = env.run(&["auth", "pool", "status", "--json"]).json();
    assert_eq!(pools["pools"][0]["id"], "openai:default");
    // dry run writes nothing
    let before = std::fs::read(env.file("auth-profiles.json")).unwrap();
    env.run(&[
        "auth",
        "setup",
        "anthropic",
        "--name",
        "work",
        "--secret-ref",
        "env:ANT",
        "--dry-run",
    ])
    .ok();
    assert_eq!(
        before,
        std::fs::read(env.file("auth-profiles.json")).unwrap()
    );
    env.run(&["auth", "setup", "local"])
        .code(1)
        .error_with_hint("--base-url");
    env.run(&[
        "auth",
        "setup",
        "openai",
        "--name",
        "lan",
        "--base-url",
        "http://127.0.0.1:8080/v1",
    ])
    .code(1)
    .error_with_hint("--allow-local-base-url");
    env.run(&[
        "auth",
        "setup",
        "local",
        "--base-url",
        "http://127.0.0.1:8080/v1",
    ])
    .ok();
    env.run(&["auth", "setup", "gemini", "--env-var", "MY_GEM"])
        .ok();
    assert_eq!(
        profile(&env, "gemini:default")["metadata"]["env_var"],
        "MY_GEM"
    );
    let r = env.run(&["auth", "setup", "mistral"]);
    assert_eq!(r.code, 2, "a usage error: {r:?}");
    assert!(
        r.stderr.contains("openai, anthropic, gemini and local"),
        "{r:?}"
    );
}

#[test]
fn api_key_capture_checks_the_shape_without_echoing() {
    let env = Env::new();
    let secret = canary();
    for (provider, bad_hint) in [
        ("openai", "sk-"),
        ("anthropic", "sk-ant-api"),
        ("gemini", "AIza"),
    ] {
        let mut args = vec![
            "auth",
            "login",
            provider,
            "--mode=api-key",
            "--no-browser",
            "--stdin",
        ];
        if provider == "openai" {
            args.truncate(3);
            args.extend(["--no-browser", "--stdin"]);
        }
        let r = env.run_stdin(&args, Some(&secret));
        r.code(1).error_with_hint("the right key");
        assert!(r.stderr.contains(bad_hint), "{provider}: {}", r.stderr);
        assert!(!r.stderr.contains(&secret) && !r.stdout.contains(&secret));
    }
    assert!(!env.file("auth-profiles.json").exists(), "nothing stored");
    let key = format!("sk-ant-api03-{}", "x".repeat(40));
    env.run_stdin(
        &[
            "auth",
            "login",
            "anthropic",
            "--mode=api-key",
            "--no-browser",
            "--stdin",
            "--dry-run",
        ],
        Some(&key),
    )
    .ok();
    assert!(
        !env.file("auth-profiles.json").exists(),
        "dry run stores nothing"
    );
    let r = env.run_stdin(
        &[
            "auth",
            "login",
            "anthropic",
            "--mode=api-key",
            "--no-browser",
            "--stdin",
            "--json",
        ],
        Some(&key),
    );
    r.ok();
    assert_eq!(profile(&env, "anthropic:default")["kind"], "keyring-ref");
    // OpenAI with OPENAI_API_KEY set: the key moves into the store.
    let mut env2 = Env::new();
    env2.vars = env.vars.clone();
    env2.set("OPENAI_API_KEY", &format!("sk-proj-{}", "y".repeat(30)));
    let r = env2.run(&["auth", "login", "openai"]);
    r.ok();
    assert!(r.stdout.contains("OPENAI_API_KEY"));
    assert_eq!(profile(&env, "openai:default")["kind"], "keyring-ref");
    env.run_stdin(&["auth", "login", "local", "--stdin"], Some("k"))
        .code(1)
        .error_with_hint("--base-url");
    env.run_stdin(
        &[
            "auth",
            "login",
            "local",
            "--stdin",
            "--base-url",
            "http://127.0.0.1:1/v1",
        ],
        Some("local-key"),
    )
    .ok();
    env.run(&["auth", "login", "openai", "--mode=claude-cli"])
        .code(1)
        .error_with_hint("--mode=");
}

/// A fake `claude` that records its arguments and environment.
fn fake_claude(env: &mut Env, exit: i32) -> std::path::PathBuf {
    let bin = env.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = env.dir.path().join("claude.log");
    let script = format!(
        "#!/bin/sh\necho \"args: $*\" >> {l}\nenv >> {l}\nexit {exit}\n",
        l = log.display()
    );
    let path = bin.join("claude");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old = std::env::var("PATH").unwrap_or_default();
    env.set("PATH", &format!("{}:{old}", bin.display()));
    log
}

#[test]
fn anthropic_delegates_to_the_claude_cli() {
    let mut env = Env::new();
    let r = env.run(&["auth", "login", "anthropic"]);
    r.code(1);
    assert!(
        r.stderr.contains("claude") && r.stderr.contains("run `claude` once"),
        "{}",
        r.stderr
    );
    let log = fake_claude(&mut env, 0);
    env.run(&["auth", "login", "anthropic"]).ok();
    assert_eq!(profile(&env, "anthropic:claude-cli")["kind"], "marker");
    // The CLI's own session is used: every Anthropic variable is removed.
    for v in [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_TOKEN",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
    ] {
        env.set(v, "outer-credential-must-go");
    }
    let t = env.run(&["auth", "test", "anthropic:claude-cli", "--json"]);
    t.ok();
    assert_eq!(t.json()["status"], "ok");
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(seen.contains("args: -p "), "{seen}");
    assert!(!seen.contains("outer-credential-must-go"), "{seen}");
    std::fs::remove_file(&log).unwrap();
    env.run(&[
        "exec",
        "--profile",
        "anthropic:claude-cli",
        "--",
        "claude",
        "hello",
    ])
    .ok();
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(seen.contains("args: hello"));
    assert!(!seen.contains("outer-credential-must-go"));
    let fin = receipts(&env, "call.finished");
    assert!(
        fin.iter().all(|r| r["details"]["delegated"] == true),
        "{fin:#?}"
    );
    // A failing CLI marks the test rejected.
    fake_claude(&mut env, 3);
    let t = env.run(&["auth", "test", "anthropic:claude-cli", "--json"]);
    assert_eq!(t.json()["status"], "rejected");
}

#[test]
fn openai_oauth_with_pkce_refreshes_once_across_processes() {
    let idp = Idp::start(&[("IDP_ACCESS_TTL", "200")]);
    let mut env = Env::new();
    env.set("CRAIK_OIDC_CA_FILE", &idp.ca().display().to_string());
    let mut c = env.command(&[
        "auth",
        "login",
        "openai",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "craik-cli",
        "--json",
    ]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut url = None;
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        match v["event"].as_str() {
            Some("notice") => assert!(v["message"].as_str().unwrap().contains("craik-cli")),
            Some("browser") => url = Some(v["url"].as_str().unwrap().to_string()),
            other => panic!("unexpected {other:?}"),
        }
    }
    let url = url.unwrap();
    assert!(url.contains("code_challenge_method=S256"));
    assert_eq!(idp.browser(&url, "alice").code, 0);
    assert!(child.wait().unwrap().success());
    let p = profile(&env, "openai:default");
    assert_eq!(p["kind"], "oauth");
    assert_eq!(p["metadata"]["oauth_source"], "oidc");
    assert!(
        p["metadata"]["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&idp.issuer)
    );
    let added = &receipts(&env, "profile_added")[0];
    assert!(
        added["auth_identity_hash"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    // The access token lives 200 s (inside the 5-minute window): two
    // processes at once refresh it once.
    let dump = |n: u32| env.dir.path().join(format!("tok{n}"));
    let children: Vec<_> = (0..2)
        .map(|n| {
            let mut c = env.command(&[
                "exec",
                "--profile",
                "openai:default",
                "--",
                "sh",
                "-c",
                &format!("printf %s \"$OPENAI_API_KEY\" > {}", dump(n).display()),
            ]);
            c.stdout(Stdio::null()).stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for ch in children {
        let o = ch.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(receipts(&env, "credential_refreshed").len(), 1);
    let t0 = std::fs::read_to_string(dump(0)).unwrap();
    assert_eq!(
        t0,
        std::fs::read_to_string(dump(1)).unwrap(),
        "both got the refreshed token"
    );
    assert!(!t0.is_empty());
    // Rotation was stored: refreshing again with the rotated token works
    // (the IdP revokes the grant when an old refresh token is reused).
    env.run(&["exec", "--profile", "openai:default", "--", "true"])
        .ok();
    assert_eq!(receipts(&env, "credential_refreshed").len(), 2);
    for (path, bytes) in files_under(&env.home) {
        assert!(
            !contains(&bytes, &t0),
            "{} holds the access token",
            path.display()
        );
    }
    let st = env.run(&["auth", "status", "--json"]).json();
    assert_eq!(st["profiles"][0]["backend"], "oauth:oidc");
}

fn write_private(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn gemini_service_account_and_adc_mint_tokens_at_use_time() {
    let up = Upstream::start(Behavior::Normal);
    let mut env = Env::new();
    let dir = env.dir.path().to_path_buf();
    let key = dir.join("sa.pem");
    let st = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let pubkey = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    *up.shared.token_key.lock().unwrap() = Some(pubkey.stdout);
    let sa = serde_json::json!({
        "type": "service_account", "project_id": "p1", "private_key_id": "kid1",
        "private_key": std::fs::read_to_string(&key).unwrap(),
        "client_email": "craik-test@example.iam.gserviceaccount.com",
        "token_uri": format!("{}/token", up.url()),
    });
    let sa_path = dir.join("sa.json");
    std::fs::write(&sa_path, sa.to_string()).unwrap();
    std::fs::set_permissions(&sa_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let sa_arg = sa_path.display().to_string();
    let base = up.url();
    env.run(&[
        "auth",
        "login",
        "gemini",
        "--service-account",
        &sa_arg,
        "--base-url",
        &base,
        "--allow-local-base-url",
    ])
    .code(1)
    .error_with_hint("chmod 600");
    std::fs::set_permissions(&sa_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.run(&[
        "auth",
        "login",
        "gemini",
        "--service-account",
        &sa_arg,
        "--project-id",
        "p1",
        "--name",
        "sa",
        "--base-url",
        &base,
        "--allow-local-base-url",
    ])
    .ok();
    let p = profile(&env, "gemini:sa");
    assert_eq!(p["metadata"]["oauth_source"], "service-account");
    assert_eq!(p["metadata"]["project_id"], "p1");
    // --base-url to a loopback test server: allowed with the flag.
    let t = env.run(&["auth", "test", "gemini:sa", "--json"]);
    t.ok();
    let seen = up.seen();
    let models = seen
        .iter()
        .rev()
        .find(|s| s.path_and_query.starts_with("/v1beta/models"))
        .unwrap();
    assert_eq!(
        models.headers.get("authorization").unwrap(),
        "Bearer ya29.minted-1"
    );
    // Cached until shortly before expiry: no second mint.
    env.run(&["auth", "test", "gemini:sa"]).ok();
    assert_eq!(*up.shared.minted.lock().unwrap(), 1);
    // ADC (authorized_user), from GOOGLE_APPLICATION_CREDENTIALS.
    let adc = dir.join("adc.json");
    write_private(
        &adc,
        &serde_json::json!({"type": "authorized_user", "client_id": "cid", "client_secret": "adc-client-secret",
            "refresh_token": "adc-refresh-token", "token_uri": format!("{}/token", up.url())}).to_string(),
    );
    env.set("GOOGLE_APPLICATION_CREDENTIALS", &adc.display().to_string());
    // A loopback base URL needs saying so, in every flow.
    env.run(&["auth", "login", "gemini", "--base-url", &base])
        .code(1)
        .error_with_hint("--allow-local-base-url");
    env.run(&[
        "auth",
        "login",
        "gemini",
        "--base-url",
        &base,
        "--allow-local-base-url",
    ])
    .ok();
    let p = profile(&env, "gemini:default");
    assert_eq!(p["metadata"]["oauth_source"], "adc");
    env.run(&["auth", "test", "gemini:default"]).ok();
    assert_eq!(*up.shared.minted.lock().unwrap(), 2);
    // craik never stores the Google refresh token.
    for (path, bytes) in files_under(&env.home) {
        assert!(!contains(&bytes, "adc-refresh-token"), "{}", path.display());
    }
    // A broken ADC file is reported.
    write_private(
        &adc,
        r#"{"type":"authorized_user","client_id":"cid","client_secret":"wrong","refresh_token":"x","token_uri":"http://127.0.0.1:9/token"}"#,
    );
    env.unset("GOOGLE_APPLICATION_CREDENTIALS");
    env.set("HOME", &dir.join("nohome").display().to_string());
    env.run(&["auth", "login", "gemini"])
        .code(1)
        .error_with_hint("gcloud auth application-default login");
}

#[test]
fn doctor_reports_each_broken_state() {
    let mut env = Env::new();
    let healthy = env.run(&["doctor", "--json"]);
    healthy.ok();
    assert_eq!(healthy.json()["ok"], true);
    env.run_stdin(
        &["auth", "add", "openai:k", "--kind=keyring-ref", "--stdin"],
        Some("k"),
    )
    .ok();
    env.run(&[
        "auth",
        "add",
        "openai:env",
        "--kind=api-key",
        "--env-var",
        "NOT_SET_VAR",
    ])
    .ok();
    let level = |r: &crate::common::Run, name: &str| {
        r.json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"].as_str().unwrap().starts_with(name))
            .map(|c| c["level"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let r = env.run(&["doctor", "--json"]);
    r.ok();
    assert_eq!(level(&r, "profile openai:env"), ["warn"]);
    assert_eq!(level(&r, "audit log"), ["ok"]);
    // A secret file others can read.
    let f = env.dir.path().join("s.txt");
    std::fs::write(&f, "DOCTOR-CANARY-VALUE").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.run(&[
        "auth",
        "add",
        "openai:file",
        "--kind=secret-ref",
        "--secret-ref",
        &format!("file:{}", f.display()),
    ])
    .ok();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = env.run(&["doctor", "--json"]);
    r.code(1);
    assert_eq!(level(&r, "profile openai:file"), ["fail"]);
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.run(&["doctor"]).ok();
    // An expired Claude OAuth token (expiresAt in epoch milliseconds).
    let claude = env.dir.path().join("claude-config");
    std::fs::create_dir_all(&claude).unwrap();
    write_private(
        &claude.join(".credentials.json"),
        r#"{"claudeAiOauth":{"accessToken":"x","expiresAt":1600000000000}}"#,
    );
    env.set("CLAUDE_CONFIG_DIR", &claude.display().to_string());
    let r = env.run(&["doctor", "--json"]);
    assert_eq!(level(&r, "claude credentials"), ["warn"]);
    assert!(
        r.stdout.contains("2020-09-13"),
        "ms read as ms: {}",
        r.stdout
    );
    // A policy in force that does not parse.
    std::fs::write(env.file("policy.json"), "{ nope").unwrap();
    let r = env.run(&["doctor", "--json"]);
    r.code(1);
    assert_eq!(level(&r, "policies"), ["fail"]);
    std::fs::remove_file(env.file("policy.json")).unwrap();
    // A tampered audit log.
    let db = env.file("audit.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE receipts SET status = 'forged' WHERE seq = 1", [])
        .unwrap();
    drop(conn);
    let r = env.run(&["doctor", "--json"]);
    r.code(1);
    assert_eq!(level(&r, "audit log"), ["fail"]);
    // An issuer that does not answer.
    let mut env2 = Env::new();
    env2.set("CRAIK_OIDC_ISSUER", "http://127.0.0.1:9");
    let r = env2.run(&["doctor", "--json"]);
    r.code(1);
    assert_eq!(level(&r, "identity provider"), ["fail"]);
    // Secrets are never printed.
    let r = env.run(&["doctor"]);
    assert!(!r.stdout.contains("DOCTOR-CANARY-VALUE") && !r.stderr.contains("DOCTOR-CANARY-VALUE"));
}

#[test]
fn provider_anthropic_resolves_sources_in_order() {
    let mut env = Env::new();
    let dump = env.dir.path().join("env.txt");
    let script = format!("env > {}", dump.display());
    let r = env.run(&["exec", "--provider", "anthropic", "--", "sh", "-c", &script]);
    r.code(1).error_with_hint("craik auth login anthropic");
    assert!(
        r.stderr.contains("CLAUDE_CODE_OAUTH_TOKEN is not set"),
        "{}",
        r.stderr
    );
    env.set("ANTHROPIC_API_KEY", "sk-ant-api03-from-env");
    env.run(&["exec", "--provider", "anthropic", "--", "sh", "-c", &script])
        .ok();
    assert!(
        std::fs::read_to_string(&dump)
            .unwrap()
            .contains("ANTHROPIC_API_KEY=sk-ant-api03-from-env")
    );
    assert_eq!(
        receipts(&env, "call.started")[0]["auth_profile_id"],
        "anthropic:env.ANTHROPIC_API_KEY"
    );
    // A denial of that source names the implicit id, and the command its
    // hint gives explains it (it is not in auth-profiles.json).
    let deny = env.dir.path().join("deny.json");
    std::fs::write(
        &deny,
        r#"{"version":1,"denied_credential_profiles":["anthropic:env.*"]}"#,
    )
    .unwrap();
    let deny = deny.display().to_string();
    let r = env.run(&[
        "exec",
        "--provider",
        "anthropic",
        "--policy",
        &deny,
        "--",
        "true",
    ]);
    r.code(3)
        .error_with_hint("craik policy explain --profile anthropic:env.ANTHROPIC_API_KEY");
    let e = env.run(&[
        "policy",
        "explain",
        "--profile",
        "anthropic:env.ANTHROPIC_API_KEY",
        "--policy",
        &deny,
    ]);
    e.ok()
        .out_contains("anthropic:env.ANTHROPIC_API_KEY for no operator: DENIED");
    assert!(
        e.stdout.contains("denied_credential_profiles"),
        "{}",
        e.stdout
    );
    // Only craik's own sources are implicit: any other name is unknown.
    env.run(&["policy", "explain", "--profile", "anthropic:env.HOME"])
        .code(1)
        .error_with_hint("auth status");
    env.set("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-from-env");
    env.run(&["exec", "--provider", "anthropic", "--", "sh", "-c", &script])
        .ok();
    let seen = std::fs::read_to_string(&dump).unwrap();
    assert!(seen.contains("CLAUDE_CODE_OAUTH_TOKEN=sk-ant-oat01-from-env"));
    assert!(
        !seen.contains("ANTHROPIC_API_KEY="),
        "only the chosen source reaches the child"
    );
    let st = env.run(&["auth", "status", "--json"]).json();
    let s = st["anthropic_sources"].as_array().unwrap();
    assert_eq!(s[1]["source"], "anthropic:default");
    assert_eq!(s[1]["passed_over"], "no anthropic:default profile");
    let s = &s[1..];
    assert_eq!(s[1]["source"], "env:CLAUDE_CODE_OAUTH_TOKEN");
    assert_eq!(s[1]["active"], true);
    assert!(
        st["anthropic_sources"][0]["passed_over"]
            .as_str()
            .unwrap()
            .contains("no anthropic:claude-cli profile")
    );
    assert!(
        s[3]["passed_over"]
            .as_str()
            .unwrap()
            .contains("earlier source")
    );
    // A stored anthropic:default (what auth login --mode=api-key makes)
    // comes before the environment.
    env.run_stdin(
        &[
            "auth",
            "login",
            "anthropic",
            "--mode=api-key",
            "--no-browser",
            "--stdin",
        ],
        Some(&format!("sk-ant-api03-stored{}", "x".repeat(40))),
    )
    .ok();
    env.run(&["exec", "--provider", "anthropic", "--", "sh", "-c", &script])
        .ok();
    assert!(
        std::fs::read_to_string(&dump)
            .unwrap()
            .contains("ANTHROPIC_API_KEY=sk-ant-api03-storedxxxx")
    );
    assert_eq!(
        receipts(&env, "call.started")[0]["auth_profile_id"],
        "anthropic:default"
    );
    // The Claude CLI marker wins when present.
    fake_claude(&mut env, 0);
    env.run(&["auth", "login", "anthropic"]).ok();
    env.run(&["exec", "--provider", "anthropic", "--", "sh", "-c", &script])
        .ok();
    let seen = std::fs::read_to_string(&dump).unwrap();
    assert!(!seen.contains("sk-ant-oat01-from-env") && !seen.contains("sk-ant-api03-from-env"));
    assert_eq!(
        receipts(&env, "call.started")[0]["auth_profile_id"],
        "anthropic:claude-cli"
    );
    let doc = env.run(&["doctor"]);
    assert!(
        doc.stdout.contains("anthropic:claude-cli is active"),
        "{}",
        doc.stdout
    );
}

#[test]
fn setup_again_with_force_and_removals_leave_no_pool_behind() {
    let env = Env::new();
    env.run(&["auth", "setup", "openai"]).ok();
    // The hint says --force, and --force exists.
    env.run(&["auth", "setup", "openai"])
        .code(1)
        .error_with_hint("pass --force");
    env.run(&[
        "auth",
        "setup",
        "openai",
        "--env-var",
        "MY_OPENAI",
        "--force",
    ])
    .ok();
    assert_eq!(
        profile(&env, "openai:default")["metadata"]["env_var"],
        "MY_OPENAI"
    );
    // A local endpoint never reads the real OpenAI key by default.
    env.run(&[
        "auth",
        "setup",
        "local",
        "--base-url",
        "http://127.0.0.1:8080/v1",
    ])
    .ok();
    assert_eq!(
        profile(&env, "chat_completions:default")["metadata"]["env_var"],
        "LOCAL_API_KEY"
    );
    // A profile removed leaves every pool; an emptied pool goes.
    env.run(&["auth", "add", "openai:b", "--kind=marker"]).ok();
    env.run(&[
        "auth",
        "pool",
        "create",
        "openai:team",
        "--strategy",
        "round_robin",
        "--member",
        "openai:default",
        "--member",
        "openai:b",
    ])
    .ok();
    env.run(&["auth", "remove", "openai:b"]).ok();
    let removed = &receipts(&env, "profile_removed")[0];
    assert_eq!(
        removed["details"]["pools"],
        serde_json::json!(["openai:team"])
    );
    let pools = env.run(&["auth", "pool", "status", "--json"]).json();
    let team = pools["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "openai:team")
        .unwrap()
        .clone();
    assert_eq!(team["members"].as_array().unwrap().len(), 1, "{team}");
    env.run(&["auth", "logout", "openai", "--yes"]).ok();
    let pools = env.run(&["auth", "pool", "status", "--json"]).json();
    assert!(
        !pools.to_string().contains("openai:"),
        "no pool names a removed profile: {pools}"
    );
}

#[test]
fn typing_a_key_opens_the_providers_key_page() {
    let mut env = Env::new();
    let opened = env.dir.path().join("opened.txt");
    let browser = env.dir.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set("BROWSER", browser.to_str().unwrap());
    let key = format!("sk-proj-{}\n", "k".repeat(40));
    let out =
        crate::common::run_on_terminal(&env, &["auth", "login", "openai", "--mode=api-key"], &key);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("opened https://platform.openai.com/api-keys in your browser"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(&opened).unwrap(),
        "https://platform.openai.com/api-keys\n"
    );
    assert!(text.contains("wrote profile openai:default"), "{text}");
    // --no-browser opens nothing and says where to go; so does a key
    // piped in with --stdin (no page at all).
    let out = crate::common::run_on_terminal(
        &env,
        &[
            "auth",
            "login",
            "anthropic",
            "--mode=api-key",
            "--no-browser",
        ],
        &format!("sk-ant-api03-{}\n", "k".repeat(40)),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("create a key at https://console.anthropic.com/settings/keys"),
        "{text}"
    );
    env.run_stdin(
        &["auth", "login", "gemini", "--mode=api-key", "--stdin"],
        Some(&format!("AIza{}", "k".repeat(35))),
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(&opened).unwrap().lines().count(),
        1,
        "only the first login opened a page"
    );
}
