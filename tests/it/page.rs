//! `craik receipts serve`: the audit page in a real browser (Debian's
//! chromium, driven by playwright-core from tests/page) over a home whose
//! receipts come from real flows: logins at the test IdP, an approval
//! asked, refused and given, calls through the proxy with usage, denials.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::{Env, canary, receipts, require_tool};
use crate::idp::{Idp, login_as};
use crate::upstream::{Behavior, Upstream};

fn page_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/page")
}

/// The serving craik, stopped when dropped.
pub struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `craik receipts serve` in `env`'s home.
pub fn serve(env: &Env) -> Served {
    let mut cmd = env.command(&["receipts", "serve", "--listen", "127.0.0.1:0"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("craik audit page: ")
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_string();
    Served { child, url }
}

/// Every view of the page, each receipt's page and the exports, fetched
/// with the cookie the printed token buys: (path, status, body).
pub fn fetch_all(served: &Served, receipts: i64) -> Vec<(String, u16, String)> {
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let first = http.get(&served.url).send().unwrap();
    assert_eq!(first.status(), 303);
    let cookie = first
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let origin = served.url.split("/?").next().unwrap();
    let mut paths: Vec<String> = [
        "/",
        "/denials",
        "/approvals",
        "/usage",
        "/chain",
        "/export.csv",
        "/export.jsonl",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    paths.extend((1..=receipts).map(|s| format!("/receipt/{s}")));
    paths
        .into_iter()
        .map(|p| {
            let r = http
                .get(format!("{origin}{p}"))
                .header("cookie", &cookie)
                .send()
                .unwrap();
            let status = r.status().as_u16();
            (p, status, r.text().unwrap())
        })
        .collect()
}

/// A home with a few hundred receipts of most kinds, from real flows.
fn fixture(idp: &Idp, up: &Upstream, key: &str) -> Env {
    let mut env = Env::new();
    idp.configure(&mut env);
    for id in ["anthropic:prod-eu", "anthropic:dev", "openai:personal-x"] {
        env.run_stdin(
            &[
                "auth",
                "add",
                id,
                "--kind=keyring-ref",
                "--stdin",
                "--base-url",
                &up.url(),
                "--allow-local-base-url",
            ],
            Some(key),
        )
        .ok();
    }
    let reg = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies/regulated-team.json")
        .display()
        .to_string();
    let check = |run: &str, profile: &str| {
        env.run(&["auth", "check", profile, "--run", run, "--policy", &reg])
    };
    // alice asks; bob may not approve; carol does. bob's own stays pending.
    login_as(&env, idp, "alice");
    check("run_two", "anthropic:prod-eu").code(4);
    login_as(&env, idp, "bob");
    check("run_bob", "anthropic:prod-eu").code(4);
    env.run(&[
        "auth",
        "approve",
        "anthropic:prod-eu",
        "--run=run_two",
        "--policy",
        &reg,
    ])
    .code(3);
    check("run_p", "openai:personal-x").code(3);
    login_as(&env, idp, "carol");
    env.run(&[
        "auth",
        "approve",
        "anthropic:prod-eu",
        "--run=run_two",
        "--policy",
        &reg,
    ])
    .ok();
    // Calls through the proxy, each with usage in its answer.
    login_as(&env, idp, "alice");
    let calls = |profile: &str, run: &str, n: usize| {
        let script = format!(
            "for i in $(seq {n}); do curl -sf -X POST \"$ANTHROPIC_BASE_URL/v1/messages\" -H \"x-api-key: $ANTHROPIC_API_KEY\" -H 'content-type: application/json' -d '{{\"model\":\"claude-test\",\"max_tokens\":5}}' > /dev/null || exit 1; done"
        );
        env.run(&[
            "exec",
            "--profile",
            profile,
            "--run",
            run,
            "--policy",
            &reg,
            "--via-proxy",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .ok();
    };
    calls("anthropic:prod-eu", "run_two", 60);
    calls("anthropic:dev", "run_dev", 40);
    for i in 0..5 {
        check(&format!("run_x{i}"), "openai:personal-x").code(3);
    }
    // An agent run (a stand-in `claude` on PATH, mode ignore), the store
    // unlocked and locked, a profile removed, a logout.
    let bin = env.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("claude");
    std::fs::write(&fake, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let mut cmd = env.command(&[
        "agent", "run", "claude", "--mode", "ignore", "--", "-p", "hi",
    ]);
    cmd.env("PATH", &path).current_dir(env.dir.path());
    crate::common::to_run(cmd.output().unwrap()).ok();
    env.run(&["unlock", "--for", "1m"]).ok();
    env.run(&["lock"]).ok();
    env.run(&["auth", "remove", "openai:personal-x"]).ok();
    env.run(&["logout"]).ok();
    env
}

/// Runs the browser over the page; returns what it reported.
fn browse(url: &str, shots: &Path) -> serde_json::Value {
    require_tool(
        "chromium",
        "apt-get install chromium (scripts/test installs it)",
    );
    assert!(
        page_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: (cd tests/page && npm ci) (scripts/test does)"
    );
    std::fs::create_dir_all(shots).unwrap();
    let out = Command::new("node")
        .arg(page_dir().join("check.mjs"))
        .arg(url)
        .arg(shots)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the browser script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert!(v["error"].is_null(), "the browser script: {}", v["error"]);
    v
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_audit_page_in_a_browser() {
    let idp = Idp::start(&[]);
    let up = Upstream::start(Behavior::Agents);
    let key = format!("sk-ant-api03-{}", canary());
    let env = fixture(&idp, &up, &key);
    // 100 calls through the proxy, and the two exec children.
    assert_eq!(receipts(&env, "call.finished").len(), 102);
    let served = serve(&env);
    let origin = served.url.split("/?").next().unwrap().to_string();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("page-screenshots");
    let v = browse(&served.url, &shots);
    let views = &v["views"];

    // Receipts of most kinds reached the page's first pages.
    let kinds = strings(&views["timeline"]["kinds"]);
    for k in [
        "agent.finished",
        "agent.started",
        "store_locked",
        "store_unlocked",
        "profile_removed",
        "logout",
    ] {
        assert!(kinds.contains(&k.to_string()), "{k} not among {kinds:?}");
    }
    // The token became a cookie and left the address bar.
    assert_eq!(views["first"]["url"], format!("{origin}/"));
    assert_eq!(views["anonymous"]["status"], 401);
    // Timeline: a page of 100, older pages follow on without a gap.
    assert_eq!(views["timeline"]["rows"], 100);
    assert_eq!(views["timeline"]["older"], true);
    let first: Vec<i64> = serde_json::from_value(views["paging"]["first"].clone()).unwrap();
    let older: Vec<i64> = serde_json::from_value(views["paging"]["older"].clone()).unwrap();
    assert_eq!(first.len(), 50);
    assert_eq!(older[0], first[49] - 1, "{first:?} then {older:?}");
    // Filters: the kind picked in the form, a profile pattern as in
    // policies, a bad pattern refused on the page.
    assert_eq!(strings(&views["by_kind"]["kinds"]), ["denial"]);
    assert!(
        views["by_kind"]["url"]
            .as_str()
            .unwrap()
            .contains("kind=denial")
    );
    assert_eq!(
        strings(&views["by_profile"]["profiles"]),
        ["anthropic:prod-eu"]
    );
    assert_eq!(views["bad_pattern"]["status"], 400);
    assert!(
        views["bad_pattern"]["error"]
            .as_str()
            .unwrap()
            .contains("--profile"),
        "{}",
        views["bad_pattern"]
    );
    // A call's receipt links to its finish, its authorization and the
    // approval that let it through, and each link opens that receipt.
    let links = views["call"]["links"].as_array().unwrap();
    let by_label = |l: &str| {
        links
            .iter()
            .find(|x| x["label"] == l)
            .unwrap_or_else(|| panic!("no link {l:?} in {links:?}"))
    };
    assert!(
        by_label("the call's finish")["target"]
            .as_str()
            .unwrap()
            .contains("call.finished")
    );
    assert!(
        by_label("the approval that let it through")["target"]
            .as_str()
            .unwrap()
            .contains("· approval")
    );
    assert!(
        by_label("the authorization it ran under")["target"]
            .as_str()
            .unwrap()
            .contains("authorization")
    );
    assert!(views["call"]["hash"].as_str().unwrap().len() >= 64);
    // Denials grouped by the condition that failed, most first.
    let conds = strings(&views["denials"]["conditions"]);
    assert!(
        conds.contains(&"denied_credential_profiles".to_string()),
        "{conds:?}"
    );
    assert!(conds.contains(&"approver_groups".to_string()), "{conds:?}");
    let counts: Vec<i64> = serde_json::from_value(views["denials"]["counts"].clone()).unwrap();
    assert_eq!(
        counts[0], 6,
        "denied_credential_profiles: {conds:?} {counts:?}"
    );
    // Approvals: alice's used, bob's pending.
    assert_eq!(views["approvals"]["error"], "");
    assert_eq!(views["approvals"]["used"], 1);
    assert_eq!(views["approvals"]["pending"], 1);
    // Use over time: two charts, and the model the proxy read.
    assert_eq!(views["usage"]["charts"], 2);
    assert!(views["usage"]["bars"].as_u64().unwrap() >= 2);
    // (The exec children's own receipts name no model.)
    assert_eq!(
        strings(&views["usage"]["models"]),
        ["(not named)", "claude-test"]
    );
    // Chain: verified, with its checkpoint and a trusted key.
    assert!(
        views["chain"]["verify"].as_str().unwrap().contains("good"),
        "{}",
        views["chain"]
    );
    assert_eq!(views["chain"]["checkpoint"], true);
    // Exports of the current filter.
    assert_eq!(views["export"]["csv_status"], 200);
    let lines = strings(&views["export"]["csv_lines"]);
    assert!(lines[0].starts_with("seq,id,created_at,kind"));
    assert_eq!(lines.len(), 1 + receipts(&env, "denial").len());
    assert!(
        strings(&views["export"]["jsonl_kinds"])
            .iter()
            .all(|k| k == "denial")
    );

    // Nothing left the loopback address; no console error or warning.
    for r in strings(&v["requests"]) {
        assert!(r.starts_with(&origin), "the browser asked {r}");
    }
    // (but the 400 of the bad pattern, which the browser logs).
    let console: Vec<_> = v["console"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            !m["url"]
                .as_str()
                .unwrap_or_default()
                .contains("profile=anthropic%3A%5Bx")
        })
        .collect();
    assert!(console.is_empty(), "console: {console:?}");
    assert!(v["pageerrors"].as_array().unwrap().is_empty());
    // Never the secret: not in any view, not in the exports.
    for (name, html) in v["html"].as_object().unwrap() {
        assert!(
            !html.as_str().unwrap().contains(&key[13..]),
            "{name} shows the key"
        );
    }
    for view in [
        "timeline",
        "denials",
        "approvals",
        "usage",
        "chain",
        "receipt",
    ] {
        assert!(
            shots.join(format!("{view}.png")).exists(),
            "no screenshot of {view}"
        );
    }
}
