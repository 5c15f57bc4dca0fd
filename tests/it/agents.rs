//! `craik agent detect / import / run`: the agents' own credential files
//! in each format, refused sources, and the real agent CLIs (from npm, in
//! tests/agents) run through craik's proxy against a local upstream that
//! speaks their protocols.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::{Env, canary, contains, files_under, receipts};
use crate::upstream::{AGENT_ANSWER, Behavior, Upstream};

/// Writes an agent's file under the test's HOME, 0600 unless `mode`.
fn put(env: &Env, rel: &str, body: &str, mode: u32) -> PathBuf {
    let p = env.dir.path().join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// A JWT-shaped token (unsigned; craik reads only its `exp` for display).
fn jwt(claims: serde_json::Value, tail: &str) -> String {
    use base64::Engine;
    let b = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{tail}",
        b(br#"{"alg":"RS256"}"#),
        b(claims.to_string().as_bytes())
    )
}

/// The profiles as `auth status --json` shows them (health, masked
/// metadata), with the stored metadata in full from auth-profiles.json.
fn status(env: &Env) -> Vec<serde_json::Value> {
    let r = env.run(&["auth", "status", "--json"]);
    r.ok();
    let mut list = r.json()["profiles"].as_array().unwrap().clone();
    if list.is_empty() {
        return list;
    }
    let file = env.read_json("auth-profiles.json");
    for p in &mut list {
        let stored = file["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["id"] == p["id"])
            .unwrap();
        p["metadata"] = stored["metadata"].clone();
    }
    list
}

fn profile<'a>(list: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    list.iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no profile {id} in {list:?}"))
}

/// Nothing under CRAIK_HOME and nothing craik printed holds `secret`.
#[track_caller]
fn nowhere(env: &Env, secret: &str, printed: &[&crate::common::Run]) {
    for (p, b) in files_under(&env.home) {
        assert!(!contains(&b, secret), "{} holds the secret", p.display());
    }
    for r in printed {
        assert!(!r.stdout.contains(secret) && !r.stderr.contains(secret));
    }
}

#[test]
fn imports_each_agents_own_format() {
    let env = Env::new();
    let c = canary();
    // Claude: milliseconds, a plan, a refresh token.
    put(
        &env,
        ".claude/.credentials.json",
        &serde_json::json!({"claudeAiOauth": {
            "accessToken": format!("sk-ant-oat01-{c}-a"), "refreshToken": format!("sk-ant-ort01-{c}-r"),
            "expiresAt": 1_900_000_000_000u64, "scopes": ["user:inference"], "subscriptionType": "max"}})
        .to_string(),
        0o600,
    );
    // Codex: a ChatGPT login, expiry in the access token's `exp` (seconds).
    let access = jwt(serde_json::json!({"exp": 1_900_000_000u64}), &c);
    let id_token = jwt(
        serde_json::json!({"https://api.openai.com/auth": {"chatgpt_plan_type": "pro"}}),
        "sig",
    );
    put(
        &env,
        "codexhome/auth.json",
        &serde_json::json!({"OPENAI_API_KEY": null, "tokens": {"id_token": id_token,
            "access_token": access, "refresh_token": format!("rt-{c}"), "account_id": "acct-1"},
            "last_refresh": "2026-12-01T00:00:00Z"})
        .to_string(),
        0o600,
    );
    // Gemini: milliseconds, and the account beside it.
    put(
        &env,
        ".gemini/oauth_creds.json",
        &serde_json::json!({"access_token": format!("ya29.{c}"), "refresh_token": format!("1//{c}"),
            "token_type": "Bearer", "expiry_date": 1_900_000_000_000u64})
        .to_string(),
        0o600,
    );
    put(
        &env,
        ".gemini/google_accounts.json",
        r#"{"active":"dev@example.com","old":[]}"#,
        0o600,
    );
    // OpenCode: one oauth, one api key, one provider craik has no family for;
    // the expiry in RFC 3339.
    put(
        &env,
        ".local/share/opencode/auth.json",
        &serde_json::json!({
            "anthropic": {"type": "oauth", "access": format!("sk-ant-oat01-{c}-o"),
                "refresh": format!("sk-ant-ort01-{c}-o"), "expires": "2030-03-17T17:46:40Z"},
            "openai": {"type": "api", "key": format!("sk-{c}-opencode")},
            "openrouter": {"type": "api", "key": format!("sk-or-{c}")}})
        .to_string(),
        0o600,
    );
    let mut env = env;
    env.set(
        "CODEX_HOME",
        &env.dir.path().join("codexhome").display().to_string(),
    );
    let mut runs = Vec::new();
    for agent in ["claude", "codex", "gemini", "opencode"] {
        let r = env.run(&["agent", "import", agent, "--json"]);
        r.ok();
        runs.push(r);
    }
    let j = runs[2].json();
    assert_eq!(
        j["place"],
        format!("{}/.gemini/oauth_creds.json", env.dir.path().display())
    );
    assert_eq!(j["profiles"][0]["account"], "dev@example.com");
    let j = runs[3].json();
    assert_eq!(j["skipped"], serde_json::json!(["openrouter"]));
    let list = status(&env);
    let expiry = "2030-03-17T17:46:40+00:00";
    for (id, kind, agent, ctype) in [
        ("anthropic:claude", "oauth", "claude", "subscription"),
        ("openai:codex", "oauth", "codex", "subscription"),
        ("gemini:gemini", "oauth", "gemini", "subscription"),
        ("anthropic:opencode", "oauth", "opencode", "subscription"),
        ("openai:opencode", "keyring-ref", "opencode", "api_key"),
    ] {
        let p = profile(&list, id);
        assert_eq!(p["kind"], kind, "{id}");
        assert_eq!(p["metadata"]["agent"], agent, "{id}");
        assert_eq!(p["metadata"]["credential_type"], ctype, "{id}");
        if kind == "oauth" {
            assert_eq!(p["metadata"]["expires_at"], expiry, "{id}: {p}");
            assert_eq!(p["health"]["ok"], true, "{id}: {p}");
        }
    }
    assert_eq!(
        profile(&list, "anthropic:claude")["metadata"]["plan"],
        "max"
    );
    assert_eq!(profile(&list, "openai:codex")["metadata"]["plan"], "pro");
    assert_eq!(
        profile(&list, "openai:codex")["metadata"]["account"],
        "acct-1"
    );
    // Each import has its receipt, naming the agent and the source.
    let added = receipts(&env, "profile_added");
    assert_eq!(added.len(), 5);
    assert!(
        added
            .iter()
            .all(|r| r["details"]["imported_from"].is_string()
                && r["auth_identity_hash"].is_string()),
        "{added:?}"
    );
    let refs: Vec<&crate::common::Run> = runs.iter().collect();
    nowhere(&env, &c, &refs);
}

#[test]
fn api_keys_from_files_and_the_environment() {
    let mut env = Env::new();
    let c = canary();
    put(
        &env,
        ".codex/auth.json",
        &format!(r#"{{"OPENAI_API_KEY":"sk-{c}","tokens":null,"auth_mode":"apikey"}}"#),
        0o600,
    );
    env.set("GEMINI_API_KEY", &format!("AIza{c}"));
    env.set("CLAUDE_CODE_OAUTH_TOKEN", &format!("sk-ant-oat01-{c}"));
    let a = env.run(&["agent", "import", "codex"]);
    a.ok();
    assert!(
        a.stdout.contains("as openai:codex (kind keyring-ref)"),
        "{}",
        a.stdout
    );
    let b = env.run(&["agent", "import", "gemini", "--json"]);
    b.ok();
    assert_eq!(b.json()["place"], "$GEMINI_API_KEY");
    let d = env.run(&[
        "agent",
        "import",
        "claude",
        "--name",
        "setup-token",
        "--json",
    ]);
    d.ok();
    assert_eq!(d.json()["place"], "$CLAUDE_CODE_OAUTH_TOKEN");
    assert_eq!(d.json()["profiles"][0]["id"], "anthropic:setup-token");
    let list = status(&env);
    assert_eq!(profile(&list, "gemini:gemini")["kind"], "keyring-ref");
    assert_eq!(profile(&list, "anthropic:setup-token")["kind"], "oauth");
    nowhere(&env, &c, &[&a, &b, &d]);
}

#[test]
fn refused_sources_store_nothing() {
    let env = Env::new();
    let c = canary();
    let body = format!(r#"{{"claudeAiOauth":{{"accessToken":"sk-ant-oat01-{c}"}}}}"#);
    // Readable by others.
    let loose = put(&env, ".claude/.credentials.json", &body, 0o644);
    env.run(&["agent", "import", "claude"])
        .code(1)
        .error_with_hint(&format!("chmod 600 {}", loose.display()));
    // A symbolic link.
    let real = put(&env, "elsewhere.json", &body, 0o600);
    std::fs::remove_file(&loose).unwrap();
    std::os::unix::fs::symlink(&real, &loose).unwrap();
    let r = env.run(&["agent", "import", "claude"]);
    r.code(1).error_with_hint("symbolic link");
    assert!(
        r.stderr.contains(&format!("--from {}", real.display())),
        "{}",
        r.stderr
    );
    // Not a Claude token.
    let wrong = put(
        &env,
        "wrong.json",
        &format!(r#"{{"claudeAiOauth":{{"accessToken":"sk-{c}"}}}}"#),
        0o600,
    );
    let w = env.run(&[
        "agent",
        "import",
        "claude",
        "--from",
        wrong.to_str().unwrap(),
    ]);
    w.code(1)
        .error_with_hint("does not look like a Claude OAuth access token");
    // Amp's key: craik has no family for it.
    put(
        &env,
        ".local/share/amp/secrets.json",
        &format!(r#"{{"apiKey@https://ampcode.com/":"sgamp_{c}"}}"#),
        0o600,
    );
    env.run(&["agent", "import", "amp"])
        .code(1)
        .error_with_hint("ampcode.com");
    // Nothing anywhere: every place is named.
    let n = env.run(&["agent", "import", "codex"]);
    n.code(7).error_with_hint("no codex credential found");
    assert!(
        n.stderr.contains(".codex/auth.json (missing)"),
        "{}",
        n.stderr
    );
    // Detect names the refusal and stores nothing either.
    std::fs::remove_file(&loose).unwrap();
    put(&env, ".claude/.credentials.json", &body, 0o640);
    let d = env.run(&["agent", "detect", "--json"]);
    d.ok();
    let claude = &d.json()["agents"][0];
    assert!(
        claude["error"]
            .as_str()
            .unwrap()
            .contains("group or others")
    );
    assert!(status(&env).is_empty());
    assert!(receipts(&env, "profile_added").is_empty());
    nowhere(&env, &c, &[&r, &w, &n, &d]);
}

#[test]
fn dry_run_reimport_expiry_warning_and_a_profile_not_ours() {
    let env = Env::new();
    let c = canary();
    let creds = |tag: &str, exp: u64| {
        format!(
            r#"{{"claudeAiOauth":{{"accessToken":"sk-ant-oat01-{c}-{tag}","refreshToken":"sk-ant-ort01-{c}-{tag}","expiresAt":{exp}}}}}"#
        )
    };
    put(
        &env,
        ".claude/.credentials.json",
        &creds("one", 1_900_000_000_000),
        0o600,
    );
    let dry = env.run(&["agent", "import", "claude", "--dry-run", "--json"]);
    dry.ok();
    assert_eq!(dry.json()["dry_run"], true);
    assert!(status(&env).is_empty(), "a dry run stores nothing");
    env.run(&["agent", "import", "claude"]).ok();
    let before = profile(&status(&env), "anthropic:claude").clone();
    // Expired (seconds this time): imported again, in place, with a warning.
    put(
        &env,
        ".claude/.credentials.json",
        &creds("two", 1_600_000_000),
        0o600,
    );
    let again = env.run(&["agent", "import", "claude", "--json"]);
    again.ok();
    assert_eq!(again.json()["profiles"][0]["replaced"], true);
    assert_eq!(again.json()["profiles"][0]["expired"], true);
    assert!(
        again
            .stderr
            .contains("warning: anthropic:claude: the claude token expired"),
        "{}",
        again.stderr
    );
    let after = profile(&status(&env), "anthropic:claude").clone();
    assert_eq!(
        before["metadata"]["access_handle"],
        after["metadata"]["access_handle"]
    );
    assert_eq!(before["created_at"], after["created_at"]);
    assert_eq!(after["health"]["ok"], false);
    // An expired imported login is not handed out: craik's refresh at
    // the vendor's endpoint fails here (no network), and says what to do.
    let t = env.run(&["auth", "test", "anthropic:claude"]);
    t.code(7).error_with_hint("craik agent import claude");
    assert!(t.stderr.contains("could not be refreshed"), "{}", t.stderr);
    // A profile made another way is never overwritten.
    env.run_stdin(
        &[
            "auth",
            "add",
            "anthropic:mine",
            "--kind=keyring-ref",
            "--stdin",
        ],
        Some("sk-ant-api03-mine-0123456789"),
    )
    .ok();
    env.run(&["agent", "import", "claude", "--name", "mine"])
        .code(1)
        .error_with_hint("--name NAME");
    nowhere(&env, &c, &[&dry, &again, &t]);
}

/// The directory the test agents are installed in (tests/agents).
fn agent_bin(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents/node_modules/.bin");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: install the test agents with (cd tests/agents && npm ci) (scripts/test does)",
        p.display()
    );
    crate::common::require_tool("node", "apt-get install nodejs");
    p
}

/// A shim named like the agent, first on PATH: it records the
/// environment and argv the agent got, then runs the real one.
fn shim(env: &Env, name: &str) -> (PathBuf, PathBuf) {
    let real = agent_bin(name);
    let dir = env.dir.path().join("shims");
    std::fs::create_dir_all(&dir).unwrap();
    let record = env.dir.path().join(format!("{name}.seen"));
    let script = format!(
        "#!/bin/sh\n{{ env; echo \"ARGV $*\"; }} > '{}'\nexec '{}' \"$@\"\n",
        record.display(),
        real.display()
    );
    let p = dir.join(name);
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, record)
}

/// Runs `agent` through `craik agent run` with a key profile pointing at
/// a local upstream; checks what the user, the upstream and the receipts
/// see, and that the agent never held the key.
///
/// With `sandbox` the agent runs under bubblewrap, where the test's
/// temporary directory (and so the recording shim) does not exist: the
/// real agent is on PATH instead, and its environment is not recorded.
fn run_agent(agent: &str, family: &str, key: &str, args: &[&str], base_path: &str, sandbox: bool) {
    let up = Upstream::start(Behavior::Agents);
    let mut env = Env::new();
    let (bin_dir, record) = if sandbox {
        crate::common::require_tool("bwrap", "apt-get install bubblewrap");
        let real = agent_bin(agent);
        (real.parent().unwrap().to_path_buf(), None)
    } else {
        let (dir, record) = shim(&env, agent);
        (dir, Some(record))
    };
    env.set(
        "PATH",
        &format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir.display()),
    );
    // What a user may have lying around must not reach the agent.
    env.set(
        "CODEX_HOME",
        &env.dir.path().join("user-codex").display().to_string(),
    );
    env.set(
        "CLAUDE_CONFIG_DIR",
        &env.dir.path().join("user-claude").display().to_string(),
    );
    let id = format!("{family}:t");
    env.run_stdin(
        &[
            "auth",
            "add",
            &id,
            "--kind=keyring-ref",
            "--stdin",
            "--base-url",
            &format!("{}{base_path}", up.url()),
            "--allow-local-base-url",
        ],
        Some(key),
    )
    .ok();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let kept = env.dir.path().join("agent-home");
    let mut argv = vec![
        "agent",
        "run",
        agent,
        "--profile",
        &id,
        "--run",
        "run_agent",
    ];
    let kept_s = kept.display().to_string();
    argv.extend(["--keep-home", &kept_s]);
    if sandbox {
        argv.push("--sandbox");
    }
    argv.push("--");
    argv.extend(args);
    let mut cmd = env.command(&argv);
    cmd.current_dir(&work).stdin(std::process::Stdio::null());
    let out = crate::common::to_run(cmd.output().unwrap());
    out.ok();
    assert!(
        out.stdout.contains(AGENT_ANSWER),
        "{agent} printed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    // The upstream saw the real key; the agent saw only the proxy token.
    let seen = up.seen();
    let calls: Vec<_> = seen.iter().filter(|s| !s.body.is_empty()).collect();
    assert!(!calls.is_empty(), "no call reached the upstream");
    for s in &calls {
        let sent: Vec<String> = ["authorization", "x-api-key", "x-goog-api-key"]
            .iter()
            .filter_map(|h| s.headers.get(*h))
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert!(
            sent.iter().any(|v| v.ends_with(key)),
            "{agent}: the upstream got {sent:?} for {}",
            s.path_and_query
        );
    }
    if let Some(record) = record {
        let agent_env = std::fs::read_to_string(&record).unwrap();
        assert!(
            !agent_env.contains(key),
            "{agent}'s environment or argv held the key"
        );
        assert!(
            agent_env.contains("craik-proxy-"),
            "{agent} got no proxy token"
        );
        for v in [
            "CRAIK_HOME=",
            "CRAIK_KEYRING_PASSWORD=",
            "CODEX_HOME=/",
            "CLAUDE_CONFIG_DIR=",
        ] {
            let leaked = agent_env
                .lines()
                .any(|l| l.starts_with(v) && !l.contains(&kept_s));
            assert!(!leaked, "{agent} inherited {v}");
        }
    }
    for (p, b) in files_under(&kept) {
        assert!(
            !contains(&b, key),
            "{agent}'s home file {} holds the key",
            p.display()
        );
    }
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    // Receipts: agent.started, the calls with model and usage, agent.finished.
    let started = receipts(&env, "agent.started");
    let finished = receipts(&env, "agent.finished");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["details"]["agent"], agent);
    assert_eq!(started[0]["details"]["mode"], "api_key");
    assert_eq!(started[0]["details"]["sandbox"], sandbox);
    assert_eq!(finished[0]["details"]["exit_code"], 0);
    assert_eq!(finished[0]["run_id"], "run_agent");
    let call = receipts(&env, "call.finished");
    let with_usage: Vec<_> = call
        .iter()
        .filter(|r| r["details"]["usage"].is_object())
        .collect();
    assert!(
        !with_usage.is_empty(),
        "no call receipt carries usage: {call:?}"
    );
    assert!(
        with_usage
            .iter()
            .all(|r| r["run_id"] == "run_agent" && r["details"]["model"].is_string())
    );
    let s = started[0]["seq"].as_u64().unwrap();
    let f = finished[0]["seq"].as_u64().unwrap();
    assert!(
        call.iter()
            .all(|r| (s..f).contains(&r["seq"].as_u64().unwrap()))
    );
    nowhere(&env, key, &[&out]);
}

#[test]
fn claude_code_runs_through_the_proxy() {
    let key = format!("sk-ant-api03-{}", canary());
    run_agent("claude", "anthropic", &key, &["-p", "say hi"], "", false);
}

#[test]
fn claude_code_runs_sandboxed() {
    let key = format!("sk-ant-api03-{}", canary());
    run_agent("claude", "anthropic", &key, &["-p", "say hi"], "", true);
}

#[test]
fn codex_runs_through_the_proxy() {
    let key = format!("sk-{}", canary());
    run_agent(
        "codex",
        "openai",
        &key,
        &["exec", "--skip-git-repo-check", "say hi"],
        "/v1",
        false,
    );
}

#[test]
fn gemini_cli_runs_through_the_proxy() {
    let key = format!("AIza{}", canary());
    run_agent(
        "gemini",
        "gemini",
        &key,
        &["-m", "gemini-2.5-flash", "-p", "say hi"],
        "",
        false,
    );
}

#[test]
fn run_refuses_what_it_cannot_broker() {
    let env = Env::new();
    // No profile named and none imported.
    env.run(&["agent", "run", "claude", "--", "-p", "hi"])
        .code(7)
        .error_with_hint("craik agent import claude");
    // A profile of another family.
    env.run_stdin(
        &["auth", "add", "openai:k", "--kind=keyring-ref", "--stdin"],
        Some("sk-0123456789abcdefghij"),
    )
    .ok();
    env.run(&["agent", "run", "claude", "--profile", "openai:k"])
        .code(1)
        .error_with_hint("anthropic");
    // Agents it does not start, and unknown ones (usage errors).
    env.run(&["agent", "run", "opencode", "--profile", "openai:k"])
        .code(1)
        .error_with_hint("claude, codex and gemini");
    let u = env.run(&["agent", "run", "claud"]);
    u.code(2);
    assert!(u.stderr.contains("did you mean claude"), "{}", u.stderr);
    assert!(receipts(&env, "agent.started").is_empty());
}

/// Claude Code in mode `sync` (the default): the host's login imported at
/// launch and sent by the proxy as a bearer token; then `ignore` from a
/// scope rule: nothing forwarded, and what the first run wrote into the
/// kept home taken away.
#[test]
fn modes_sync_and_ignore_with_scopes() {
    let up = Upstream::start(Behavior::Agents);
    let mut env = Env::new();
    let (shims, record) = shim(&env, "claude");
    env.set(
        "PATH",
        &format!("{}:/usr/local/bin:/usr/bin:/bin", shims.display()),
    );
    let c = canary();
    let token = format!("sk-ant-oat01-{c}");
    put(
        &env,
        ".claude/.credentials.json",
        &serde_json::json!({"claudeAiOauth": {"accessToken": token,
            "refreshToken": format!("sk-ant-ort01-{c}"), "expiresAt": 1_900_000_000_000u64}})
        .to_string(),
        0o600,
    );
    // Where the subscription's calls go (a gateway; here the test server).
    env.run(&[
        "agent",
        "import",
        "claude",
        "--base-url",
        &up.url(),
        "--allow-local-base-url",
    ])
    .ok();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let kept = env.dir.path().join("agent-home");
    let kept_s = kept.display().to_string();
    let run = |extra: &[&str]| {
        let mut argv = vec!["agent", "run", "claude", "--keep-home", &kept_s];
        argv.extend(extra);
        argv.extend(["--", "-p", "say hi"]);
        let mut cmd = env.command(&argv);
        cmd.current_dir(&work).stdin(std::process::Stdio::null());
        crate::common::to_run(cmd.output().unwrap())
    };
    let first = run(&[]);
    first.ok();
    assert!(first.stdout.contains(AGENT_ANSWER), "{}", first.stderr);
    let seen = up.seen();
    let call = seen
        .iter()
        .find(|s| s.path_and_query.contains("/v1/messages"))
        .unwrap();
    assert_eq!(
        call.headers.get("authorization").unwrap().to_str().unwrap(),
        format!("Bearer {token}")
    );
    assert!(
        call.headers
            .get("anthropic-beta")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("oauth-2025-04-20")
    );
    let agent_env = std::fs::read_to_string(&record).unwrap();
    assert!(
        !agent_env.contains(&c),
        "the agent held the subscription token"
    );
    let started = receipts(&env, "agent.started");
    assert_eq!(started[0]["details"]["mode"], "sync");
    assert_eq!(started[0]["details"]["mode_scope"], "default");
    assert_eq!(started[0]["details"]["forwarded"], "oauth_token");
    // Each sync launch re-imports, in place.
    assert_eq!(receipts(&env, "profile_added").len(), 2);
    assert!(kept.join(".claude.json").exists());

    // A rule for this workspace: ignore.
    let w = work.display().to_string();
    let set = env.run(&[
        "agent",
        "config",
        "set",
        "ignore",
        "--workspace",
        &w,
        "--agent",
        "claude",
    ]);
    set.ok();
    let show = env.run(&["agent", "config", "show", "--workspace", &w, "--json"]);
    show.ok();
    crate::common::assert_schema(
        "agent-config.schema.json",
        &env.read_json("agent-config.json"),
    );
    let resolved = &show.json()["resolved"][0];
    assert_eq!(resolved["mode"], "ignore");
    assert!(
        resolved["scope"]
            .as_str()
            .unwrap()
            .starts_with("workspace=")
    );
    let before = up.seen().len();
    let calls_before = receipts(&env, "call.started").len();
    let second = run(&[]);
    assert_ne!(second.code, 0, "claude has no login in mode ignore");
    assert_eq!(up.seen().len(), before, "nothing may reach the upstream");
    let agent_env = std::fs::read_to_string(&record).unwrap();
    assert!(!agent_env.contains("craik-proxy-") && !agent_env.contains("ANTHROPIC_BASE_URL"));
    // Claude Code writes a .claude.json of its own at start; what craik
    // forwarded (the proxy token accepted as a key) is gone.
    assert!(!kept.join(".craik-forwarded.json").exists());
    for (p, b) in files_under(&kept) {
        assert!(
            !contains(&b, "craik-proxy-"),
            "{} still holds what craik forwarded",
            p.display()
        );
    }
    let started = receipts(&env, "agent.started");
    assert_eq!(started[0]["details"]["mode"], "ignore");
    assert_eq!(started[0]["details"]["forwarded"], "nothing");
    assert_eq!(
        receipts(&env, "call.started").len(),
        calls_before,
        "ignore makes no call"
    );

    // The flag outranks the scopes; an edited config is refused.
    let third = run(&["--mode", "oauth_token"]);
    third.ok();
    let mut cfg = env.read_json("agent-config.json");
    cfg["rules"][0]["mode"] = "sync".into();
    std::fs::write(env.file("agent-config.json"), cfg.to_string()).unwrap();
    run(&[]).code(1).error_with_hint("agent config set");
    nowhere(&env, &c, &[&first, &second, &third]);
}

/// With no credential for the mode chosen, the run fails before the agent
/// starts, saying which scope chose which mode for every agent.
#[test]
fn a_missing_credential_names_every_agents_mode() {
    let env = Env::new();
    env.run(&["agent", "config", "set", "api_key", "--agent", "gemini"])
        .ok();
    let r = env.run(&["agent", "run", "codex", "--", "exec", "hi"]);
    r.code(7).error_with_hint("craik agent import codex");
    for part in [
        "no credential for codex in mode sync (chosen by the default scope)",
        ".codex/auth.json (missing)",
        "claude=sync (default)",
        "gemini=api_key (agent=gemini)",
    ] {
        assert!(
            r.stderr.contains(part),
            "{part:?} missing from:\n{}",
            r.stderr
        );
    }
    let g = env.run(&["agent", "run", "gemini"]);
    g.code(7);
    assert!(
        g.stderr.contains("no profile gemini:gemini"),
        "{}",
        g.stderr
    );
    env.run(&["agent", "config", "set", "oauth_token", "--agent", "codex"])
        .code(1)
        .error_with_hint("api_key or sync");
    env.run(&["agent", "config", "set", "sometimes"]).code(2);
    assert!(receipts(&env, "agent.started").is_empty());
}

/// `agent env`: the env file (0600) in each format and the agent's home
/// files, through the pipeline (capability `export`), never on stdout.
#[test]
fn env_files_for_a_container() {
    let env = Env::new();
    let c = canary();
    let key = format!("sk-ant-api03-{c}");
    env.run_stdin(
        &[
            "auth",
            "add",
            "anthropic:ci",
            "--kind=keyring-ref",
            "--stdin",
        ],
        Some(&key),
    )
    .ok();
    let gkey = format!("AIza{c}");
    env.run_stdin(
        &[
            "auth",
            "add",
            "gemini:ci",
            "--kind=keyring-ref",
            "--stdin",
            "--base-url",
            "https://gateway.example.com",
        ],
        Some(&gkey),
    )
    .ok();
    let okey = format!("sk-{c}");
    env.run_stdin(
        &["auth", "add", "openai:ci", "--kind=keyring-ref", "--stdin"],
        Some(&okey),
    )
    .ok();
    let dir = env.dir.path();
    let out = |n: &str| dir.join(n).display().to_string();
    let d = env.run(&[
        "agent",
        "env",
        "claude",
        "--profile",
        "anthropic:ci",
        "--format",
        "docker",
        "--out",
        &out("claude.env"),
    ]);
    d.ok();
    let body = std::fs::read_to_string(dir.join("claude.env")).unwrap();
    assert!(
        body.contains(&format!("ANTHROPIC_API_KEY={key}\n")),
        "{body}"
    );
    assert!(body.contains("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1\n"));
    let mode = std::fs::metadata(dir.join("claude.env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let s = env.run(&[
        "agent",
        "env",
        "gemini",
        "--profile",
        "gemini:ci",
        "--format",
        "shell",
        "--out",
        &out("gemini.sh"),
    ]);
    s.ok();
    let sh = std::fs::read_to_string(dir.join("gemini.sh")).unwrap();
    assert!(
        sh.contains(&format!("export GEMINI_API_KEY='{gkey}'")),
        "{sh}"
    );
    assert!(sh.contains("export GOOGLE_GEMINI_BASE_URL='https://gateway.example.com'"));
    // A shell reads it back exactly.
    let echoed = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". '{}' && printf %s \"$GEMINI_API_KEY\"",
            dir.join("gemini.sh").display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&echoed.stdout), gkey);
    // Codex needs its home files; the key stays out of them.
    env.run(&[
        "agent",
        "env",
        "codex",
        "--profile",
        "openai:ci",
        "--format",
        "json",
        "--out",
        &out("codex.json"),
    ])
    .code(1)
    .error_with_hint("--home-dir");
    let home = dir.join("container-home");
    let j = env.run(&[
        "agent",
        "env",
        "codex",
        "--profile",
        "openai:ci",
        "--format",
        "json",
        "--out",
        &out("codex.json"),
        "--home-dir",
        home.to_str().unwrap(),
        "--json",
    ]);
    j.ok();
    assert_eq!(
        j.json()["home_files"],
        serde_json::json!([".codex/config.toml"])
    );
    let vars: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("codex.json")).unwrap()).unwrap();
    assert_eq!(vars["OPENAI_API_KEY"], okey.as_str());
    let toml = std::fs::read_to_string(home.join(".codex/config.toml")).unwrap();
    assert!(
        toml.contains("base_url = \"https://api.openai.com/v1\"")
            && toml.contains("env_key = \"OPENAI_API_KEY\"")
    );
    for (p, b) in files_under(&home) {
        assert!(!contains(&b, &c), "{} holds the key", p.display());
    }
    // A symbolic link as the output, or inside the home directory, is refused.
    let target = dir.join("elsewhere");
    std::fs::write(&target, "keep").unwrap();
    std::os::unix::fs::symlink(&target, dir.join("link.env")).unwrap();
    env.run(&[
        "agent",
        "env",
        "claude",
        "--profile",
        "anthropic:ci",
        "--format",
        "docker",
        "--out",
        &out("link.env"),
    ])
    .code(1);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    std::fs::remove_file(home.join(".codex/config.toml")).unwrap();
    std::os::unix::fs::symlink(&target, home.join(".codex/config.toml")).unwrap();
    env.run(&[
        "agent",
        "env",
        "codex",
        "--profile",
        "openai:ci",
        "--format",
        "json",
        "--out",
        &out("codex2.json"),
        "--home-dir",
        home.to_str().unwrap(),
    ])
    .code(1);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    // Receipts: one export per file written, and the refused ones ended.
    let started: Vec<_> = receipts(&env, "call.started")
        .into_iter()
        .filter(|r| r["capability"] == "export")
        .collect();
    assert_eq!(started.len(), 4, "{started:?}");
    assert!(started.iter().any(|r| r["details"]["format"] == "shell"));
    let finished = receipts(&env, "call.finished");
    assert_eq!(finished.iter().filter(|r| r["status"] == "ok").count(), 3);
    nowhere(&env, &c, &[&d, &s, &j]);
}

