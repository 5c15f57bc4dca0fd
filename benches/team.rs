//! The team store: receipts per second shipped into PostgreSQL by 8 homes
//! at once (durable: each batch a committed transaction, `fsync` on),
//! beside, in the same run, the same 8 homes' receipts made durable in
//! their own SQLite logs, and a raw batched INSERT of the same rows into a
//! plain table (no trigger, no row-level security) over 8 connections.
//!
//! Run: `cargo bench --bench team`. Needs PostgreSQL's server programs
//! (`apt-get install postgresql`); as root it runs them as `postgres`.
//! Knobs: `TEAM_BENCH_RECEIPTS` per home (default 20,000).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use craik::audit::{AuditKey, AuditLog, NewReceipt, Operator, ReceiptKind, Status};

const HOMES: usize = 8;
const ADMIN_PW: &str = "bench-admin";

fn pg_bin() -> PathBuf {
    let out = Command::new("sh")
        .arg("-c")
        .arg("command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1")
        .output()
        .expect("sh");
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !p.is_empty(),
        "PostgreSQL's server programs are missing: apt-get install postgresql"
    );
    PathBuf::from(p.lines().next().unwrap())
        .parent()
        .unwrap()
        .to_path_buf()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn server(bin: &Path, prog: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(prog));
        c
    } else {
        Command::new(bin.join(prog))
    }
}

