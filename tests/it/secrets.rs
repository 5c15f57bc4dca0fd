//! The secret store: the encrypted file (wrong password, tampering,
//! concurrency), the real kernel keyring and a real Secret Service, and
//! moving secrets between them.

use std::process::{Command, Stdio};

use crate::common::{Env, Run, craik_bin, require_tool, to_run};

fn keyring_ref(env: &Env, id: &str, secret: &str) -> Run {
    env.run_stdin(
        &["auth", "add", id, "--kind=keyring-ref", "--stdin"],
        Some(secret),
    )
}

#[test]
fn wrong_password_says_so_and_changes_nothing() {
    let mut env = Env::new();
    keyring_ref(&env, "openai:a", "s1").ok();
    let enc = env.file("secrets.enc");
    let before = std::fs::read(&enc).unwrap();
    let profiles_before = std::fs::read(env.file("auth-profiles.json")).unwrap();
    env.set("CRAIK_KEYRING_PASSWORD", "not the password");
    env.run(&["auth", "storage", "status"])
        .code(1)
        .error_with_hint("wrong password");
    // A store error (exit 1), not "audit key unavailable" (5).
    let r = keyring_ref(&env, "openai:b", "s2");
    r.code(1).error_with_hint("wrong password");
    assert!(!r.stderr.contains("audit"), "{r:?}");
    // The profiles file's seal needs the store's key: a wrong password
    // shows nothing rather than profiles whose file could not be checked.
    env.run(&["auth", "status", "--json"])
        .code(1)
        .error_with_hint("wrong password");
    assert_eq!(before, std::fs::read(&enc).unwrap());
    assert_eq!(
        profiles_before,
        std::fs::read(env.file("auth-profiles.json")).unwrap()
    );
    // No password at all, and no terminal.
    env.unset("CRAIK_KEYRING_PASSWORD");
    env.run(&["auth", "storage", "status"])
        .code(1)
        .error_with_hint("CRAIK_KEYRING_PASSWORD");
}

#[test]
fn tampered_file_fails_its_integrity_check() {
    let env = Env::new();
    keyring_ref(&env, "openai:a", "s1").ok();
    let enc = env.file("secrets.enc");
    let good = std::fs::read(&enc).unwrap();
    // Flip a byte in the ciphertext, and one in the header's nonce.
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 5] ^= 0x01;
    std::fs::write(&enc, &bad).unwrap();
    env.run(&["auth", "storage", "status"])
        .code(1)
        .error_with_hint("integrity check");
    assert_eq!(std::fs::read(&enc).unwrap(), bad, "left as it was");
    let text = String::from_utf8_lossy(&good).into_owned();
    let nonce_at = text.find("\"nonce\":\"").unwrap() + 9;
    let mut bad = good.clone();
    bad[nonce_at] = if bad[nonce_at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&enc, &bad).unwrap();
    env.run(&["auth", "storage", "status"])
        .code(1)
        .error_with_hint("integrity check");
    // Garbage.
    std::fs::write(&enc, b"hello").unwrap();
    env.run(&["auth", "storage", "status"])
        .code(1)
        .error_with_hint("not a craik secret store");
    std::fs::write(&enc, &good).unwrap();
    env.run(&["auth", "storage", "status"]).ok();
}

