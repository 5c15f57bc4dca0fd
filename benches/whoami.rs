//! `craik whoami --json` with a valid session (target: under 10 ms per
//! call). Reference in the same run: `craik --version`.
//!
//! Run: `cargo bench --bench whoami`

use std::process::Command;
use std::time::{Duration, Instant};

fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[t.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let home = craik::home::Home::open(dir.path().join("home")).unwrap();
    let session = serde_json::json!({
        "version": 1, "subject": "alice", "email": "alice@example.com", "name": "Alice",
        "groups": ["devs"], "issuer": "https://idp.example.com", "client_id": "craik-cli",
        "groups_claim": "groups", "scopes": ["openid"], "jti": "j",
        "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
        "logged_in_at": chrono::Utc::now().to_rfc3339(), "refreshed_at": null,
        "refresh_token_handle": null
    });
    home.write_atomic("operator-session.json", session.to_string().as_bytes())
        .unwrap();
    let bin = env!("CARGO_BIN_EXE_craik");
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .env("CRAIK_HOME", home.root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["whoami", "--json"]);
    let base = median(50, || run(&["--version"]));
    let who = median(100, || run(&["whoami", "--json"]));
    println!("| command | median |");
    println!("| --- | --- |");
    println!(
        "| `craik --version` (process start, reference) | {:.2} ms |",
        base.as_secs_f64() * 1e3
    );
    println!(
        "| `craik whoami --json`, valid session | {:.2} ms |",
        who.as_secs_f64() * 1e3
    );
    println!(
        "target: under 10 ms -> {}",
        if who < Duration::from_millis(10) {
            "met"
        } else {
            "NOT met"
        }
    );
}
