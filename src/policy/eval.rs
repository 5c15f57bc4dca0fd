//! Evaluating envelopes (and a profile's grants) for one operator and one
//! profile. Every condition is evaluated; a denial lists each failing one.

use serde::Serialize;

use super::envelope::{Policy, RequireApproval};
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
}

/// The full outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub allowed: bool,
    pub conditions: Vec<Condition>,
    pub approval: ApprovalRule,
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
                    "operator group not allowed: needs one of {}, you have {}",
                    list(allowed),
                    list(groups)
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
        if applies && mode != RequireApproval::Never {
            approval.mode = approval.mode.max(mode);
            if let Some(g) = &e.approver_groups {
                approval.approver_groups.push(g.clone());
            }
            if e.separate_approver == Some(true) {
                approval.separate_approver = true;
            }
        }
    }
    let grants = &profile.grants;
    if !grants.is_empty() {
        let ok = op.is_some_and(|o| {
            grants.subjects.contains(&o.subject)
                || o.groups.iter().any(|g| grants.groups.contains(g))
        });
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
            required: format!(
                "an operator granted this profile: {}",
                required.join(" or ")
            ),
            seen: op
                .map(|o| format!("{} in {}", o.subject, list(&o.groups)))
                .unwrap_or_else(|| "no operator session".into()),
            fix: (!ok).then(|| {
                if op.is_none() {
                    "this profile is granted to named operators; run craik login".to_string()
                } else {
                    format!("ask an owner to run: craik auth grant {id} --to-subject <you>")
                }
            }),
        });
    }
    Evaluation {
        allowed: conditions.iter().all(|c| c.ok),
        conditions,
        approval,
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
    g.is_empty()
        || op.is_some_and(|o| {
            g.subjects.contains(&o.subject) || o.groups.iter().any(|x| g.groups.contains(x))
        })
}

impl Policy {
    fn denied_credential_profiles_set(&self) -> Option<&crate::pattern::PatternSet> {
        self.denied_profiles.as_ref()
    }
}
