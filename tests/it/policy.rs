//! Policy envelopes, grants and the approval gate, with operators from the
//! real test OpenID provider (alice: prod-deploy, devs; bob: devs;
//! carol: approvers, devs; dave: no groups).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::{Env, assert_schema, receipts};
use crate::idp::{Idp, login_as};

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies")
        .join(name)
        .display()
        .to_string()
}

fn write_policy(env: &Env, name: &str, json: &str) -> String {
    let p: PathBuf = env.dir.path().join(name);
    std::fs::write(&p, json).unwrap();
    p.display().to_string()
}

fn setup(idp: &Idp) -> Env {
    let mut env = Env::new();
    idp.configure(&mut env);
    env.set("CI_KEY", "ci-secret");
    for id in [
        "anthropic:prod-eu",
        "anthropic:dev",
        "openai:personal-x",
        "gemini:x",
    ] {
        env.run_stdin(
            &["auth", "add", id, "--kind=keyring-ref", "--stdin"],
            Some("k-1"),
        )
        .ok();
    }
    env.run(&["auth", "add", "openai:dev", "--kind=api-key"])
        .ok();
    env.run(&[
        "auth",
        "add",
        "openai:ci",
        "--kind=secret-ref",
        "--secret-ref",
        "env:CI_KEY",
    ])
    .ok();
    env
}

#[test]
fn regulated_team_policy_decisions() {
    let idp = Idp::start(&[]);
    let env = setup(&idp);
    let reg = example("regulated-team.json");
    let check = |id: &str| env.run(&["auth", "check", id, "--policy", &reg, "--json"]);

    // No operator: denied, told to log in (exit 6: the fix is a login).
    let r = check("anthropic:dev");
    r.code(6);
    assert_eq!(r.json()["conditions"][0], "required_operator", "{r:?}");
    assert!(
        r.stderr
            .contains("operator identity required by policy; run craik login"),
        "{}",
        r.stderr
    );
    let d = &receipts(&env, "denial")[0];
    assert_eq!(d["policy_condition"], "required_operator");

    login_as(&env, &idp, "dave");
    let r = check("anthropic:dev");
    r.code(3);
    assert!(
        r.stderr
            .contains("operator group not allowed: needs one of [prod-deploy, devs], you have []"),
        "{}",
        r.stderr
    );
    let d = &receipts(&env, "denial")[0];
    assert_eq!(d["policy_condition"], "allowed_operator_groups");
    assert_eq!(d["operator_subject"], "dave");
    let conds = d["details"]["conditions"].as_array().unwrap();
    assert_eq!(conds[0]["field"], "allowed_operator_groups");
    assert_eq!(conds[0]["seen"], "[]");

    login_as(&env, &idp, "bob");
    check("anthropic:dev").ok();
    assert_eq!(
        receipts(&env, "authorization")[0]["operator_subject"],
        "bob"
    );
    // By kind (api-key), by pattern (gemini), by denied pattern (personal-*).
    for (id, field) in [
        ("openai:dev", "allowed_credential_kinds"),
        ("gemini:x", "allowed_credential_profiles"),
        ("openai:personal-x", "denied_credential_profiles"),
    ] {
        check(id).code(3);
        assert_eq!(
            receipts(&env, "denial")[0]["policy_condition"],
            field,
            "{id}"
        );
    }
    // Two failures at once: both listed, the first named.
    let strict = write_policy(
        &env,
        "strict.json",
        r#"{"version":1,"allowed_operator_subjects":["alice"],"allowed_credential_kinds":["secret-ref"]}"#,
    );
    env.run(&["auth", "check", "anthropic:dev", "--policy", &strict])
        .code(3);
    let d = &receipts(&env, "denial")[0];
    assert_eq!(d["policy_condition"], "allowed_operator_subjects");
    assert_eq!(d["details"]["conditions"].as_array().unwrap().len(), 2);

    // By issuer.
    let iss = write_policy(
        &env,
        "issuer.json",
        r#"{"version":1,"required_operator_issuer":"https://idp.example.com"}"#,
    );
    env.run(&["auth", "check", "anthropic:dev", "--policy", &iss])
        .code(3);
    assert_eq!(
        receipts(&env, "denial")[0]["policy_condition"],
        "required_operator_issuer"
    );
    // The policy in CRAIK_HOME and CRAIK_POLICY are in force too.
    std::fs::write(env.file("policy.json"), std::fs::read(&iss).unwrap()).unwrap();
    env.run(&["auth", "check", "anthropic:dev"]).code(3);
    std::fs::remove_file(env.file("policy.json")).unwrap();
    let mut env2 = Env::new();
    env2.vars = env.vars.clone();
    env2.set("CRAIK_POLICY", &iss);
    env2.run(&["auth", "check", "anthropic:dev"]).code(3);
    env.run(&["auth", "check", "anthropic:dev"]).ok();
}

