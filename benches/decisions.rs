//! Decision latency (criterion): the DESIGN.md example envelope (target:
//! under 1 µs median), an envelope with 10,000 profile patterns (under
//! 20 µs), and ID-token validation with a warm JWKS against a raw
//! `jsonwebtoken` RS256 verify of the same token (craik's overhead under
//! 20%).
//!
//! Run: `cargo bench --bench decisions`

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

use craik::audit::Operator;
use craik::operator::token::{self, Expected};
use craik::policy::{self, Policy};
use craik::profile::{Kind, Profile};

fn example_policy() -> Policy {
    let json = br#"{
      "version": 1,
      "required_operator": true,
      "required_operator_issuer": "https://idp.example.com",
      "allowed_operator_groups": ["prod-deploy"],
      "allowed_credential_kinds": ["secret-ref"],
      "allowed_credential_profiles": ["anthropic:prod-*"],
      "require_approval": "first_use"
    }"#;
    Policy::parse(json, Path::new("example.json")).unwrap()
}

fn big_policy() -> Policy {
    let patterns: Vec<String> = (0..10_000)
        .map(|i| format!("\"anthropic:team{i}-*\""))
        .collect();
    let json = format!(
        r#"{{"version":1,"required_operator":true,"allowed_credential_profiles":[{}]}}"#,
        patterns.join(",")
    );
    Policy::parse(json.as_bytes(), Path::new("big.json")).unwrap()
}

fn operator() -> Operator {
    Operator {
        subject: "alice".into(),
        issuer: "https://idp.example.com".into(),
        email: Some("alice@example.com".into()),
        groups: vec!["devs".into(), "prod-deploy".into()],
        identity_hash: String::new(),
        workload: None,
    }
}

fn profile(id: &str) -> Profile {
    let mut p = Profile::new(id.parse().unwrap(), Kind::SecretRef);
    p.metadata.insert("ref".into(), "env:X".into());
    p
}

fn decisions(c: &mut Criterion) {
    let example = vec![example_policy()];
    let big = vec![big_policy()];
    let op = operator();
    let p = profile("anthropic:prod-eu");
    let last = profile("anthropic:team9999-x");
    assert!(policy::allows(&example, &p, Some(&op)));
    assert!(policy::allows(&big, &last, Some(&op)));
    c.bench_function("decision: DESIGN.md example envelope", |b| {
        b.iter(|| policy::allows(black_box(&example), black_box(&p), black_box(Some(&op))))
    });
    c.bench_function("decision: 10,000 profile patterns", |b| {
        b.iter(|| policy::allows(black_box(&big), black_box(&last), black_box(Some(&op))))
    });
    c.bench_function(
        "explain: DESIGN.md example envelope (full evaluation)",
        |b| b.iter(|| policy::evaluate(black_box(&example), black_box(&p), black_box(Some(&op)))),
    );
}

fn tokens(c: &mut Criterion) {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys");
    let jwks = token::parse_jwks(&std::fs::read(keys.join("issuer-jwks.json")).unwrap()).unwrap();
    let rsa1: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keys.join("rsa1.jwk.json")).unwrap()).unwrap();
    let kid = rsa1["kid"].as_str().unwrap().to_string();
    let pem = std::fs::read(keys.join("rsa1.pem")).unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.clone());
    let claims = serde_json::json!({
        "iss": "https://idp.example.com", "aud": "craik-cli", "sub": "alice",
        "email": "alice@example.com", "groups": ["devs"], "iat": now, "exp": now + 3600,
    });
    let raw = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
    .unwrap();
    let expected = Expected {
        issuer: "https://idp.example.com",
        client_id: "craik-cli",
        nonce: None,
        now,
        groups_claim: "groups",
    };
    token::validate(&raw, &jwks, &expected).unwrap();
    let jwk = jwks
        .keys
        .iter()
        .find(|k| k.common.key_id.as_deref() == Some(&kid))
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&["craik-cli"]);
    v.set_issuer(&["https://idp.example.com"]);
    jsonwebtoken::decode::<serde_json::Value>(&raw, &key, &v).unwrap();
    c.bench_function("id token: craik validate (warm JWKS)", |b| {
        b.iter(|| token::validate(black_box(&raw), black_box(&jwks), black_box(&expected)).unwrap())
    });
    c.bench_function("id token: raw jsonwebtoken RS256 decode (reference)", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<serde_json::Value>(
                black_box(&raw),
                black_box(&key),
                black_box(&v),
            )
            .unwrap()
        })
    });
}

/// A running proxy's per-request re-authorization when nothing changed
/// (target: under 20 µs added at p50): a `stat` of every watched file (a
/// policy.json and an extra policy in force, auth-profiles.json,
/// operator-session.json) and a look at the clock. The reference is one
/// `stat` of the same policy file.
fn reauthorization(c: &mut Criterion) {
    use craik::broker::pipeline::{CallSpec, Capability, Recheck, Target};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("home");
    let home = craik::home::Home::open(&root).unwrap();
    for f in ["policy.json", "auth-profiles.json", "operator-session.json"] {
        std::fs::write(home.path(f), b"{}").unwrap();
    }
    let extra = dir.path().join("team.json");
    std::fs::write(&extra, b"{}").unwrap();
    let id: craik::profile::ProfileId = "openai:bench".parse().unwrap();
    let profile = Profile::new(id.clone(), Kind::KeyringRef);
    let spec = CallSpec {
        target: Target::Profile(id),
        run: "run_bench".into(),
        policy_files: vec![extra.clone()],
        capability: Capability::Proxy,
        wait: None,
    };
    let recheck = Recheck::for_profile(&home, &spec, &profile, None);
    assert!(recheck.unchanged());
    c.bench_function("reauthorization: nothing changed (per request)", |b| {
        b.iter(|| black_box(recheck.unchanged()))
    });
    let policy = home.path("policy.json");
    c.bench_function("reauthorization: one stat (reference)", |b| {
        b.iter(|| black_box(std::fs::metadata(&policy).unwrap().len()))
    });
}

criterion_group!(benches, decisions, tokens, reauthorization);
criterion_main!(benches);
