//! `craik auth status --json` with 1,000 profiles (target: under 20 ms per
//! call). Reference in the same run: `craik --version`, the cost of
//! starting the binary at all.
//!
//! Run: `cargo bench --bench auth_status`

use std::process::Command;
use std::time::{Duration, Instant};

use craik::home::Home;
use craik::profile::{Kind, Profile, ProfileStore};

fn time_runs(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    (t[t.len() / 2], t[t.len() * 95 / 100])
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::open(dir.path().join("home")).unwrap();
    ProfileStore::new(&home)
        .update(|file| {
            for i in 0..1000 {
                let mut p = Profile::new(format!("openai:p{i:04}").parse().unwrap(), Kind::ApiKey);
                p.metadata
                    .insert("env_var".into(), format!("BENCH_KEY_{i}"));
                file.upsert(p);
            }
            Ok(())
        })
        .unwrap();
    let bin = env!("CARGO_BIN_EXE_craik");
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .env("CRAIK_HOME", home.root())
            .env("CRAIK_KEYRING_BACKEND", "file")
            .env("BENCH_KEY_7", "x")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout.len()
    };
    assert!(run(&["auth", "status", "--json"]) > 100_000);
    let (base_p50, base_p95) = time_runs(50, || {
        run(&["--version"]);
    });
    let (p50, p95) = time_runs(100, || {
        run(&["auth", "status", "--json"]);
    });
    println!("| command | p50 | p95 |");
    println!("| --- | --- | --- |");
    println!(
        "| `craik --version` (process start, reference) | {:.2} ms | {:.2} ms |",
        ms(base_p50),
        ms(base_p95)
    );
    println!(
        "| `craik auth status --json`, 1,000 profiles | {:.2} ms | {:.2} ms |",
        ms(p50),
        ms(p95)
    );
    println!(
        "target: under 20 ms per call -> {}",
        if p50 < Duration::from_millis(20) {
            "met"
        } else {
            "NOT met"
        }
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
