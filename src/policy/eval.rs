//! Evaluating envelopes (and a profile's grants) for one operator and one
//! profile. Every condition is evaluated; a denial lists each failing one.

use serde::Serialize;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::envelope::{BoundClaim, Policy, RequireApproval};
use crate::audit::Operator;
use crate::profile::Profile;

/// One condition's outcome.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Condition {
    /// The envelope field (or `profile_grants`).
    pub field: String,
    /// The policy file (or `profile <id>` for grants).
    pub source: String,
    pub ok: bool,
    pub required: String,
    pub seen: String,
    /// How to fix it, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// What approval the envelopes in force ask for this profile.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ApprovalRule {
    pub mode: RequireApproval,
    /// Each inner list comes from one envelope: the approver must be in
    /// one group of every list.
    pub approver_groups: Vec<Vec<String>>,
    pub separate_approver: bool,
    /// Whether any envelope requires a logged-in operator.
    pub required_operator: bool,
    /// Every envelope's `required_operator_issuer`: an approver (and
    /// anyone changing grants) must come from each.
    pub issuers: Vec<String>,
    /// How long an approval holds, in seconds: the shortest
    /// `approval_ttl` of the envelopes asking, else 8 hours for
    /// `each_run`; `None`, no limit (`first_use` by default).
    pub ttl_secs: Option<u64>,
}

/// The default life of an `each_run` approval.
pub const EACH_RUN_TTL_SECS: u64 = 8 * 3600;

/// Every envelope's admins (`admin_groups`, `admin_subjects`), one entry
/// per envelope that names any.
pub fn admins(policies: &[Policy]) -> Vec<crate::profile::Admins> {
    policies
        .iter()
        .map(|p| &p.envelope)
        .filter(|e| e.admin_groups.is_some() || e.admin_subjects.is_some())
        .map(|e| crate::profile::Admins {
            groups: e.admin_groups.clone().unwrap_or_default(),
            subjects: e.admin_subjects.clone().unwrap_or_default(),
        })
        .collect()
}

/// Whether `op` may grant, revoke and open profiles as a policy's admin:
/// `None` when no envelope names admins, else whether `op` is in
/// `admin_groups` or `admin_subjects` of every envelope that names any.
pub fn is_admin(policies: &[Policy], op: &Operator) -> Option<bool> {
    let all = admins(policies);
    (!all.is_empty()).then(|| all.iter().all(|a| a.admit(op)))
}

/// The full outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub allowed: bool,
    pub conditions: Vec<Condition>,
    pub approval: ApprovalRule,
    /// For a workload operator: each `bound_claims` claim and the value
    /// of the token that matched it (receipts name them).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bound_claims: BTreeMap<String, String>,
}

