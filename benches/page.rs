//! The audit page (`craik receipts serve`) over a 1,000,000-receipt log:
//! how long each view takes to answer, beside the same run's reference,
//! the bare SQLite query for the timeline's first page.
//!
//! Run: `cargo bench --bench page` (builds the log and its query index
//! under target/bench-data/page-home the first time; later runs reuse it).

use std::path::Path;
use std::time::{Duration, Instant};

use craik::audit::{AuditKey, AuditLog, Filter, NewReceipt, Operator, ReceiptKind, Status};

const N: usize = 1_000_000;

/// The log's mix: proxied calls (started, finished with a model and
/// usage) of 50 operators on 20 profiles, a denial every 1,000 receipts
/// under one of 4 conditions, a new run every two receipts.
fn sample(key: &AuditKey, i: usize) -> NewReceipt {
    let subject = format!("user{}", i % 50);
    let profile = format!("openai:p{}", i % 20);
    let (kind, status) = if i % 1000 == 999 {
        (ReceiptKind::Denial, Status::Denied)
    } else if i.is_multiple_of(2) {
        (ReceiptKind::CallStarted, Status::Ok)
    } else {
        (ReceiptKind::CallFinished, Status::Ok)
    };
    let mut r = NewReceipt::new(kind, status)
        .profile(&profile, "keyring-ref", "openai")
        .identity(Some(
            key.credential_material("openai", &format!("sk-{}", i % 20)),
        ))
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
        .detail("path", "/v1/responses")
        .detail("model", "gpt-test");
    if kind == ReceiptKind::CallFinished {
        r = r.detail("status", 200).detail(
            "usage",
            serde_json::json!({"input_tokens": 11, "output_tokens": 22}),
        );
    }
    if kind == ReceiptKind::Denial {
        let cond = [
            "denied_credential_profiles",
            "allowed_operator_groups",
            "approval",
            "grants",
        ][(i / 1000) % 4];
        r = r.reason(format!("denied by {cond}"));
        r.policy_condition = Some(cond.to_string());
    }
    r
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let home_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/page-home");
    let home = craik::home::Home::open(&home_dir).unwrap();
    let db = home_dir.join("audit.db");
    let key = AuditKey::from_bytes([7u8; 32]);
    {
        let mut log = AuditLog::open_path(&db).unwrap();
        let have = log.tail().unwrap().map(|t| t.0).unwrap_or(0) as usize;
        if have < N {
            let t = Instant::now();
            let mut i = have;
            while i < N {
                let batch: Vec<_> = (i..(i + 10_000).min(N)).map(|j| sample(&key, j)).collect();
                i += batch.len();
                log.append_batch(batch).unwrap();
            }
            println!("(built the log: {:.1} s)", t.elapsed().as_secs_f64());
        }
        let t = Instant::now();
        let n = log.refresh_index().unwrap();
        if n > 0 {
            println!(
                "(brought the query index up by {n} receipts: {:.1} s)",
                t.elapsed().as_secs_f64()
            );
        }
    }

    // Reference: the bare query for the timeline's first page, and the
    // same through craik's query code (what the page runs).
    let raw =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut bare = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let mut st = raw
            .prepare_cached("SELECT * FROM receipt_rows ORDER BY seq DESC LIMIT 100")
            .unwrap();
        let n = st.query_map([], |_| Ok(())).unwrap().count();
        assert_eq!(n, 100);
        bare.push(t.elapsed());
    }
    let log = AuditLog::open_path(&db).unwrap();
    let mut listed = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let rows = log
            .list(&Filter {
                limit: Some(100),
                ..Filter::default()
            })
            .unwrap();
        assert_eq!(rows.len(), 100);
        listed.push(t.elapsed());
    }

    // The page, in this process, answering over loopback.
    let page = craik::page::Page::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = page.url();
    let ctx = craik::context::Context::open(home);
    std::thread::spawn(move || page.serve(ctx));
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let origin = url.split("/?").next().unwrap().to_string();
    let t = Instant::now();
    let first = loop {
        match http.get(&url).send() {
            Ok(r) => break r,
            Err(_) if t.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("{e}"),
        }
    };
    let cookie = first.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let get = |path: &str| {
        let t = Instant::now();
        let r = http
            .get(format!("{origin}{path}"))
            .header("cookie", &cookie)
            .send()
            .unwrap();
        let status = r.status();
        let body = r.bytes().unwrap();
        assert!(status.is_success(), "{path}: {status}");
        (t.elapsed(), body.len())
    };
    // The first render: the first page the browser asks for after start.
    let (cold, _) = get("/");

    println!("| measurement | time | target |");
    println!("| --- | ---: | --- |");
    println!(
        "| reference: bare SQLite, the newest 100 rows of audit.db (median of 21) | {} | - |",
        ms(median(bare))
    );
    println!(
        "| reference: craik's query code, the newest 100 receipts (`receipts list --limit 100`'s query, median of 21) | {} | - |",
        ms(median(listed))
    );
    println!(
        "| the timeline's first render, first request after start | {} | < 200 ms: {} |",
        ms(cold),
        if cold < Duration::from_millis(200) {
            "**met**"
        } else {
            "**NOT met**"
        }
    );
    for (name, path, runs) in [
        ("the timeline, newest 100", "/", 21),
        (
            "the timeline, 100 from the middle (`before=500000`)",
            "/?before=500000",
            21,
        ),
        (
            "the timeline filtered by profile pattern `openai:p1*`",
            "/?profile=openai%3Ap1*",
            21,
        ),
        (
            "the timeline filtered by a pattern no profile matches, `nobody:*`",
            "/?profile=nobody%3A*",
            21,
        ),
        (
            "the timeline filtered by operator email",
            "/?operator=user7%40example.com",
            21,
        ),
        ("the timeline of denials", "/?kind=denial", 21),
        ("one receipt's page, with its links", "/receipt/500001", 21),
        ("denials by condition (1,000 denials)", "/denials", 5),
        (
            "use over time, the newest 200,000 finished calls (capped)",
            "/usage",
            3,
        ),
        (
            "export of the whole log as JSONL (streamed)",
            "/export.jsonl",
            1,
        ),
        ("the chain: verify 1,000,000 receipts", "/chain", 3),
    ] {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..runs {
            let (d, n) = get(path);
            times.push(d);
            size = n;
        }
        println!(
            "| {name} (median of {runs}; {} KiB) | {} | - |",
            size / 1024,
            ms(median(times))
        );
    }
}
