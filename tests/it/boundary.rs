//! The trust boundary (issue 16): what a child craik runs can still reach.
//! The child is a hostile process of the same user; each test has it try
//! what docs/security.md says it cannot do.

use crate::common::{Env, canary, craik_bin};

/// A home with a stored key (the canary) and two profiles whose sources
/// are environment variables, run with everything a careless parent
/// environment holds: craik's own settings, an audit key reference, other
/// profiles' sources, base URLs pointing elsewhere and a Google
/// credential file.
fn hostile_parent() -> (Env, String) {
    let mut env = Env::new();
    let key = canary();
    env.run_stdin(
        &[
            "auth",
            "add",
            "openai:work",
            "--kind=keyring-ref",
            "--stdin",
        ],
        Some(&key),
    )
    .ok();
    env.run(&[
        "auth",
        "add",
        "anthropic:other",
        "--kind=api-key",
        "--env-var",
        "OTHER_SOURCE",
    ])
    .ok();
    env.run(&[
        "auth",
        "add",
        "gemini:ref",
        "--kind=secret-ref",
        "--secret-ref",
        "env:REF_SOURCE",
    ])
    .ok();
    env.set("OTHER_SOURCE", "other-secret")
        .set("REF_SOURCE", "ref-secret")
        .set("CRAIK_OIDC_ISSUER", "https://idp.example.com")
        .set("CRAIK_SOMETHING_NEW", "1")
        .set("OPENAI_BASE_URL", "http://evil.invalid/v1")
        .set("ANTHROPIC_BASE_URL", "http://evil.invalid")
        .set("GOOGLE_APPLICATION_CREDENTIALS", "/tmp/adc.json")
        .set("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "gh-request-token")
        .set(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "https://pipelines.actions.githubusercontent.com/x",
        )
        .set("KEEP_ME", "kept");
    (env, key)
}

/// The child's environment as `env` prints it.
fn child_env(env: &Env, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["exec", "--profile", "openai:work"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "env"]);
    let r = env.run(&args);
    r.ok();
    r.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get<'a>(vars: &'a [(String, String)], k: &str) -> Option<&'a str> {
    vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

#[test]
fn a_child_inherits_nothing_that_reaches_a_credential() {
    let (env, key) = hostile_parent();
    for mode in [&[][..], &["--via-proxy"][..]] {
        let vars = child_env(&env, mode);
        let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
        for (k, _) in &vars {
            assert!(!k.starts_with("CRAIK_"), "{mode:?}: the child got {k}");
        }
        for gone in [
            "OTHER_SOURCE",
            "REF_SOURCE",
            "ANTHROPIC_BASE_URL",
            "GOOGLE_APPLICATION_CREDENTIALS",
            // The job's workload identity: the child is not the job.
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            "ACTIONS_ID_TOKEN_REQUEST_URL",
        ] {
            assert!(!names.contains(&gone), "{mode:?}: the child got {gone}");
        }
        // What the child needs to run is still there.
        assert_eq!(get(&vars, "KEEP_ME"), Some("kept"), "{mode:?}");
        assert!(get(&vars, "PATH").is_some(), "{mode:?}");
        let base = get(&vars, "OPENAI_BASE_URL").unwrap_or_default();
        assert!(
            !base.contains("evil"),
            "{mode:?}: inherited base URL {base}"
        );
        let api = get(&vars, "OPENAI_API_KEY").expect("an injected key");
        if mode.is_empty() {
            // Plain exec hands the key over: that is what it is for.
            assert_eq!(api, key);
        } else {
            assert!(api.starts_with("craik-proxy-"), "{api}");
            assert!(base.starts_with("http://127.0.0.1:"), "{base}");
            assert!(
                vars.iter().all(|(_, v)| !v.contains(&key)),
                "--via-proxy: the key is in the child's environment"
            );
        }
    }
}

