//! Operator identity against the real test OpenID provider.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use crate::common::{Env, Run, receipts};
use crate::idp::{Idp, device_login, login_as};

fn env_for(idp: &Idp) -> Env {
    let mut env = Env::new();
    idp.configure(&mut env);
    env
}

#[test]
fn device_login_whoami_logout() {
    let idp = Idp::start(&[]);
    let env = env_for(&idp);
    env.run(&["whoami"])
        .code(6)
        .error_with_hint("run craik login");

    let (events, run) = device_login(&env, &idp, Some("alice"), false);
    run.ok();
    let first = &events[0];
    assert_eq!(first["event"], "device_code");
    assert!(
        first["verification_uri"]
            .as_str()
            .unwrap()
            .starts_with(&idp.issuer)
    );
    assert!(
        first["verification_uri_complete"]
            .as_str()
            .unwrap()
            .contains("user_code=")
    );
    assert!(first["expires_in"].as_u64().unwrap() > 0);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "logged_in");
    assert_eq!(last["subject"], "alice");
    assert_eq!(last["email"], "alice@example.com");
    assert_eq!(last["issuer"], idp.issuer.as_str());
    assert_eq!(last["groups"], serde_json::json!(["prod-deploy", "devs"]));

    let who = env.run(&["whoami", "--json"]);
    who.ok();
    let w = who.json();
    assert_eq!(w["subject"], "alice");
    assert_eq!(w["name"], "Alice Admin");
    assert_eq!(w["groups"], serde_json::json!(["prod-deploy", "devs"]));

    // The session file: owner-only, a handle, no token.
    let path = env.file("operator-session.json");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let session: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        session["refresh_token_handle"]
            .as_str()
            .unwrap()
            .starts_with("craik-")
    );
    assert!(!text.contains("eyJ"), "no JWT in the session file");
    assert!(session.get("refresh_token").is_none());
    assert_eq!(session["client_id"], "craik-cli");

    // The login receipt names alice by a hash an auditor can recompute.
    let login = &receipts(&env, "login")[0];
    assert_eq!(login["status"], "ok");
    assert_eq!(login["operator_subject"], "alice");
    assert_eq!(login["operator_email"], "alice@example.com");
    assert_eq!(
        login["operator_groups"],
        serde_json::json!(["prod-deploy", "devs"])
    );
    let h = env.run_stdin(
        &["receipts", "hash", "--operator-issuer", &idp.issuer],
        Some("alice"),
    );
    h.ok();
    assert_eq!(login["operator_identity_hash"], h.stdout.trim());

    // Receipts of later actions name the operator.
    env.run(&["auth", "add", "openai:x", "--kind=marker"]).ok();
    let added = &receipts(&env, "profile_added")[0];
    assert_eq!(added["operator_subject"], "alice");

    // Logout revokes, and is idempotent.
    let out = env.run(&["logout", "--json"]);
    out.ok();
    assert_eq!(out.json()["revocation"], "revoked");
    assert!(!path.exists());
    env.run(&["whoami"])
        .code(6)
        .error_with_hint("run craik login");
    let again = env.run(&["logout"]);
    again.ok();
    assert!(again.stdout.contains("nothing to do"));
    assert_eq!(
        receipts(&env, "logout")[0]["details"]["revocation"],
        "revoked"
    );
    // The refresh token was deleted from the store: only the audit key,
    // the automatic checkpoint's signing key and the seal key are left.
    let st = env.run(&["auth", "storage", "status", "--json"]).json();
    assert_eq!(st["secrets"], 3);
}

#[test]
fn denied_login_leaves_no_session() {
    let idp = Idp::start(&[]);
    let env = env_for(&idp);
    let (events, run) = device_login(&env, &idp, Some("bob"), true);
    run.code(1);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "error");
    assert_eq!(last["error"], "access_denied");
    assert!(run.stderr.contains("denied"), "{}", run.stderr);
    assert!(!env.file("operator-session.json").exists());
    let r = &receipts(&env, "login")[0];
    assert_eq!(r["status"], "failed");
}

#[test]
fn expired_device_code_stops_with_a_message() {
    let idp = Idp::start(&[("IDP_DEVICE_TTL", "3")]);
    let env = env_for(&idp);
    let (events, run) = device_login(&env, &idp, None, false);
    run.code(1);
    assert_eq!(
        events.last().unwrap()["error"],
        "expired_token",
        "{events:?}"
    );
    assert!(run.stderr.contains("expired"), "{}", run.stderr);
    assert!(!env.file("operator-session.json").exists());
}