#[test]
fn eight_processes_fifty_secrets_each_lose_none() {
    let env = Env::new();
    // Create the store (and audit key) first so every writer shares one salt.
    keyring_ref(&env, "openai:seed", "seed").ok();
    let script = r#"i=0; while [ $i -lt 50 ]; do printf "secret-$W-$i" | "$CRAIK" auth add "openai:w$W-$i" --kind=keyring-ref --stdin >/dev/null || exit 1; i=$((i+1)); done"#;
    let children: Vec<_> = (0..8)
        .map(|w| {
            let mut c = env.command(&[]);
            let mut sh = Command::new("sh");
            sh.arg("-c").arg(script);
            for (k, v) in c.get_envs() {
                match v {
                    Some(v) => sh.env(k, v),
                    None => sh.env_remove(k),
                };
            }
            sh.env("CRAIK", craik_bin()).env("W", w.to_string());
            sh.stdout(Stdio::piped()).stderr(Stdio::piped());
            let _ = &mut c;
            sh.spawn().unwrap()
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
    let st = env.run(&["auth", "storage", "status", "--json"]);
    st.ok();
    assert_eq!(
        st.json()["secrets"],
        8 * 50 + 4,
        "every secret plus seed, audit key, checkpoint signing key and seal key"
    );
    let status = env.run(&["auth", "status", "--json"]).json();
    let profiles = status["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 401);
    assert!(
        profiles
            .iter()
            .all(|p| p["health"]["message"] == "secret present")
    );
    let v = env.run(&["receipts", "verify", "--json"]);
    v.ok();
    assert_eq!(v.json()["verified"], 401);
}

/// Runs `script` (with $CRAIK set) under a wrapper command.
fn run_wrapped(env: &Env, wrapper: &[&str], script: &str) -> Run {
    let c = env.command(&[]);
    let mut cmd = Command::new(wrapper[0]);
    cmd.args(&wrapper[1..]).arg("sh").arg("-c").arg(script);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env_remove("CRAIK_KEYRING_BACKEND");
    cmd.env("CRAIK", craik_bin());
    to_run(cmd.output().unwrap())
}

#[test]
fn kernel_keyring_backend() {
    require_tool("keyctl", "apt-get install -y keyutils");
    let env = Env::new();
    let r = run_wrapped(
        &env,
        &["keyctl", "session", "-"],
        r#"set -e
printf 'kk-secret' | "$CRAIK" auth add openai:k --kind=keyring-ref --stdin
"$CRAIK" auth storage status --json
echo '---'
"$CRAIK" auth status --json
echo '---'
"$CRAIK" auth remove openai:k
"$CRAIK" auth storage status --json"#,
    );
    r.ok();
    let parts: Vec<&str> = r.stdout.split("---\n").collect();
    let first = parts[0].split_once('\n').unwrap().1;
    let storage: serde_json::Value = serde_json::from_str(first).unwrap();
    assert_eq!(storage["backend"], "keyutils");
    assert_eq!(storage["volatile"], true);
    // The profile's, the audit key, the checkpoint signing key, the seal key.
    assert_eq!(storage["secrets"], 4);
    assert!(
        storage["notes"][0]
            .as_str()
            .unwrap()
            .contains("do not survive a reboot")
    );
    let status: serde_json::Value = serde_json::from_str(parts[1]).unwrap();
    assert_eq!(status["profiles"][0]["backend"], "keyutils");
    assert_eq!(status["profiles"][0]["health"]["message"], "secret present");
    let after = parts[2].split_once('\n').unwrap().1;
    let after: serde_json::Value = serde_json::from_str(after).unwrap();
    assert_eq!(after["secrets"], 3, "the profile's secret was deleted");
    assert!(
        !std::fs::read(env.file("auth-profiles.json"))
            .is_ok_and(|b| String::from_utf8_lossy(&b).contains("kk-secret"))
    );
}

const GNOME_KEYRING: &str =
    r#"eval "$(printf %s keyring-pw | gnome-keyring-daemon --unlock --components=secrets)"; "#;

#[test]
fn secret_service_backend_and_migration_to_file() {
    require_tool(
        "dbus-run-session",
        "apt-get install -y dbus-x11 (dbus-run-session)",
    );
    require_tool("gnome-keyring-daemon", "apt-get install -y gnome-keyring");
    require_tool("secret-tool", "apt-get install -y libsecret-tools");
    let env = Env::new();
    let script = format!(
        r#"{GNOME_KEYRING}set -e
printf 'ss-secret-1' | "$CRAIK" auth add openai:ss --kind=keyring-ref --stdin >/dev/null
printf 'ss-secret-2' | "$CRAIK" auth add anthropic:ss --kind=keyring-ref --stdin >/dev/null
"$CRAIK" auth storage status --json
echo '---'
secret-tool search --all service craik 2>/dev/null | grep -c '^secret = ss-secret' || true
echo '---'
CRAIK_KEYRING_BACKEND=file "$CRAIK" auth migrate-secrets --to file --json
echo '---'
CRAIK_KEYRING_BACKEND=file "$CRAIK" auth migrate-secrets --to file --json
echo '---'
secret-tool search --all service craik 2>/dev/null | grep -c '^secret = ss-secret' || true
echo '---'
CRAIK_KEYRING_BACKEND=file "$CRAIK" auth status --json"#
    );
    let r = run_wrapped(&env, &["dbus-run-session", "--"], &script);
    r.ok();
    let parts: Vec<&str> = r.stdout.split("---\n").collect();
    let storage: serde_json::Value = serde_json::from_str(parts[0]).unwrap();
    assert_eq!(storage["backend"], "secret-service", "{}", parts[0]);
    // Two profiles', the audit key, the checkpoint signing key, the seal key.
    assert_eq!(storage["secrets"], 5);
    assert_eq!(
        parts[1].trim(),
        "2",
        "both secrets are in the real Secret Service"
    );
    let m1: serde_json::Value = serde_json::from_str(parts[2]).unwrap();
    assert_eq!(m1["moved"].as_array().unwrap().len(), 5);
    let m2: serde_json::Value = serde_json::from_str(parts[3]).unwrap();
    assert_eq!(m2["moved"].as_array().unwrap().len(), 0, "idempotent");
    assert_eq!(m2["already"].as_array().unwrap().len(), 5);
    assert_eq!(
        parts[4].trim(),
        "0",
        "removed from the old backend after the copy"
    );
    let status: serde_json::Value = serde_json::from_str(parts[5]).unwrap();
    for p in status["profiles"].as_array().unwrap() {
        assert_eq!(p["backend"], "file");
        assert_eq!(p["health"]["message"], "secret present");
    }
    // A receipt records the migration.
    let list = env.run(&["receipts", "list", "--kind", "secret_migrated", "--json"]);
    list.ok();
    assert_eq!(list.json()["receipts"].as_array().unwrap().len(), 1);
}

#[test]
fn migrate_from_env() {
    let mut env = Env::new();
    env.run(&[
        "auth",
        "add",
        "openai:a",
        "--kind=api-key",
        "--env-var",
        "KEY_A",
    ])
    .ok();
    env.run(&[
        "auth",
        "add",
        "openai:b",
        "--kind=api-key",
        "--env-var",
        "KEY_B",
    ])
    .ok();
    env.set("KEY_A", "value-a");
    let before = std::fs::read(env.file("auth-profiles.json")).unwrap();
    let dry = env.run(&["auth", "migrate-from-env", "--dry-run", "--json"]);
    dry.ok();
    let v = dry.json();
    assert_eq!(v["profiles"][0]["outcome"], "would migrate");
    assert_eq!(v["profiles"][1]["outcome"], "env var not set");
    assert_eq!(
        before,
        std::fs::read(env.file("auth-profiles.json")).unwrap(),
        "dry run writes nothing"
    );
    env.run(&["auth", "migrate-from-env", "--apply"])
        .code(1)
        .error_with_hint("--yes");
    let applied = env.run(&["auth", "migrate-from-env", "--apply", "--yes", "--json"]);
    applied.ok();
    assert_eq!(applied.json()["profiles"][0]["outcome"], "migrated");
    let file = env.read_json("auth-profiles.json");
    crate::common::assert_schema("auth-profiles.schema.json", &file);
    assert_eq!(file["profiles"][0]["kind"], "keyring-ref");
    // The environment is no longer needed.
    env.unset("KEY_A");
    let st = env.run(&["auth", "status", "--json"]).json();
    assert_eq!(st["profiles"][0]["health"]["message"], "secret present");
    env.set("KEY_A", "value-a");
    let again = env.run(&["auth", "migrate-from-env", "--apply", "--yes", "--json"]);
    again.ok();
    assert_eq!(again.json()["profiles"][0]["outcome"], "already migrated");
    let receipts = env
        .run(&["receipts", "list", "--kind", "secret_migrated", "--json"])
        .json();
    assert_eq!(receipts["receipts"].as_array().unwrap().len(), 1);
}

#[test]
fn unlock_keeps_the_key_for_a_while_and_lock_drops_it() {
    require_tool("keyctl", "apt-get install keyutils");
    let mut env = Env::new();
    keyring_ref(&env, "openai:u", "unlock-secret").ok();
    let password = env.vars["CRAIK_KEYRING_PASSWORD"].clone();
    let exec = [
        "exec",
        "--profile",
        "openai:u",
        "--",
        "sh",
        "-c",
        "test \"$OPENAI_API_KEY\" = unlock-secret",
    ];
    // Nothing to unlock with, or the wrong password: exit 1, still locked.
    env.unset("CRAIK_KEYRING_PASSWORD");
    env.run(&exec)
        .code(1)
        .error_with_hint("unlock the store for a while with craik unlock");
    env.run(&["unlock"])
        .code(1)
        .error_with_hint("CRAIK_KEYRING_PASSWORD");
    env.set("CRAIK_KEYRING_PASSWORD", "not the password");
    env.run(&["unlock"])
        .code(1)
        .error_with_hint("wrong password")
        .error_with_hint("check CRAIK_KEYRING_PASSWORD");
    env.unset("CRAIK_KEYRING_PASSWORD");
    // Typed at the prompt, the hint is about what was typed.
    let typed = crate::common::run_on_terminal(&env, &["unlock"], "not the password\n");
    let typed = String::from_utf8_lossy(&typed.stdout).to_string();
    assert!(typed.contains("wrong password"), "{typed}");
    assert!(
        typed.contains("type the password this store was made with"),
        "{typed}"
    );
    assert!(!typed.contains("CRAIK_KEYRING_PASSWORD"), "{typed}");
    env.run(&exec).code(1);
    // Unlocked: commands need no password, and a receipt says so.
    env.set("CRAIK_KEYRING_PASSWORD", &password);
    let r = env.run(&["unlock", "--for", "10m", "--json"]);
    r.ok();
    assert_eq!(r.json()["for_seconds"], 600);
    env.unset("CRAIK_KEYRING_PASSWORD");
    env.run(&exec).ok();
    let unlocked = crate::common::receipts(&env, "store_unlocked");
    assert_eq!(unlocked.len(), 1, "{unlocked:?}");
    assert_eq!(unlocked[0]["details"]["for_seconds"], 600);
    let d = env.run(&["doctor"]);
    assert!(
        d.stdout.contains("secret store: unlocked (craik unlock)"),
        "{d:?}"
    );
    // The kernel holds the derived key, never the password.
    let keys = std::fs::read_to_string("/proc/keys").unwrap();
    assert!(!keys.contains(&password));
    // lock ends it at once, with a receipt.
    env.run(&["lock"]).ok().out_contains("locked");
    env.run(&exec)
        .code(1)
        .error_with_hint("CRAIK_KEYRING_PASSWORD");
    env.run(&["lock"]).ok().out_contains("was not unlocked");
    env.set("CRAIK_KEYRING_PASSWORD", &password);
    assert_eq!(crate::common::receipts(&env, "store_locked").len(), 1);
    // The kernel drops the key when its time is up.
    env.run(&["unlock", "--for", "1s"]).ok();
    env.unset("CRAIK_KEYRING_PASSWORD");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    env.run(&exec)
        .code(1)
        .error_with_hint("CRAIK_KEYRING_PASSWORD");
    // A home without an encrypted store has nothing to unlock; a home
    // that does not exist is not made by unlock or lock.
    let mut empty = Env::new();
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&empty.home)
            .unwrap();
    }
    empty
        .run(&["unlock"])
        .code(1)
        .error_with_hint("CRAIK_KEYRING_BACKEND=file");
    let nowhere = empty.dir.path().join("no-such-home");
    empty.set("CRAIK_HOME", nowhere.to_str().unwrap());
    empty
        .run(&["unlock"])
        .code(1)
        .error_with_hint("check CRAIK_HOME");
    empty.run(&["lock"]).ok().out_contains("was not unlocked");
    assert!(!nowhere.exists());
    // --for is bounded: a usage error.
    env.run(&["unlock", "--for", "2d"])
        .code(2)
        .error_with_hint("use at most 1d");
    // The examples in the hint are ones unlock takes.
    let r = env.run(&["unlock", "--for", "abc"]);
    r.code(2)
        .error_with_hint("write it as 30s, 15m, 2h, 1h30m (at most 1d)");
    assert!(!r.stderr.contains("7d"), "{r:?}");
    // Another home is not unlocked by this one's key.
    env.set("CRAIK_KEYRING_PASSWORD", &password);
    env.run(&["unlock"]).ok();
    let mut other = Env::new();
    keyring_ref(&other, "openai:o", "other-secret").ok();
    other.unset("CRAIK_KEYRING_PASSWORD");
    other
        .run(&["exec", "--profile", "openai:o", "--", "true"])
        .code(1);
    // A home moved away after unlock: lock still drops its key, and makes
    // no home where it was.
    let moved = env.dir.path().join("moved-home");
    std::fs::rename(&env.home, &moved).unwrap();
    let r = env.run(&["lock"]);
    assert!(r.ok().stdout.starts_with("locked "), "{r:?}");
    assert!(!env.home.exists());
    std::fs::rename(&moved, &env.home).unwrap();
    env.run(&["lock"]).ok().out_contains("was not unlocked");
}

/// With no backend named, a login without a session keyring of its own
/// (CI, a container, `su` without PAM) gets the encrypted file, and
/// `craik unlock` must then hold for every later command: probing the
/// kernel keyring used to give each process a new, empty session keyring,
/// out of which the unlocked key could no longer be found (commands still
/// asked for the password, and `lock` failed).
#[test]
fn unlock_holds_when_probing_chose_the_file_store() {
    require_tool("keyctl", "apt-get install keyutils");
    let mut env = Env::new();
    env.unset("CRAIK_KEYRING_BACKEND");
    let own_session = {
        let out = std::process::Command::new("keyctl")
            .args(["rdescribe", "@s"])
            .output()
            .unwrap();
        !String::from_utf8_lossy(&out.stdout).contains("_uid_ses.")
    };
    let status = env.run(&["auth", "storage", "status", "--json"]);
    status.ok();
    if own_session {
        // This runner's login has a session keyring: the kernel keyring
        // is chosen, and there is no file store to unlock.
        assert_eq!(status.json()["backend"], "keyutils", "{status:?}");
        return;
    }
    assert_eq!(status.json()["backend"], "file", "{status:?}");
    assert!(
        status.stdout.contains("no session keyring of its own"),
        "{status:?}"
    );
    keyring_ref(&env, "openai:auto", "auto-secret").ok();
    env.run(&["unlock", "--for", "5m"]).ok();
    env.unset("CRAIK_KEYRING_PASSWORD");
    env.run(&[
        "exec",
        "--profile",
        "openai:auto",
        "--",
        "sh",
        "-c",
        "test \"$OPENAI_API_KEY\" = auto-secret",
    ])
    .ok();
    let index = std::fs::read_to_string(env.home.join("secret-index.json")).unwrap();
    assert!(!index.contains("keyutils"), "{index}");
    env.run(&["lock"]).ok().out_contains("locked");
    env.run(&["exec", "--profile", "openai:auto", "--", "true"])
        .code(1)
        .error_with_hint("CRAIK_KEYRING_PASSWORD");
}

/// A home on the encrypted file, looked at with another backend selected
/// whose keyring holds craik's fixed-handle keys already (another home of
/// the same user made them): `doctor` says the profiles do not verify,
/// and writes nothing, the index least of all (it used to record the
/// keys as kept in the other backend).
#[test]
fn another_backend_leaves_the_index_alone() {
    require_tool("keyctl", "apt-get install -y keyutils");
    let env = Env::new();
    keyring_ref(&env, "openai:f", "file-secret").ok();
    let index = env.file("secret-index.json");
    let before = std::fs::read(&index).unwrap();
    let other = Env::new();
    let r = run_wrapped(
        &env,
        &["keyctl", "session", "-"],
        &format!(
            r#"CRAIK_HOME='{other}' CRAIK_KEYRING_BACKEND=keyutils "$CRAIK" auth add openai:k --kind=marker >/dev/null || exit 9
CRAIK_KEYRING_BACKEND=keyutils "$CRAIK" doctor"#,
            other = other.home.display()
        ),
    );
    // The other home's seal key does not verify this home's profiles.
    r.code(1);
    assert!(r.stdout.contains("does not match its seal"), "{r:?}");
    assert_eq!(std::fs::read(&index).unwrap(), before);
    env.run(&["doctor"]).ok();
}

/// A key copied while the store was unlocked (any unsandboxed process of
/// the user can read it) stops opening the store: each unlock keeps a
/// key of its own, and the first write made with the password after
/// `lock` re-keys the file, so the copy put back later opens nothing.
#[test]
fn a_copied_unlock_key_opens_nothing_written_since() {
    require_tool("keyctl", "apt-get install keyutils");
    let env = Env::new();
    keyring_ref(&env, "openai:before", "s1").ok();
    let copies = tempfile::tempdir().unwrap();
    let script = r#"
desc() { keyctl show @s | grep -o 'craik:unlock:[0-9a-f]*' | head -1; }
copy() { keyctl pipe "$(keyctl search @s user "$(desc)")" > "$COPIES/$1"; }
"$CRAIK" unlock --for 10m >/dev/null || exit 9
D=$(desc); copy first
"$CRAIK" lock >/dev/null
"$CRAIK" unlock --for 10m >/dev/null || exit 9
copy second
"$CRAIK" lock >/dev/null
cmp -s "$COPIES/first" "$COPIES/second" && echo SAME KEY TWICE
printf s2 | "$CRAIK" auth add openai:after --kind=keyring-ref --stdin >/dev/null || exit 9
# The copy, put back where craik looks for it.
keyctl padd user "$D" @s < "$COPIES/second" >/dev/null || exit 9
unset CRAIK_KEYRING_PASSWORD
"$CRAIK" exec --profile openai:after -- true </dev/null >/dev/null 2>&1 && echo OPENED || echo REFUSED
"#;
    let c = env.command(&[]);
    let mut cmd = Command::new("keyctl");
    cmd.args(["session", "-", "sh", "-c", script]);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("CRAIK", craik_bin()).env("COPIES", copies.path());
    let r = to_run(cmd.output().unwrap());
    r.ok();
    assert!(r.stdout.contains("REFUSED"), "{r:?}");
    assert!(!r.stdout.contains("SAME KEY TWICE"), "{r:?}");
    // The store still opens with the password, and holds both.
    env.run(&["exec", "--profile", "openai:before", "--", "true"])
        .ok();
    env.run(&["exec", "--profile", "openai:after", "--", "true"])
        .ok();
}
