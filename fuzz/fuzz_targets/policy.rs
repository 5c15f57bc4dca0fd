//! Policy envelopes and profile patterns: any bytes parse to a policy or a
//! typed error, never a panic; a parsed policy evaluates without panicking
//! for any profile id and operator.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.json");
    if let Ok(policy) = craik::policy::Policy::parse(data, path) {
        let op = craik::audit::Operator {
            subject: "alice".into(),
            issuer: "https://idp.example.com".into(),
            email: None,
            groups: vec!["devs".into()],
            identity_hash: String::new(),
            workload: None,
        };
        // A workload whose claims are the input itself, when it is an
        // object, so bound_claims meet what they name.
        let claims = serde_json::from_slice::<serde_json::Value>(data)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        let job = craik::audit::Operator {
            workload: Some(craik::audit::Workload {
                source: "github".into(),
                claims,
            }),
            ..op.clone()
        };
        for id in ["openai:x", "anthropic:prod-eu", "chat_completions:a.b-c"] {
            let p = craik::profile::Profile::new(id.parse().unwrap(), craik::profile::Kind::ApiKey);
            let policies = [policy.clone()];
            for who in [Some(&op), Some(&job), None] {
                let fast = craik::policy::allows(&policies, &p, who);
                let full = craik::policy::evaluate(&policies, &p, who);
                assert_eq!(fast, full.allowed, "the fast path and the full evaluation agree");
            }
        }
    }
    // The pattern matcher on its own: split the input into a pattern and an id.
    if let Ok(s) = std::str::from_utf8(data)
        && let Some((pattern, id)) = s.split_once('\n')
    {
        let _ = craik::pattern::matches(pattern, id);
    }
});
