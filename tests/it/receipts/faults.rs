//! Failing closed: a log that cannot be written (a directory, an
//! immutable file, a read-only mount, a full disk), a read-only copy, a
//! file that is no database, a log deleted or emptied.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Cleanup, home_with_profiles, sh, verified_count, with_suffix};
use crate::common::Env;

fn writable(p: &Path) -> bool {
    fs::OpenOptions::new().append(true).open(p).is_ok()
}

fn secret_count(env: &Env) -> i64 {
    let r = env.run(&["auth", "storage", "status", "--json"]);
    r.ok();
    r.json()["secrets"].as_i64().expect("secrets count")
}

/// Adds a profile, makes audit.db unwritable with `apply` (Err: the
/// mechanism is not available here), checks that adding and removing a
/// profile fail with exit 5 and change nothing, then undoes it and checks
/// that the same action now works.
fn check_fail_closed(
    name: &str,
    env: &Env,
    apply: impl FnOnce(&Env, &mut Cleanup) -> Result<(), String>,
) -> Result<(), String> {
    eprintln!("fail-closed variant: {name}");
    let add_x = ["auth", "add", "openai:x", "--kind=keyring-ref", "--stdin"];
    let add_y = ["auth", "add", "openai:y", "--kind=keyring-ref", "--stdin"];
    env.run_stdin(&add_x, Some("sk-fail-closed-x\n")).ok();
    let profiles = fs::read(env.file("auth-profiles.json")).unwrap();
    let secrets = secret_count(env);
    let receipts = verified_count(env);
    assert_eq!(receipts, 1);

    let mut undo = Cleanup::default();
    apply(env, &mut undo)?;

    let add = env.run_stdin(&add_y, Some("sk-fail-closed-y\n"));
    add.code(5).error_with_hint("audit log unavailable");
    assert!(
        add.stderr.contains("writable") || add.stderr.contains("disk"),
        "{name}: the hint should say what to check: {}",
        add.stderr
    );
    env.run(&["auth", "remove", "openai:x"])
        .code(5)
        .error_with_hint("audit log unavailable");
    assert_eq!(
        fs::read(env.file("auth-profiles.json")).unwrap(),
        profiles,
        "{name}: auth-profiles.json changed"
    );
    // Reading needs no receipt: an unwritable log is still read, unless
    // it is no file at all.
    if name == "directory" {
        env.run(&["receipts", "verify"])
            .code(1)
            .error_with_hint("is not a regular file");
    } else {
        assert_eq!(
            verified_count(env),
            receipts,
            "{name}: verify while unwritable"
        );
        check_reads(env, receipts);
    }

    undo.run();
    assert_eq!(
        secret_count(env),
        secrets,
        "{name}: the secret store changed"
    );
    assert_eq!(verified_count(env), receipts, "{name}: the log changed");
    assert_eq!(
        fs::read(env.file("auth-profiles.json")).unwrap(),
        profiles,
        "{name}: auth-profiles.json changed"
    );
    // It was the unwritable log that refused the action.
    env.run_stdin(&add_y, Some("sk-fail-closed-y\n")).ok();
    assert_eq!(verified_count(env), receipts + 1, "{name}");
    assert_eq!(secret_count(env), secrets + 1, "{name}");
    Ok(())
}

/// The commands that only read the log work on a log holding `receipts`
/// receipts.
fn check_reads(env: &Env, receipts: i64) {
    let listed = env.run(&["receipts", "list", "--json"]);
    listed.ok();
    assert_eq!(
        listed.json()["receipts"].as_array().unwrap().len() as i64,
        receipts
    );
    let shown = env.run(&["receipts", "show", "1", "--json"]);
    shown.ok();
    assert_eq!(shown.json()["seq"], 1);
    let stats = env.run(&["receipts", "stats", "--json"]);
    stats.ok();
    assert_eq!(stats.json()["total"].as_i64(), Some(receipts));
    let export = env.run(&["receipts", "export", "--format", "jsonl"]);
    export.ok();
    assert_eq!(export.stdout.lines().count() as i64, receipts);
    let hash = env.run_stdin(&["receipts", "hash", "--family", "openai"], Some("sk-x"));
    hash.ok();
    assert!(hash.stdout.starts_with("hmac-sha256:"), "{}", hash.stdout);
}