#[test]
fn refresh_rotates_once_across_processes_and_fails_after_logout() {
    // ID tokens live 200 s: inside the 5-minute window, so every command
    // that needs the operator refreshes.
    let idp = Idp::start(&[("IDP_ID_TOKEN_TTL", "200")]);
    let env = env_for(&idp);
    login_as(&env, &idp, "carol");
    let before: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.file("operator-session.json")).unwrap()).unwrap();

    // Two processes at once: one refresh, both succeed.
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut c = env.command(&["whoami", "--json"]);
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for ch in children {
        let out = ch.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let refreshes = receipts(&env, "refresh");
    assert_eq!(
        refreshes.len(),
        1,
        "one refresh for two processes: {refreshes:#?}"
    );
    assert_eq!(refreshes[0]["status"], "ok");
    let after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.file("operator-session.json")).unwrap()).unwrap();
    assert!(before["refreshed_at"].is_null());
    assert!(after["refreshed_at"].is_string());
    assert_eq!(
        before["refresh_token_handle"],
        after["refresh_token_handle"]
    );

    // The rotated token was stored: the IdP revokes the whole grant if an
    // old refresh token is reused, so a second refresh proves it.
    env.run(&["whoami"]).ok();
    let refreshes = receipts(&env, "refresh");
    assert_eq!(refreshes.len(), 2);
    assert!(refreshes.iter().all(|r| r["status"] == "ok"));

    // Keep a copy of the home, log out (revoking), then try to refresh
    // with the copy's token: the IdP refuses it.
    let copy = env.dir.path().join("copy-home");
    copy_dir(&env.home, &copy);
    env.run(&["logout"]).ok();
    let mut env2 = env_for(&idp);
    env2.set("CRAIK_HOME", &copy.display().to_string());
    env2.run(&["whoami"]).ok(); // still inside its 200 s
    let failed = receipts(&env2, "refresh");
    let last = &failed[0];
    assert_eq!(last["status"], "failed", "{failed:#?}");
    assert!(
        last["reason"].as_str().unwrap().contains("invalid_grant"),
        "{last}"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn key_rotation_refetches_the_jwks_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut idp = Idp::start(&[]);
    // Keep the certificate, issuer and port; rotate the keys.
    for f in ["cert.pem", "key.pem", "jwks.json"] {
        std::fs::copy(idp.dir.join(f), tmp.path().join(f)).unwrap();
    }
    let port = idp.port;
    let env = env_for(&idp);
    login_as(&env, &idp, "alice");
    let kids = |env: &Env| {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(env.file("oidc-cache.json")).unwrap()).unwrap();
        let mut k: Vec<String> = v["jwks"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect();
        k.sort();
        k
    };
    let old = kids(&env);
    idp.stop();
    let idp2 = Idp::start_in(tmp.path(), port, &[("IDP_ROTATE", "1")]);
    assert_eq!(idp2.issuer, idp.issuer);
    // The cached discovery document still holds the old keys; the new
    // token's kid is unknown, so craik fetches the JWKS once and accepts.
    login_as(&env, &idp2, "alice");
    let new = kids(&env);
    assert_ne!(old, new);
    assert_eq!(receipts(&env, "login").len(), 2);
}

