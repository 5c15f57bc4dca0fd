//! `craik auth add/status/remove/logout` and auth-profiles.json.

use crate::common::{Env, assert_schema};

#[test]
fn add_status_remove_round_trip() {
    let mut env = Env::new();
    env.run_stdin(
        &["auth", "add", "openai:ci", "--kind=keyring-ref", "--stdin"],
        Some("sk-test-1\n"),
    )
    .ok();
    env.run(&[
        "auth",
        "add",
        "anthropic:work",
        "--kind=api-key",
        "--env-var",
        "MY_ANTHROPIC",
    ])
    .ok();
    env.run(&[
        "auth",
        "add",
        "gemini:ref",
        "--kind=secret-ref",
        "--secret-ref",
        "env:GEM_KEY",
    ])
    .ok();
    env.run(&[
        "auth",
        "add",
        "local:llama",
        "--kind=marker",
        "--base-url",
        "http://127.0.0.1:8080/v1",
    ])
    .ok()
    .out_contains("added chat_completions:llama (marker)\n(local is an alias: the profile is listed, matched and receipted as chat_completions:");

    let file = env.read_json("auth-profiles.json");
    assert_schema("auth-profiles.schema.json", &file);
    let ids: Vec<&str> = file["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "openai:ci",
            "anthropic:work",
            "gemini:ref",
            "chat_completions:llama"
        ]
    );

    // Health is redacted and says what is wrong.
    env.set("GEM_KEY", "g-secret");
    let st = env.run(&["auth", "status", "--json"]);
    st.ok();
    let v = st.json();
    let by_id = |id: &str| {
        v["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("openai:ci")["health"]["message"], "secret present");
    assert_eq!(by_id("openai:ci")["backend"], "file");
    assert_eq!(
        by_id("anthropic:work")["health"]["message"],
        "env var MY_ANTHROPIC is not set"
    );
    assert_eq!(by_id("anthropic:work")["health"]["ok"], false);
    assert_eq!(by_id("gemini:ref")["health"]["ok"], true);
    assert_eq!(
        by_id("chat_completions:llama")["base_url"],
        "http://127.0.0.1:8080/v1"
    );
    // Metadata values are masked.
    assert_eq!(by_id("anthropic:work")["metadata"]["env_var"], "MY_…IC");
    let handle = file["profiles"][0]["metadata"]["handle"].as_str().unwrap();
    assert!(!st.stdout.contains(handle), "the handle is masked");

    // The table form.
    let table = env.run(&["auth", "status"]);
    table.ok();
    assert!(
        table.stdout.contains("openai:ci")
            && table
                .stdout
                .contains("FAIL: env var MY_ANTHROPIC is not set")
    );

    // Remove deletes the profile and its stored secret.
    env.run(&["auth", "remove", "openai:ci"]).ok();
    let storage = env.run(&["auth", "storage", "status", "--json"]);
    storage.ok();
    // Only the audit key, the checkpoint signing key and the seal key are
    // left.
    assert_eq!(storage.json()["secrets"], 3);
    env.run(&["auth", "remove", "openai:ci"])
        .code(1)
        .error_with_hint("no profile openai:ci");

    // Logout by family removes every profile of it.
    env.run(&["auth", "add", "anthropic:two", "--kind=marker"])
        .ok();
    // A whole family: listed with --dry-run, refused without --yes when
    // nobody can confirm, removed with it.
    let dry = env.run(&["auth", "logout", "anthropic", "--dry-run", "--json"]);
    dry.ok();
    assert_eq!(
        dry.json()["would_remove"],
        serde_json::json!(["anthropic:work", "anthropic:two"])
    );
    env.run(&["auth", "logout", "anthropic"])
        .code(1)
        .error_with_hint("--yes");
    assert_eq!(
        env.read_json("auth-profiles.json")["profiles"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let out = env.run(&["auth", "logout", "anthropic", "--yes", "--json"]);
    out.ok();
    assert_eq!(
        out.json()["removed"],
        serde_json::json!(["anthropic:work", "anthropic:two"])
    );
    let file = env.read_json("auth-profiles.json");
    assert_schema("auth-profiles.schema.json", &file);
    assert_eq!(file["profiles"].as_array().unwrap().len(), 2);
    env.run(&["auth", "logout", "gemini:ref"]).ok();
    env.run(&["auth", "logout", "openai", "--yes"])
        .code(1)
        .error_with_hint("no profile");
}

#[test]
fn existing_id_needs_force() {
    let env = Env::new();
    env.run_stdin(
        &["auth", "add", "openai:ci", "--kind=keyring-ref", "--stdin"],
        Some("k1"),
    )
    .ok();
    let before = std::fs::read(env.file("auth-profiles.json")).unwrap();
    env.run_stdin(
        &["auth", "add", "openai:ci", "--kind=keyring-ref", "--stdin"],
        Some("k2"),
    )
    .code(1)
    .error_with_hint("--force");
    assert_eq!(
        before,
        std::fs::read(env.file("auth-profiles.json")).unwrap()
    );
    env.run_stdin(
        &[
            "auth",
            "add",
            "openai:ci",
            "--kind=keyring-ref",
            "--stdin",
            "--force",
        ],
        Some("k2"),
    )
    .ok();
    // The old secret was deleted: one profile secret plus the audit key,
    // the checkpoint signing key and the seal key.
    let s = env.run(&["auth", "storage", "status", "--json"]);
    assert_eq!(s.json()["secrets"], 4);
}

#[test]
fn bad_input_is_refused_with_hints() {
    let env = Env::new();
    for (args, needle) in [
        (
            vec!["auth", "add", "openai", "--kind=marker"],
            "invalid profile id",
        ),
        (
            vec!["auth", "add", "openai:", "--kind=marker"],
            "invalid profile id",
        ),
        (
            vec!["auth", "add", "nope:x", "--kind=marker"],
            "unknown provider family",
        ),
        (
            vec!["auth", "add", "openai:a b", "--kind=marker"],
            "invalid profile id",
        ),
        (
            vec![
                "auth",
                "add",
                "openai:x",
                "--kind=api-key",
                "--env-var",
                "1BAD",
            ],
            "not a valid environment variable",
        ),
        (
            vec!["auth", "add", "openai:x", "--kind=secret-ref"],
            "needs --secret-ref",
        ),
        (
            vec!["auth", "add", "openai:x", "--kind=marker", "--env-var", "X"],
            "does not apply",
        ),
        (
            vec!["auth", "add", "openai:x", "--kind=api-key", "--stdin"],
            "does not apply",
        ),
        (
            vec![
                "auth",
                "add",
                "openai:x",
                "--kind=marker",
                "--base-url",
                "http://127.0.0.1:1",
            ],
            "loopback or private",
        ),
        (
            vec![
                "auth",
                "add",
                "openai:x",
                "--kind=marker",
                "--base-url",
                "https://192.168.1.1",
            ],
            "loopback or private",
        ),
        (
            vec![
                "auth",
                "add",
                "openai:x",
                "--kind=marker",
                "--base-url",
                "http://api.example.com",
            ],
            "unencrypted",
        ),
        (
            vec![
                "auth",
                "add",
                "openai:x",
                "--kind=marker",
                "--base-url",
                "nonsense",
            ],
            "not a valid URL",
        ),
        (
            vec!["auth", "add", "local:x", "--kind=marker"],
            "needs --base-url",
        ),
        (vec!["auth", "remove", "bad id"], "invalid profile id"),
        (
            vec!["auth", "migrate-secrets", "--to", "floppy"],
            "unknown secret store backend",
        ),
    ] {
        let r = env.run(&args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        r.error_with_hint(needle);
    }
    // Closed choices are usage errors (exit 2) that list what is valid.
    for (args, listed) in [
        (
            vec!["auth", "add", "openai:x", "--kind=password"],
            "possible values: api-key, keyring-ref, secret-ref, marker",
        ),
        (
            vec![
                "auth",
                "pool",
                "create",
                "openai:p",
                "--strategy",
                "random",
                "--member",
                "openai:x",
            ],
            "possible values: round_robin, failover, weighted",
        ),
        (
            vec!["auth", "login", "openai", "--mode=password"],
            "possible values: api-key, oauth, claude-cli, adc, service-account",
        ),
    ] {
        let r = env.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains("invalid value"), "{args:?}: {r:?}");
        r.error_with_hint(listed);
    }
    // keyring-ref with nothing on a non-terminal stdin.
    env.run_stdin(
        &["auth", "add", "openai:x", "--kind=keyring-ref", "--stdin"],
        Some(""),
    )
    .code(1)
    .error_with_hint("no secret on standard input");
    env.run_stdin(
        &["auth", "add", "openai:x", "--kind=keyring-ref"],
        Some("abc"),
    )
    .code(1)
    .error_with_hint("not a terminal");
    // --allow-local-base-url lets a private address through.
    env.run(&[
        "auth",
        "add",
        "openai:lan",
        "--kind=marker",
        "--base-url",
        "https://10.0.0.5/v1",
        "--allow-local-base-url",
    ])
    .ok();
    // Usage errors exit 2.
    assert_eq!(env.run(&["auth", "add"]).code, 2);
    assert_eq!(env.run(&["frobnicate"]).code, 2);
    // Nothing was written by the failures (only openai:lan exists).
    let file = env.read_json("auth-profiles.json");
    assert_eq!(file["profiles"].as_array().unwrap().len(), 1);
}

#[test]
fn corrupt_profiles_file_is_named_and_left_alone() {
    let env = Env::new();
    env.run(&["auth", "add", "openai:a", "--kind=marker"]).ok();
    let path = env.file("auth-profiles.json");
    let good = std::fs::read_to_string(&path).unwrap();
    let cases: Vec<(String, &str)> = vec![
        ("{ not json".into(), "line 1 column 3"),
        (good.replace("\"marker\"", "\"password\""), "unknown variant"),
        (good.replace("\"version\": 1", "\"version\": 9"), "unsupported version 9"),
        (good.replace("\"metadata\"", "\"metdata\""), "unknown field `metdata`"),
        (good.replace("openai:a", "openai:a b"), "invalid profile id"),
        (
            good.replace("\"profiles\": [", "\"profiles\": [{\"id\":\"openai:a\",\"kind\":\"marker\",\"provider_family\":\"openai\",\"metadata\":{},\"created_at\":\"2026-01-01T00:00:00Z\"},"),
            "appears twice",
        ),
        (good.replace("\"kind\": \"marker\"", "\"kind\": \"api-key\""), "needs metadata env_var"),
        (String::new(), "EOF"),
    ];
    for (content, needle) in cases {
        std::fs::write(&path, &content).unwrap();
        for args in [
            vec!["auth", "status"],
            vec!["auth", "add", "openai:b", "--kind=marker"],
            vec!["auth", "remove", "openai:a"],
        ] {
            let r = env.run(&args);
            r.code(1).error_with_hint(needle);
            assert!(
                r.stderr.contains("auth-profiles.json"),
                "names the file: {}",
                r.stderr
            );
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                content,
                "file left as it was"
            );
        }
    }
}

#[test]
fn completions_print_a_script() {
    let env = Env::new();
    let r = env.run(&["completions", "bash"]);
    r.ok();
    assert!(r.stdout.contains("craik") && r.stdout.contains("complete"));
}

#[test]
fn every_duration_flag_reads_the_same_units() {
    let env = Env::new();
    env.run(&["auth", "add", "openai:d", "--kind=marker"]).ok();
    // --wait reads days and compound units as --since does (it waits only
    // when a policy asks for approval, so these return at once).
    for wait in ["--wait=1d", "--wait=1h30m", "--wait=90", "--wait=1w"] {
        env.run(&["auth", "check", "openai:d", wait]).ok();
    }
    // With a space as well; a bare --wait before the id leaves the id be.
    env.run(&["auth", "check", "openai:d", "--wait", "5m"]).ok();
    env.run(&["auth", "check", "--wait", "openai:d"]).ok();
    env.run(&["auth", "check", "openai:d", "--wait", "8d"])
        .code(2)
        .error_with_hint("use at most 1w");
    // A bad --wait is a usage error (exit 2), with the hint.
    for (bad, hint) in [
        ("--wait=8d", "use at most 1w"),
        ("--wait=0s", "write it as 30s"),
    ] {
        let r = env.run(&["auth", "check", "openai:d", bad]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains(hint), "{r:?}");
    }
    for since in ["1d", "1h30m", "2w", "90"] {
        env.run(&["receipts", "list", "--since", since]).ok();
    }
    env.run(&["receipts", "list", "--since", "99999999999d"])
        .code(1)
        .error_with_hint("RFC 3339");
}

#[test]
fn usage_errors_exit_2_and_typos_get_a_suggestion() {
    let env = Env::new();
    env.run(&["auth", "add", "openai:work", "--kind=marker"])
        .ok();
    for args in [
        vec!["auth", "grant", "openai:work"],
        vec!["auth", "revoke", "openai:work"],
        vec!["auth", "check", "openai:work", "--wait=abc"],
        vec!["exec", "--provider", "mistral", "--", "true"],
        vec![
            "auth",
            "add",
            "openai:x",
            "--kind=secret-ref",
            "--secret-ref",
            "vault:x",
        ],
        vec![
            "auth",
            "add",
            "openai:x",
            "--kind=secret-ref",
            "--secret-ref",
            "file:relative",
        ],
    ] {
        let r = env.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        r.error_with_hint("");
    }
    // clap's own errors read as craik's: one error line, one hint line.
    for (args, hint) in [
        (vec!["exce"], "'exec'"),
        (
            vec!["exec", "--profile", "openai:work"],
            "see 'craik exec --help'",
        ),
        (
            vec!["auth", "add", "openai:x", "--kind=env"],
            "possible values: api-key, keyring-ref, secret-ref, marker",
        ),
        (
            vec!["exec", "--profile", "p", "--bogus", "--", "x"],
            "use '-- --bogus'",
        ),
        (vec!["auth", "setup", "opneai"], "did you mean openai?"),
        // A command named without its subcommand lists them.
        (vec![], "new here? craik auth setup"),
        (vec!["auth", "pool"], "see 'craik auth pool --help'"),
        // A word after a bare --wait, and a command without '--'.
        (
            vec!["auth", "check", "--wait", "abc", "openai:work"],
            "--wait takes its duration after '=' (--wait=5m)",
        ),
        (
            vec!["auth", "check", "--wait", "-1", "openai:work"],
            "'-1' after a bare --wait",
        ),
        (
            vec!["exec", "--profile", "openai:work", "true"],
            "put the command to run after '--'",
        ),
    ] {
        env.run(&args).code(2).error_with_hint(hint);
    }
    env.run(&[])
        .code(2)
        .error_with_hint("'craik' needs a command: auth, policy, receipts, exec");
    env.run(&["auth", "pool"])
        .code(2)
        .error_with_hint("'craik auth pool' needs a command: create, status, remove");
    // A bare variable name is env:NAME, as the docs write it.
    env.run(&["auth", "setup", "anthropic", "--secret-ref", "ANT_KEY"])
        .ok();
    let f = env.read_json("auth-profiles.json");
    assert!(f.to_string().contains("\"env:ANT_KEY\""), "{f}");
    env.run(&["auth", "remove", "openai:wrok"])
        .code(1)
        .error_with_hint("did you mean openai:work?");
    env.run(&["exec", "--profile", "openai:wrok", "--", "true"])
        .code(1)
        .error_with_hint("did you mean openai:work?");
}

#[test]
fn shells_complete_profile_and_pool_ids_from_the_home() {
    let env = Env::new();
    for id in ["openai:work", "openai:ci", "anthropic:dev"] {
        env.run(&["auth", "add", id, "--kind=marker"]).ok();
    }
    env.run(&[
        "auth",
        "pool",
        "create",
        "openai:team",
        "--strategy",
        "round_robin",
        "--member",
        "openai:work",
        "--member",
        "openai:ci",
    ])
    .ok();
    // What the registered fish function runs when the user presses tab.
    let complete = |words: &[&str]| {
        let mut cmd = env.command(&["--", "craik"]);
        cmd.args(words).env("CRAIK_COMPLETE", "fish");
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        complete(&["exec", "--profile", "openai:"]),
        "openai:ci\nopenai:work\n"
    );
    assert_eq!(
        complete(&["agent", "run", "codex", "--pool", ""]),
        "openai:team\n"
    );
    assert_eq!(
        complete(&["auth", "test", "openai:"]),
        "openai:ci\nopenai:team\nopenai:work\n"
    );
    assert_eq!(complete(&["auth", "remove", "anth"]), "anthropic:dev\n");
    // The registration script calls craik back with the variable set.
    let script = env.run(&["completions", "bash"]).ok().stdout.clone();
    assert!(script.contains("CRAIK_COMPLETE=\"bash\""), "{script}");
    // In bash itself, which splits words at ':' as well (COMP_WORDBREAKS):
    // the line as bash hands it over, and what bash would insert.
    let bin_dir = std::path::Path::new(&crate::common::craik_bin())
        .parent()
        .unwrap()
        .to_path_buf();
    let mut bash = env.command(&[]);
    bash.env(
        "PATH",
        format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
    );
    let bash = std::process::Command::new("bash")
        .envs(bash.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("SCRIPT", &script)
        .args([
            "-c",
            r#"eval "$SCRIPT"
t() {
    COMP_LINE="$1"; COMP_POINT=${#1}; COMP_TYPE=9
    COMP_WORDS=($1); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    # bash's own split of the last word: after its last ':' or '='.
    _clap_complete_craik craik "${1##*[ :=]}" ""
    echo "${COMPREPLY[*]}"
}
t 'craik exec --profile openai:'
t 'craik exec --profile openai:w'
t 'craik auth remove anth'
t 'craik exec --profile=openai:w'"#,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&bash.stdout),
        "ci work\nwork\nanthropic:dev\nwork\n",
        "{bash:?}"
    );
    // A home that does not exist completes nothing and is not created.
    let none = env.dir.path().join("none");
    let mut cmd = env.command(&["--", "craik", "exec", "--profile", ""]);
    cmd.env("CRAIK_COMPLETE", "fish").env("CRAIK_HOME", &none);
    let out = cmd.output().unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    assert!(!none.exists());
}

/// Writes an executable script under the test's directory.
fn script(env: &Env, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = env.dir.path().join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

/// `cli-bridge`: the credential is what a command prints, found where
/// `--extract` says; a command that hangs, floods or fails gives exit 7
/// and never shows what it wrote to stderr; nothing is stored.
#[test]
fn cli_bridge_profiles_run_a_command_for_the_credential() {
    use crate::common::{canary, contains, files_under, receipts};
    use crate::upstream::{Behavior, Upstream};
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
    let c = canary();
    let key = format!("sk-{c}");
    let runs = env.dir.path().join("runs");
    let json = script(
        &env,
        "bridge-json",
        &format!(
            "echo run >> '{}'\necho 'stderr-{c}' >&2\necho '{{\"token\":{{\"value\":\"{key}\"}}}}'",
            runs.display()
        ),
    );
    let add = |id: &str, extract: &str, command: &[&str]| {
        let mut argv = vec![
            "auth",
            "add",
            id,
            "--kind=cli-bridge",
            "--base-url",
            "http://127.0.0.1:9",
            "--allow-local-base-url",
            "--extract",
            extract,
            "--command",
        ];
        argv.extend(command);
        env.run(&argv)
    };
    let base = up.url();
    env.run(&[
        "auth",
        "add",
        "openai:json",
        "--kind=cli-bridge",
        "--base-url",
        &base,
        "--allow-local-base-url",
        "--extract",
        "stdout_json:token.value",
        "--command",
        &json,
    ])
    .ok();
    let status = env.run(&["auth", "status", "--json"]);
    status.ok();
    let p = &status.json()["profiles"][0];
    assert_eq!(p["kind"], "cli-bridge");
    assert_eq!(p["health"]["ok"], true, "{p}");
    assert_schema(
        "auth-profiles.schema.json",
        &env.read_json("auth-profiles.json"),
    );
    // status ran nothing; a call runs it and the upstream gets its key.
    assert!(!runs.exists(), "auth status ran the bridge");
    let test = env.run(&["auth", "test", "openai:json"]);
    test.ok();
    assert!(up.seen().iter().any(|s| {
        s.headers
            .get("authorization")
            .is_some_and(|v| v.to_str().unwrap() == format!("Bearer {key}"))
    }));
    let exec = env.run(&[
        "exec",
        "--profile",
        "openai:json",
        "--",
        "sh",
        "-c",
        &format!("test \"$OPENAI_API_KEY\" = {key}"),
    ]);
    exec.ok();

    // A file the command writes, read at a path in it.
    let file = env.dir.path().join("creds.json");
    let writes = script(
        &env,
        "bridge-file",
        &format!(
            "printf '{{\"a\":[{{\"b\":\"{key}\"}}]}}' > '{}'",
            file.display()
        ),
    );
    let extract = format!("credentials_file:{}:a.0.b", file.display());
    add("openai:file", &extract, &[&writes]).ok();
    env.run(&[
        "exec",
        "--profile",
        "openai:file",
        "--",
        "sh",
        "-c",
        &format!("test \"$OPENAI_API_KEY\" = {key}"),
    ])
    .ok();

    // Hangs (its process group is stopped), floods, fails, prints no JSON.
    let marker = format!("bridge-hang-{}", &c[..8]);
    let hang = script(&env, &marker, "sleep 30 &\nsleep 30");
    add("openai:hang", "stdout_line", &[&hang]).ok();
    let t = std::time::Instant::now();
    let r = env.run(&["exec", "--profile", "openai:hang", "--", "true"]);
    r.code(7).error_with_hint("run the command yourself");
    assert!(r.stderr.contains("ran longer than 5 s"), "{}", r.stderr);
    assert!(t.elapsed() < std::time::Duration::from_secs(15));
    let left = std::process::Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "the hung bridge's processes remain");
    let flood = script(&env, "bridge-flood", "head -c 2000000 /dev/zero");
    add("openai:flood", "stdout_line", &[&flood]).ok();
    let r = env.run(&["exec", "--profile", "openai:flood", "--", "true"]);
    r.code(7);
    assert!(r.stderr.contains("more than 1048576 bytes"), "{}", r.stderr);
    let fail = script(
        &env,
        "bridge-fail",
        &format!("echo 'stderr-{c}' >&2\nexit 3"),
    );
    add("openai:fail", "stdout_line", &[&fail]).ok();
    let failed = env.run(&["exec", "--profile", "openai:fail", "--", "true"]);
    failed.code(7).error_with_hint("run the command yourself");
    assert!(
        failed.stderr.contains("exit status: 3"),
        "{}",
        failed.stderr
    );
    add("openai:nojson", "stdout_json:token", &["echo", "plain"]).ok();
    env.run(&["exec", "--profile", "openai:nojson", "--", "true"])
        .code(7)
        .error_with_hint("--extract");

    // Refused when added.
    add("openai:x", "stdout_json:", &["echo"])
        .code(1)
        .error_with_hint("--extract stdout_json:token");
    env.run(&[
        "auth",
        "add",
        "openai:y",
        "--kind=cli-bridge",
        "--extract",
        "stdout_line",
    ])
    .code(1)
    .error_with_hint("--command");
    env.run(&[
        "auth",
        "add",
        "openai:z",
        "--kind=cli-bridge",
        "--command",
        "gh",
        "auth",
        "token",
        "--extract",
        "stdout_line",
    ])
    .code(1)
    .error_with_hint("put --command last");
    env.run_stdin(
        &[
            "auth",
            "add",
            "openai:k",
            "--kind=keyring-ref",
            "--stdin",
            "--command",
            "x",
        ],
        Some("sk-0123456789abcdef"),
    )
    .code(1)
    .error_with_hint("cli-bridge takes --command");

    // Neither the key nor what the commands wrote to stderr is anywhere.
    for r in [&test, &exec, &failed] {
        assert!(!r.stdout.contains(&c) && !r.stderr.contains(&c));
    }
    for (p, b) in files_under(&env.home) {
        assert!(!contains(&b, &c), "{} holds it", p.display());
    }
    assert!(!receipts(&env, "call.finished").is_empty());
}