/// A copy of a home on a read-only mount (an auditor's evidence copy):
/// every reading command works on it, checkpoints included, and an action
/// is refused as for any log that cannot be written.
#[test]
fn a_read_only_copy_is_read() {
    crate::common::require_root("bind-mounts a read-only copy of the home");
    let env = home_with_profiles(5);
    let cp = env.dir.path().join("cp.json");
    env.run(&["receipts", "checkpoint", "--out", cp.to_str().unwrap()])
        .ok();
    assert!(
        !env.file("audit.db-wal").exists(),
        "the log was closed cleanly, so no -wal file is left"
    );
    let ro = env.dir.path().join("ro");
    fs::create_dir(&ro).unwrap();
    let (src, dst) = (env.home.to_str().unwrap(), ro.to_str().unwrap());
    sh("mount", &["--bind", src, dst])
        .expect("this test mounts a read-only copy of the home: it runs as root, with mount");
    let mut undo = Cleanup::default();
    let d = dst.to_string();
    undo.push(move || {
        let _ = sh("umount", &[&d]);
    });
    sh("mount", &["-o", "remount,ro,bind", dst]).expect("remount read-only");
    assert!(!writable(&ro.join("audit.db")), "the mount is read-only");

    let mut copy = Env::new();
    copy.set("CRAIK_HOME", dst);
    copy.home = ro.clone();
    // The same secret store (the copy's encrypted file and password).
    let r = copy.run(&[
        "receipts",
        "verify",
        "--checkpoint",
        cp.to_str().unwrap(),
        "--json",
    ]);
    r.ok();
    assert_eq!(r.json()["verified"], 5);
    assert_eq!(r.json()["ok"], true);
    check_reads(&copy, 5);
    // Read without the query index: patterns are matched on the log itself.
    let r = copy.run(&["receipts", "list", "--profile", "openai:p*", "--json"]);
    r.ok();
    assert_eq!(r.json()["receipts"].as_array().unwrap().len(), 5);
    let r = copy.run(&["receipts", "list", "--profile", "open*", "--json"]);
    r.ok();
    assert_eq!(r.json()["receipts"].as_array().unwrap().len(), 0);
    assert_eq!(
        copy.run_stdin(&["receipts", "hash", "--family", "openai"], Some("sk-x"))
            .stdout,
        env.run_stdin(&["receipts", "hash", "--family", "openai"], Some("sk-x"))
            .stdout,
        "the copy hashes with the same key"
    );
    copy.run(&["auth", "add", "openai:more", "--kind=api-key"])
        .code(5)
        .error_with_hint("audit log unavailable");
    undo.run();
}

