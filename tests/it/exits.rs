//! Every documented exit code, pinned: the exact stderr (and stdout where
//! it says something) of one path to each, compared with
//! `tests/it/snapshots/exits.txt`. A change of wording or code shows as a
//! diff here; after a deliberate change, write the file anew with
//! `CRAIK_SNAPSHOT_UPDATE=1 cargo test --test it exits`.

use std::fmt::Write as _;

use crate::common::{Env, Run};

const SNAPSHOT: &str = "tests/it/snapshots/exits.txt";

/// One command's outcome as the snapshot records it: paths and run ids
/// replaced by placeholders, so the text is the same on every machine.
fn record(out: &mut String, env: &Env, title: &str, args: &[&str], r: &Run) {
    let dir = env.dir.path().display().to_string();
    let norm = |s: &str| {
        let s = s.replace(&dir, "$DIR");
        let re = regex::Regex::new(r"run_[0-9a-f]{16,}").unwrap();
        re.replace_all(&s, "run_$$RUN").into_owned()
    };
    let _ = writeln!(out, "## {title}");
    let _ = writeln!(out, "$ craik {}", norm(&args.join(" ")));
    let _ = writeln!(out, "exit {}", r.code);
    for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        if !text.is_empty() {
            let _ = writeln!(out, "--- {name}");
            out.push_str(&norm(text));
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out.push('\n');
}

#[test]
fn every_documented_exit_path_prints_exactly_this() {
    let mut out = String::new();
    let env = Env::new();
    let mut go = |env: &Env, title: &str, args: &[&str]| {
        let r = env.run(args);
        record(&mut out, env, title, args, &r);
        r
    };
    // 0
    go(
        &env,
        "0: a profile added",
        &["auth", "add", "openai:m", "--kind=marker"],
    );
    env.run(&[
        "auth",
        "add",
        "openai:env",
        "--kind=secret-ref",
        "--secret-ref",
        "env:EXITS_KEY",
    ])
    .ok();
    // 1
    go(
        &env,
        "1: no such profile",
        &["auth", "remove", "openai:nope"],
    );
    go(
        &env,
        "1: a mistyped profile",
        &["auth", "remove", "openai:n"],
    );
    std::fs::write(env.dir.path().join("bad.json"), "{not json").unwrap();
    let bad = env.dir.path().join("bad.json").display().to_string();
    go(
        &env,
        "1: a policy file that is not JSON",
        &["policy", "check", &bad],
    );
    // 2
    go(
        &env,
        "2: no command after --",
        &["exec", "--profile", "openai:m"],
    );
    go(
        &env,
        "2: a closed choice",
        &["auth", "add", "openai:x", "--kind=env"],
    );
    go(
        &env,
        "2: a bad duration",
        &["auth", "check", "openai:m", "--wait", "8d"],
    );
    go(&env, "2: a command that does not exist", &["exce"]);
    // 3
    std::fs::write(
        env.dir.path().join("deny.json"),
        r#"{"version":1,"denied_credential_profiles":["openai:m"]}"#,
    )
    .unwrap();
    let deny = env.dir.path().join("deny.json").display().to_string();
    go(
        &env,
        "3: denied by a policy",
        &[
            "exec",
            "--profile",
            "openai:m",
            "--policy",
            &deny,
            "--",
            "true",
        ],
    );
    // 4
    std::fs::write(
        env.dir.path().join("approve.json"),
        r#"{"version":1,"require_approval":"first_use"}"#,
    )
    .unwrap();
    let approve = env.dir.path().join("approve.json").display().to_string();
    go(
        &env,
        "4: approval required",
        &[
            "auth",
            "check",
            "openai:m",
            "--run",
            "run_0123456789abcdef",
            "--policy",
            &approve,
        ],
    );
    // 6
    go(&env, "6: nobody logged in", &["whoami"]);
    // 7
    go(
        &env,
        "7: the credential's variable is unset",
        &["exec", "--profile", "openai:env", "--", "true"],
    );
    // 126, 127
    go(
        &env,
        "127: the command is not found",
        &["exec", "--profile", "openai:m", "--", "/nonexistent/cmd"],
    );
    let not_exec = env.dir.path().join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    let ne = not_exec.display().to_string();
    go(
        &env,
        "126: the command cannot be run",
        &["exec", "--profile", "openai:m", "--", &ne],
    );
    // 5: the log replaced by an empty file after receipts were written.
    std::fs::write(env.file("audit.db"), b"").unwrap();
    for suffix in ["audit.db-wal", "audit.db-shm"] {
        let _ = std::fs::remove_file(env.file(suffix));
    }
    go(
        &env,
        "5: the audit log cannot be written",
        &["auth", "add", "openai:more", "--kind=marker"],
    );

    if std::env::var_os("CRAIK_SNAPSHOT_UPDATE").is_some() {
        std::fs::write(SNAPSHOT, &out).unwrap();
        return;
    }
    let want = std::fs::read_to_string(SNAPSHOT)
        .unwrap_or_else(|e| panic!("{SNAPSHOT}: {e}; write it with CRAIK_SNAPSHOT_UPDATE=1"));
    if want != out {
        let diff: Vec<String> = want
            .lines()
            .zip(out.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("line {}:\n  want: {a}\n  got:  {b}", i + 1))
            .collect();
        panic!(
            "exit paths differ from {SNAPSHOT} (want {} lines, got {}):\n{}\n\nafter a deliberate change: CRAIK_SNAPSHOT_UPDATE=1 cargo test --test it exits",
            want.lines().count(),
            out.lines().count(),
            diff.join("\n")
        );
    }
}