#[test]
fn browser_login_with_pkce() {
    let idp = Idp::start(&[]);
    let env = env_for(&idp);
    let mut c = env.command(&["login", "--browser", "--json"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    let ev: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(ev["event"], "browser");
    let url = ev["url"].as_str().unwrap();
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(
        url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{url}"
    );
    assert!(url.contains("state=") && url.contains("nonce="));
    // A forged callback with the wrong state is refused, the login goes on.
    let port = url
        .split("127.0.0.1%3A")
        .nth(1)
        .unwrap()
        .split("%2F")
        .next()
        .unwrap();
    let forged = std::process::Command::new("curl")
        .args([
            "-s",
            &format!("http://127.0.0.1:{port}/callback?code=x&state=forged"),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&forged.stdout).contains("state mismatch"));
    let b = idp.browser(url, "bob");
    assert_eq!(b.code, 0, "{b:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let last: serde_json::Value = serde_json::from_str(rest.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "logged_in");
    assert_eq!(last["subject"], "bob");
    assert_eq!(receipts(&env, "login")[0]["details"]["flow"], "browser");
}

#[test]
fn login_configuration_errors() {
    let env = Env::new();
    env.run(&["login"])
        .code(1)
        .error_with_hint("CRAIK_OIDC_ISSUER");
    env.run(&[
        "login",
        "--issuer",
        "http://idp.example.com",
        "--client-id",
        "x",
    ])
    .code(1)
    .error_with_hint("must use https");
    env.run(&["login", "--issuer", "https://idp.example.com"])
        .code(1)
        .error_with_hint("--client-id");
    // Discovery against a closed port fails with a clear message.
    let r: Run = env.run(&[
        "login",
        "--issuer",
        "http://127.0.0.1:9",
        "--client-id",
        "x",
    ]);
    r.code(1).error_with_hint("discovery");
}

#[test]
fn ctrl_c_during_login_leaves_no_session() {
    let idp = Idp::start(&[]);
    let env = env_for(&idp);
    let mut c = env.command(&["login", "--json"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains("device_code"));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(!env.file("operator-session.json").exists());
    // Nothing half-written: no temporary files left in the home.
    for e in std::fs::read_dir(&env.home).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with(".tmp-"), "{name}");
    }
    env.run(&["whoami"]).code(6);
}

#[test]
fn control_characters_from_the_idp_never_reach_the_terminal_raw() {
    let idp = Idp::start(&[]);
    let env = env_for(&idp);
    login_as(&env, &idp, "mallory");
    let r = env.run(&["whoami"]);
    r.ok();
    for raw in ['\u{1b}', '\u{7}', '\u{9b}', '\r'] {
        assert!(!r.stdout.contains(raw), "{raw:?} reached the output: {r:?}");
    }
    assert!(r.stdout.contains(r"Mal\u{1b}[2J\nissuer:"), "{r:?}");
    // One issuer line: the session's own.
    let issuers: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("issuer:"))
        .collect();
    assert_eq!(issuers, [format!("issuer:  {}", idp.issuer)], "{r:?}");
    // Receipts naming the operator show the same escapes.
    env.run(&["auth", "add", "openai:e", "--kind=marker"]).ok();
    let l = env.run(&["receipts", "list"]);
    l.ok();
    assert!(
        !l.stdout.contains('\u{1b}') && !l.stdout.contains('\u{7}'),
        "{l:?}"
    );
}

#[test]
fn a_session_edited_or_copied_is_refused_and_receipted() {
    let idp = Idp::start(&[]);
    let env = env_for(&idp);
    login_as(&env, &idp, "bob");
    env.run(&["auth", "add", "openai:x", "--kind=marker"]).ok();
    let path = env.file("operator-session.json");
    let good = std::fs::read_to_string(&path).unwrap();
    let s: serde_json::Value = serde_json::from_str(&good).unwrap();
    assert!(s["seal"].as_str().unwrap().starts_with("hmac-sha256:"));
    // Each edit an operator without the right would try (a field and its
    // new value; none removes it).
    let zero_seal = format!("hmac-sha256:{}", "0".repeat(64));
    let edits: Vec<(&str, &str, Option<serde_json::Value>)> = vec![
        ("subject", "subject", Some("carol".into())),
        ("groups", "groups", Some(serde_json::json!(["prod-deploy"]))),
        ("expiry", "expires_at", Some("2099-01-01T00:00:00Z".into())),
        ("issuer", "issuer", Some("https://idp.example.com".into())),
        ("no seal", "seal", None),
        ("another seal", "seal", Some(zero_seal.into())),
    ];
    for (name, field, value) in &edits {
        let mut forged = s.clone();
        match value {
            Some(v) => forged[*field] = v.clone(),
            None => {
                forged.as_object_mut().unwrap().remove(*field);
            }
        }
        std::fs::write(&path, serde_json::to_vec(&forged).unwrap()).unwrap();
        let r = env.run(&["whoami", "--json"]);
        r.code(6).error_with_hint("craik login");
        assert!(r.stderr.contains("refused"), "{name}: {r:?}");
        // --json errors are JSON on stdout too.
        let j = r.json();
        assert_eq!(j["logged_in"], false, "{name}: {j}");
        assert_eq!(j["exit_code"], 6);
        let c = env.run(&["auth", "check", "openai:x"]);
        assert_eq!(c.code, 6, "{name}: {c:?}");
    }
    let refusals: Vec<_> = receipts(&env, "denial")
        .into_iter()
        .filter(|d| d["policy_condition"] == "operator_session")
        .collect();
    assert!(refusals.len() >= edits.len(), "{refusals:#?}");
    // A session sealed in another home does not verify here.
    let other = env_for(&idp);
    login_as(&other, &idp, "carol");
    std::fs::copy(other.file("operator-session.json"), &path).unwrap();
    env.run(&["whoami"]).code(6);
    // The genuine one, put back, works again.
    std::fs::write(&path, &good).unwrap();
    let w = env.run(&["whoami", "--json"]);
    w.ok();
    assert_eq!(w.json()["subject"], "bob");
}

#[test]
fn groups_are_requested_when_the_issuer_advertises_them() {
    let idp = Idp::start(&[]);
    let mut env = env_for(&idp);
    // No scopes chosen: craik adds groups, which the IdP advertises.
    env.unset("CRAIK_OIDC_SCOPES");
    login_as(&env, &idp, "alice");
    let w = env.run(&["whoami", "--json"]).json();
    assert!(
        w["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "groups"),
        "{w}"
    );
    assert_eq!(w["groups"], serde_json::json!(["prod-deploy", "devs"]));
    assert_eq!(w["groups_claim_present"], true);
    // Scopes chosen without groups: none are added, and whoami and a
    // denial on groups say why the operator has none.
    env.set("CRAIK_OIDC_SCOPES", "openid email");
    login_as(&env, &idp, "alice");
    let w = env.run(&["whoami", "--json"]).json();
    assert_eq!(w["groups_claim_present"], false, "{w}");
    let text = env.run(&["whoami"]);
    text.ok();
    assert!(text.stdout.contains("no \"groups\" claim"), "{text:?}");
    env.run(&["auth", "add", "openai:g", "--kind=marker"]).ok();
    let p = env.dir.path().join("groups.json");
    std::fs::write(&p, r#"{"version":1,"allowed_operator_groups":["devs"]}"#).unwrap();
    let r = env.run(&["auth", "check", "openai:g", "--policy", p.to_str().unwrap()]);
    r.code(3);
    assert!(r.stderr.contains("your login carried no groups"), "{r:?}");
}