/// Runs `agent` in mode `sync` with the subscription login in `file`
/// (relative to HOME), imported with its calls sent to the local upstream:
/// the agent prints the answer, the upstream gets the real access token
/// at `call_path` (or, with `refreshed`, the token craik refreshed it to
/// at the upstream's token endpoint), and the agent's environment, argv
/// and home hold only the proxy token. Returns the upstream's requests,
/// the environment and the login file.
fn run_subscription(
    agent: &str,
    file: &str,
    login: serde_json::Value,
    access: &str,
    refreshed: Option<&str>,
    args: &[&str],
    call_path: &str,
) -> (Vec<crate::upstream::Seen>, Env, PathBuf) {
    let up = Upstream::start(Behavior::Agents);
    let mut env = Env::new();
    let (shims, record) = shim(&env, agent);
    env.set(
        "PATH",
        &format!("{}:/usr/local/bin:/usr/bin:/bin", shims.display()),
    );
    let path = put(&env, file, &login.to_string(), 0o600);
    if agent == "codex" {
        env.set("CODEX_HOME", &path.parent().unwrap().display().to_string());
    }
    let base = up.url();
    let token_url = format!("{base}/token");
    let mut import = vec![
        "agent",
        "import",
        agent,
        "--base-url",
        &base,
        "--allow-local-base-url",
    ];
    if refreshed.is_some() {
        import.extend(["--token-url", &token_url]);
    }
    env.run(&import).ok();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let kept = env.dir.path().join("agent-home");
    let kept_s = kept.display().to_string();
    let mut argv = vec!["agent", "run", agent, "--keep-home", &kept_s, "--"];
    argv.extend(args);
    let mut cmd = env.command(&argv);
    cmd.current_dir(&work).stdin(std::process::Stdio::null());
    let out = crate::common::to_run(cmd.output().unwrap());
    out.ok();
    assert!(
        out.stdout.contains(AGENT_ANSWER),
        "{agent} printed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    let seen = up.seen();
    let calls: Vec<_> = seen
        .iter()
        .filter(|s| s.path_and_query.starts_with(call_path))
        .collect();
    assert!(!calls.is_empty(), "no call to {call_path}: {seen:?}");
    for s in seen.iter().filter(|s| s.path_and_query != "/token") {
        assert_eq!(
            s.headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string()),
            Some(format!("Bearer {}", refreshed.unwrap_or(access))),
            "{agent}: {}",
            s.path_and_query
        );
    }
    // The agent held the proxy token only; its home never the login.
    let agent_env = std::fs::read_to_string(&record).unwrap();
    for token in [Some(access), refreshed].into_iter().flatten() {
        assert!(
            !agent_env.contains(token),
            "{agent}'s environment held the token"
        );
        for (p, b) in files_under(&kept) {
            assert!(!contains(&b, token), "{} holds the token", p.display());
        }
    }
    assert!(agent_env.contains("craik-proxy-"));
    let started = receipts(&env, "agent.started");
    assert_eq!(started[0]["details"]["mode"], "sync");
    assert_eq!(started[0]["details"]["forwarded"], "subscription");
    let with_usage = receipts(&env, "call.finished")
        .into_iter()
        .filter(|r| {
            r["details"]["usage"]["totalTokenCount"] == 33
                || r["details"]["usage"]["total_tokens"] == 33
        })
        .count();
    assert!(with_usage > 0, "no call receipt carries the usage");
    nowhere(&env, access, &[&out]);
    (seen, env, path)
}