#[test]
fn a_child_cannot_use_craik_for_another_profile() {
    // The child knows where the home is (it can look) and runs craik
    // itself; without the store's password it gets no material.
    let (env, key) = hostile_parent();
    let home = env.home.display().to_string();
    let script = format!(
        "CRAIK_HOME='{home}' CRAIK_KEYRING_BACKEND=file '{bin}' exec --profile openai:work -- sh -c 'echo GOT:$OPENAI_API_KEY' </dev/null; echo inner=$?",
        bin = craik_bin()
    );
    let r = env.run(&[
        "exec",
        "--profile",
        "anthropic:other",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    r.ok();
    assert!(!r.stdout.contains(&key), "the child reached the key: {r:?}");
    assert!(!r.stderr.contains(&key), "the child reached the key: {r:?}");
    assert!(
        !r.stdout.contains("inner=0"),
        "the inner craik succeeded: {r:?}"
    );
}

/// Runs `script` with `sh -c` as a user who is not root (root may read any
/// process's memory, so the check needs another user): `nobody` through
/// setpriv when the tests run as root, else the current user. Returns the
/// output and a home that user owns.
fn as_plain_user(script: &str) -> crate::common::Run {
    let root = rustix::process::geteuid().is_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let mut cmd = if root {
        crate::common::require_tool("setpriv", "apt-get install util-linux");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ]);
        c
    } else {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", script]);
        c
    };
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("CRAIK_HOME", home.join("craik"))
        .env("CRAIK_KEYRING_BACKEND", "file")
        .env("CRAIK_KEYRING_PASSWORD", "a test password")
        .env("CRAIK", craik_bin());
    let out = cmd.output().expect("run sh");
    drop(dir);
    crate::common::to_run(out)
}

#[test]
fn craiks_memory_is_closed_to_its_child() {
    // The child of exec is of the same user; craik is not dumpable, so
    // its /proc files are closed to the child, and it writes no core file
    // even when its parent allowed them.
    let key = canary();
    let r = as_plain_user(&format!(
        r#"printf %s '{key}' | "$CRAIK" auth add openai:x --kind=keyring-ref --stdin >/dev/null || exit 9
ulimit -c unlimited
"$CRAIK" exec --profile openai:x -- sh -c '
  for f in environ maps mem; do
    if head -c 1 /proc/$PPID/$f >/dev/null 2>&1; then echo "read $f"; else echo "denied $f"; fi
  done
  grep "Max core file size" /proc/$PPID/limits'
"#
    ));
    r.ok();
    for f in ["environ", "maps"] {
        assert!(r.stdout.contains(&format!("denied {f}")), "{r:?}");
    }
    assert!(!r.stdout.contains(&key), "{r:?}");
    let core = r
        .stdout
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("limits line");
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
}

#[test]
fn a_trigger_or_view_planted_in_the_log_is_refused() {
    for (what, sql) in [
        (
            "trigger silence",
            "CREATE TRIGGER silence BEFORE INSERT ON receipt_rows BEGIN SELECT RAISE(IGNORE); END;",
        ),
        ("view v", "CREATE VIEW v AS SELECT seq FROM receipts;"),
        ("index mine", "CREATE INDEX mine ON receipt_rows (status);"),
        // The ids the approval gate's index names, given other texts.
        (
            "atoms 1 and 2",
            "UPDATE atoms SET s = 'approval.' WHERE id = 1;",
        ),
        // The view's own trigger, made to leave rows where they are.
        (
            "trigger receipts_delete (altered)",
            "DROP TRIGGER receipts_delete; CREATE TRIGGER receipts_delete INSTEAD OF DELETE ON receipts BEGIN SELECT 1; END;",
        ),
    ] {
        let env = Env::new();
        env.run(&["auth", "add", "openai:d", "--kind=marker"]).ok();
        let db = env.file("audit.db");
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let before = std::fs::read(&db).unwrap();
        // An action fails closed (exit 5), naming the object.
        let r = env.run(&["auth", "add", "openai:e", "--kind=marker"]);
        r.code(5).error_with_hint(what);
        let r = env.run(&["exec", "--profile", "openai:d", "--", "true"]);
        r.code(5).error_with_hint(what);
        // Reading says so too (exit 1): verify, list, doctor.
        env.run(&["receipts", "verify"])
            .code(1)
            .error_with_hint(what);
        env.run(&["receipts", "list"]).code(1).error_with_hint(what);
        let d = env.run(&["doctor"]);
        d.code(1);
        assert!(d.stdout.contains(what) || d.stderr.contains(what), "{d:?}");
        // Nothing was appended or changed.
        assert_eq!(std::fs::read(&db).unwrap(), before, "{what}");
    }
}

