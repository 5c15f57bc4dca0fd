//! The audit key: identity hashes in the log and from `receipts hash`,
//! a key shared with `CRAIK_AUDIT_KEY`, and keys behind a secret store
//! that will not open.

use super::{K1, K2, fixture, home_with_profiles, list, show_json};
use crate::common::Env;

const ISSUER: &str = "https://idp.example.com";

fn cli_hash(env: &Env, family: &str, input: &str) -> String {
    let r = env.run_stdin(&["receipts", "hash", "--family", family], Some(input));
    r.ok();
    let h = r.stdout.trim().to_string();
    assert!(
        h.starts_with("hmac-sha256:")
            && h.len() == 12 + 64
            && h[12..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "not an identity hash: {h:?}"
    );
    assert!(!r.stdout.contains(input.trim()) && !r.stderr.contains(input.trim()));
    h
}

#[test]
fn receipts_hash_matches_the_log() {
    let fx = fixture();
    let env = &fx.env;
    let a = show_json(env, "8")["auth_identity_hash"].clone();
    let b = show_json(env, "9")["auth_identity_hash"].clone();
    let c = show_json(env, "10")["auth_identity_hash"].clone();
    let removed = show_json(env, "11")["auth_identity_hash"].clone();
    assert!(a.is_string() && c.is_string(), "{a} {c}");
    assert_eq!(a, b, "the same key under two profile names hashes the same");
    assert_ne!(a, c, "different keys hash differently");
    assert_eq!(removed, c, "profile_removed names the same credential");

    let h1 = cli_hash(env, "openai", &format!("{K1}\n"));
    assert_eq!(h1, a.as_str().unwrap());
    assert_eq!(
        cli_hash(env, "openai", K1),
        h1,
        "a trailing newline is not part of the key"
    );
    assert_eq!(cli_hash(env, "openai", K2), c.as_str().unwrap());
    assert_ne!(
        cli_hash(env, "anthropic", K1),
        h1,
        "the family is hashed too"
    );
    assert_eq!(list(env, &["--identity-hash", &h1]), [9, 8]);

    let op = env.run_stdin(
        &["receipts", "hash", "--operator-issuer", ISSUER],
        Some("alice-sub\n"),
    );
    op.ok();
    assert!(op.stdout.trim().starts_with("hmac-sha256:"));
    env.run_stdin(&["receipts", "hash", "--family", "openai"], Some(""))
        .code(1)
        .error_with_hint("standard input");
    env.run_stdin(&["receipts", "hash"], Some(K1)).code(2);
    env.run_stdin(
        &["receipts", "hash", "--operator-issuer", " "],
        Some("alice-sub"),
    )
    .code(1)
    .error_with_hint("--operator-issuer is empty");

    // Without a shared key two homes hash alike only by accident.
    let other = Env::new();
    assert_ne!(cli_hash(&other, "openai", K1), h1);

    // CRAIK_AUDIT_KEY makes two homes hash alike, in `hash` and in the log.
    let shared = "0123456789abcdef".repeat(4);
    let mut homes = vec![Env::new(), Env::new()];
    let mut hashes = Vec::new();
    for h in &mut homes {
        h.set("SHARED_AUDIT_KEY", &shared);
        h.set("CRAIK_AUDIT_KEY", "env:SHARED_AUDIT_KEY");
        h.run_stdin(
            &[
                "auth",
                "add",
                "openai:shared",
                "--kind=keyring-ref",
                "--stdin",
            ],
            Some("sk-shared-key\n"),
        )
        .ok();
        let logged = show_json(h, "1")["auth_identity_hash"]
            .as_str()
            .unwrap()
            .to_string();
        let computed = cli_hash(h, "openai", "sk-shared-key");
        assert_eq!(logged, computed);
        hashes.push(computed);
    }
    assert_eq!(hashes[0], hashes[1]);
    assert_ne!(hashes[0], cli_hash(&other, "openai", "sk-shared-key"));
    // A key that is not 32 bytes is refused, failing closed.
    let mut bad = Env::new();
    bad.set("SHARED_AUDIT_KEY", "abcd");
    bad.set("CRAIK_AUDIT_KEY", "env:SHARED_AUDIT_KEY");
    bad.run_stdin(
        &["auth", "add", "openai:x", "--kind=keyring-ref", "--stdin"],
        Some("sk-x\n"),
    )
    .code(5)
    .error_with_hint("CRAIK_AUDIT_KEY");
    assert!(!bad.file("auth-profiles.json").exists());
}

/// A secret store that will not open (a wrong password) names the key it
/// could not get and passes on the store's own hint.
#[test]
fn keys_behind_a_wrong_password() {
    let mut env = home_with_profiles(1);
    env.set("CRAIK_KEYRING_PASSWORD", "not-the-password");
    let r = env.run(&["receipts", "checkpoint"]);
    r.code(1)
        .error_with_hint("checkpoint signing key unavailable");
    assert!(
        r.stderr.contains("check CRAIK_KEYRING_PASSWORD"),
        "{}",
        r.stderr
    );
    // A wrong store password is a store error (exit 1), not "audit log
    // unavailable" (5).
    let r = env.run_stdin(&["receipts", "hash", "--family", "openai"], Some("sk-x"));
    r.code(1).error_with_hint("wrong password");
    assert!(
        r.stderr.contains("check CRAIK_KEYRING_PASSWORD"),
        "{}",
        r.stderr
    );
}