/// Codex with a ChatGPT login: the proxy stands for chatgpt.com's
/// backend (`/codex/responses`, `/wham/accounts/check`); Codex's auth.json
/// in the private home holds the proxy token and a placeholder id token.
#[test]
fn codex_with_a_chatgpt_login_runs_through_the_proxy() {
    let c = canary();
    // Expired: craik refreshes it (OpenAI's JSON refresh grant, as Codex's
    // client) before the first call, and writes it back to auth.json.
    let access = jwt(serde_json::json!({"exp": 1_600_000_000u64}), &c);
    let id_token = jwt(
        serde_json::json!({"email": "dev@example.com",
            "https://api.openai.com/auth": {"chatgpt_plan_type": "plus"}}),
        "sig",
    );
    let refresh = format!("rt-{c}");
    let login = serde_json::json!({"auth_mode": "chatgpt", "OPENAI_API_KEY": null,
        "tokens": {"id_token": id_token, "access_token": access,
            "refresh_token": refresh, "account_id": "acct-test"},
        "last_refresh": "2026-12-01T00:00:00Z"});
    let (seen, env, file) = run_subscription(
        "codex",
        "user-codex/auth.json",
        login,
        &access,
        Some("codex-refreshed-1"),
        &["exec", "--skip-git-repo-check", "say hi"],
        "/backend-api/codex/responses",
    );
    let call = seen
        .iter()
        .find(|s| s.path_and_query.ends_with("/codex/responses"))
        .unwrap();
    assert_eq!(call.headers.get("chatgpt-account-id").unwrap(), "acct-test");
    assert!(
        seen.iter()
            .any(|s| s.path_and_query == "/backend-api/wham/accounts/check"),
        "{seen:?}"
    );
    let host: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(host["tokens"]["access_token"], "codex-refreshed-1");
    assert_eq!(
        host["tokens"]["refresh_token"],
        format!("{refresh}-rotated-1")
    );
    assert_eq!(
        host["tokens"]["id_token"], id_token,
        "kept: the endpoint sent none"
    );
    assert_ne!(host["last_refresh"], "2026-12-01T00:00:00Z");
    let refreshed = receipts(&env, "credential_refreshed");
    assert_eq!(refreshed.len(), 1);
    assert_eq!(
        refreshed[0]["details"]["written_back"],
        file.display().to_string()
    );
}