/// The values of a workload's claim at `path`, as text: a dotted path
/// into nested objects, where a key may itself hold dots (Kubernetes'
/// `kubernetes.io.namespace` is `{"kubernetes.io": {"namespace": …}}`).
/// A list gives each of its scalar items; an object, none.
pub fn claim_values(claims: &Map<String, Value>, path: &str) -> Vec<String> {
    fn lookup<'a>(obj: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
        if let Some(v) = obj.get(path) {
            return Some(v);
        }
        path.match_indices('.')
            .find_map(|(i, _)| match obj.get(&path[..i]) {
                Some(Value::Object(inner)) => lookup(inner, &path[i + 1..]),
                _ => None,
            })
    }
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match lookup(claims, path) {
        Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The value of `op`'s token that matches `b`, if any.
fn bound_match(b: &BoundClaim, op: Option<&Operator>) -> Option<String> {
    let w = op?.workload.as_ref()?;
    claim_values(&w.claims, &b.claim)
        .into_iter()
        .find(|v| b.set.is_match(v.as_str()))
}

fn is_workload_of(op: Option<&Operator>, issuers: &[String]) -> bool {
    op.is_some_and(|o| o.workload.is_some() && issuers.contains(&o.issuer))
}

fn who(op: Option<&Operator>) -> String {
    match op {
        None => "no operator session".into(),
        Some(o) if o.workload.is_none() => format!("{} (a person, not a workload)", o.subject),
        Some(o) => format!("workload {} from {}", o.subject, o.issuer),
    }
}

impl Evaluation {
    pub fn failures(&self) -> impl Iterator<Item = &Condition> {
        self.conditions.iter().filter(|c| !c.ok)
    }

    pub fn first_failure(&self) -> Option<&Condition> {
        self.failures().next()
    }
}

fn list(v: &[String]) -> String {
    format!("[{}]", v.join(", "))
}

/// Evaluates every condition of every policy and the profile's grants.
pub fn evaluate(policies: &[Policy], profile: &Profile, op: Option<&Operator>) -> Evaluation {
    let id = profile.id.to_string();
    let mut conditions = Vec::new();
    let mut approval = ApprovalRule::default();
    let mut bound = BTreeMap::new();
    let groups: &[String] = op.map(|o| o.groups.as_slice()).unwrap_or(&[]);
    let seen_groups = if op.is_some() {
        list(groups)
    } else {
        "no operator session".into()
    };
    for p in policies {
        let e = &p.envelope;
        let source = p.source.display().to_string();
        let mut push = |field: &str, ok: bool, required: String, seen: String, fix: String| {
            conditions.push(Condition {
                field: field.to_string(),
                source: source.clone(),
                ok,
                required,
                seen,
                fix: (!ok).then_some(fix),
            });
        };
        if e.required_operator == Some(true) {
            approval.required_operator = true;
            push(
                "required_operator",
                op.is_some(),
                "a logged-in operator".into(),
                op.map(|o| o.subject.clone())
                    .unwrap_or_else(|| "no operator session".into()),
                "operator identity required by policy; run craik login".into(),
            );
        }
        if let Some(iss) = &e.required_operator_issuer {
            if !approval.issuers.contains(iss) {
                approval.issuers.push(iss.clone());
            }
            let got = op.map(|o| o.issuer.clone());
            push(
                "required_operator_issuer",
                got.as_deref() == Some(iss.as_str()),
                iss.clone(),
                got.clone().unwrap_or_else(|| "no operator session".into()),
                format!("log in with the issuer the policy names: craik login --issuer {iss}"),
            );
        }
        if let Some(allowed) = &e.allowed_operator_groups {
            let ok = groups.iter().any(|g| allowed.contains(g));
            push(
                "allowed_operator_groups",
                ok,
                format!("one of {}", list(allowed)),
                seen_groups.clone(),
                format!(
                    "operator group not allowed: needs one of {}, you have {}{}",
                    list(allowed),
                    list(groups),
                    if op.is_some() && groups.is_empty() {
                        " (your login carried no groups: craik whoami says whether the ID token had a groups claim)"
                    } else {
                        ""
                    }
                ),
            );
        }
        if let Some(allowed) = &e.allowed_operator_subjects {
            let got = op.map(|o| o.subject.clone());
            push(
                "allowed_operator_subjects",
                got.as_ref().is_some_and(|s| allowed.contains(s)),
                format!("one of {}", list(allowed)),
                got.unwrap_or_else(|| "no operator session".into()),
                "this operator is not listed in allowed_operator_subjects; ask a policy owner"
                    .into(),
            );
        }
        if let Some(issuers) = &e.allowed_workload_issuers {
            push(
                "allowed_workload_issuers",
                is_workload_of(op, issuers),
                format!("a workload whose token one of {} signed", list(issuers)),
                who(op),
                format!(
                    "this policy admits workloads from {} only; run it as one: CRAIK_WORKLOAD=github (or kubernetes), or craik login --workload",
                    list(issuers)
                ),
            );
        }
        for b in &p.bound_claims {
            let hit = bound_match(b, op);
            let seen = match op.and_then(|o| o.workload.as_ref()) {
                None => who(op),
                Some(w) => match claim_values(&w.claims, &b.claim) {
                    v if v.is_empty() => format!("no {} claim", b.claim),
                    v => format!("{}={}", b.claim, v.join(",")),
                },
            };
            if let Some(v) = &hit {
                bound.insert(b.claim.clone(), v.clone());
            }
            push(
                "bound_claims",
                hit.is_some(),
                format!("{} matching {}", b.claim, list(&b.patterns)),
                seen.clone(),
                format!(
                    "the workload's token has {seen}; this policy binds {} to {}",
                    b.claim,
                    list(&b.patterns)
                ),
            );
        }
        if let Some(kinds) = &e.allowed_credential_kinds {
            let names: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
            push(
                "allowed_credential_kinds",
                kinds.contains(&profile.kind),
                format!("one of {}", list(&names)),
                profile.kind.to_string(),
                format!(
                    "credential kind {} is not allowed here; store the credential as one of {}",
                    profile.kind,
                    list(&names)
                ),
            );
        }
        if let Some(set) = &p.allowed_profiles {
            push(
                "allowed_credential_profiles",
                set.is_match(&id),
                format!("a profile matching {}", list(set.patterns())),
                id.clone(),
                format!(
                    "profile {id} is not allowed by this policy; use a profile matching {}",
                    list(set.patterns())
                ),
            );
        }
        if let Some(set) = &p.denied_credential_profiles_set() {
            let hit = set.first_match(&id).map(str::to_string);
            push(
                "denied_credential_profiles",
                hit.is_none(),
                format!("no profile matching {}", list(set.patterns())),
                match &hit {
                    Some(pat) => format!("{id} matches {pat}"),
                    None => id.clone(),
                },
                format!("profile {id} is denied by this policy; use another profile"),
            );
        }
        let mode = e.require_approval.unwrap_or_default();
        let applies = p.approval_profiles.as_ref().is_none_or(|s| s.is_match(&id));
        if applies {
            approval.mode = approval.mode.max(mode);
            if let Some(t) = p.approval_ttl {
                let t = t.as_secs();
                approval.ttl_secs = Some(approval.ttl_secs.map_or(t, |x| x.min(t)));
            }
            // Who may approve is every envelope's say, whether or not it
            // is the one asking for approval: an envelope that only names
            // approvers (or forbids approving one's own request) still
            // binds when another asks.
            if let Some(g) = &e.approver_groups {
                approval.approver_groups.push(g.clone());
            }
            if e.separate_approver == Some(true) {
                approval.separate_approver = true;
            }
        }
    }
    let grants = &profile.grants;
    if grants.restricts() {
        let ok = op.is_some_and(|o| grants.admit(o));
        let mut required = Vec::new();
        if !grants.groups.is_empty() {
            required.push(format!("groups {}", list(&grants.groups)));
        }
        if !grants.subjects.is_empty() {
            required.push(format!("subjects {}", list(&grants.subjects)));
        }
        conditions.push(Condition {
            field: "profile_grants".into(),
            source: format!("profile {id}"),
            ok,
            required: if required.is_empty() {
                "an operator granted this profile (its grants were all revoked)".into()
            } else {
                format!(
                    "an operator granted this profile: {}",
                    required.join(" or ")
                )
            },
            seen: op
                .map(|o| format!("{} in {}", o.subject, list(&o.groups)))
                .unwrap_or_else(|| "no operator session".into()),
            fix: (!ok).then(|| match op {
                None => "this profile is granted to named operators; run craik login".to_string(),
                Some(o) => format!(
                    "not granted to you; ask an operator who may grant it (a policy's admin, or one granted it) to run: craik auth grant {id} --to-subject {}",
                    o.subject
                ),
            }),
        });
    }
    if approval.mode == RequireApproval::EachRun && approval.ttl_secs.is_none() {
        approval.ttl_secs = Some(EACH_RUN_TTL_SECS);
    }
    Evaluation {
        allowed: conditions.iter().all(|c| c.ok),
        conditions,
        approval,
        bound_claims: bound,
    }
}

/// The allocation-free fast path: does everything allow? (The broker
/// calls this per request and builds the full [`Evaluation`] only to
/// explain a denial.)
pub fn allows(policies: &[Policy], profile: &Profile, op: Option<&Operator>) -> bool {
    let id = profile.id.to_string();
    let groups: &[String] = op.map(|o| o.groups.as_slice()).unwrap_or(&[]);
    for p in policies {
        let e = &p.envelope;
        if e.required_operator == Some(true) && op.is_none() {
            return false;
        }
        if let Some(iss) = &e.required_operator_issuer
            && op.is_none_or(|o| &o.issuer != iss)
        {
            return false;
        }
        if let Some(allowed) = &e.allowed_operator_groups
            && !groups.iter().any(|g| allowed.contains(g))
        {
            return false;
        }
        if let Some(allowed) = &e.allowed_operator_subjects
            && op.is_none_or(|o| !allowed.contains(&o.subject))
        {
            return false;
        }
        if let Some(issuers) = &e.allowed_workload_issuers
            && !is_workload_of(op, issuers)
        {
            return false;
        }
        if p.bound_claims.iter().any(|b| bound_match(b, op).is_none()) {
            return false;
        }
        if let Some(kinds) = &e.allowed_credential_kinds
            && !kinds.contains(&profile.kind)
        {
            return false;
        }
        if let Some(set) = &p.allowed_profiles
            && !set.is_match(&id)
        {
            return false;
        }
        if let Some(set) = &p.denied_profiles
            && set.is_match(&id)
        {
            return false;
        }
    }
    let g = &profile.grants;
    !g.restricts() || op.is_some_and(|o| g.admit(o))
}

impl Policy {
    fn denied_credential_profiles_set(&self) -> Option<&crate::pattern::PatternSet> {
        self.denied_profiles.as_ref()
    }
}

#[cfg(test)]
mod tests {
    //! Tables of evaluations: envelopes parsed from JSON with the public
    //! parser, profiles and operators built directly. No IdP, no binary,
    //! no home.

    use std::path::Path;

    use super::*;
    use crate::profile::{Grants, Kind, Profile};

    const ISS: &str = "https://idp.example.com";
    const EVIL: &str = "https://evil.example.com";

    fn op(subject: &str, issuer: &str, groups: &[&str]) -> Operator {
        Operator {
            subject: subject.into(),
            issuer: issuer.into(),
            email: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            identity_hash: format!("hmac-sha256:{subject}"),
            workload: None,
        }
    }

    /// A GitHub Actions job (or a pod) from `issuer` with these claims.
    fn job(issuer: &str, claims: serde_json::Value) -> Option<Operator> {
        let claims = claims.as_object().cloned().unwrap_or_default();
        Some(Operator {
            workload: Some(crate::audit::Workload {
                source: "github".into(),
                claims,
            }),
            ..op("repo:my-org/app:ref:refs/heads/main", issuer, &[])
        })
    }

    const GH: &str = "https://token.actions.githubusercontent.com";

    #[test]
    fn bound_claims_bind_workloads_by_glob_and_nested_path() {
        let p = policies(&[r#"{"version": 1,
            "allowed_workload_issuers": ["https://token.actions.githubusercontent.com"],
            "bound_claims": {"repository": "my-org/*", "ref": ["refs/heads/main", "refs/tags/v*"],
                             "kubernetes.io.namespace": "ci", "run_attempt": "1"}}"#]);
        let prof = profile("openai:ci", Kind::OidcExchange);
        let good = serde_json::json!({
            "repository": "my-org/app", "ref": "refs/tags/v1.2", "run_attempt": 1,
            "kubernetes.io": {"namespace": "ci"},
        });
        let e = evaluate(&p, &prof, job(GH, good.clone()).as_ref());
        assert!(e.allowed, "{:?}", e.failures().collect::<Vec<_>>());
        assert_eq!(e.bound_claims["repository"], "my-org/app");
        assert_eq!(e.bound_claims["ref"], "refs/tags/v1.2");
        assert_eq!(e.bound_claims["kubernetes.io.namespace"], "ci");
        assert!(allows(&p, &prof, job(GH, good.clone()).as_ref()));
        // `*` crosses `/`, but a glob must match the whole value.
        for (claim, bad) in [
            ("repository", serde_json::json!("evil-org/my-org/app-x")),
            ("repository", serde_json::json!("my-org")),
            ("ref", serde_json::json!("refs/heads/main-feature")),
            ("ref", serde_json::json!(["refs/heads/dev"])),
            ("run_attempt", serde_json::json!(2)),
            ("repository", serde_json::json!({"name": "my-org/app"})),
        ] {
            let mut c = good.clone();
            c[claim] = bad.clone();
            let e = evaluate(&p, &prof, job(GH, c.clone()).as_ref());
            assert!(!e.allowed, "{claim}={bad} passed");
            assert_eq!(e.first_failure().unwrap().field, "bound_claims");
            assert!(!allows(&p, &prof, job(GH, c).as_ref()), "{claim}={bad}");
        }
        // A missing claim, another issuer, a person, nobody.
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove("repository");
        let e = evaluate(&p, &prof, job(GH, c).as_ref());
        assert!(e.failures().any(|f| f.seen == "no repository claim"));
        let e = evaluate(
            &p,
            &prof,
            job("https://evil.example.com", good.clone()).as_ref(),
        );
        assert_eq!(e.first_failure().unwrap().field, "allowed_workload_issuers");
        for who in [alice(), None] {
            let e = evaluate(&p, &prof, who.as_ref());
            assert!(!e.allowed);
            assert!(!allows(&p, &prof, who.as_ref()));
        }
        // A list value matches when one item does.
        let mut c = good.clone();
        c["ref"] = serde_json::json!(["refs/heads/dev", "refs/heads/main"]);
        assert!(allows(&p, &prof, job(GH, c).as_ref()));
    }

    #[test]
    fn bad_bound_claims_are_refused_by_name() {
        for (json, needle) in [
            (
                r#"{"version": 1, "bound_claims": {}}"#,
                "bound_claims is an empty list",
            ),
            (
                r#"{"version": 1, "bound_claims": {"ref": []}}"#,
                "bound_claims.ref: the list of globs is empty",
            ),
            (
                r#"{"version": 1, "bound_claims": {"ref": "refs/[heads"}}"#,
                "bound_claims.ref",
            ),
            (
                r#"{"version": 1, "bound_claims": {"ref": ""}}"#,
                "a glob is empty",
            ),
            (
                r#"{"version": 1, "bound_claims": {"ref": 3}}"#,
                "bound_claims",
            ),
            (
                r#"{"version": 1, "allowed_workload_issuers": []}"#,
                "allowed_workload_issuers is an empty list",
            ),
        ] {
            let e = Policy::parse(json.as_bytes(), Path::new("p.json")).unwrap_err();
            assert!(e.to_string().contains(needle), "{json}: {e}");
        }
    }

    fn alice() -> Option<Operator> {
        Some(op("alice", ISS, &["eng", "prod-deploy"]))
    }

    fn bob() -> Option<Operator> {
        Some(op("bob", ISS, &["eng"]))
    }

    /// The subject `alice` and group `prod-deploy` from another issuer.
    fn alice_elsewhere() -> Option<Operator> {
        Some(op("alice", EVIL, &["prod-deploy"]))
    }

    fn dave_ops() -> Option<Operator> {
        Some(op("dave", ISS, &["ops"]))
    }

    /// An operator in no group.
    fn svc() -> Option<Operator> {
        Some(op("svc-ci", ISS, &[]))
    }

    /// Envelopes as files `e0.json`, `e1.json`… in order.
    fn policies(envelopes: &[&str]) -> Vec<Policy> {
        envelopes
            .iter()
            .enumerate()
            .map(|(i, json)| {
                let name = format!("e{i}.json");
                Policy::parse(json.as_bytes(), Path::new(&name))
                    .unwrap_or_else(|e| panic!("{name} does not parse: {e}\n{json}"))
            })
            .collect()
    }

    fn profile(id: &str, kind: Kind) -> Profile {
        Profile::new(id.parse().expect("a valid profile id"), kind)
    }

    fn granted(id: &str, groups: &[&str], subjects: &[&str]) -> Profile {
        let mut p = profile(id, Kind::KeyringRef);
        p.grants = Grants {
            groups: groups.iter().map(|g| g.to_string()).collect(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            restricted: true,
            ..Default::default()
        };
        p
    }

    const EMPTY: &str = r#"{"version": 1}"#;
    const REQ: &str = r#"{"version": 1, "required_operator": true}"#;
    const REQ_FALSE: &str = r#"{"version": 1, "required_operator": false}"#;
    const ISSUER: &str = r#"{"version": 1, "required_operator_issuer": "https://idp.example.com"}"#;
    const ISSUER_SLASH: &str =
        r#"{"version": 1, "required_operator_issuer": "https://idp.example.com/"}"#;
    const GROUPS: &str = r#"{"version": 1, "allowed_operator_groups": ["prod-deploy", "sre"]}"#;
    const GROUPS_ENG: &str = r#"{"version": 1, "allowed_operator_groups": ["eng"]}"#;
    const SUBJECTS: &str = r#"{"version": 1, "allowed_operator_subjects": ["alice", "ci-bot"]}"#;
    const KINDS: &str =
        r#"{"version": 1, "allowed_credential_kinds": ["keyring-ref", "secret-ref"]}"#;
    const KINDS_OAUTH: &str = r#"{"version": 1, "allowed_credential_kinds": ["oauth"]}"#;
    const PROD: &str = r#"{"version": 1, "allowed_credential_profiles": ["anthropic:prod-*"]}"#;
    const ONE_STAR: &str = r#"{"version": 1, "allowed_credential_profiles": ["anthropic*"]}"#;
    const TWO_STARS: &str = r#"{"version": 1, "allowed_credential_profiles": ["anthropic**"]}"#;
    const ANY_CI: &str = r#"{"version": 1, "allowed_credential_profiles": ["*:ci"]}"#;
    const CI_ONE: &str = r#"{"version": 1, "allowed_credential_profiles": ["openai:ci-?"]}"#;
    const UPPER: &str = r#"{"version": 1, "allowed_credential_profiles": ["openai:Prod"]}"#;
    const PROD_ANY: &str = r#"{"version": 1, "denied_credential_profiles": ["**:*prod*"]}"#;
    const DOT: &str = r#"{"version": 1, "allowed_credential_profiles": ["openai:x.y"]}"#;
    const CHAT: &str = r#"{"version": 1, "allowed_credential_profiles": ["chat_completions:*"]}"#;
    const DENIED: &str =
        r#"{"version": 1, "denied_credential_profiles": ["*:personal-*", "**prod**"]}"#;
    const ALLOW_DENY: &str = r#"{"version": 1,
        "allowed_credential_profiles": ["openai:*"],
        "denied_credential_profiles": ["openai:prod-*"]}"#;
    /// Every condition, written in the reverse of the order evaluated.
    const STRICT: &str = r#"{
        "denied_credential_profiles": ["*:personal-*"],
        "allowed_credential_profiles": ["anthropic:*"],
        "allowed_credential_kinds": ["secret-ref"],
        "allowed_operator_subjects": ["alice"],
        "allowed_operator_groups": ["prod-deploy"],
        "required_operator_issuer": "https://idp.example.com",
        "required_operator": true,
        "version": 1}"#;
    const EACH_RUN: &str = r#"{"version": 1, "require_approval": "each_run"}"#;

    struct Row {
        name: &'static str,
        envelopes: &'static [&'static str],
        profile: Profile,
        op: Option<Operator>,
        /// Every condition evaluated, by field, in order.
        conditions: &'static [&'static str],
        /// The failing ones, as (source, field), in order.
        failures: &'static [(&'static str, &'static str)],
        /// What the first failure saw, when given.
        seen: Option<&'static str>,
        /// Words the first failure's fix must hold, when given.
        fix: Option<&'static str>,
    }

    fn row(
        name: &'static str,
        envelopes: &'static [&'static str],
        profile: Profile,
        op: Option<Operator>,
        conditions: &'static [&'static str],
        failures: &'static [(&'static str, &'static str)],
    ) -> Row {
        Row {
            name,
            envelopes,
            profile,
            op,
            conditions,
            failures,
            seen: None,
            fix: None,
        }
    }

    impl Row {
        fn seen(mut self, s: &'static str) -> Row {
            self.seen = Some(s);
            self
        }

        fn fix(mut self, s: &'static str) -> Row {
            self.fix = Some(s);
            self
        }
    }

    const ALL_FIELDS: &[&str] = &[
        "required_operator",
        "required_operator_issuer",
        "allowed_operator_groups",
        "allowed_operator_subjects",
        "allowed_credential_kinds",
        "allowed_credential_profiles",
        "denied_credential_profiles",
        "profile_grants",
    ];

    #[rustfmt::skip]
    fn rows() -> Vec<Row> {
        use Kind::*;
        let p = profile;
        vec![
            // Nothing in force.
            row("no envelope, no grants", &[], p("openai:ci", ApiKey), None, &[], &[]),
            row("an envelope of only a version", &[EMPTY], p("openai:ci", ApiKey), None, &[], &[]),
            // required_operator.
            row("operator required, none logged in", &[REQ], p("openai:ci", ApiKey), None,
                &["required_operator"], &[("e0.json", "required_operator")])
                .seen("no operator session")
                .fix("craik login"),
            row("operator required and logged in", &[REQ], p("openai:ci", ApiKey), alice(),
                &["required_operator"], &[]),
            row("required_operator false is as if left out", &[REQ_FALSE], p("openai:ci", ApiKey),
                None, &[], &[]),
            // required_operator_issuer.
            row("issuer matches", &[ISSUER], p("openai:ci", ApiKey), alice(),
                &["required_operator_issuer"], &[]),
            row("issuer differs", &[ISSUER], p("openai:ci", ApiKey), alice_elsewhere(),
                &["required_operator_issuer"], &[("e0.json", "required_operator_issuer")])
                .seen(EVIL)
                .fix("craik login --issuer https://idp.example.com"),
            row("issuer required, none logged in", &[ISSUER], p("openai:ci", ApiKey), None,
                &["required_operator_issuer"], &[("e0.json", "required_operator_issuer")])
                .seen("no operator session"),
            row("issuer compared exactly (trailing slash)", &[ISSUER_SLASH], p("openai:ci", ApiKey),
                alice(), &["required_operator_issuer"],
                &[("e0.json", "required_operator_issuer")])
                .seen(ISS),
            // allowed_operator_groups.
            row("operator in an allowed group", &[GROUPS], p("openai:ci", ApiKey), alice(),
                &["allowed_operator_groups"], &[]),
            row("operator in no allowed group", &[GROUPS], p("openai:ci", ApiKey), bob(),
                &["allowed_operator_groups"], &[("e0.json", "allowed_operator_groups")])
                .seen("[eng]")
                .fix("needs one of [prod-deploy, sre], you have [eng]"),
            row("operator in no group at all", &[GROUPS], p("openai:ci", ApiKey), svc(),
                &["allowed_operator_groups"], &[("e0.json", "allowed_operator_groups")])
                .seen("[]"),
            row("groups required, none logged in", &[GROUPS], p("openai:ci", ApiKey), None,
                &["allowed_operator_groups"], &[("e0.json", "allowed_operator_groups")])
                .seen("no operator session"),
            row("group names are case-sensitive", &[GROUPS], p("openai:ci", ApiKey),
                Some(op("carol", ISS, &["Prod-Deploy"])),
                &["allowed_operator_groups"], &[("e0.json", "allowed_operator_groups")]),
            // allowed_operator_subjects.
            row("subject listed", &[SUBJECTS], p("openai:ci", ApiKey), alice(),
                &["allowed_operator_subjects"], &[]),
            row("subject not listed", &[SUBJECTS], p("openai:ci", ApiKey), bob(),
                &["allowed_operator_subjects"], &[("e0.json", "allowed_operator_subjects")])
                .seen("bob")
                .fix("allowed_operator_subjects"),
            row("subjects required, none logged in", &[SUBJECTS], p("openai:ci", ApiKey), None,
                &["allowed_operator_subjects"], &[("e0.json", "allowed_operator_subjects")])
                .seen("no operator session"),
            // allowed_credential_kinds.
            row("kind allowed", &[KINDS], p("openai:ci", SecretRef), None,
                &["allowed_credential_kinds"], &[]),
            row("kind not allowed", &[KINDS], p("openai:ci", ApiKey), None,
                &["allowed_credential_kinds"], &[("e0.json", "allowed_credential_kinds")])
                .seen("api-key")
                .fix("store the credential as one of [keyring-ref, secret-ref]"),
            row("oauth allowed by name", &[KINDS_OAUTH], p("gemini:adc", OAuth), None,
                &["allowed_credential_kinds"], &[]),
            row("marker not among [oauth]", &[KINDS_OAUTH], p("gemini:cli", Marker), None,
                &["allowed_credential_kinds"], &[("e0.json", "allowed_credential_kinds")])
                .seen("marker"),
            // allowed_credential_profiles.
            row("prod-* matches prod-eu", &[PROD], p("anthropic:prod-eu", ApiKey), None,
                &["allowed_credential_profiles"], &[]),
            row("prod-* matches prod- itself", &[PROD], p("anthropic:prod-", ApiKey), None,
                &["allowed_credential_profiles"], &[]),
            row("prod-* does not match staging", &[PROD], p("anthropic:staging", ApiKey), None,
                &["allowed_credential_profiles"], &[("e0.json", "allowed_credential_profiles")])
                .seen("anthropic:staging")
                .fix("use a profile matching [anthropic:prod-*]"),
            row("another family's prod-eu", &[PROD], p("openai:prod-eu", ApiKey), None,
                &["allowed_credential_profiles"], &[("e0.json", "allowed_credential_profiles")]),
            row("* stops at ':'", &[ONE_STAR], p("anthropic:work", ApiKey), None,
                &["allowed_credential_profiles"], &[("e0.json", "allowed_credential_profiles")]),
            row("** crosses ':'", &[TWO_STARS], p("anthropic:work", ApiKey), None,
                &["allowed_credential_profiles"], &[]),
            row("*:ci in one family", &[ANY_CI], p("openai:ci", ApiKey), None,
                &["allowed_credential_profiles"], &[]),
            row("*:ci in another", &[ANY_CI], p("anthropic:ci", ApiKey), None,
                &["allowed_credential_profiles"], &[]),
            row("*:ci is anchored", &[ANY_CI], p("openai:ci2", ApiKey), None,
                &["allowed_credential_profiles"], &[("e0.json", "allowed_credential_profiles")]),
            row("? is one character", &[CI_ONE], p("openai:ci-1", ApiKey), None,
                &["allowed_credential_profiles"], &[]),
            row("? is not two", &[CI_ONE], p("openai:ci-12", ApiKey), None,
                &["allowed_credential_profiles"], &[("e0.json", "allowed_credential_profiles")]),
            row("? is not none", &[CI_ONE], p("openai:ci-", ApiKey), None,
                &["allowed_credential_profiles"], &[("e0.json", "allowed_credential_profiles")]),
            row("patterns ignore case", &[UPPER], p("openai:prod", ApiKey), None,
                &["allowed_credential_profiles"], &[]),
            row("a deny pattern catches an upper-case id", &[PROD_ANY], p("openai:PROD-eu", ApiKey), None,
                &["denied_credential_profiles"], &[("e0.json", "denied_credential_profiles")]),
            row("'.' is literal", &[DOT], p("openai:xzy", ApiKey), None,
                &["allowed_credential_profiles"], &[("e0.json", "allowed_credential_profiles")]),
            row("'.' matches itself", &[DOT], p("openai:x.y", ApiKey), None,
                &["allowed_credential_profiles"], &[]),
            row("local:x is matched as chat_completions:x", &[CHAT], p("local:llama", ApiKey),
                None, &["allowed_credential_profiles"], &[]),
            // denied_credential_profiles.
            row("denied by the first pattern", &[DENIED], p("openai:personal-x", ApiKey), None,
                &["denied_credential_profiles"], &[("e0.json", "denied_credential_profiles")])
                .seen("openai:personal-x matches *:personal-*")
                .fix("denied by this policy"),
            row("denied by ** across ':'", &[DENIED], p("anthropic:prod-eu", ApiKey), None,
                &["denied_credential_profiles"], &[("e0.json", "denied_credential_profiles")])
                .seen("anthropic:prod-eu matches **prod**"),
            row("both patterns match: the first listed is named", &[DENIED],
                p("openai:personal-prod", ApiKey), None,
                &["denied_credential_profiles"], &[("e0.json", "denied_credential_profiles")])
                .seen("openai:personal-prod matches *:personal-*"),
            row("matches no denied pattern", &[DENIED], p("openai:ci", ApiKey), None,
                &["denied_credential_profiles"], &[]),
            row("allowed and denied: the denial wins", &[ALLOW_DENY], p("openai:prod-a", ApiKey),
                None, &["allowed_credential_profiles", "denied_credential_profiles"],
                &[("e0.json", "denied_credential_profiles")]),
            row("allowed and denied: not allowed", &[ALLOW_DENY], p("anthropic:x", ApiKey), None,
                &["allowed_credential_profiles", "denied_credential_profiles"],
                &[("e0.json", "allowed_credential_profiles")]),
            row("allowed and denied: allowed", &[ALLOW_DENY], p("openai:ci", ApiKey), None,
                &["allowed_credential_profiles", "denied_credential_profiles"], &[]),
            // Grants on the profile.
            row("granted group: operator not in it", &[], granted("openai:ci", &["ops"], &[]),
                alice(), &["profile_grants"], &[("profile openai:ci", "profile_grants")])
                .seen("alice in [eng, prod-deploy]")
                .fix("craik auth grant openai:ci --to-subject alice"),
            row("granted group: operator in it", &[], granted("openai:ci", &["ops"], &[]),
                dave_ops(), &["profile_grants"], &[]),
            row("granted subject: that operator", &[], granted("openai:ci", &[], &["bob"]),
                bob(), &["profile_grants"], &[]),
            row("granted subject: another operator", &[], granted("openai:ci", &[], &["bob"]),
                alice(), &["profile_grants"], &[("profile openai:ci", "profile_grants")]),
            row("granted group or subject: the subject", &[],
                granted("openai:ci", &["ops"], &["bob"]), bob(), &["profile_grants"], &[]),
            row("granted group or subject: the group", &[],
                granted("openai:ci", &["ops"], &["bob"]), dave_ops(), &["profile_grants"], &[]),
            row("grants, none logged in", &[], granted("openai:ci", &["ops"], &["bob"]), None,
                &["profile_grants"], &[("profile openai:ci", "profile_grants")])
                .seen("no operator session")
                .fix("run craik login"),
            row("envelopes allow, grants do not", &[GROUPS, KINDS],
                granted("openai:ci", &["ops"], &[]), alice(),
                &["allowed_operator_groups", "allowed_credential_kinds", "profile_grants"],
                &[("profile openai:ci", "profile_grants")]),
            // Several envelopes: all must allow.
            row("two envelopes allow", &[GROUPS, KINDS], p("openai:ci", SecretRef), alice(),
                &["allowed_operator_groups", "allowed_credential_kinds"], &[]),
            row("the second envelope denies alone", &[GROUPS, KINDS], p("openai:ci", ApiKey),
                alice(), &["allowed_operator_groups", "allowed_credential_kinds"],
                &[("e1.json", "allowed_credential_kinds")]),
            row("both deny: the first envelope's is first", &[KINDS, GROUPS],
                p("openai:ci", ApiKey), bob(),
                &["allowed_credential_kinds", "allowed_operator_groups"],
                &[("e0.json", "allowed_credential_kinds"), ("e1.json", "allowed_operator_groups")])
                .seen("api-key"),
            row("the same field in two envelopes: both hold", &[GROUPS, GROUPS_ENG],
                p("openai:ci", ApiKey), alice(),
                &["allowed_operator_groups", "allowed_operator_groups"], &[]),
            row("the same field in two envelopes: one fails", &[GROUPS, GROUPS_ENG],
                p("openai:ci", ApiKey), bob(),
                &["allowed_operator_groups", "allowed_operator_groups"],
                &[("e0.json", "allowed_operator_groups")]),
            row("an empty envelope beside a denying one", &[EMPTY, REQ], p("openai:ci", ApiKey),
                None, &["required_operator"], &[("e1.json", "required_operator")]),
            // Every condition evaluated; the first failing one reported.
            row("everything fails: evaluated in a fixed order, whatever the file's",
                &[STRICT], granted("openai:personal-x", &["ops"], &[]), None, ALL_FIELDS,
                &[
                    ("e0.json", "required_operator"),
                    ("e0.json", "required_operator_issuer"),
                    ("e0.json", "allowed_operator_groups"),
                    ("e0.json", "allowed_operator_subjects"),
                    ("e0.json", "allowed_credential_kinds"),
                    ("e0.json", "allowed_credential_profiles"),
                    ("e0.json", "denied_credential_profiles"),
                    ("profile openai:personal-x", "profile_grants"),
                ])
                .seen("no operator session"),
            row("the operator passes, the credential does not", &[STRICT],
                granted("openai:personal-x", &["ops"], &[]), alice(), ALL_FIELDS,
                &[
                    ("e0.json", "allowed_credential_kinds"),
                    ("e0.json", "allowed_credential_profiles"),
                    ("e0.json", "denied_credential_profiles"),
                    ("profile openai:personal-x", "profile_grants"),
                ])
                .seen("keyring-ref"),
            row("the same subject and group from another issuer", &[STRICT],
                p("anthropic:work", SecretRef), alice_elsewhere(), &ALL_FIELDS[..7],
                &[("e0.json", "required_operator_issuer")])
                .seen(EVIL),
            row("everything holds", &[STRICT], p("anthropic:work", SecretRef), alice(),
                &ALL_FIELDS[..7], &[]),
            // Approval is no condition: it never denies.
            row("approval required, nothing else", &[EACH_RUN], p("openai:ci", ApiKey), None,
                &[], &[]),
        ]
    }

    #[test]
    fn evaluation_table() {
        let rows = rows();
        assert!(rows.len() >= 50, "{} rows", rows.len());
        let mut errors = Vec::new();
        for r in &rows {
            let ps = policies(r.envelopes);
            let ev = evaluate(&ps, &r.profile, r.op.as_ref());
            let mut bad = |what: String| errors.push(format!("{}: {what}", r.name));
            let fields: Vec<&str> = ev.conditions.iter().map(|c| c.field.as_str()).collect();
            if fields != r.conditions {
                bad(format!("conditions {fields:?}, want {:?}", r.conditions));
            }
            let failures: Vec<(&str, &str)> = ev
                .failures()
                .map(|c| (c.source.as_str(), c.field.as_str()))
                .collect();
            if failures != r.failures {
                bad(format!("failures {failures:?}, want {:?}", r.failures));
            }
            if ev.allowed != r.failures.is_empty() {
                bad(format!("allowed {}", ev.allowed));
            }
            let first = ev
                .first_failure()
                .map(|c| (c.source.as_str(), c.field.as_str()));
            if first != r.failures.first().copied() {
                bad(format!("first failure {first:?}"));
            }
            let fast = allows(&ps, &r.profile, r.op.as_ref());
            if fast != ev.allowed {
                bad(format!("allows says {fast}, evaluate says {}", ev.allowed));
            }
            for c in &ev.conditions {
                if c.fix.is_some() == c.ok || c.fix.as_deref() == Some("") {
                    bad(format!("{}: ok {} but fix {:?}", c.field, c.ok, c.fix));
                }
                if c.required.is_empty() || c.seen.is_empty() {
                    bad(format!(
                        "{}: required {:?}, seen {:?}",
                        c.field, c.required, c.seen
                    ));
                }
            }
            if let (Some(want), Some(c)) = (r.seen, ev.first_failure())
                && c.seen != want
            {
                bad(format!("first failure saw {:?}, want {want:?}", c.seen));
            }
            if let (Some(want), Some(c)) = (r.fix, ev.first_failure())
                && !c.fix.as_deref().unwrap_or_default().contains(want)
            {
                bad(format!("first failure's fix {:?} lacks {want:?}", c.fix));
            }
            if (r.seen.is_some() || r.fix.is_some()) && ev.first_failure().is_none() {
                bad("no failure to check seen/fix on".into());
            }
        }
        assert!(
            errors.is_empty(),
            "{} of {} rows:\n{}",
            errors.len(),
            rows.len(),
            errors.join("\n")
        );
    }

    /// What each condition asks for, as `policy explain` shows it.
    #[test]
    fn required_texts() {
        let ps = policies(&[STRICT]);
        let ev = evaluate(&ps, &granted("openai:ci", &["ops"], &["bob"]), None);
        let required: Vec<(&str, &str)> = ev
            .conditions
            .iter()
            .map(|c| (c.field.as_str(), c.required.as_str()))
            .collect();
        assert_eq!(
            required,
            [
                ("required_operator", "a logged-in operator"),
                ("required_operator_issuer", ISS),
                ("allowed_operator_groups", "one of [prod-deploy]"),
                ("allowed_operator_subjects", "one of [alice]"),
                ("allowed_credential_kinds", "one of [secret-ref]"),
                (
                    "allowed_credential_profiles",
                    "a profile matching [anthropic:*]"
                ),
                (
                    "denied_credential_profiles",
                    "no profile matching [*:personal-*]"
                ),
                (
                    "profile_grants",
                    "an operator granted this profile: groups [ops] or subjects [bob]"
                ),
            ]
        );
    }

    struct ApprovalRow {
        name: &'static str,
        envelopes: &'static [&'static str],
        profile: &'static str,
        mode: RequireApproval,
        approver_groups: &'static [&'static [&'static str]],
        separate_approver: bool,
        required_operator: bool,
    }

    const FIRST_USE: &str = r#"{"version": 1, "require_approval": "first_use"}"#;
    const NEVER: &str = r#"{"version": 1, "require_approval": "never"}"#;
    const PROD_EACH_RUN: &str =
        r#"{"version": 1, "require_approval": "each_run", "approval_profiles": ["*:prod-*"]}"#;
    const LEADS: &str =
        r#"{"version": 1, "require_approval": "first_use", "approver_groups": ["leads"]}"#;
    const SEC_OPS: &str = r#"{"version": 1, "require_approval": "first_use",
        "approver_groups": ["sec", "ops"], "separate_approver": true}"#;
    const SEPARATE_FALSE: &str =
        r#"{"version": 1, "require_approval": "first_use", "separate_approver": false}"#;
    const APPROVERS_ONLY: &str =
        r#"{"version": 1, "approver_groups": ["leads"], "separate_approver": true}"#;
    const REGULATED: &str = include_str!("../../policies/regulated-team.json");
    const CI_AUTOMATION: &str = include_str!("../../policies/ci-automation.json");

    #[test]
    fn approval_table() {
        use RequireApproval::*;
        let a = |name,
                 envelopes,
                 profile,
                 mode,
                 approver_groups,
                 separate_approver,
                 required_operator| ApprovalRow {
            name,
            envelopes,
            profile,
            mode,
            approver_groups,
            separate_approver,
            required_operator,
        };
        #[rustfmt::skip]
        let rows = [
            a("nothing in force", &[][..], "openai:ci", Never, &[][..], false, false),
            a("an empty envelope", &[EMPTY], "openai:ci", Never, &[], false, false),
            a("first_use", &[FIRST_USE], "openai:ci", FirstUse, &[], false, false),
            a("each_run", &[EACH_RUN], "openai:ci", EachRun, &[], false, false),
            a("never", &[NEVER], "openai:ci", Never, &[], false, false),
            a("the strictest mode: each_run after first_use", &[FIRST_USE, EACH_RUN],
              "openai:ci", EachRun, &[], false, false),
            a("the strictest mode: each_run before first_use", &[EACH_RUN, FIRST_USE],
              "openai:ci", EachRun, &[], false, false),
            a("never does not relax another envelope", &[FIRST_USE, NEVER],
              "openai:ci", FirstUse, &[], false, false),
            a("approval_profiles covers prod-a", &[PROD_EACH_RUN], "openai:prod-a", EachRun,
              &[], false, false),
            a("approval_profiles does not cover ci", &[PROD_EACH_RUN], "openai:ci", Never, &[],
              false, false),
            a("approver groups: one list per envelope", &[LEADS, SEC_OPS], "openai:ci",
              FirstUse, &[&["leads"], &["sec", "ops"]], true, false),
            a("separate_approver false", &[SEPARATE_FALSE], "openai:ci", FirstUse, &[], false,
              false),
            a("separate_approver from any envelope", &[SEC_OPS, SEPARATE_FALSE], "openai:ci",
              FirstUse, &[&["sec", "ops"]], true, false),
            a("approver rules from an envelope that asks no approval", &[FIRST_USE, APPROVERS_ONLY],
              "openai:ci", FirstUse, &[&["leads"]], true, false),
            a("required_operator without approval", &[REQ], "openai:ci", Never, &[], false,
              true),
            a("required_operator beside approval", &[FIRST_USE, REQ], "openai:ci", FirstUse, &[],
              false, true),
            a("regulated team, a prod profile", &[REGULATED], "openai:prod-a", FirstUse,
              &[&["approvers"]], true, true),
            a("regulated team, another profile", &[REGULATED], "openai:ci", Never, &[], false,
              true),
            a("ci automation", &[CI_AUTOMATION], "openai:ci", EachRun, &[&["prod-deploy"]],
              false, true),
        ];
        let mut errors = Vec::new();
        for r in &rows {
            let ps = policies(r.envelopes);
            let pr = profile(r.profile, Kind::KeyringRef);
            for who in [None, alice()] {
                let got = evaluate(&ps, &pr, who.as_ref()).approval;
                let want = ApprovalRule {
                    mode: r.mode,
                    approver_groups: r
                        .approver_groups
                        .iter()
                        .map(|l| l.iter().map(|g| g.to_string()).collect())
                        .collect(),
                    separate_approver: r.separate_approver,
                    required_operator: r.required_operator,
                    ttl_secs: (r.mode == RequireApproval::EachRun).then_some(EACH_RUN_TTL_SECS),
                    issuers: got.issuers.clone(),
                };
                if got != want {
                    errors.push(format!(
                        "{} (operator {:?}): {got:?}, want {want:?}",
                        r.name,
                        who.map(|o| o.subject)
                    ));
                }
            }
        }
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }

    /// The examples in `policies/`, for the operators and profiles their
    /// descriptions in docs/policy.md name.
    #[test]
    fn example_policies() {
        use Kind::*;
        let solo = include_str!("../../policies/solo-developer.json");
        let deployer = Some(op("erin", ISS, &["prod-deploy"]));
        let ci_bot = Some(op("ci-bot", ISS, &[]));
        /// An envelope, a profile, its kind, the operator, the first failure.
        type Case = (
            &'static str,
            &'static str,
            Kind,
            Option<Operator>,
            Option<&'static str>,
        );
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (solo, "openai:work", KeyringRef, None, None),
            (solo, "openai:work", Marker, None, None),
            (solo, "openai:work", ApiKey, None, Some("allowed_credential_kinds")),
            (solo, "openai:prod", KeyringRef, None, Some("denied_credential_profiles")),
            (solo, "anthropic:my-prod-key", SecretRef, None, Some("denied_credential_profiles")),
            (REGULATED, "anthropic:prod-eu", SecretRef, deployer.clone(), None),
            (REGULATED, "anthropic:prod-eu", SecretRef, None, Some("required_operator")),
            (REGULATED, "anthropic:prod-eu", SecretRef, svc(), Some("allowed_operator_groups")),
            (REGULATED, "gemini:x", SecretRef, deployer.clone(), Some("allowed_credential_profiles")),
            (REGULATED, "openai:personal-x", SecretRef, deployer.clone(),
             Some("denied_credential_profiles")),
            (REGULATED, "openai:ci", ApiKey, deployer, Some("allowed_credential_kinds")),
            (CI_AUTOMATION, "openai:ci", SecretRef, ci_bot.clone(), None),
            (CI_AUTOMATION, "anthropic:ci-nightly", SecretRef, alice(), None),
            (CI_AUTOMATION, "openai:ci", SecretRef, bob(), Some("allowed_operator_subjects")),
            (CI_AUTOMATION, "openai:cin", SecretRef, ci_bot, Some("allowed_credential_profiles")),
        ];
        for (json, id, kind, who, want) in cases {
            let ps = policies(&[json]);
            let pr = profile(id, *kind);
            let ev = evaluate(&ps, &pr, who.as_ref());
            let first = ev.first_failure().map(|c| c.field.as_str());
            assert_eq!(first, *want, "{id} {kind} {who:?}: {:?}", ev.conditions);
            assert_eq!(allows(&ps, &pr, who.as_ref()), want.is_none(), "{id}");
        }
    }
}