#[test]
fn an_append_that_does_not_land_fails_closed() {
    use craik::audit::{AuditLog, NewReceipt, ReceiptKind, Status};
    // A trigger planted while a log is open (a running proxy's committer):
    // the next append reads its rows back and refuses.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let mut log = AuditLog::open_path(&db).unwrap();
    let r = || NewReceipt::new(ReceiptKind::CallStarted, Status::Ok).run("run_x");
    log.append(r()).unwrap();
    for sql in [
        "CREATE TRIGGER silence BEFORE INSERT ON receipt_rows BEGIN SELECT RAISE(IGNORE); END;",
        "DROP TRIGGER silence; CREATE TRIGGER rewrite AFTER INSERT ON receipt_rows BEGIN UPDATE receipt_rows SET hash = 'x' WHERE seq = NEW.seq; END;",
    ] {
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let e = log.append(r()).unwrap_err();
        assert_eq!(e.exit_code(), 5, "{e}");
        assert!(e.to_string().contains("did not land as written"), "{e}");
        assert_eq!(log.append_batch(vec![r(), r()]).unwrap_err().exit_code(), 5);
    }
    // Nothing beyond the first receipt is in the log.
    let n: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM receipts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_log_replaced_by_an_empty_one_is_refused() {
    // The home shows the log held receipts (a checkpoint signed here, or a
    // query index that copied some); a 1-byte file or a blank SQLite
    // database in its place is a lost log, not a new chain, and is left
    // exactly as it was.
    for evidence in ["checkpoint", "index"] {
        for replacement in ["one byte", "blank database"] {
            let env = Env::new();
            env.run(&["auth", "add", "openai:d", "--kind=marker"]).ok();
            match evidence {
                "checkpoint" => env.run(&["receipts", "checkpoint"]).ok(),
                _ => env.run(&["receipts", "list"]).ok(),
            };
            let db = env.file("audit.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            match replacement {
                "one byte" => std::fs::write(&db, b"x").unwrap(),
                _ => {
                    let c = rusqlite::Connection::open(&db).unwrap();
                    c.execute_batch("CREATE TABLE t (x); DROP TABLE t;")
                        .unwrap();
                }
            }
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
            let before = std::fs::read(&db).unwrap();
            let case = format!("{evidence}, {replacement}");
            env.run(&["auth", "add", "openai:e", "--kind=marker"])
                .code(5)
                .error_with_hint("will not start a new chain");
            env.run(&["receipts", "verify"])
                .code(1)
                .error_with_hint("will not start a new chain");
            assert_eq!(
                std::fs::read(&db).unwrap(),
                before,
                "{case}: the file changed"
            );
        }
    }
}

/// A hand-written operator session: expiring now (so the next command
/// refreshes it), at `issuer`, naming `handle` as its refresh token.
fn forge_session(env: &Env, issuer: &str, handle: &str) {
    let now = chrono::Utc::now();
    let s = serde_json::json!({
        "version": 1, "subject": "mallory", "email": null, "name": null,
        "groups": ["prod-deploy"], "issuer": issuer, "client_id": "craik",
        "groups_claim": "groups", "scopes": ["openid"], "jti": "forged",
        "expires_at": (now + chrono::Duration::seconds(30)).to_rfc3339(),
        "logged_in_at": now.to_rfc3339(), "refreshed_at": null,
        "refresh_token_handle": handle,
    });
    let path = env.file("operator-session.json");
    std::fs::write(&path, serde_json::to_vec(&s).unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn a_forged_session_cannot_send_a_key_anywhere() {
    let (env, key) = hostile_parent();
    let handle = env.read_json("auth-profiles.json")["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "openai:work")
        .and_then(|p| p["metadata"]["handle"].as_str())
        .expect("the stored key's handle")
        .to_string();
    // A listener on loopback (an allowed issuer host) records whatever
    // craik would send it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    // 1. The session names the provider key's handle as its refresh token.
    // 2. A plain-http issuer off loopback.
    // Neither is read: a session craik did not seal is refused before
    // anything in it is used (exit 6), and the refusal is a receipt.
    for issuer in [
        format!("http://{addr}"),
        "http://issuer.invalid".to_string(),
    ] {
        forge_session(&env, &issuer, &handle);
        let r = env.run(&["whoami", "--json"]);
        r.code(6).error_with_hint("craik login");
        assert!(r.stderr.contains("refused"), "{r:?}");
        assert!(
            !r.stdout.contains(&key) && !r.stderr.contains(&key),
            "{r:?}"
        );
        // exec reads the operator for every call: refused the same way.
        let e = env.run(&["exec", "--profile", "openai:work", "--", "true"]);
        e.code(6);
    }
    assert!(
        listener.accept().is_err(),
        "craik connected to the forged issuer with a provider key as refresh token"
    );
    assert!(crate::common::receipts(&env, "refresh").is_empty());
    let refused = crate::common::receipts(&env, "denial");
    assert!(
        refused
            .iter()
            .filter(|d| d["policy_condition"] == "operator_session")
            .count()
            >= 2,
        "{refused:#?}"
    );
    // logout removes it without trusting it: the key's handle survives.
    let out = env.run(&["logout"]);
    out.code(6).error_with_hint("craik login");
    assert!(!env.file("operator-session.json").exists());
    env.run(&["exec", "--profile", "openai:work", "--", "true"])
        .ok();
}

/// `craik proxy --json` started for `profile`; killed when dropped.
struct RunningProxy {
    child: std::process::Child,
    url: String,
    token: String,
}

impl RunningProxy {
    fn start(env: &Env, profile: &str) -> RunningProxy {
        use std::io::BufRead;
        let mut c = env.command(&["proxy", "--json", "--profile", profile]);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = c.spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let out: serde_json::Value = serde_json::from_str(&line).expect("the proxy started");
        RunningProxy {
            url: format!("http://{}", out["listen"].as_str().unwrap()),
            token: out["token"].as_str().unwrap().to_string(),
            child,
        }
    }

    /// One chat call through the proxy: (status, body).
    fn call(&self) -> (u16, String) {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/chat/completions", self.url))
            .bearer_auth(&self.token)
            .body(r#"{"model":"m","messages":[]}"#)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap_or_default())
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_running_proxy_reauthorizes_every_request() {
    let up = crate::upstream::Upstream::start(crate::upstream::Behavior::Normal);
    let env = Env::new();
    for id in ["openai:p", "openai:q"] {
        env.run_stdin(
            &[
                "auth",
                "add",
                id,
                "--kind=keyring-ref",
                "--stdin",
                "--base-url",
                &up.url(),
                "--allow-local-base-url",
            ],
            Some("sk-proxy-key"),
        )
        .ok();
    }
    let proxy = RunningProxy::start(&env, "openai:p");
    assert_eq!(proxy.call().0, 200);
    let seen_before = up.seen().len();

    // A policy put in force while it runs denies the next request (403,
    // a denial receipt naming the condition), and nothing goes upstream.
    let policy = env.file("policy.json");
    std::fs::write(
        &policy,
        r#"{"version": 1, "allowed_credential_profiles": ["openai:q"]}"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (status, body) = proxy.call();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("craik_denied"), "{body}");
    assert_eq!(
        up.seen().len(),
        seen_before,
        "a denied request went upstream"
    );
    let denial = &crate::common::receipts(&env, "denial")[0];
    assert_eq!(denial["policy_condition"], "allowed_credential_profiles");
    assert_eq!(denial["capability"], "proxy");

    // Lifted again: allowed again.
    std::fs::remove_file(&policy).unwrap();
    assert_eq!(proxy.call().0, 200);

    // The profile removed: denied.
    env.run(&["auth", "remove", "openai:p"]).ok();
    let (status, body) = proxy.call();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("no profile openai:p"), "{body}");

    // Added back with another key: the proxy does not inject either key
    // under a profile that changed.
    env.run_stdin(
        &[
            "auth",
            "add",
            "openai:p",
            "--kind=keyring-ref",
            "--stdin",
            "--base-url",
            &up.url(),
            "--allow-local-base-url",
        ],
        Some("sk-another-key"),
    )
    .ok();
    let (status, body) = proxy.call();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("changed since"), "{body}");
    assert_eq!(up.seen().len(), seen_before + 1);
}

#[test]
fn a_handle_copied_under_another_profile_id_gives_nothing() {
    // The agent edits auth-profiles.json: a new profile, allowed by
    // policy, pointing at a denied profile's stored key.
    let (env, key) = hostile_parent();
    let mut file = env.read_json("auth-profiles.json");
    let profiles = file["profiles"].as_array_mut().unwrap();
    let mut copy = profiles
        .iter()
        .find(|p| p["id"] == "openai:work")
        .unwrap()
        .clone();
    copy["id"] = "openai:copy".into();
    profiles.push(copy);
    std::fs::write(
        env.file("auth-profiles.json"),
        serde_json::to_vec(&file).unwrap(),
    )
    .unwrap();
    // The edit breaks the file's seal: refused, nothing read.
    let r = env.run(&["exec", "--profile", "openai:copy", "--", "env"]);
    r.code(1).error_with_hint("craik auth reseal");
    assert!(r.stderr.contains("does not match its seal"), "{r:?}");
    assert!(
        !r.stdout.contains(&key) && !r.stderr.contains(&key),
        "{r:?}"
    );
    // Even if the user is talked into resealing it (a receipt records
    // that), the handle was stored for another profile and reads nothing.
    env.run(&["auth", "reseal", "--yes"]).ok();
    assert_eq!(
        crate::common::receipts(&env, "profiles_resealed")[0]["details"]["was_sealed"],
        false
    );
    let r = env.run(&["exec", "--profile", "openai:copy", "--", "env"]);
    r.code(7);
    assert!(
        !r.stdout.contains(&key) && !r.stderr.contains(&key),
        "{r:?}"
    );
    assert!(r.stderr.contains("not for"), "{r:?}");
}

#[test]
fn a_policy_someone_else_could_change_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mut env = Env::new();
    env.run(&["auth", "add", "openai:d", "--kind=marker"]).ok();
    let policy = env.dir.path().join("team.json");
    std::fs::write(&policy, r#"{"version": 1}"#).unwrap();
    let p = policy.display().to_string();
    // Readable by all is fine (policies live in git); writable is not.
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ok = env.run(&["auth", "check", "openai:d", "--policy", &p, "--json"]);
    ok.ok();
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o666)).unwrap();
    for args in [
        vec!["auth", "check", "openai:d", "--policy", &p, "--json"],
        vec![
            "exec",
            "--profile",
            "openai:d",
            "--policy",
            &p,
            "--",
            "true",
        ],
    ] {
        let r = env.run(&args);
        r.code(1);
        assert!(
            r.stderr.contains("can be written by group or others"),
            "{r:?}"
        );
        assert!(r.stderr.contains("chmod go-w"), "{r:?}");
    }
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = env.dir.path().join("link.json");
    std::os::unix::fs::symlink(&policy, &link).unwrap();
    env.set("CRAIK_POLICY", &link.display().to_string());
    let r = env.run(&["auth", "check", "openai:d", "--json"]);
    r.code(1);
    assert!(r.stderr.contains("is a symlink"), "{r:?}");
}

#[test]
fn doctor_fails_a_home_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.run(&["auth", "add", "openai:d", "--kind=marker"]).ok();
    let d = env.run(&["doctor"]);
    d.ok();
    assert!(d.stdout.contains("files are owner-only"), "{d:?}");
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["audit.db", "secrets.enc"] {
        std::fs::set_permissions(env.file(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let d = env.run(&["doctor"]);
    d.code(1);
    for f in [
        "audit.db (mode 0644)",
        "secrets.enc (mode 0644)",
        "(mode 0755)",
    ] {
        assert!(d.stdout.contains(f), "{f}: {d:?}");
    }
    assert!(d.stdout.contains("chmod 700"), "{d:?}");
}

#[test]
fn a_sandboxed_child_reaches_nothing_of_craik() {
    crate::common::require_tool("bwrap", "apt-get install bubblewrap");
    crate::common::require_tool("keyctl", "apt-get install keyutils");
    let up = crate::upstream::Upstream::start(crate::upstream::Behavior::Normal);
    let mut env = Env::new();
    let key = canary();
    env.run_stdin(
        &[
            "auth",
            "add",
            "openai:box",
            "--kind=keyring-ref",
            "--stdin",
            "--base-url",
            &up.url(),
            "--allow-local-base-url",
        ],
        Some(&key),
    )
    .ok();
    let project = env.dir.path().join("project");
    std::fs::create_dir(&project).unwrap();
    // A session bus socket and an SSH agent socket where a desktop has them.
    let bus = env.dir.path().join("bus");
    let agent = env.dir.path().join("agent.sock");
    let _bus = std::os::unix::net::UnixListener::bind(&bus).unwrap();
    let _agent = std::os::unix::net::UnixListener::bind(&agent).unwrap();
    env.set(
        "DBUS_SESSION_BUS_ADDRESS",
        &format!("unix:path={}", bus.display()),
    )
    .set("SSH_AUTH_SOCK", &agent.display().to_string());
    let home = env.home.display().to_string();
    // An abstract Unix socket, where a desktop's D-Bus or X11 may listen:
    // it belongs to the network namespace, not to any path.
    let abstract_name = format!("craik-probe-{}", std::process::id());
    let _abstract = {
        use std::os::linux::net::SocketAddrExt;
        let a =
            std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
        std::os::unix::net::UnixListener::bind_addr(&a).unwrap()
    };
    let abstract_probe = format!(
        "python3 -c \"import socket; socket.socket(socket.AF_UNIX).connect('\\0{abstract_name}')\" 2>/dev/null"
    );
    // The hostile child: what it can reach is printed, one line each.
    let probe = format!(
        r#"
ls -A '{home}' 2>/dev/null | grep -q . && echo REACHED craik home
cat '{home}/secrets.enc' >/dev/null 2>&1 && echo REACHED secrets.enc
test -e '{bus}' && echo REACHED session bus
test -e '{agent}' && echo REACHED ssh agent
test -n "$SSH_AUTH_SOCK$DBUS_SESSION_BUS_ADDRESS" && echo REACHED socket variables
for c in /proc/[0-9]*/comm; do [ "$(cat $c 2>/dev/null)" = craik ] && echo REACHED a craik process; done
keyctl search @s user craik-canary >/dev/null 2>&1 && echo REACHED session keyring
keyctl search @u user craik-canary-u >/dev/null 2>&1 && echo REACHED user keyring
for id in $(grep craik:unlock /proc/keys | cut -d' ' -f1); do keyctl pipe $((0x$id)) >/dev/null 2>&1 && echo REACHED the unlocked store key; done
keyctl link @us @s >/dev/null 2>&1; keyctl link @u @s >/dev/null 2>&1
for d in $(grep -o 'craik:unlock:[0-9a-f]*' /proc/keys); do keyctl search @s user $d >/dev/null 2>&1 && echo REACHED the unlocked store key by name; done
for id in $(cut -d' ' -f1 /proc/keys); do keyctl link $((0x$id)) @s >/dev/null 2>&1; done
keyctl search @s user craik-canary >/dev/null 2>&1 && echo REACHED session keyring by id
keyctl search @s user craik-canary-u >/dev/null 2>&1 && echo REACHED user keyring by id
for d in $(grep -o 'craik:unlock:[0-9a-f]*' /proc/keys); do keyctl search @s user $d >/dev/null 2>&1 && echo REACHED the unlocked store key by id; done
keyctl add user craik-probe x @s >/dev/null 2>&1 && echo REACHED add_key
python3 -c "import socket; socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET)" 2>/dev/null && echo REACHED an AF_ALG socket, which can use a possessed key by serial
touch /usr/craik-probe 2>/dev/null && echo REACHED a system directory
{abstract_probe} && echo REACHED an abstract socket
curl -s -m 5 -o /dev/null '{upstream}/models' && echo REACHED the upstream without the proxy
echo made > made-here
curl -s -o /dev/null -w 'proxy:%{{http_code}}\n' -H "Authorization: Bearer $OPENAI_API_KEY" "$OPENAI_BASE_URL/models"
echo probe done
"#,
        bus = bus.display(),
        agent = agent.display(),
        upstream = up.url(),
    );
    // craik itself runs in a session keyring holding keys of the user's,
    // and the store unlocked (craik unlock) in it. Outside the sandbox,
    // the same reader gets the unlocked key (the control: the probe
    // works, and docs/security.md says an unsandboxed child can).
    let script = format!(
        "keyctl add user craik-canary '{key}' @s >/dev/null && keyctl add user craik-canary-u '{key}' @u >/dev/null && '{bin}' unlock --for 5m >/dev/null && '{bin}' exec --profile openai:box --via-proxy --sandbox -- sh -c \"$PROBE\"; rc=$?; for id in $(keyctl rdescribe @s >/dev/null && grep craik:unlock /proc/keys | cut -d' ' -f1); do keyctl pipe $((0x$id)) >/dev/null 2>&1 && echo CONTROL read the unlocked key outside; done; '{bin}' lock >/dev/null; {abstract_probe} && echo CONTROL reached the abstract socket outside; curl -s -m 5 -o /dev/null '{upstream}/models' && echo CONTROL reached the upstream outside; keyctl unlink %user:craik-canary-u @u >/dev/null 2>&1; exit $rc",
        bin = craik_bin(),
        upstream = up.url(),
    );
    let mut c = std::process::Command::new("keyctl");
    c.args(["session", "-", "sh", "-c", &script])
        .current_dir(&project)
        .env("PROBE", &probe);
    for (k, v) in &env.vars {
        c.env(k, v);
    }
    let r = crate::common::to_run(c.output().unwrap());
    assert!(r.stdout.contains("probe done"), "{r:?}");
    assert!(!r.stdout.contains("REACHED"), "{r:?}");
    for control in [
        "CONTROL read the unlocked key outside",
        "CONTROL reached the abstract socket outside",
        "CONTROL reached the upstream outside",
    ] {
        assert!(r.stdout.contains(control), "{control}: {r:?}");
    }
    assert!(!r.stdout.contains(&key), "{r:?}");
    // It could work: its directory, and the provider through the proxy.
    assert!(r.stdout.contains("proxy:200"), "{r:?}");
    assert_eq!(
        std::fs::read_to_string(project.join("made-here")).unwrap(),
        "made\n"
    );
    // Never unsandboxed: without bubblewrap it does not run at all.
    let r = env.set("PATH", "/nonexistent").run(&[
        "exec",
        "--profile",
        "openai:box",
        "--sandbox",
        "--",
        "/bin/true",
    ]);
    r.code(1).error_with_hint("--sandbox needs bubblewrap");
}

#[test]
fn a_deny_list_naming_the_local_alias_denies() {
    let env = Env::new();
    env.run(&[
        "auth",
        "add",
        "local:llama",
        "--kind=marker",
        "--base-url",
        "http://127.0.0.1:1/v1",
    ])
    .ok();
    let policy = env.dir.path().join("deny-local.json");
    std::fs::write(
        &policy,
        r#"{"version": 1, "denied_credential_profiles": ["local:*"]}"#,
    )
    .unwrap();
    let p = policy.display().to_string();
    env.run(&["auth", "check", "local:llama", "--policy", &p, "--json"])
        .code(3);
    // And receipts are found by the alias too.
    let l = env.run(&["receipts", "list", "--profile", "local:llama", "--json"]);
    l.ok();
    assert!(
        !l.json()["receipts"].as_array().unwrap().is_empty(),
        "{l:?}"
    );
}

#[test]
fn a_rewritten_log_is_caught_by_the_automatic_checkpoint() {
    // Receipts 1..=3; the first made the automatic checkpoint (seq 1).
    let env = Env::new();
    for id in ["openai:a", "openai:b", "openai:c"] {
        env.run(&["auth", "add", id, "--kind=marker"]).ok();
    }
    let auto: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.file("audit-checkpoint.json")).unwrap()).unwrap();
    assert_eq!(auto["seq"], 1);
    // The agent rewrites receipt 1 and recomputes every hash after it,
    // and deletes the query index that remembered the old hashes.
    crate::receipts::rewrite_log(&env.file("audit.db"), |r| {
        r.reason = Some("nothing to see".into())
    });
    let _ = std::fs::remove_file(env.file("audit-index.db"));
    // The chain itself is consistent again, but it no longer matches the
    // signed checkpoint beside it.
    let r = env.run(&["receipts", "verify"]);
    r.code(1);
    assert!(r.stdout.contains("DAMAGED at seq 1"), "{r:?}");
    // Deleting that checkpoint (and the public key beside it) does not
    // help: the signing key is in the secret store, so verify fails until
    // the user puts a checkpoint back, and new receipts do not quietly
    // make one of the rewritten log.
    std::fs::remove_file(env.file("audit-checkpoint.json")).unwrap();
    std::fs::remove_file(env.file("audit-signing.pub")).unwrap();
    env.run(&["receipts", "verify"])
        .code(1)
        .error_with_hint("--checkpoint FILE --public-key KEY");
    env.run(&["auth", "add", "openai:d", "--kind=marker"]).ok();
    assert!(!env.file("audit-checkpoint.json").exists());
    env.run(&["receipts", "verify"]).code(1);
    // Machines reading --json get the same verdict, in JSON.
    let j = env.run(&["receipts", "verify", "--json"]);
    j.code(1);
    let v = j.json();
    assert_eq!(v["ok"], false, "{j:?}");
    assert!(
        v["checkpoint_missing"]["error"]
            .as_str()
            .unwrap()
            .contains("is missing"),
        "{j:?}"
    );
    // And doctor says so.
    let d = env.run(&["doctor"]);
    d.code(1);
    assert!(d.stdout.contains("audit checkpoint"), "{d:?}");
    assert!(d.stdout.contains("is missing although"), "{d:?}");
    // The user's way back, once the log is known good.
    let out = env.file("audit-checkpoint.json");
    env.run(&["receipts", "checkpoint", "--out", out.to_str().unwrap()])
        .ok();
    env.run(&["receipts", "verify"]).ok();
}

#[test]
fn an_edited_secret_index_cannot_choose_the_seal_key() {
    // The agent knows one secret in the store (a key it was handed by
    // plain exec): 32 bytes, as a seal key is.
    let env = Env::new();
    let known = "k".repeat(32);
    env.run_stdin(
        &[
            "auth",
            "add",
            "openai:known",
            "--kind=keyring-ref",
            "--stdin",
        ],
        Some(&known),
    )
    .ok();
    let handle = env.read_json("auth-profiles.json")["profiles"][0]["metadata"]["handle"]
        .as_str()
        .unwrap()
        .to_string();
    // It relabels that secret as the seal key in secret-index.json (and
    // points every other seal-key entry at another backend) ...
    let mut index = env.read_json("secret-index.json");
    for (_, e) in index["secrets"].as_object_mut().unwrap().iter_mut() {
        if e["purpose"] == "seal-key" {
            e["backend"] = "keyutils".into();
        }
    }
    index["secrets"][&handle]["purpose"] = "seal-key".into();
    std::fs::write(
        env.file("secret-index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    // ... and writes a session sealed with the key it knows.
    let now = chrono::Utc::now();
    let mut s = craik::operator::Session {
        version: 1,
        subject: "root-admin".into(),
        email: None,
        name: None,
        groups: vec!["admins".into()],
        groups_claim_present: true,
        issuer: "https://idp.example.com".into(),
        client_id: "craik".into(),
        groups_claim: "groups".into(),
        scopes: vec!["openid".into()],
        ca_file: None,
        jti: "forged".into(),
        expires_at: now + chrono::Duration::hours(2),
        logged_in_at: now,
        refreshed_at: None,
        refresh_token_handle: None,
        id_token_handle: None,
        seal: None,
    };
    let mut key = [0u8; 32];
    key.copy_from_slice(known.as_bytes());
    let sealed = craik::secret::seal::SealKey::from_bytes(key).seal(
        craik::secret::seal::Domain::Session,
        &serde_json::to_vec(&s).unwrap(),
    );
    s.seal = Some(sealed);
    let path = env.file("operator-session.json");
    std::fs::write(&path, serde_json::to_vec(&s).unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    // craik reads its seal key from the store in use under its own fixed
    // handle, never where the index says: the session is refused, and the
    // profiles file still verifies.
    let r = env.run(&["whoami", "--json"]);
    r.code(6);
    assert!(r.stderr.contains("does not match its seal"), "{r:?}");
    env.run(&["auth", "status", "--json"]).ok();
}
