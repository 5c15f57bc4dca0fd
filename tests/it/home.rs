//! CRAIK_HOME: creation mode, refusal of unsafe homes and files.

use std::os::unix::fs::PermissionsExt;

use crate::common::Env;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn home_and_files_are_owner_only() {
    let env = Env::new();
    env.run_stdin(
        &["auth", "add", "openai:ci", "--kind=keyring-ref", "--stdin"],
        Some("k"),
    )
    .ok();
    assert_eq!(mode(&env.home), 0o700);
    for entry in std::fs::read_dir(&env.home).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}

#[test]
fn unsafe_home_is_refused() {
    let env = Env::new();
    env.run(&["auth", "add", "openai:a", "--kind=marker"]).ok();
    // Group-writable home.
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o770)).unwrap();
    env.run(&["auth", "status"])
        .code(1)
        .error_with_hint(&format!("chmod 700 {}", env.home.display()));
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o700)).unwrap();
    // World-writable file.
    let f = env.file("auth-profiles.json");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
    env.run(&["auth", "status"])
        .code(1)
        .error_with_hint(&format!("chmod 600 {}", f.display()));
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A symlinked file.
    let real = env.dir.path().join("elsewhere.json");
    std::fs::rename(&f, &real).unwrap();
    std::os::unix::fs::symlink(&real, &f).unwrap();
    env.run(&["auth", "status"])
        .code(1)
        .error_with_hint("is a symlink");
    std::fs::remove_file(&f).unwrap();
    std::fs::rename(&real, &f).unwrap();
    env.run(&["auth", "status"]).ok();
    // A symlinked home.
    let mut env2 = Env::new();
    let link = env2.dir.path().join("link-home");
    std::os::unix::fs::symlink(&env.home, &link).unwrap();
    env2.set("CRAIK_HOME", &link.display().to_string());
    env2.run(&["auth", "status"])
        .code(1)
        .error_with_hint("is a symlink");
}

#[test]
fn default_home_is_dot_craik() {
    let mut env = Env::new();
    env.unset("CRAIK_HOME");
    env.run(&["auth", "add", "openai:a", "--kind=marker"]).ok();
    let p = env.dir.path().join(".craik");
    assert!(p.join("auth-profiles.json").exists());
    assert_eq!(mode(&p), 0o700);
}

/// Runs craik with its stdout going to `stdout`: the exit code and stderr.
fn run_to(env: &Env, args: &[&str], stdout: std::process::Stdio) -> (Option<i32>, String) {
    let out = env
        .command(args)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Commands whose output cannot be written never panic: to a full disk
/// (/dev/full) they fail with one error and its hint (a checkpoint printed
/// to stdout and lost is not a success); to a reader that has gone (`|
/// head`) they end quietly.
#[test]
fn output_that_cannot_be_written() {
    let env = Env::new();
    env.run(&["auth", "add", "openai:ci", "--kind=api-key"])
        .ok();
    env.run(&["auth", "add", "anthropic:m", "--kind=marker"])
        .ok();
    let commands: &[&[&str]] = &[
        &["receipts", "list"],
        &["receipts", "list", "--json"],
        &["receipts", "list", "--jsonl"],
        &["receipts", "list", "--csv"],
        &["receipts", "show", "1"],
        &["receipts", "show", "1", "--json"],
        &["receipts", "stats"],
        &["receipts", "stats", "--json"],
        &["receipts", "export", "--format", "jsonl"],
        &["receipts", "export", "--format", "csv"],
        &["receipts", "verify"],
        &["receipts", "verify", "--json"],
        &["receipts", "checkpoint"],
        &["receipts", "checkpoint", "--json"],
        &["auth", "status"],
        &["auth", "status", "--json"],
        &["completions", "bash"],
    ];
    for args in commands {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full (a Linux device) is needed");
        let (code, stderr) = run_to(&env, args, full.into());
        assert_eq!(code, Some(1), "{args:?} to /dev/full: {stderr}");
        assert_eq!(
            stderr.lines().collect::<Vec<_>>(),
            [
                "error: cannot write output: No space left on device (os error 28)",
                "hint: check where standard output goes (a full disk, a file that cannot be written)"
            ],
            "{args:?} to /dev/full"
        );

        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let (code, stderr) = run_to(&env, args, writer.into());
        assert_eq!(code, Some(0), "{args:?} to a closed pipe: {stderr}");
        assert_eq!(stderr, "", "{args:?} to a closed pipe");
    }
    // Nothing was lost on the way: the log is whole.
    env.run(&["receipts", "verify"]).ok();
}