#[test]
fn grants_restrict_a_profile() {
    let idp = Idp::start(&[]);
    let env = setup(&idp);
    env.run(&["auth", "grant", "anthropic:dev", "--to-subject", "carol"])
        .code(6)
        .error_with_hint("run craik login");
    // Nobody grants themselves, not even on an open profile.
    login_as(&env, &idp, "carol");
    env.run(&["auth", "grant", "anthropic:dev", "--to-subject", "carol"])
        .code(3)
        .error_with_hint("self_grant");
    env.run(&["auth", "grant", "anthropic:dev", "--to-group", "devs"])
        .code(3);
    let d = &receipts(&env, "denial")[0];
    assert_eq!(d["policy_condition"], "self_grant");
    assert_eq!(d["capability"], "grant");
    assert_eq!(d["operator_subject"], "carol");
    // carol may use it, so she may grant it to alice (and loses it).
    env.run(&["auth", "grant", "anthropic:dev", "--to-subject", "alice"])
        .ok();
    let g = &receipts(&env, "grant")[0];
    assert_eq!(g["operator_subject"], "carol");
    let file = env.read_json("auth-profiles.json");
    assert_schema("auth-profiles.schema.json", &file);
    env.run(&["auth", "check", "anthropic:dev"]).code(3);
    assert_eq!(
        receipts(&env, "denial")[0]["policy_condition"],
        "profile_grants"
    );
    // Now carol may not grant it at all (she may not use it).
    env.run(&["auth", "grant", "anthropic:dev", "--to-subject", "bob"])
        .code(3)
        .error_with_hint("grant_authority");
    login_as(&env, &idp, "alice");
    env.run(&["auth", "check", "anthropic:dev"]).ok();
    // alice grants bob; revoking a grant that is not there is an error.
    env.run(&["auth", "grant", "anthropic:dev", "--to-subject", "bob"])
        .ok();
    env.run(&["auth", "revoke", "anthropic:dev", "--group", "prod-deploy"])
        .code(1)
        .error_with_hint("has no grant to group prod-deploy");
    env.run(&["auth", "revoke", "anthropic:dev", "--subject", "bob"])
        .ok();
    env.run(&["auth", "revoke", "anthropic:dev", "--subject", "alice"])
        .ok();
    assert_eq!(receipts(&env, "grant_revoked").len(), 2);
    // The last grant revoked: restricted to nobody, not open to all.
    let file = env.read_json("auth-profiles.json");
    let dev = file["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "anthropic:dev")
        .unwrap();
    assert_eq!(
        dev["grants"],
        serde_json::json!({"restricted": true, "issuer": idp.issuer}),
        "{file}"
    );
    env.run(&["auth", "check", "anthropic:dev"]).code(3);
    env.run(&["auth", "grant", "anthropic:dev", "--to-everyone"])
        .code(3);
    // A policy naming admins: only they change access, themselves included.
    let admin = write_policy(
        &env,
        "admin.json",
        r#"{"version":1,"admin_groups":["approvers"]}"#,
    );
    env.run(&[
        "auth",
        "grant",
        "anthropic:dev",
        "--to-everyone",
        "--policy",
        &admin,
    ])
    .code(3)
    .error_with_hint("admin");
    login_as(&env, &idp, "carol");
    env.run(&[
        "auth",
        "grant",
        "anthropic:dev",
        "--to-everyone",
        "--policy",
        &admin,
    ])
    .ok();
    let opened = &receipts(&env, "grant")[0];
    assert_eq!(opened["details"]["everyone"], true);
    login_as(&env, &idp, "alice");
    env.run(&["auth", "check", "anthropic:dev"]).ok();
    // The admins named then still bind when the policy naming them is
    // left out: alice, allowed but no admin, may not restrict it now.
    env.run(&["auth", "grant", "anthropic:dev", "--to-subject", "bob"])
        .code(3)
        .error_with_hint("admin");
}

#[test]
fn approvals_bind_to_their_policy_run_requester_credential_seal_and_time() {
    let idp = Idp::start(&[]);
    let env = setup(&idp);
    let p = write_policy(
        &env,
        "gate.json",
        r#"{"version":1,"require_approval":"each_run","approver_groups":["approvers"],"separate_approver":true,"approval_ttl":"6s"}"#,
    );
    let other = write_policy(
        &env,
        "other.json",
        r#"{"version":1,"require_approval":"each_run"}"#,
    );
    let check = |run: &str| {
        env.run(&[
            "auth",
            "check",
            "anthropic:dev",
            "--run",
            run,
            "--policy",
            &p,
        ])
    };
    let approve = |run: &str, policy: Option<&str>| {
        let mut a = vec!["auth", "approve", "anthropic:dev", "--run", run];
        if let Some(f) = policy {
            a.extend(["--policy", f]);
        }
        env.run(&a)
    };
    // Under separate_approver a request needs someone to ask: none is
    // written while nobody is logged in (exit 6, a denial receipt).
    let r = check("r0");
    r.code(6);
    assert!(r.stderr.contains("needs an identified requester"), "{r:?}");
    assert!(r.stderr.contains("hint: run craik login"), "{r:?}");
    assert_eq!(
        receipts(&env, "denial")[0]["policy_condition"],
        "separate_approver"
    );
    assert!(receipts(&env, "approval_requested").is_empty());

    login_as(&env, &idp, "alice");
    let r = check("r1");
    r.code(4);
    assert!(
        r.stderr.contains("--run=r1"),
        "the retry names the run: {r:?}"
    );
    login_as(&env, &idp, "carol");
    // Without the policy that asked, or under another: refused, and the
    // hint names the files the request was made with.
    approve("r1", None)
        .code(1)
        .error_with_hint(&format!("--policy {p}"));
    approve("r1", Some(&other)).code(1);
    assert!(receipts(&env, "approval").is_empty());
    let a = approve("r1", Some(&p));
    a.ok();
    assert!(a.stdout.contains("until "), "{a:?}");
    let ap = &receipts(&env, "approval")[0];
    assert!(
        ap["details"]["seal"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert_eq!(ap["details"]["requested_by"], "alice");
    login_as(&env, &idp, "alice");
    check("r1").ok();
    let list = env.run(&["auth", "approvals", "--json"]).json();
    assert_eq!(list["approvals"][0]["state"], "used", "{list}");
    // The same approval without the policy it was made under: a policy
    // in force changed, so it does not hold.
    env.run(&[
        "auth",
        "check",
        "anthropic:dev",
        "--run",
        "r1",
        "--policy",
        &p,
        "--policy",
        &other,
    ])
    .code(4);

    // Another operator reusing alice's run id gets nothing from it.
    login_as(&env, &idp, "bob");
    check("r1").code(4);
    // A correctly chained approval appended by hand (no seal it could
    // make) does not unlock it either.
    let bobs = receipts(&env, "approval_requested")
        .into_iter()
        .find(|r| r["operator_subject"] == "bob")
        .unwrap();
    {
        use craik::audit::{NewReceipt, ReceiptKind, Status};
        let mut log = craik::audit::AuditLog::open_path(&env.file("audit.db")).unwrap();
        let mut r = NewReceipt::new(ReceiptKind::Approval, Status::Ok)
            .profile("anthropic:dev", "keyring-ref", "anthropic")
            .run("r1");
        for k in ["policy_digest", "credential"] {
            r = r.detail(k, bobs["details"][k].clone());
        }
        r = r
            .detail("request", bobs["id"].clone())
            .detail("mode", "each_run")
            .detail("requester", bobs["operator_identity_hash"].clone())
            .detail("seal", format!("hmac-sha256:{}", "0".repeat(64)));
        log.append(r).unwrap();
    }
    env.run(&["receipts", "verify"]).ok();
    check("r1").code(4);
    let list = env.run(&["auth", "approvals", "--json"]).json();
    let states: Vec<&str> = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["state"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"refused"), "{list}");

    // carol asks herself; a row naming someone else as the requester,
    // appended by hand, does not let her approve her own request.
    login_as(&env, &idp, "carol");
    check("r5").code(4);
    let hers = receipts(&env, "approval_requested")
        .into_iter()
        .find(|r| r["run_id"] == "r5")
        .unwrap();
    {
        use craik::audit::{NewReceipt, Operator, ReceiptKind, Status};
        let mut log = craik::audit::AuditLog::open_path(&env.file("audit.db")).unwrap();
        let mut r = NewReceipt::new(ReceiptKind::ApprovalRequested, Status::Ok)
            .profile("anthropic:dev", "keyring-ref", "anthropic")
            .run("r5")
            .operator(Some(Operator {
                subject: "someone".into(),
                issuer: idp.issuer.clone(),
                email: None,
                groups: vec![],
                identity_hash: format!("hmac-sha256:{}", "1".repeat(64)),
                workload: None,
            }));
        for k in ["mode", "policy_digest", "credential", "policies", "seal"] {
            r = r.detail(k, hers["details"][k].clone());
        }
        log.append(r).unwrap();
    }
    let r = approve("r5", Some(&p));
    r.code(1);
    assert!(r.stderr.contains("was not made by craik here"), "{r:?}");

    // A new key under the same profile needs a new approval.
    login_as(&env, &idp, "alice");
    env.run_stdin(
        &[
            "auth",
            "add",
            "anthropic:dev",
            "--kind=keyring-ref",
            "--stdin",
            "--force",
        ],
        Some("k-2"),
    )
    .ok();
    check("r1").code(4);
    login_as(&env, &idp, "carol");
    approve("r1", Some(&p)).ok();
    login_as(&env, &idp, "alice");
    check("r1").ok();
    // And an approval expires (approval_ttl 6s).
    std::thread::sleep(std::time::Duration::from_secs(7));
    check("r1").code(4);
    let list = env.run(&["auth", "approvals", "--json"]).json();
    assert!(list.to_string().contains("\"expired\""), "{list}");
}

#[test]
fn first_use_approval_by_a_separate_approver() {
    let idp = Idp::start(&[]);
    let env = setup(&idp);
    let reg = example("regulated-team.json");
    // carol asks for the first use of a production profile.
    login_as(&env, &idp, "carol");
    let r = env.run(&[
        "auth",
        "check",
        "anthropic:prod-eu",
        "--run",
        "run_one",
        "--policy",
        &reg,
    ]);
    r.code(4);
    assert!(
        r.stderr
            .contains("craik auth approve anthropic:prod-eu --run=run_one"),
        "{}",
        r.stderr
    );
    // --json says which mode asks and what the approver runs; asking
    // again writes no second request.
    let j = env.run(&[
        "auth",
        "check",
        "anthropic:prod-eu",
        "--run",
        "run_one",
        "--policy",
        &reg,
        "--json",
    ]);
    j.code(4);
    let j = j.json();
    assert_eq!(j["approval_mode"], "first_use");
    // The approver's command names the policy the request was made under.
    assert_eq!(
        j["approve"],
        format!("craik auth approve anthropic:prod-eu --run=run_one --policy {reg}")
    );
    assert_eq!(receipts(&env, "approval_requested").len(), 1);
    let req = &receipts(&env, "approval_requested")[0];
    assert_eq!(req["run_id"], "run_one");
    assert_eq!(req["operator_subject"], "carol");
    let pending = env
        .run(&["auth", "approvals", "--pending", "--json"])
        .json();
    assert_eq!(pending["approvals"][0]["run"], "run_one");

    // Nobody approves their own request.
    let r = env.run(&[
        "auth",
        "approve",
        "anthropic:prod-eu",
        "--run",
        "run_one",
        "--policy",
        &reg,
    ]);
    r.code(3);
    assert!(r.stderr.contains("separate_approver"), "{}", r.stderr);
    // bob is not an approver.
    login_as(&env, &idp, "bob");
    let r = env.run(&[
        "auth",
        "approve",
        "anthropic:prod-eu",
        "--run",
        "run_one",
        "--policy",
        &reg,
    ]);
    r.code(3);
    assert!(
        r.stderr
            .contains("approver not allowed: needs one of [approvers], you have [devs]"),
        "{}",
        r.stderr
    );
    assert_eq!(receipts(&env, "approval").len(), 0);
    let denials = receipts(&env, "denial");
    assert_eq!(denials[0]["policy_condition"], "approver_groups");
    assert_eq!(denials[1]["policy_condition"], "separate_approver");

    // alice asks too (another run), carol approves alice's request.
    login_as(&env, &idp, "alice");
    env.run(&[
        "auth",
        "check",
        "anthropic:prod-eu",
        "--run",
        "run_two",
        "--policy",
        &reg,
    ])
    .code(4);
    login_as(&env, &idp, "carol");
    let a = env.run(&[
        "auth",
        "approve",
        "anthropic:prod-eu",
        "--run=run_two",
        "--policy",
        &reg,
        "--json",
    ]);
    a.ok();
    assert_eq!(a.json()["new"], true);
    let ap = &receipts(&env, "approval")[0];
    assert_eq!(ap["operator_subject"], "carol");
    assert_eq!(ap["details"]["requested_by"], "alice");
    // first_use: once approved, every later run passes.
    login_as(&env, &idp, "alice");
    env.run(&[
        "auth",
        "check",
        "anthropic:prod-eu",
        "--run",
        "run_two",
        "--policy",
        &reg,
    ])
    .ok();
    env.run(&[
        "auth",
        "check",
        "anthropic:prod-eu",
        "--run",
        "run_three",
        "--policy",
        &reg,
    ])
    .ok();
    // Profiles outside approval_profiles never needed approval.
    env.run(&["auth", "check", "anthropic:dev", "--policy", &reg])
        .ok();
    let pending = env
        .run(&["auth", "approvals", "--pending", "--json"])
        .json();
    assert_eq!(
        pending["approvals"].as_array().unwrap().len(),
        1,
        "run_one stays pending"
    );
}

#[test]
fn each_run_approval_concurrent_approvers_and_wait() {
    let idp = Idp::start(&[]);
    let env = setup(&idp);
    let ci = example("ci-automation.json");
    login_as(&env, &idp, "alice");
    env.run(&[
        "auth",
        "check",
        "openai:ci",
        "--run",
        "run_a",
        "--policy",
        &ci,
    ])
    .code(4);
    // Two processes approve the same request at once: one approval, no error.
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut c = env.command(&[
                "auth",
                "approve",
                "openai:ci",
                "--run",
                "run_a",
                "--policy",
                &ci,
                "--json",
            ]);
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let mut new = 0;
    for ch in children {
        let out = ch.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if v["new"] == true {
            new += 1;
        }
    }
    assert_eq!(new, 1);
    assert_eq!(receipts(&env, "approval").len(), 1);
    env.run(&[
        "auth",
        "check",
        "openai:ci",
        "--run",
        "run_a",
        "--policy",
        &ci,
    ])
    .ok();
    // each_run: a new run needs its own approval.
    env.run(&[
        "auth",
        "check",
        "openai:ci",
        "--run",
        "run_b",
        "--policy",
        &ci,
    ])
    .code(4);
    // --wait pauses until the approval lands.
    let mut c = env.command(&[
        "auth",
        "check",
        "openai:ci",
        "--run",
        "run_c",
        "--policy",
        &ci,
        "--wait=30s",
    ]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let waiter = c.spawn().unwrap();
    assert!(crate::idp::wait_until(
        std::time::Duration::from_secs(20),
        || {
            env.run(&["auth", "approvals", "--pending", "--json"])
                .json()["approvals"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["run"] == "run_c")
        }
    ));
    env.run(&[
        "auth",
        "approve",
        "openai:ci",
        "--run",
        "run_c",
        "--policy",
        &ci,
    ])
    .ok();
    let out = waiter.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A short wait that nobody answers ends with exit 4.
    env.run(&[
        "auth",
        "check",
        "openai:ci",
        "--run",
        "run_d",
        "--policy",
        &ci,
        "--wait=2s",
    ])
    .code(4);
    // The ci policy names its subjects: bob is not one.
    login_as(&env, &idp, "bob");
    env.run(&[
        "auth",
        "check",
        "openai:ci",
        "--run",
        "run_e",
        "--policy",
        &ci,
    ])
    .code(3);
    assert_eq!(
        receipts(&env, "denial")[0]["policy_condition"],
        "allowed_operator_subjects"
    );
}

#[test]
fn solo_developer_policy_needs_no_login() {
    let env = Env::new();
    let solo = example("solo-developer.json");
    env.run_stdin(
        &[
            "auth",
            "add",
            "openai:work",
            "--kind=keyring-ref",
            "--stdin",
        ],
        Some("k"),
    )
    .ok();
    env.run_stdin(
        &[
            "auth",
            "add",
            "openai:prod-x",
            "--kind=keyring-ref",
            "--stdin",
        ],
        Some("k"),
    )
    .ok();
    env.run(&["auth", "add", "openai:env", "--kind=api-key"])
        .ok();
    env.run(&["auth", "check", "openai:work", "--policy", &solo])
        .ok();
    env.run(&["auth", "check", "openai:env", "--policy", &solo])
        .code(3);
    env.run(&["auth", "check", "openai:prod-x", "--policy", &solo])
        .code(3);
    assert_eq!(
        receipts(&env, "denial")[0]["policy_condition"],
        "denied_credential_profiles"
    );
    // --json names the failing condition, as the receipt does.
    let j = env.run(&[
        "auth",
        "check",
        "openai:prod-x",
        "--policy",
        &solo,
        "--json",
    ]);
    j.code(3);
    let j = j.json();
    assert_eq!(j["allowed"], false);
    assert_eq!(j["exit_code"], 3);
    assert_eq!(j["condition"], "denied_credential_profiles");
    assert_eq!(j["conditions"][0], "denied_credential_profiles");
    // explain writes nothing.
    let before = env.run(&["receipts", "stats", "--json"]).json()["total"].clone();
    let e = env.run(&[
        "policy",
        "explain",
        "--profile",
        "openai:prod-x",
        "--policy",
        &solo,
        "--json",
    ]);
    e.ok();
    let v = e.json();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["conditions"].as_array().unwrap().len(), 2);
    assert_eq!(
        env.run(&["receipts", "stats", "--json"]).json()["total"],
        before
    );
}

#[test]
fn example_policies_validate() {
    let env = Env::new();
    for name in [
        "solo-developer.json",
        "regulated-team.json",
        "ci-automation.json",
    ] {
        let path = example(name);
        let r = env.run(&["policy", "check", &path, "--json"]);
        r.ok();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_schema("policy-envelope.schema.json", &v);
    }
}

#[test]
fn bad_policies_stop_everything() {
    let env = Env::new();
    env.run_stdin(
        &[
            "auth",
            "add",
            "openai:work",
            "--kind=keyring-ref",
            "--stdin",
        ],
        Some("k"),
    )
    .ok();
    let cases = [
        (
            "{\"version\":1,\n\"allowed_operator_grups\":[\"x\"]}",
            "unknown field `allowed_operator_grups`",
            "line 2",
        ),
        (
            "{\"version\":1,\"allowed_operator_groups\":[]}",
            "allowed_operator_groups is an empty list",
            "leave the field out",
        ),
        (
            "{\"version\":1,\"required_operator\":\"yes\"}",
            "invalid type",
            "line 1",
        ),
        (
            "{\"version\":1,\"require_approval\":\"sometimes\"}",
            "unknown variant",
            "line 1",
        ),
        (
            "{\"version\":1,\n\n\"allowed_credential_kinds\": [\"api-key\",]}",
            "trailing comma",
            "line 3",
        ),
        (
            "{\"version\":1,\"allowed_credential_profiles\":[\"openai:[a-z]\"]}",
            "contains '['",
            "patterns use",
        ),
        (
            "{\"version\":1,\"denied_credential_profiles\":[\"a***\"]}",
            "three or more",
            "patterns use",
        ),
        ("{\"version\":2}", "unsupported version 2", "fix the file"),
        ("not json", "expected ident", "line 1"),
    ];
    for (content, needle, where_) in cases {
        let p = write_policy(&env, "bad.json", content);
        for args in [
            vec!["auth", "check", "openai:work", "--policy", &p],
            vec!["policy", "check", &p],
        ] {
            let r = env.run(&args);
            r.code(1);
            assert!(r.stderr.contains(needle), "{content}: {}", r.stderr);
            assert!(r.stderr.contains(where_), "{content}: {}", r.stderr);
            assert!(
                r.stderr.contains("bad.json"),
                "names the file: {}",
                r.stderr
            );
        }
    }
    // A bad policy.json in the home stops checks without --policy too.
    std::fs::write(env.file("policy.json"), "{").unwrap();
    env.run(&["auth", "check", "openai:work"]).code(1);
    assert_eq!(receipts(&env, "authorization").len(), 0, "never fail open");
}

#[test]
fn case_and_typos_never_slip_past_a_pattern() {
    let env = Env::new();
    // New ids are lower-case.
    env.run(&["auth", "add", "openai:PROD-eu", "--kind=marker"])
        .code(1)
        .error_with_hint("use openai:prod-eu");
    env.run(&["auth", "add", "openai:prod-eu", "--kind=marker"])
        .ok();
    // A pattern that can match no id is valid, with a warning.
    let typo = write_policy(
        &env,
        "typo.json",
        r#"{"version":1,"denied_credential_profiles":["opneai:*","**:*PROD*"]}"#,
    );
    let r = env.run(&["policy", "check", &typo]);
    r.ok();
    assert!(
        r.stderr.contains("warning:") && r.stderr.contains("\"opneai:*\""),
        "{r:?}"
    );
    assert!(!r.stderr.contains("**:*PROD*"), "{r:?}");
    let j = env.run(&["policy", "check", &typo, "--json"]).json();
    assert_eq!(
        j["policies"][0]["warnings"].as_array().unwrap().len(),
        1,
        "{j}"
    );
    // And the upper-case pattern still denies the lower-case id.
    env.run(&["auth", "check", "openai:prod-eu", "--policy", &typo])
        .code(3);
}