/// Gemini CLI with a Google login: Code Assist calls go to the proxy with
/// the proxy token as the access token (`GOOGLE_CLOUD_ACCESS_TOKEN`), so
/// Gemini CLI neither holds nor refreshes the login.
#[test]
fn gemini_cli_with_a_google_login_runs_through_the_proxy() {
    let c = canary();
    let access = format!("ya29.{c}");
    let login = serde_json::json!({"access_token": access, "refresh_token": format!("1//{c}"),
        "token_type": "Bearer", "expiry_date": 1_900_000_000_000u64});
    let (seen, _, _) = run_subscription(
        "gemini",
        ".gemini/oauth_creds.json",
        login,
        &access,
        None,
        &["-m", "gemini-2.5-flash", "-p", "say hi"],
        "/v1internal:streamGenerateContent",
    );
    assert!(
        seen.iter()
            .any(|s| s.path_and_query.ends_with(":loadCodeAssist"))
    );
}

/// An expired Claude login is refreshed by craik, once for two concurrent
/// runs (the vendor rotates the refresh token: a second refresh with the
/// same one would fail), and written back to the agent's own file.
#[test]
fn craik_refreshes_an_expired_login_once_and_writes_it_back() {
    let up = Upstream::start(Behavior::Agents);
    let mut env = Env::new();
    env.set(
        "PATH",
        &format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            agent_bin("claude").parent().unwrap().display()
        ),
    );
    let c = canary();
    let old_access = format!("sk-ant-oat01-{c}");
    let old_refresh = format!("sk-ant-ort01-{c}");
    let file = put(
        &env,
        ".claude/.credentials.json",
        &serde_json::json!({"claudeAiOauth": {"accessToken": old_access,
            "refreshToken": old_refresh, "expiresAt": 1_000_000_000_000u64,
            "subscriptionType": "max"}})
        .to_string(),
        0o600,
    );
    let token_url = format!("{}/token", up.url());
    env.run(&[
        "agent",
        "import",
        "claude",
        "--base-url",
        &up.url(),
        "--token-url",
        &token_url,
        "--allow-local-base-url",
    ])
    .ok();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let start = || {
        let mut cmd = env.command(&["agent", "run", "claude", "--", "-p", "say hi"]);
        cmd.current_dir(&work)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (a, b) = (start(), start());
    for child in [a, b] {
        let out = crate::common::to_run(child.wait_with_output().unwrap());
        out.ok();
        assert!(out.stdout.contains(AGENT_ANSWER), "{}", out.stderr);
        nowhere(&env, &c, &[&out]);
    }
    assert_eq!(
        *up.shared.minted.lock().unwrap(),
        1,
        "refreshed more than once"
    );
    let calls: Vec<_> = up
        .seen()
        .into_iter()
        .filter(|s| s.path_and_query.contains("/v1/messages"))
        .collect();
    assert!(calls.len() >= 2);
    for s in &calls {
        assert_eq!(
            s.headers.get("authorization").unwrap(),
            "Bearer sk-ant-oat01-refreshed-1"
        );
    }
    // The agent's own file holds the rotated login; nothing of the old.
    let host: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let o = &host["claudeAiOauth"];
    assert_eq!(o["accessToken"], "sk-ant-oat01-refreshed-1");
    assert_eq!(o["refreshToken"], format!("{old_refresh}-rotated-1"));
    assert!(o["expiresAt"].as_i64().unwrap() > chrono::Utc::now().timestamp_millis());
    assert_eq!(o["subscriptionType"], "max");
    let refreshed = receipts(&env, "credential_refreshed");
    assert_eq!(refreshed.len(), 1);
    assert_eq!(
        refreshed[0]["details"]["written_back"],
        file.display().to_string()
    );
    // A later run finds the written-back login no newer than craik's,
    // keeps craik's, and refreshes nothing.
    let mut cmd = env.command(&["agent", "run", "claude", "--", "-p", "say hi"]);
    cmd.current_dir(&work).stdin(std::process::Stdio::null());
    crate::common::to_run(cmd.output().unwrap()).ok();
    assert_eq!(*up.shared.minted.lock().unwrap(), 1);
    // The agent's file put back as it was (expired, its refresh token
    // spent): the next sync keeps craik's newer login rather than import
    // a dead one.
    std::fs::write(
        &file,
        serde_json::json!({"claudeAiOauth": {"accessToken": old_access,
            "refreshToken": old_refresh, "expiresAt": 1_000_000_000_000u64}})
        .to_string(),
    )
    .unwrap();
    let before = up.seen().len();
    let mut cmd = env.command(&["agent", "run", "claude", "--", "-p", "say hi"]);
    cmd.current_dir(&work).stdin(std::process::Stdio::null());
    crate::common::to_run(cmd.output().unwrap()).ok();
    assert_eq!(*up.shared.minted.lock().unwrap(), 1);
    for s in up.seen().iter().skip(before) {
        if s.path_and_query.contains("/v1/messages") {
            assert_eq!(
                s.headers.get("authorization").unwrap(),
                "Bearer sk-ant-oat01-refreshed-1"
            );
        }
    }
}
