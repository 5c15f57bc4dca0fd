//! A canary secret goes through every command; it must never come out:
//! not on stdout or stderr, not in auth-profiles.json, not anywhere under
//! CRAIK_HOME in plaintext (audit.db and audit-index.db included).

use std::os::unix::fs::PermissionsExt;

use crate::common::{Env, Run, canary, contains, files_under};

#[test]
fn canary_never_leaks() {
    let secret = canary();
    let mut env = Env::new();
    env.set("CANARY_ENV", &secret);
    let secret_file = env.dir.path().join("canary.secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file_ref = format!("file:{}", secret_file.display());
    let checkpoint = env.dir.path().join("cp.json");
    let cp = checkpoint.display().to_string();

    let up = crate::upstream::Upstream::start(crate::upstream::Behavior::Normal);
    let base = up.url();
    let mut runs: Vec<(String, Run)> = Vec::new();
    let mut go = |args: &[&str], stdin: Option<&str>| {
        let r = env.run_stdin(args, stdin);
        runs.push((args.join(" "), r));
    };
    let s = Some(secret.as_str());
    go(
        &["auth", "add", "openai:kr", "--kind=keyring-ref", "--stdin"],
        s,
    );
    go(
        &["auth", "add", "openai:kr", "--kind=keyring-ref", "--stdin"],
        s,
    ); // exists: error
    go(
        &[
            "auth",
            "add",
            "openai:kr2",
            "--kind=keyring-ref",
            "--stdin",
            "--force",
        ],
        s,
    );
    go(
        &[
            "auth",
            "add",
            "anthropic:env",
            "--kind=api-key",
            "--env-var",
            "CANARY_ENV",
        ],
        None,
    );
    go(
        &[
            "auth",
            "add",
            "gemini:ref",
            "--kind=secret-ref",
            "--secret-ref",
            "env:CANARY_ENV",
        ],
        None,
    );
    go(
        &[
            "auth",
            "add",
            "openai:file",
            "--kind=secret-ref",
            "--secret-ref",
            &file_ref,
        ],
        None,
    );
    // A cli-bridge whose command prints the canary (and writes it to
    // stderr too), read from a file so it is in no argv.
    let bridge = env.dir.path().join("bridge.sh");
    std::fs::write(
        &bridge,
        format!(
            "#!/bin/sh\ncat '{0}' >&2\ncat '{0}'\n",
            secret_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&bridge, std::fs::Permissions::from_mode(0o700)).unwrap();
    let bridge = bridge.display().to_string();
    go(
        &[
            "auth",
            "add",
            "openai:bridge",
            "--kind=cli-bridge",
            "--base-url",
            &base,
            "--allow-local-base-url",
            "--extract",
            "stdout_line",
            "--command",
            &bridge,
        ],
        None,
    );
    go(&["auth", "test", "openai:bridge"], None);
    go(&["exec", "--profile", "openai:bridge", "--", "true"], None);
    go(
        &["auth", "add", "openai:bad", "--kind=api-key", "--stdin"],
        s,
    ); // misuse: error
    go(&["auth", "status"], None);
    go(&["auth", "status", "--json"], None);
    go(&["auth", "storage", "status"], None);
    go(&["auth", "storage", "status", "--json"], None);
    go(&["auth", "migrate-from-env", "--dry-run", "--json"], None);
    go(&["auth", "migrate-from-env", "--apply", "--yes"], None);
    go(&["auth", "migrate-from-env"], None);
    go(
        &["auth", "migrate-secrets", "--dry-run", "--to", "file"],
        None,
    );
    go(&["auth", "migrate-secrets", "--to", "file", "--json"], None);
    go(&["receipts", "list"], None);
    go(&["receipts", "list", "--json"], None);
    go(&["receipts", "list", "--jsonl"], None);
    go(&["receipts", "list", "--csv"], None);
    go(&["receipts", "show", "1"], None);
    go(&["receipts", "show", "1", "--json"], None);
    go(&["receipts", "stats", "--json"], None);
    go(&["receipts", "export", "--format", "jsonl"], None);
    go(&["receipts", "export", "--format", "csv"], None);
    go(&["receipts", "checkpoint", "--out", &cp, "--json"], None);
    go(&["receipts", "verify", "--checkpoint", &cp], None);
    go(&["receipts", "hash", "--family", "openai"], s);
    // The audit page: every view, every receipt's page, the exports.
    {
        let served = crate::page::serve(&env);
        let tail = receipts_total(&env);
        let pages = crate::page::fetch_all(&served, tail);
        assert_eq!(pages.len() as i64, 7 + tail);
        for (path, status, body) in pages {
            assert_eq!(status, 200, "the audit page's {path}");
            assert!(
                !body.contains(&secret),
                "the audit page's {path} leaks the canary"
            );
        }
    }
    go(
        &["auth", "login", "local", "--stdin", "--base-url", &base],
        s,
    );
    go(
        &[
            "auth",
            "login",
            "openai",
            "--no-browser",
            "--stdin",
            "--dry-run",
        ],
        s,
    ); // wrong shape: error
    go(
        &["auth", "setup", "gemini", "--secret-ref", "env:CANARY_ENV"],
        None,
    );
    go(
        &["auth", "test", "chat_completions:default", "--json"],
        None,
    );
    go(
        &["auth", "check", "chat_completions:default", "--json"],
        None,
    );
    go(
        &["policy", "explain", "--profile", "chat_completions:default"],
        None,
    );
    go(
        &[
            "exec",
            "--profile",
            "chat_completions:default",
            "--",
            "true",
        ],
        None,
    );
    go(
        &[
            "exec",
            "--profile",
            "chat_completions:default",
            "--via-proxy",
            "--",
            "true",
        ],
        None,
    );
    go(&["exec", "--profile", "gemini:default", "--", "true"], None);
    // A workload operator, and a credential exchanged for its token: the
    // exchange endpoint issues the canary.
    let idp = crate::workload::WorkloadIssuer::start();
    *idp.shared.issued.lock().unwrap() = Some(secret.clone());
    let wl_token = env.dir.path().join("workload-token");
    std::fs::write(
        &wl_token,
        idp.shared
            .mint(serde_json::json!({"sub": "system:serviceaccount:ci:agent", "aud": "craik"})),
    )
    .unwrap();
    let wl = format!("file:{}", wl_token.display());
    let exchange_url = format!("{}/exchange", idp.url());
    go(&["login", "--workload", &wl, "--issuer", &idp.url()], None);
    go(
        &[
            "auth",
            "add",
            "openai:sts",
            "--kind=oidc-exchange",
            "--exchange-url",
            &exchange_url,
            "--audience",
            "openai",
            "--base-url",
            &base,
            "--allow-local-base-url",
        ],
        None,
    );
    go(&["auth", "test", "openai:sts", "--json"], None);
    go(
        &[
            "exec",
            "--profile",
            "openai:sts",
            "--via-proxy",
            "--",
            "true",
        ],
        None,
    );
    go(&["whoami", "--json"], None);
    // A stigmem node whose fact is the canary, behind an API key.
    let node = crate::stigmem::NodeServer::start();
    node.put(
        "me/openai",
        "craik:credential:value",
        "local",
        &secret,
        false,
    );
    go(
        &[
            "auth",
            "add",
            "openai:mem",
            "--kind=stigmem-ref",
            "--node",
            &node.url(),
            "--entity",
            "me/openai",
            "--base-url",
            &base,
            "--allow-local-base-url",
            "--stdin",
        ],
        Some(crate::stigmem::NODE_KEY),
    );
    go(&["exec", "--profile", "openai:mem", "--", "true"], None);
    go(&["auth", "test", "openai:mem"], None);
    go(&["auth", "status", "--json"], None);
    go(&["logout", "--json"], None);
    go(&["unlock", "--for", "1m"], None);
    go(&["doctor"], None);
    go(&["doctor", "--json"], None);
    go(&["lock"], None);
    go(&["auth", "pool", "status", "--json"], None);
    go(&["auth", "remove", "openai:kr"], None);
    go(&["auth", "logout", "openai", "--yes"], None);
    go(&["auth", "logout", "anthropic", "--yes"], None);
    go(&["auth", "status", "--json"], None);

    assert!(runs.len() >= 30);
    for (cmd, r) in &runs {
        assert!(
            !r.stdout.contains(&secret),
            "stdout of `craik {cmd}` leaks the canary"
        );
        assert!(
            !r.stderr.contains(&secret),
            "stderr of `craik {cmd}` leaks the canary"
        );
        assert!(r.code != 101, "`craik {cmd}` panicked: {}", r.stderr);
    }
    // The commands did their work (so the test exercised real paths).
    let ok = runs.iter().filter(|(_, r)| r.code == 0).count();
    assert!(ok >= runs.len() - 3, "{runs:#?}");
    // The node was read for the exec and the test (never for status).
    assert_eq!(node.reads(), 2);
    // The exchange ran (once: the proxy and the test call share its cache).
    assert_eq!(idp.shared.exchanges.lock().unwrap().len(), 1);
    // The upstream got the canary, injected: the path was really exercised.
    assert!(up.seen().iter().any(|s| {
        s.headers
            .get("authorization")
            .is_some_and(|v| v.to_str().unwrap().contains(&secret))
    }));

    let files = files_under(&env.home);
    assert!(files.iter().any(|(p, _)| p.ends_with("audit.db")));
    assert!(files.iter().any(|(p, _)| p.ends_with("audit-index.db")));
    assert!(files.iter().any(|(p, _)| p.ends_with("secrets.enc")));
    for (path, bytes) in files {
        assert!(
            !contains(&bytes, &secret),
            "{} holds the canary in plaintext",
            path.display()
        );
    }
}

/// How many receipts the home's log holds.
fn receipts_total(env: &Env) -> i64 {
    let r = env.run(&["receipts", "stats", "--json"]);
    r.ok();
    r.json()["total"].as_i64().unwrap()
}