fn psql(port: u16, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(format!("postgres://craik_admin@127.0.0.1:{port}/postgres"))
        .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .env("PGPASSWORD", ADMIN_PW)
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn receipt(key: &AuditKey, i: usize, home: usize) -> NewReceipt {
    let kind = if i.is_multiple_of(2) {
        ReceiptKind::CallStarted
    } else {
        ReceiptKind::CallFinished
    };
    let subject = format!("user{home}");
    NewReceipt::new(kind, Status::Ok)
        .profile("openai:p", "keyring-ref", "openai")
        .identity(Some(key.credential_material("openai", "sk-bench")))
        .run(&format!("run_{}", i / 2))
        .operator(Some(Operator {
            identity_hash: key.operator("https://idp.example.com", &subject),
            email: Some(format!("{subject}@example.com")),
            subject,
            issuer: "https://idp.example.com".into(),
            groups: vec!["devs".into()],
            workload: None,
        }))
        .detail("method", "POST")
        .detail("path", "/v1/chat/completions")
        .detail("status", 200)
        .detail("latency_ms", 123)
}

fn main() {
    let per_home: usize = std::env::var("TEAM_BENCH_RECEIPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let bin = pg_bin();
    let dir = tempfile::Builder::new()
        .prefix("craik-team-bench")
        .tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| "target".into()))
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pg = dir.path().join("pg");
    std::fs::create_dir(&pg).unwrap();
    std::fs::write(pg.join("pw"), ADMIN_PW).unwrap();
    if is_root() {
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&pg)
            .status()
            .unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let st = server(&bin, "initdb")
        .arg("-D")
        .arg(pg.join("data"))
        .args(["-U", "craik_admin", "-A", "scram-sha-256"])
        .arg(format!("--pwfile={}", pg.join("pw").display()))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let st = server(&bin, "pg_ctl")
        .arg("-D")
        .arg(pg.join("data"))
        .arg("-o")
        .arg(format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            pg.display()
        ))
        .arg("-l")
        .arg(pg.join("log"))
        .args(["-w", "start"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "pg_ctl: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let stop = || {
        let _ = server(&bin, "pg_ctl")
            .arg("-D")
            .arg(pg.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .output();
    };
    let url = |user: &str| format!("postgres://{user}@127.0.0.1:{port}/postgres");
    craik::team::init(&url("craik_admin"), Some(ADMIN_PW), None, None).unwrap();

    check_env();

    // 8 homes, each with its receipts in its own log (the SQLite figure:
    // 8 writers at once, batches of 1,000 appended durably).
    let homes: Vec<PathBuf> = (0..HOMES)
        .map(|i| dir.path().join(format!("home{i}")))
        .collect();
    let t = Instant::now();
    std::thread::scope(|s| {
        for (h, path) in homes.iter().enumerate() {
            s.spawn(move || {
                let key = AuditKey::from_bytes([h as u8; 32]);
                let mut log = AuditLog::open_path(&path.join("audit.db")).unwrap_or_else(|_| {
                    std::fs::create_dir_all(path).unwrap();
                    AuditLog::open_path(&path.join("audit.db")).unwrap()
                });
                for chunk in (0..per_home).collect::<Vec<_>>().chunks(1_000) {
                    log.append_batch(chunk.iter().map(|i| receipt(&key, *i, h)).collect())
                        .unwrap();
                }
            });
        }
    });
    let sqlite = t.elapsed();
    let total = (HOMES * per_home) as f64;

    // Each home joins with a login of its own, then ships all at once.
    let mut ctxs = Vec::new();
    for (i, path) in homes.iter().enumerate() {
        let user = format!("w{i}");
        psql(
            port,
            &format!("CREATE ROLE {user} LOGIN PASSWORD 'pw{i}'; GRANT craik_writer TO {user};"),
        );
        let home = craik::home::Home::open(path.clone()).unwrap();
        ctxs.push((
            url(&user),
            format!("pw{i}"),
            craik::context::Context::open(home),
        ));
    }
    // `team join` ships what the home holds: measured whole.
    let t = Instant::now();
    std::thread::scope(|s| {
        for (url, pw, ctx) in ctxs.iter_mut() {
            s.spawn(move || {
                craik::team::join(
                    ctx,
                    url,
                    craik::team::JoinOptions {
                        password: Some(pw.clone()),
                        label: "bench".into(),
                        ..Default::default()
                    },
                )
                .unwrap();
                let shipped = craik::team::ship(ctx).unwrap().unwrap();
                // Its receipts and the join's own.
                assert_eq!(shipped.head as usize, per_home + 1);
            });
        }
    });
    let shipped = t.elapsed();
    let rows: i64 = psql(port, "SELECT count(*) FROM craik_receipts")
        .parse()
        .unwrap();
    assert_eq!(rows as usize, HOMES * (per_home + 1));

    // Reference: the same rows, batched INSERTs of 1,000 into a plain
    // table over 8 connections.
    psql(
        port,
        "CREATE TABLE plain AS SELECT * FROM craik_receipts WITH NO DATA; GRANT INSERT ON plain TO PUBLIC",
    );
    let t = Instant::now();
    std::thread::scope(|s| {
        for i in 0..HOMES {
            s.spawn(move || {
                let mut c = postgres::Config::new();
                c.host("127.0.0.1")
                    .port(port)
                    .user("craik_admin")
                    .password(ADMIN_PW)
                    .dbname("postgres");
                let mut client = c.connect(postgres::NoTls).unwrap();
                for start in (1..=per_home as i64).step_by(1_000) {
                    let end = (start + 999).min(per_home as i64);
                    let home = format!("{:032x}", i);
                    client
                        .execute(
                            "INSERT INTO plain SELECT $1::text, s, 'id', 'now', 'call.started', null, null, 'ok', null, null, 'openai:p', 'keyring-ref', repeat('a', 77), 'openai', null, 'u', 'i', 'e', '[]', repeat('b', 77), '{\"method\":\"POST\",\"path\":\"/v1/chat/completions\",\"status\":200,\"latency_ms\":123}', repeat('0', 64), repeat('1', 64), now(), current_user FROM generate_series($2::bigint, $3::bigint) s",
                            &[&home, &start, &end],
                        )
                        .unwrap();
                }
            });
        }
    });
    let raw = t.elapsed();
    stop();

    let rate = |d: std::time::Duration| total / d.as_secs_f64();
    println!(
        "team store, {HOMES} homes x {per_home} receipts ({} in all)",
        HOMES * per_home
    );
    println!(
        "  SQLite: 8 homes' own logs, batches of 1,000, durable:      {:>9.0} receipts/s ({:.2} s)",
        rate(sqlite),
        sqlite.as_secs_f64()
    );
    println!(
        "  team store: 8 homes shipping at once (join + ship):        {:>9.0} receipts/s ({:.2} s)",
        rate(shipped),
        shipped.as_secs_f64()
    );
    println!(
        "  reference: raw batched INSERT of 1,000, 8 connections:     {:>9.0} receipts/s ({:.2} s)",
        rate(raw),
        raw.as_secs_f64()
    );
}

/// The library reads the file store's settings from the environment; the
/// bench does not set them itself (that needs `unsafe` in edition 2024).
fn check_env() {
    assert!(
        std::env::var("CRAIK_KEYRING_BACKEND").as_deref() == Ok("file")
            && std::env::var("CRAIK_KEYRING_PASSWORD").is_ok(),
        "run with CRAIK_KEYRING_BACKEND=file CRAIK_KEYRING_PASSWORD=bench cargo bench --bench team"
    );
}