/// An audit.db that is no database (overwritten, cut short): the reading
/// commands say they cannot read it (exit 1, with what to do), actions are
/// refused (exit 5), and the file is left exactly as it was.
#[test]
fn a_file_that_is_no_database() {
    for damage in ["garbage", "cut short"] {
        let env = home_with_profiles(30);
        let db = env.file("audit.db");
        match damage {
            "garbage" => {
                let mut rng = StdRng::seed_from_u64(9);
                let bytes: Vec<u8> = (0..40_000).map(|_| rng.r#gen()).collect();
                fs::write(&db, bytes).unwrap();
            }
            _ => {
                let f = fs::OpenOptions::new().write(true).open(&db).unwrap();
                f.set_len(8192).unwrap();
            }
        }
        let before = fs::read(&db).unwrap();
        for args in [
            &["receipts", "verify"][..],
            &["receipts", "list"],
            &["receipts", "stats"],
        ] {
            env.run(args)
                .code(1)
                .error_with_hint("cannot read the audit log");
            let r = env.run(args);
            assert!(
                r.stderr.contains("restore audit.db from a backup"),
                "{damage} {args:?}: {}",
                r.stderr
            );
        }
        env.run(&["auth", "add", "openai:more", "--kind=api-key"])
            .code(5)
            .error_with_hint("audit log unavailable");
        assert_eq!(fs::read(&db).unwrap(), before, "{damage}: audit.db changed");
    }
}

#[test]
fn unwritable_audit_log_fails_closed() {
    crate::common::require_root("makes audit.db immutable (chattr +i) and mounts over it");
    let mut used: Vec<&str> = Vec::new();
    let mut unavailable: Vec<String> = Vec::new();
    let mut note = |name: &'static str, r: Result<(), String>| match r {
        Ok(()) => used.push(name),
        Err(e) => unavailable.push(format!("{name}: {e}")),
    };

    // audit.db replaced by a directory.
    {
        let env = Env::new();
        note(
            "directory",
            check_fail_closed("directory", &env, |env, undo| {
                let db = env.file("audit.db");
                let saved = env.dir.path().join("audit.db.saved");
                fs::rename(&db, &saved).unwrap();
                fs::create_dir(&db).unwrap();
                undo.push(move || {
                    fs::remove_dir(&db).unwrap();
                    fs::rename(&saved, &db).unwrap();
                });
                Ok(())
            }),
        );
    }

    // A read-only file: chmod works for other users, not for root.
    if !rustix::process::geteuid().is_root() {
        let env = Env::new();
        note(
            "chmod 0400",
            check_fail_closed("chmod 0400", &env, |env, undo| {
                let db = env.file("audit.db");
                fs::set_permissions(&db, fs::Permissions::from_mode(0o400)).unwrap();
                undo.push(move || {
                    fs::set_permissions(&db, fs::Permissions::from_mode(0o600)).unwrap();
                });
                Ok(())
            }),
        );
    }

    // An immutable file (stops root too, where the filesystem supports it).
    {
        let env = Env::new();
        note(
            "chattr +i",
            check_fail_closed("chattr +i", &env, |env, undo| {
                let db = env.file("audit.db");
                let p = db.to_str().unwrap().to_string();
                sh("chattr", &["+i", &p])?;
                undo.push(move || {
                    let _ = sh("chattr", &["-i", &p]);
                });
                if writable(&db) {
                    return Err("audit.db is still writable after chattr +i".into());
                }
                Ok(())
            }),
        );
    }

    // A read-only bind mount over audit.db.
    {
        let env = Env::new();
        note(
            "read-only bind mount",
            check_fail_closed("read-only bind mount", &env, |env, undo| {
                let db = env.file("audit.db");
                let p = db.to_str().unwrap().to_string();
                sh("mount", &["--bind", &p, &p])?;
                let q = p.clone();
                undo.push(move || {
                    let _ = sh("umount", &[&q]);
                });
                sh("mount", &["-o", "remount,ro,bind", &p])?;
                if writable(&db) {
                    return Err("audit.db is still writable after the ro remount".into());
                }
                Ok(())
            }),
        );
    }

    // A full disk: the home on a tiny tmpfs, filled up.
    {
        let mut env = Env::new();
        let mut mounts = Cleanup::default();
        let fs_dir = env.dir.path().join("tinyfs");
        fs::create_dir(&fs_dir).unwrap();
        let mounted = sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                "size=1m,mode=0700",
                "craik-test-tinyfs",
                fs_dir.to_str().unwrap(),
            ],
        );
        let r = mounted.and_then(|()| {
            let p = fs_dir.display().to_string();
            mounts.push(move || {
                let _ = sh("umount", &["-l", &p]);
            });
            let home = fs_dir.join("home");
            env.set("CRAIK_HOME", home.to_str().unwrap());
            env.home = home;
            let filler = fs_dir.join("filler");
            check_fail_closed("full tmpfs", &env, move |_, undo| {
                let mut f = fs::File::create(&filler).unwrap();
                let chunk = vec![0u8; 64 * 1024];
                let err = loop {
                    if let Err(e) = f.write_all(&chunk) {
                        break e;
                    }
                };
                drop(f);
                undo.push(move || fs::remove_file(&filler).unwrap());
                if err.raw_os_error() != Some(28) {
                    return Err(format!("filling the tmpfs failed with {err}, not ENOSPC"));
                }
                Ok(())
            })
        });
        note("full tmpfs", r);
        drop(mounts);
    }

    eprintln!("fail-closed mechanisms used: {used:?}; unavailable: {unavailable:?}");
    assert!(used.contains(&"directory"), "{unavailable:?}");
    assert!(
        used.len() >= 2,
        "no way to make audit.db unwritable besides replacing it with a directory worked here; unavailable: {unavailable:?}"
    );
}

