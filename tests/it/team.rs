//! Team mode against a real PostgreSQL (Debian's `postgresql` package),
//! started here on a private port and data directory.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::common::*;

const ADMIN_PW: &str = "admin-pw-canary-8812";

/// A PostgreSQL server of its own.
pub struct Pg {
    _dir: tempfile::TempDir,
    data: PathBuf,
    sock: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Run the server's programs as this user (initdb refuses root).
    as_user: Option<String>,
}

fn pg_bin() -> PathBuf {
    let found = Command::new("sh")
        .arg("-c")
        .arg("command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty());
    match found {
        Some(p) => PathBuf::from(p.lines().next().unwrap())
            .parent()
            .unwrap()
            .to_path_buf(),
        None => panic!(
            "PostgreSQL's server programs (initdb, pg_ctl) are missing: apt-get install postgresql"
        ),
    }
}

impl Pg {
    pub fn start() -> Pg {
        require_tool("psql", "apt-get install postgresql-client");
        let bin = pg_bin();
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("pg");
        std::fs::create_dir(&root).unwrap();
        let as_user = (unsafe_is_root()).then(|| "postgres".to_string());
        if as_user.is_some() {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&root)
                .status()
                .unwrap();
            assert!(st.success(), "chown to postgres failed");
        }
        let data = root.join("data");
        let sock = root.join("sock");
        let pwfile = root.join("pw");
        std::fs::write(&pwfile, ADMIN_PW).unwrap();
        std::fs::create_dir(&sock).unwrap();
        if as_user.is_some() {
            for p in [&pwfile, &sock] {
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(p)
                    .status()
                    .unwrap();
            }
        }
        let port = free_port_below_ephemeral();
        let pg = Pg {
            _dir: dir,
            data,
            sock,
            bin,
            port,
            as_user,
        };
        let out = pg
            .server_cmd("initdb")
            .arg("-D")
            .arg(&pg.data)
            .args(["-U", "craik_admin", "-A", "scram-sha-256", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start_server();
        pg
    }

    fn server_cmd(&self, prog: &str) -> Command {
        let path = self.bin.join(prog);
        match &self.as_user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    pub fn start_server(&self) {
        let out = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                self.port,
                self.sock.display()
            ))
            .arg("-l")
            .arg(self.data.join("log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Kills the server (as a crash would).
    pub fn kill(&self) {
        let _ = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    pub fn url(&self, user: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs SQL as `user` (password `pw`); the output and whether it
    /// succeeded.
    pub fn sql_as(&self, user: &str, pw: &str, sql: &str) -> (bool, String) {
        let out = Command::new("psql")
            .arg(self.url(user))
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .env("PGPASSWORD", pw)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    pub fn admin(&self, sql: &str) -> String {
        let (ok, out) = self.sql_as("craik_admin", ADMIN_PW, sql);
        assert!(ok, "{sql}: {out}");
        out.trim().to_string()
    }

    /// A login in the craik_writer role (or craik_reader).
    pub fn login(&self, user: &str, role: &str) -> String {
        let pw = format!("{user}-pw-canary");
        self.admin(&format!(
            "CREATE ROLE {user} LOGIN PASSWORD '{pw}'; GRANT {role} TO {user};"
        ));
        pw
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free port below the kernel's ephemeral range (32768 and up): the
/// server holds it for the whole test, and a port from that range could be
/// one another test's server (the test IdP) is about to listen on again.
fn free_port_below_ephemeral() -> u16 {
    use rand::Rng as _;
    let mut rng = rand::thread_rng();
    for _ in 0..200 {
        let port = rng.gen_range(20_000..30_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-29999 for the test PostgreSQL")
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A home with a profile, `n` authorizations (two receipts each at least).
fn home_with_receipts(n: usize) -> Env {
    let env = Env::new();
    env.run_stdin(
        &["auth", "add", "openai:t", "--kind=keyring-ref", "--stdin"],
        Some("sk-team-test-key"),
    )
    .ok();
    for _ in 0..n {
        env.run(&["auth", "check", "openai:t"]).ok();
    }
    env
}

fn local_tail(env: &Env) -> i64 {
    let r = env.run(&["receipts", "list", "--json", "--limit", "1"]);
    r.ok();
    r.json()["receipts"][0]["seq"].as_i64().unwrap()
}

/// `craik team init` as the administrator.
fn init(pg: &Pg) {
    Env::new()
        .run_stdin(
            &[
                "team",
                "init",
                "--url",
                &pg.url("craik_admin"),
                "--password-stdin",
            ],
            Some(ADMIN_PW),
        )
        .ok();
}

fn status(env: &Env) -> (i32, Value) {
    let r = env.run(&["team", "status", "--json"]);
    (r.code, r.json())
}

fn join(env: &Env, pg: &Pg, user: &str, pw: &str) -> Run {
    env.run_stdin(
        &[
            "team",
            "join",
            "--url",
            &pg.url(user),
            "--password-stdin",
            "--json",
        ],
        Some(pw),
    )
}

#[test]
fn homes_ship_their_own_chains_and_nobody_rewrites_them() {
    let pg = Pg::start();
    // A login without DDL rights cannot init; the administrator can.
    let outsider = Env::new();
    let r = outsider.run_stdin(
        &[
            "team",
            "init",
            "--url",
            &pg.url("craik_admin"),
            "--password-stdin",
        ],
        Some(ADMIN_PW),
    );
    r.ok();
    // Again: idempotent.
    outsider
        .run_stdin(
            &[
                "team",
                "init",
                "--url",
                &pg.url("craik_admin"),
                "--password-stdin",
                "--json",
            ],
            Some(ADMIN_PW),
        )
        .ok();
    let alice_pw = pg.login("alice", "craik_writer");
    let bob_pw = pg.login("bob", "craik_writer");
    let auditor_pw = pg.login("auditor", "craik_reader");

    // Two homes with receipts from before they joined: join ships them.
    let a = home_with_receipts(3);
    let b = home_with_receipts(2);
    let ja = join(&a, &pg, "alice", &alice_pw);
    ja.ok();
    let home_a = ja.json()["home_id"].as_str().unwrap().to_string();
    assert_eq!(ja.json()["head"].as_i64(), Some(local_tail(&a)));
    join(&b, &pg, "bob", &bob_pw).ok();
    // New receipts are shipped after each command.
    a.run(&["auth", "check", "openai:t"]).ok();
    let (code, s) = status(&a);
    assert_eq!(code, 0, "{s}");
    assert_eq!(s["backlog"], 0, "{s}");
    assert_eq!(s["shipped_seq"].as_i64(), Some(local_tail(&a)));
    // The password is in neither home's files nor any output.
    for (f, bytes) in files_under(&a.home) {
        assert!(
            !contains(&bytes, &alice_pw),
            "{} holds the password",
            f.display()
        );
    }
    let cfg = std::fs::read_to_string(a.home.join("team.json")).unwrap();
    assert!(!cfg.contains(&alice_pw));

    // Through craik's role: no UPDATE, no DELETE, nothing in another's
    // chain, nothing out of order in one's own.
    let (ok, out) = pg.sql_as("alice", &alice_pw, "UPDATE craik_receipts SET reason = 'x'");
    assert!(!ok && out.contains("permission denied"), "{out}");
    let (ok, out) = pg.sql_as("alice", &alice_pw, "DELETE FROM craik_receipts");
    assert!(!ok && out.contains("permission denied"), "{out}");
    let (ok, out) = pg.sql_as("alice", &alice_pw, "UPDATE craik_chain_heads SET seq = 0");
    assert!(!ok && out.contains("permission denied"), "{out}");
    let bob_home = pg.admin(&format!(
        "SELECT home_id FROM craik_homes WHERE home_id <> '{home_a}'"
    ));
    let forge = |home: &str, seq: i64| {
        format!(
            "INSERT INTO craik_receipts (home_id, seq, id, created_at, kind, status, details, prev_hash, hash) \
             SELECT '{home}', {seq}, 'x', 'now', 'login', 'ok', '{{}}', hash, repeat('1', 64) \
             FROM craik_chain_heads WHERE home_id = '{home}'"
        )
    };
    let bob_head: i64 = pg
        .admin(&format!(
            "SELECT seq FROM craik_chain_heads WHERE home_id = '{bob_home}'"
        ))
        .parse()
        .unwrap();
    let (ok, out) = pg.sql_as("alice", &alice_pw, &forge(&bob_home, bob_head + 1));
    assert!(!ok && out.contains("row-level security"), "{out}");
    let a_head = local_tail(&a);
    let (ok, out) = pg.sql_as("alice", &alice_pw, &forge(&home_a, a_head + 2));
    assert!(!ok && out.contains("does not follow"), "{out}");
    // A temporary table named like the chain heads does not fool the
    // trigger (it runs with the session's temporary schema last).
    let (ok, out) = pg.sql_as(
        "alice",
        &alice_pw,
        &format!(
            "CREATE TEMP TABLE craik_chain_heads (home_id text, seq bigint, hash text); \
             INSERT INTO craik_chain_heads VALUES ('{home_a}', 1000, 'x'); \
             INSERT INTO craik_receipts (home_id, seq, id, created_at, kind, status, details, prev_hash, hash) \
             VALUES ('{home_a}', 1001, 'x', 'now', 'login', 'ok', '{{}}', 'x', repeat('1', 64))"
        ),
    );
    assert!(!ok && out.contains("does not follow"), "{out}");
    // Each join is a receipt in the home's own chain.
    assert_eq!(receipts(&a, "team_joined").len(), 1);
    // The reader sees every chain and writes nothing.
    let (ok, out) = pg.sql_as("auditor", &auditor_pw, &forge(&home_a, a_head + 1));
    assert!(!ok && out.contains("permission denied"), "{out}");

    // An auditor joins to read: one place for the whole team, with the
    // same filters as a home's log, each receipt naming its home.
    let auditor = Env::new();
    auditor
        .run_stdin(
            &[
                "team",
                "join",
                "--reader",
                "--url",
                &pg.url("auditor"),
                "--password-stdin",
            ],
            Some(&auditor_pw),
        )
        .ok();
    let l = auditor.run(&[
        "receipts",
        "list",
        "--team",
        "--json",
        "--kind",
        "authorization",
        "--limit",
        "1000",
    ]);
    l.ok();
    let rows = l.json()["receipts"].as_array().unwrap().clone();
    let homes: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r["home_id"].as_str().unwrap())
        .collect();
    assert_eq!(homes.len(), 2, "{rows:?}");
    // 3 + 1 checks in a, 2 in b.
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(rows.iter().all(|r| r["kind"] == "authorization"));
    let l = auditor.run(&[
        "receipts",
        "list",
        "--team",
        "--json",
        "--profile",
        "openai:*",
        "--limit",
        "2",
    ]);
    l.ok();
    assert_eq!(l.json()["receipts"].as_array().unwrap().len(), 2);
    let e = auditor.run(&["receipts", "export", "--team", "--format", "csv"]);
    e.ok();
    assert!(e.stdout.starts_with("home_id,seq,"), "{}", e.stdout);
    let all_rows: i64 = pg
        .admin("SELECT count(*) FROM craik_receipts")
        .parse()
        .unwrap();
    assert_eq!(e.stdout.lines().count() as i64, all_rows + 1);
    // stats --team counts every chain, and each home.
    let st = auditor.run(&["receipts", "stats", "--team", "--json"]);
    st.ok();
    let st = st.json();
    assert_eq!(st["total"].as_i64(), Some(all_rows), "{st}");
    assert_eq!(st["by_kind"]["authorization"], 6, "{st}");
    assert_eq!(st["by_home"].as_object().unwrap().len(), 2, "{st}");
    let st = auditor.run(&["receipts", "stats", "--team"]);
    assert!(st.stdout.contains("by home:"), "{}", st.stdout);
    auditor.run(&["team", "status"]).ok();
    // A reader ships nothing and writes nothing to the store.
    let (ok, out) = pg.sql_as(
        "auditor",
        &auditor_pw,
        "INSERT INTO craik_homes (home_id) VALUES ('0123456789abcdef0123456789abcdef')",
    );
    assert!(!ok && out.contains("permission denied"), "{out}");

    // verify --team from any member: both chains whole.
    let v = a.run(&["receipts", "verify", "--team", "--json"]);
    v.ok();
    let chains = v.json()["chains"].as_array().unwrap().clone();
    assert_eq!(chains.len(), 2, "{chains:?}");
    assert!(chains.iter().all(|c| c["damage"].is_null()), "{chains:?}");

    // A team checkpoint kept elsewhere: a superuser who cuts bob's chain
    // back (and moves its head, so the chain alone still looks whole)
    // is caught by it.
    let cp = a.dir.path().join("team-cp.json");
    let r = a.run(&[
        "receipts",
        "checkpoint",
        "--team",
        "--out",
        cp.to_str().unwrap(),
    ]);
    r.ok();
    pg.admin(&format!(
        "DELETE FROM craik_receipts WHERE home_id = '{bob_home}' AND seq = {bob_head}; \
         UPDATE craik_chain_heads SET seq = {prev}, hash = (SELECT hash FROM craik_receipts WHERE home_id = '{bob_home}' AND seq = {prev}) WHERE home_id = '{bob_home}'",
        prev = bob_head - 1
    ));
    a.run(&["receipts", "verify", "--team"]).ok();
    let v = a.run(&[
        "receipts",
        "verify",
        "--team",
        "--checkpoint",
        cp.to_str().unwrap(),
        "--json",
    ]);
    v.code(1);
    assert!(
        v.stdout
            .contains("a team checkpoint signed this chain up to seq"),
        "{}",
        v.stdout
    );
    // Who shipped a receipt is the server's word, not the writer's.
    let by = pg.admin(&format!(
        "SELECT DISTINCT shipped_by FROM craik_receipts WHERE home_id = '{home_a}'"
    ));
    assert_eq!(by, "alice");

    // A superuser changes one of bob's receipts: verify --team names it.
    pg.admin(&format!(
        "UPDATE craik_receipts SET reason = 'edited' WHERE home_id = '{bob_home}' AND seq = 2"
    ));
    let v = a.run(&["receipts", "verify", "--team"]);
    v.code(1);
    assert!(
        v.stdout.contains(&bob_home) || v.stderr.contains(&bob_home),
        "{v:?}"
    );
    assert!(format!("{v:?}").contains("modified"), "{v:?}");

    // migrate-local again: nothing new, the chain verified.
    let m = a.run(&["team", "migrate-local", "--json"]);
    m.ok();
    assert_eq!(m.json()["shipped"], 0);
    assert_eq!(m.json()["verified"], true);
}

/// A home whose oldest receipts were archived and pruned cannot give the
/// team store a chain from receipt 1: `team join` refuses it (exit 1),
/// registers nothing and writes no team.json, instead of joining a chain
/// it could never ship (its backlog would then stop every call).
#[test]
fn a_pruned_home_is_refused_at_join() {
    let pg = Pg::start();
    init(&pg);
    let pw = pg.login("dora", "craik_writer");
    let env = home_with_receipts(4);
    let archive = env.dir.path().join("archive.db");
    let archive = archive.to_str().unwrap();
    env.run(&["receipts", "archive", "--through", "3", "--out", archive])
        .ok();
    env.run(&["receipts", "prune", "--archive", archive]).ok();
    let r = join(&env, &pg, "dora", &pw);
    r.code(1);
    assert!(
        r.stderr
            .contains("receipts 1 to 3 were archived and pruned"),
        "{r:?}"
    );
    assert!(r.stderr.contains("hint: join from a home"), "{r:?}");
    assert!(!env.home.join("team.json").exists());
    assert_eq!(pg.admin("SELECT count(*) FROM craik_homes"), "0");
    // A home that was never pruned joins as before.
    join(&home_with_receipts(1), &pg, "dora", &pw).ok();
    assert_eq!(pg.admin("SELECT count(*) FROM craik_homes"), "1");
}

/// A member prunes what the store already holds while the server is
/// down, through the store's head exactly: when the server is back, its
/// chain goes on from there (the store's head is checked against the
/// archive record's hash, the receipt itself being gone from the log).
#[test]
fn a_member_pruned_up_to_the_stores_head_ships_on() {
    let pg = Pg::start();
    init(&pg);
    let pw = pg.login("erin", "craik_writer");
    let env = home_with_receipts(3);
    join(&env, &pg, "erin", &pw).ok();
    env.run(&["auth", "check", "openai:t"]).ok();
    let (_, s) = status(&env);
    assert_eq!(s["backlog"], 0, "{s}");
    let head = local_tail(&env);
    pg.kill();
    env.run(&["auth", "check", "openai:t"]).ok();
    let archive = env.dir.path().join("archive.db");
    let archive = archive.to_str().unwrap();
    env.run(&[
        "receipts",
        "archive",
        "--through",
        &head.to_string(),
        "--out",
        archive,
    ])
    .ok();
    env.run(&["receipts", "prune", "--archive", archive]).ok();
    pg.start_server();
    env.run(&["auth", "check", "openai:t"]).ok();
    let (code, s) = status(&env);
    assert_eq!(code, 0, "{s}");
    assert_eq!(s["backlog"], 0, "{s}");
    let rows: i64 = pg
        .admin("SELECT count(*) FROM craik_receipts")
        .parse()
        .unwrap();
    assert_eq!(rows, local_tail(&env));
    env.run(&["receipts", "verify", "--team"]).ok();
}

#[test]
fn a_server_down_and_back_loses_and_duplicates_nothing() {
    let pg = Pg::start();
    init(&pg);
    let pw = pg.login("carol", "craik_writer");
    let mut env = home_with_receipts(1);
    join(&env, &pg, "carol", &pw).ok();

    // The server is killed: calls go on (durable in the home's own log),
    // the backlog grows, status says so (exit 1).
    pg.kill();
    for _ in 0..4 {
        env.run(&["auth", "check", "openai:t"]).ok();
    }
    let (code, s) = status(&env);
    assert_eq!(code, 1, "{s}");
    assert_eq!(s["reachable"], false);
    assert_eq!(s["backlog"].as_i64(), Some(4), "{s}");
    assert!(
        s["last_error"].as_str().unwrap().contains("unreachable"),
        "{s}"
    );
    // At the backlog limit new calls are refused: exit 5.
    env.set("CRAIK_TEAM_MAX_BACKLOG", "4");
    let r = env.run(&["auth", "check", "openai:t"]);
    r.code(5);
    assert!(r.stderr.contains("not in the team store yet"), "{r:?}");
    assert!(r.stderr.contains("hint: see craik team status"), "{r:?}");
    // An edited team-state.json (claiming all was shipped) counts as
    // nothing shipped: still refused.
    let state = env.home.join("team-state.json");
    let mut st: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    st["shipped_seq"] = 1_000_000.into();
    std::fs::write(&state, st.to_string()).unwrap();
    env.run(&["auth", "check", "openai:t"]).code(5);
    env.unset("CRAIK_TEAM_MAX_BACKLOG");

    // Back: the next command ships everything, once.
    pg.start_server();
    env.run(&["auth", "check", "openai:t"]).ok();
    let (code, s) = status(&env);
    assert_eq!(code, 0, "{s}");
    assert_eq!(s["backlog"], 0, "{s}");
    let tail = local_tail(&env);
    let rows: i64 = pg
        .admin("SELECT count(*) FROM craik_receipts")
        .parse()
        .unwrap();
    assert_eq!(rows, tail);
    env.run(&["receipts", "verify", "--team"]).ok();

    // An agent that raises the limit (or points shipping elsewhere) by
    // editing team.json stops every authorization instead.
    let path = env.home.join("team.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg["max_backlog"] = 1_000_000_000.into();
    std::fs::write(&path, cfg.to_string()).unwrap();
    let r = env.run(&["auth", "check", "openai:t"]);
    r.code(1);
    assert!(
        r.stderr
            .contains("team.json was written or edited outside craik"),
        "{r:?}"
    );
}

#[test]
fn concurrent_processes_of_three_homes_keep_every_chain_contiguous() {
    let pg = Pg::start();
    init(&pg);
    let homes: Vec<Env> = ["dana", "erin", "finn"]
        .iter()
        .map(|u| {
            let pw = pg.login(u, "craik_writer");
            let env = home_with_receipts(0);
            join(&env, &pg, u, &pw).ok();
            env
        })
        .collect();
    // 8 processes over 3 homes, each writing and shipping.
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut c = homes[i % 3].command(&["auth", "check", "openai:t"]);
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for env in &homes {
        env.run(&["team", "status"]).ok();
    }
    let v = homes[0].run(&["receipts", "verify", "--team", "--json"]);
    v.ok();
    let chains = v.json()["chains"].as_array().unwrap().clone();
    assert_eq!(chains.len(), 3);
    for c in &chains {
        assert!(c["damage"].is_null(), "{c}");
    }
    let total: i64 = homes.iter().map(local_tail).sum();
    let rows: i64 = pg
        .admin("SELECT count(*) FROM craik_receipts")
        .parse()
        .unwrap();
    assert_eq!(rows, total);
}

#[test]
fn a_running_proxy_ships_its_receipts_while_it_runs() {
    use crate::upstream::{Behavior, Upstream};
    let pg = Pg::start();
    init(&pg);
    let pw = pg.login("gus", "craik_writer");
    let up = Upstream::start(Behavior::Normal);
    let env = Env::new();
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
        Some("sk-team-proxy"),
    )
    .ok();
    join(&env, &pg, "gus", &pw).ok();
    let before: i64 = pg
        .admin("SELECT count(*) FROM craik_receipts")
        .parse()
        .unwrap();
    let proxy = crate::broker::Proxy::start(&env, &["--profile", "openai:p"]);
    let client = reqwest::blocking::Client::new();
    for _ in 0..5 {
        let r = client
            .get(format!("{}/models", proxy.url))
            .header("authorization", format!("Bearer {}", proxy.token))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // The proxy's authorization and each call's two receipts: in the
    // store within a few seconds, while the proxy still runs.
    let want = before + 1 + 10;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut rows = before;
    while std::time::Instant::now() < deadline {
        rows = pg
            .admin("SELECT count(*) FROM craik_receipts")
            .parse()
            .unwrap();
        if rows >= want {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(rows >= want, "{rows} receipts in the store, want {want}");
    proxy.stop();
}

/// The administrator names the person a login belongs to, and the groups
/// other machines count for them.
fn member_add(pg: &Pg, login: &str, issuer: &str, subject: &str, groups: &[&str]) {
    let url = pg.url("craik_admin");
    let mut args = vec![
        "team",
        "member",
        "add",
        login,
        "--subject",
        subject,
        "--issuer",
        issuer,
        "--url",
        &url,
        "--password-stdin",
    ];
    for g in groups {
        args.extend(["--group", g]);
    }
    Env::new().run_stdin(&args, Some(ADMIN_PW)).ok();
}

/// An envelope naming `pg` as the team store (any user), with `extra`
/// fields (`,"k":v...`).
fn pin_envelope(pg: &Pg, extra: &str) -> String {
    let store = pg.url("x").replacen("x@", "", 1);
    format!(r#"{{"version":1,"team_store":"{store}"{extra}}}"#)
}

/// A home on the team, logged in at `idp` as `person`, shipping as the
/// database login `login`.
fn team_home(idp: &crate::idp::Idp, pg: &Pg, login: &str, pw: &str, person: &str) -> Env {
    let mut env = Env::new();
    idp.configure(&mut env);
    crate::idp::login_as(&env, idp, person);
    env.run_stdin(
        &[
            "team",
            "join",
            "--url",
            &pg.url(login),
            "--password-stdin",
            "--label",
            &format!("{login}-laptop"),
        ],
        Some(pw),
    )
    .ok();
    env
}

#[test]
fn an_approver_on_another_machine_answers_a_request() {
    let idp = crate::idp::Idp::start(&[]);
    let pg = Pg::start();
    init(&pg);
    let reg = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies/regulated-team.json")
        .display()
        .to_string();
    // The team's envelope names its store: only under it do approvals
    // from other machines count.
    let dir = tempfile::tempdir().unwrap();
    let pin = dir.path().join("team-store.json");
    std::fs::write(&pin, pin_envelope(&pg, "")).unwrap();
    let pin = pin.display().to_string();
    // alice asks, carol approves (the policy's approver group), and bob's
    // login is bob: it cannot speak for carol.
    let alice_pw = pg.login("alice", "craik_writer");
    let carol_pw = pg.login("carol", "craik_writer");
    let bob_pw = pg.login("bob", "craik_writer");
    let roster: [(&str, &[&str]); 3] = [
        ("alice", &["prod-deploy", "devs"]),
        ("carol", &["approvers", "devs"]),
        ("bob", &["devs"]),
    ];
    for (login, groups) in roster {
        member_add(&pg, login, &idp.issuer, login, groups);
    }
    let alice = team_home(&idp, &pg, "alice", &alice_pw, "alice");
    alice
        .run_stdin(
            &[
                "auth",
                "add",
                "anthropic:prod-eu",
                "--kind=keyring-ref",
                "--stdin",
            ],
            Some("sk-ant-team-approval"),
        )
        .ok();
    let members = alice.run(&["team", "members", "--json"]);
    members.ok();
    assert_eq!(members.json()["members"].as_array().unwrap().len(), 3);

    let check = |run: &str| {
        alice.run(&[
            "auth",
            "check",
            "anthropic:prod-eu",
            "--run",
            run,
            "--policy",
            &reg,
            "--policy",
            &pin,
        ])
    };
    check("r1").code(4);

    // carol's machine sees alice's request (it holds no such profile).
    let carol = team_home(&idp, &pg, "carol", &carol_pw, "carol");
    let pending = carol.run(&["auth", "approvals", "--team", "--pending", "--json"]);
    pending.ok();
    let list = pending.json()["approvals"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["requested_by"], "alice");
    assert_eq!(list[0]["home"], "alice-laptop");
    assert_eq!(list[0]["run"], "r1");
    let table = carol.run(&["auth", "approvals", "--team"]);
    table.ok();
    assert!(table.stdout.contains("alice-laptop"), "{}", table.stdout);

    // Someone logged in as carol on a machine whose login is bob: the
    // approval is written and shipped, but the server says bob shipped
    // it, so alice's gate does not honour it.
    let mallory = team_home(&idp, &pg, "bob", &bob_pw, "carol");
    let approve = |env: &Env| {
        env.run(&[
            "auth",
            "approve",
            "anthropic:prod-eu",
            "--run=r1",
            "--team",
            "--policy",
            &reg,
            "--policy",
            &pin,
            "--json",
        ])
    };
    approve(&mallory).ok();
    check("r1").code(4);
    let still = carol.run(&["auth", "approvals", "--team", "--pending", "--json"]);
    assert_eq!(still.json()["approvals"].as_array().unwrap().len(), 1);

    // alice waits; carol approves from her machine; alice's wait ends.
    let waiting = alice
        .command(&[
            "auth",
            "check",
            "anthropic:prod-eu",
            "--run",
            "r1",
            "--policy",
            &reg,
            "--policy",
            &pin,
            "--wait",
            "60s",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let a = approve(&carol);
    a.ok();
    assert_eq!(a.json()["home"], "alice-laptop");
    assert_eq!(a.json()["new"], true);
    let approved_at = std::time::Instant::now();
    let out = to_run(waiting.wait_with_output().unwrap());
    eprintln!(
        "the waiting request went through {:?} after the approval was shipped",
        approved_at.elapsed()
    );
    out.ok();
    let auth = receipts(&alice, "authorization");
    let last = auth.last().unwrap();
    assert_eq!(last["details"]["approval"], a.json()["receipt"]);
    let carol_home = pg.admin("SELECT home_id FROM craik_homes WHERE registered_by = 'carol'");
    assert_eq!(last["details"]["approval_home"], carol_home.as_str());
    // first_use: another run passes on it too.
    check("r2").ok();
    let done = carol.run(&["auth", "approvals", "--team", "--json"]);
    assert!(done.stdout.contains("\"approved\""), "{}", done.stdout);

    // A request alice's machine made is not alice's to approve from it.
    let r = approve(&alice);
    r.code(1);
    assert!(r.stderr.contains("no approval request"), "{r:?}");

    // carol stops being a member: her approvals stop counting.
    let r = Env::new().run_stdin(
        &[
            "team",
            "member",
            "remove",
            "carol",
            "--url",
            &pg.url("craik_admin"),
            "--password-stdin",
        ],
        Some(ADMIN_PW),
    );
    r.ok();
    check("r3").code(4);
    // Back, but the roster gives her no approvers group: her ID token's
    // claim of it does not count on another machine.
    member_add(&pg, "carol", &idp.issuer, "carol", &["devs"]);
    check("r3").code(4);
    member_add(&pg, "carol", &idp.issuer, "carol", &["approvers"]);
    check("r3").ok();
    let m = alice.run(&["team", "members", "--json"]).json();
    assert!(m.to_string().contains("approvers"), "{m}");
    // Only the administrator names members.
    let r = Env::new().run_stdin(
        &[
            "team",
            "member",
            "add",
            "bob",
            "--subject",
            "carol",
            "--issuer",
            &idp.issuer,
            "--url",
            &pg.url("bob"),
            "--password-stdin",
        ],
        Some(&bob_pw),
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("permission denied"), "{r:?}");
}

/// A team grant made without the team's envelope in force.
fn carol_unpinned_grant(idp: &crate::idp::Idp, pg: &Pg) -> Run {
    let pw = pg.login("carol2", "craik_writer");
    let env = team_home(idp, pg, "carol2", &pw, "carol");
    env.run(&["auth", "grant", "openai:t", "--to-subject", "bob", "--team"])
}

#[test]
fn an_admins_team_grants_apply_on_every_members_machine() {
    let idp = crate::idp::Idp::start(&[]);
    let pg = Pg::start();
    init(&pg);
    let bob_pw = pg.login("bob", "craik_writer");
    let carol_pw = pg.login("carol", "craik_writer");
    let erin_pw = pg.login("erin", "craik_writer");
    for login in ["bob", "carol", "erin"] {
        member_add(&pg, login, &idp.issuer, login, &[]);
    }
    let dir = tempfile::tempdir().unwrap();
    let admins = dir.path().join("admins.json");
    std::fs::write(&admins, pin_envelope(&pg, r#","admin_subjects":["carol"]"#)).unwrap();
    let admins = admins.display().to_string();

    // bob's machine holds the profile; carol (the policy's admin) does not.
    let bob = team_home(&idp, &pg, "bob", &bob_pw, "bob");
    bob.run_stdin(
        &["auth", "add", "openai:t", "--kind=keyring-ref", "--stdin"],
        Some("sk-team-grant-key"),
    )
    .ok();
    let check = || bob.run(&["auth", "check", "openai:t", "--policy", &admins]);
    check().ok();
    // A home in no team (or joined elsewhere, or whose team.json an agent
    // deleted) under the team's envelope: calls stop, exit 5.
    let outside = home_with_receipts(0);
    let r = outside.run(&["auth", "check", "openai:t", "--policy", &admins]);
    r.code(5);
    assert!(r.stderr.contains("names the team store"), "{r:?}");
    assert!(r.stderr.contains("hint: join it: craik team join"), "{r:?}");
    // Without the team's envelope, a team grant has nowhere to count.
    let r = carol_unpinned_grant(&idp, &pg);
    r.code(1);
    assert!(r.stderr.contains("team_store"), "{r:?}");
    let carol = team_home(&idp, &pg, "carol", &carol_pw, "carol");
    let grant = |env: &Env, verb: &str, flag: &str, who: &str| {
        env.run(&[
            "auth", verb, "openai:t", flag, who, "--team", "--policy", &admins, "--json",
        ])
    };
    let g = grant(&carol, "grant", "--to-subject", "alice");
    g.ok();
    assert_eq!(g.json()["grants"]["subjects"][0], "alice");
    assert_eq!(g.json()["team"], true);
    // Restricted to alice on bob's machine now.
    let r = check();
    r.code(3);
    assert!(r.stderr.contains("profile_grants"), "{r:?}");
    grant(&carol, "grant", "--to-subject", "bob").ok();
    check().ok();
    let auth = receipts(&bob, "authorization");
    assert_eq!(auth.last().unwrap()["operator_subject"], "bob");

    // bob is no admin: his team grant is refused where he makes it.
    let r = grant(&bob, "grant", "--to-subject", "erin");
    r.code(3);
    assert!(r.stderr.contains("admin"), "{r:?}");
    // Logged in as carol on a machine whose login is erin: the revocation
    // is written and shipped, but the server says erin shipped it.
    let mallory = team_home(&idp, &pg, "erin", &erin_pw, "carol");
    grant(&mallory, "revoke", "--subject", "bob").ok();
    check().ok();
    // A proxy bob runs: carol's revocation stops it within seconds (its
    // shipping thread reads the team's grants; the per-request check
    // sees the copy change).
    let up = crate::upstream::Upstream::start(crate::upstream::Behavior::Normal);
    bob.run_stdin(
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
        Some("sk-team-grant-proxy"),
    )
    .ok();
    let grant_p = |verb: &str, flag: &str| {
        carol
            .run(&[
                "auth", verb, "openai:p", flag, "bob", "--team", "--policy", &admins,
            ])
            .ok();
    };
    grant_p("grant", "--to-subject");
    let proxy = crate::broker::Proxy::start(&bob, &["--profile", "openai:p", "--policy", &admins]);
    let client = reqwest::blocking::Client::new();
    let call = || {
        client
            .get(format!("{}/models", proxy.url))
            .header("authorization", format!("Bearer {}", proxy.token))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(call(), 200);
    grant_p("revoke", "--subject");
    let revoked_at = std::time::Instant::now();
    let deadline = revoked_at + std::time::Duration::from_secs(20);
    while call() == 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked proxy session still answers"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    eprintln!(
        "the proxy refused {:?} after the revocation",
        revoked_at.elapsed()
    );
    assert_eq!(call(), 403);
    proxy.stop();

    // carol's revocation counts.
    grant(&carol, "revoke", "--subject", "bob").ok();
    check().code(3);

    // The store down: bob's machine goes by its sealed copy (at most five
    // minutes old), so the revocation still holds; an edited copy is no
    // copy: calls wait (exit 5).
    pg.kill();
    check().code(3);
    let copy = bob.home.join("team-grants.json");
    let mut c: Value = serde_json::from_slice(&std::fs::read(&copy).unwrap()).unwrap();
    c["grants"] = Value::Array(vec![]);
    std::fs::write(&copy, c.to_string()).unwrap();
    let r = check();
    r.code(5);
    assert!(r.stderr.contains("the team's grants are unknown"), "{r:?}");
}

#[test]
fn a_shared_audit_key_makes_every_home_hash_alike() {
    let pg = Pg::start();
    let key = "7f".repeat(32);
    let mut admin = Env::new();
    admin.set("TEAM_AUDIT_KEY", &key);
    admin
        .run_stdin(
            &[
                "team",
                "init",
                "--url",
                &pg.url("craik_admin"),
                "--password-stdin",
                "--audit-key",
                "env:TEAM_AUDIT_KEY",
            ],
            Some(ADMIN_PW),
        )
        .ok();
    let hash_of = |env: &Env| {
        let r = env.run_stdin(
            &[
                "receipts",
                "hash",
                "--operator-issuer",
                "https://idp.example",
            ],
            Some("alice"),
        );
        r.ok();
        r.stdout.trim().to_string()
    };
    let mut homes = Vec::new();
    for user in ["gina", "hank"] {
        let pw = pg.login(user, "craik_writer");
        let mut env = home_with_receipts(1);
        let own = hash_of(&env);
        // Without the team's key, or with another, the home does not join.
        let r = join(&env, &pg, user, &pw);
        r.code(1);
        assert!(r.stderr.contains("shared audit key"), "{r:?}");
        assert!(r.stderr.contains("--audit-key"), "{r:?}");
        env.set("TEAM_AUDIT_KEY", &"00".repeat(32));
        let with_key = |env: &Env| {
            env.run_stdin(
                &[
                    "team",
                    "join",
                    "--url",
                    &pg.url(user),
                    "--password-stdin",
                    "--audit-key",
                    "env:TEAM_AUDIT_KEY",
                ],
                Some(&pw),
            )
        };
        let r = with_key(&env);
        r.code(1);
        assert!(r.stderr.contains("not the team's audit key"), "{r:?}");
        assert!(!r.stderr.contains(&key) && !r.stdout.contains(&key));
        env.set("TEAM_AUDIT_KEY", &key);
        with_key(&env).ok();
        let shared = hash_of(&env);
        assert_ne!(own, shared);
        // The key is in the secret store, not in team.json or anywhere
        // else in plain text.
        env.unset("TEAM_AUDIT_KEY");
        assert_eq!(hash_of(&env), shared);
        for (path, bytes) in files_under(&env.home) {
            assert!(!contains(&bytes, &key), "{path:?}");
        }
        homes.push((env, shared));
    }
    assert_eq!(homes[0].1, homes[1].1);
    // And their receipts ship as before.
    homes[0].0.run(&["receipts", "verify", "--team"]).ok();
}
