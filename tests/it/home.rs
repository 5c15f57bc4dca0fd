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