/// A log deleted or emptied where the home shows it held receipts (its
/// query index copied some, or a checkpoint was signed): reading says so
/// (exit 1), and no action starts a new chain in its place (exit 5),
/// until the evidence is moved aside on purpose. A home that never had a
/// log reads as empty and makes no file.
#[test]
fn a_deleted_or_emptied_log_is_not_a_new_one() {
    for (how, evidence) in [
        ("emptied", "query index copied receipts up to seq 12"),
        ("deleted", "query index copied receipts up to seq 12"),
        ("deleted after a checkpoint", "audit-signing.pub"),
    ] {
        let env = home_with_profiles(12);
        let db = env.file("audit.db");
        if how == "deleted after a checkpoint" {
            let cp = env.dir.path().join("cp.json");
            env.run(&["receipts", "checkpoint", "--out", cp.to_str().unwrap()])
                .ok();
            let _ = fs::remove_file(env.file("audit-index.db"));
        } else {
            env.run(&["receipts", "list"]).ok();
            // Only the query index shows receipts existed: the automatic
            // checkpoint and its key are gone too.
            for f in ["audit-signing.pub", "audit-checkpoint.json"] {
                let _ = fs::remove_file(env.file(f));
            }
        }
        for suffix in ["-wal", "-shm"] {
            let _ = fs::remove_file(with_suffix(&db, suffix));
        }
        if how == "emptied" {
            fs::OpenOptions::new()
                .write(true)
                .open(&db)
                .unwrap()
                .set_len(0)
                .unwrap();
        } else {
            fs::remove_file(&db).unwrap();
        }
        for args in [&["receipts", "verify"][..], &["receipts", "list"]] {
            let r = env.run(args);
            r.code(1).error_with_hint("is missing or empty");
            assert!(r.stderr.contains(evidence), "{how}: {}", r.stderr);
        }
        env.run(&["auth", "add", "openai:more", "--kind=api-key"])
            .code(5)
            .error_with_hint("will not start a new chain");
        assert_eq!(
            fs::metadata(&db).map(|m| m.len()).unwrap_or(0),
            0,
            "{how}: nothing was written in its place"
        );
        // Moved aside on purpose: a new log starts.
        for f in [
            "audit-index.db",
            "audit-signing.pub",
            "audit-checkpoint.json",
        ] {
            let _ = fs::rename(env.file(f), env.dir.path().join(f));
        }
        env.run(&["auth", "add", "openai:more", "--kind=api-key"])
            .ok();
        assert_eq!(verified_count(&env), 1, "{how}");
    }
    // A home that never had a log: read as empty, nothing created.
    let env = Env::new();
    env.run(&["auth", "add", "openai:nolog", "--kind=marker"])
        .code(0);
    let fresh = Env::new();
    fs::create_dir_all(&fresh.home).unwrap();
    fs::set_permissions(&fresh.home, fs::Permissions::from_mode(0o700)).unwrap();
    let r = fresh.run(&["receipts", "verify", "--json"]);
    r.ok();
    assert_eq!(r.json()["verified"], 0);
    fresh.run(&["receipts", "list"]).ok();
    assert!(
        !fresh.file("audit.db").exists() && !fresh.file("audit-index.db").exists(),
        "reading made no log"
    );
}
