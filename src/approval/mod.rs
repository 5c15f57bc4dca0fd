//! Approvals and grants: the approval gate a request passes after policy
//! ([`gate`], called by the broker's pipeline), `auth approve`,
//! `auth approvals`, and `auth grant`/`auth revoke`.

mod gate;
mod team;

pub use gate::gate;
pub use team::{team_approvals, with_team_grants};

use std::path::PathBuf;
use std::time::Duration;

use rand::RngCore;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::Error;
use crate::audit::{NewReceipt, Operator, Receipt, ReceiptKind, Status};
use crate::context::Context;
use crate::operator::OperatorError;
use crate::policy::{self, Evaluation, RequireApproval};
use crate::profile::{Grants, Profile, ProfileError, ProfileId, ProfileStore};
use crate::secret::seal::{Domain, SealKey};

/// A fresh run id, `run_<16 hex>`.
pub fn new_run_id() -> String {
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("run_{}", hex::encode(b))
}

/// Checks a run id given on the command line.
pub fn check_run_id(run: &str) -> crate::Result<()> {
    let ok = !run.is_empty()
        && run.len() <= 128
        && run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(Error::input(
            format!("invalid run id {run:?}"),
            "run ids use letters, digits, '_', '-', '.', ':' (at most 128)",
        ))
    }
}

/// Longest `--wait` for an approval.
pub const MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Reads `--wait` (see [`crate::duration`]): more than zero, at most a
/// week.
pub fn parse_wait(s: &str) -> crate::Result<Duration> {
    Ok(crate::duration::parse_nonzero(s, MAX_WAIT)?)
}

fn load_profile(ctx: &Context, id: &ProfileId) -> crate::Result<Profile> {
    let file = ProfileStore::new(&ctx.home).load()?;
    file.get(id).cloned().ok_or_else(|| file.missing(id).into())
}

/// A stored profile, or the implicit one an environment source of
/// `--provider anthropic` is evaluated as (it holds no grants).
fn load_profile_or_implicit(ctx: &Context, id: &ProfileId) -> crate::Result<Profile> {
    load_profile(ctx, id).or_else(|e| crate::credential::onboard::implicit_profile(id).ok_or(e))
}

/// Evaluates without writing anything (`policy explain`).
pub fn explain(
    ctx: &mut Context,
    id: &ProfileId,
    policy_files: &[PathBuf],
) -> crate::Result<(Evaluation, Option<Operator>)> {
    let policies = policy::load_in_force(&ctx.home, policy_files)?;
    let profile = with_team_grants(ctx, load_profile_or_implicit(ctx, id)?, &policies)?;
    let op = crate::operator::current(ctx)?;
    Ok((policy::evaluate(&policies, &profile, op.as_ref()), op))
}

/// What a request for approval is, and what an approval must match to let
/// it through: the profile and run, the mode, the digest of the envelopes
/// in force, the credential the profile uses now, and who asks.
#[derive(Debug, Clone)]
pub struct Binding {
    pub profile: String,
    pub run: String,
    pub mode: RequireApproval,
    /// [`policy::digest`] of the envelopes in force.
    pub digest: String,
    /// [`crate::credential::binding`] of the profile.
    pub credential: String,
    /// The requester's operator identity hash, if logged in.
    pub requester: Option<String>,
    /// The requester's (issuer, subject), if logged in: what an approval
    /// from another home (whose identity hashes are keyed apart) is told
    /// apart by.
    pub requester_person: Option<(String, String)>,
    pub separate_approver: bool,
    /// The approver rules an approval from another home is checked
    /// against here: every envelope's issuer, one group of each list.
    pub approver_issuers: Vec<String>,
    pub approver_groups: Vec<Vec<String>>,
    /// How long an approval may hold (`approval_ttl`), if limited: an
    /// approval from another home may not say it holds longer.
    pub ttl_secs: Option<u64>,
    /// The team store the envelopes pin (`team_store`): approvals from
    /// other homes count only under one.
    pub team_store: Option<String>,
    /// The `--policy` files the request was made with (named in the
    /// approver's command).
    pub policy_files: Vec<PathBuf>,
}

impl Binding {
    /// The binding of a request for `profile` under `policies` (reads the
    /// credential's identity; nothing leaves craik).
    pub fn of(
        ctx: &mut Context,
        profile: &Profile,
        run: &str,
        policies: &[policy::Policy],
        rule: &policy::ApprovalRule,
        requester: Option<&Operator>,
        policy_files: &[PathBuf],
    ) -> crate::Result<Binding> {
        let credential = if rule.mode == RequireApproval::Never {
            String::new()
        } else {
            crate::credential::binding(ctx, profile)?
        };
        Ok(Binding {
            profile: profile.id.to_string(),
            run: run.to_string(),
            mode: rule.mode,
            digest: policy::digest(policies),
            credential,
            requester: requester.map(|o| o.identity_hash.clone()),
            requester_person: requester.map(|o| (o.issuer.clone(), o.subject.clone())),
            separate_approver: rule.separate_approver,
            approver_issuers: rule.issuers.clone(),
            approver_groups: rule.approver_groups.clone(),
            ttl_secs: rule.ttl_secs,
            team_store: policies.iter().find_map(|p| p.envelope.team_store.clone()),
            policy_files: policy_files.to_vec(),
        })
    }

    /// The `approval_requested` receipt: what the request binds to, and a
    /// seal over it, so a row appended by hand (naming another requester,
    /// to approve one's own request) is not approvable.
    fn request_details(&self, r: NewReceipt, key: &SealKey) -> NewReceipt {
        let files: Vec<String> = self
            .policy_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let r = r
            .detail("mode", self.mode.as_str())
            .detail("policy_digest", self.digest.as_str())
            .detail("credential", self.credential.as_str())
            .detail("policies", files);
        let sealed = request_seal(
            &self.profile,
            &self.run,
            &Value::Object(r.details.clone()),
            self.requester.as_deref(),
        );
        r.detail("seal", key.seal(Domain::Request, &sealed))
    }

    fn policy_args(&self) -> String {
        policy_args(self.policy_files.iter().map(|p| p.display().to_string()))
    }
}

fn policy_args(files: impl Iterator<Item = String>) -> String {
    files.map(|f| format!(" --policy {f}")).collect()
}

/// The bytes a seal covers: the profile, the run, the `fields` of the
/// receipt's details (in that order) and who made it.
fn sealed(profile: &str, run: &str, d: &Value, fields: &[&str], who: Option<&str>) -> Vec<u8> {
    let mut v = vec![Value::from(profile), Value::from(run)];
    v.extend(
        fields
            .iter()
            .map(|k| d.get(*k).cloned().unwrap_or(Value::Null)),
    );
    v.push(who.into());
    serde_json::to_vec(&v).expect("json serializes")
}

/// What an approval's seal covers: every field the gate matches on, and
/// who approved.
fn approval_seal(profile: &str, run: &str, d: &Value, approver: Option<&str>) -> Vec<u8> {
    const FIELDS: [&str; 6] = [
        "mode",
        "request",
        "policy_digest",
        "credential",
        "requester",
        "expires_at",
    ];
    sealed(profile, run, d, &FIELDS, approver)
}

/// What an approval request's seal covers, and who asked.
fn request_seal(profile: &str, run: &str, d: &Value, requester: Option<&str>) -> Vec<u8> {
    const FIELDS: [&str; 4] = ["mode", "policy_digest", "credential", "policies"];
    sealed(profile, run, d, &FIELDS, requester)
}

/// The profile a request from another home names, for evaluating what
/// policy asks of it.
fn requested_profile(id: &ProfileId, request: &Receipt) -> crate::Result<Profile> {
    let bad = || {
        Error::input(
            format!("the request for {id} names no credential kind or provider this craik knows"),
            "approve it with a craik of the requester's version",
        )
    };
    let kind = request
        .auth_kind
        .as_deref()
        .and_then(|k| k.parse().ok())
        .ok_or_else(bad)?;
    let provider_family = request
        .provider_family
        .as_deref()
        .and_then(|f| f.parse().ok())
        .ok_or_else(bad)?;
    Ok(Profile {
        id: id.clone(),
        kind,
        provider_family,
        metadata: Default::default(),
        base_url: None,
        created_at: chrono::Utc::now(),
        last_used_at: None,
        last_validated_at: None,
        last_status: None,
        grants: Default::default(),
    })
}

fn details_of(r: &Receipt) -> Value {
    serde_json::from_str(&r.details).unwrap_or(Value::Null)
}

fn text<'a>(d: &'a Value, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Value::as_str)
}

/// How many recent requests or approvals of a profile are looked through.
const CANDIDATES: usize = 64;

/// Whether the approval `a` (details `d`) binds to `want` as it is now:
/// the same envelopes and credential, not expired, and for `each_run` the
/// same run and requester.
fn binds(a: &Receipt, d: &Value, want: &Binding) -> bool {
    if text(d, "policy_digest") != Some(want.digest.as_str())
        || text(d, "credential") != Some(want.credential.as_str())
    {
        return false;
    }
    if let Some(exp) = text(d, "expires_at") {
        match chrono::DateTime::parse_from_rfc3339(exp) {
            Ok(t) if t > chrono::Utc::now() => {}
            _ => return false,
        }
    }
    if want.mode == RequireApproval::EachRun
        && (a.run_id.as_deref() != Some(want.run.as_str())
            || text(d, "requester") != want.requester.as_deref())
    {
        return false;
    }
    true
}

/// An approval that let a request through: its receipt id, and when it
/// stops holding (a running proxy re-checks then).
#[derive(Debug, Clone)]
pub struct Approval {
    pub id: String,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The home whose chain in the team store holds it, when it was made
    /// on another machine.
    pub home: Option<String>,
}

fn expiry(a: &Receipt) -> Option<chrono::DateTime<chrono::Utc>> {
    text(&details_of(a), "expires_at")
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// This home's requests for `want` (sealed here, same envelopes,
/// credential and requester), in `run` when given: their receipt ids.
fn requests(ctx: &mut Context, want: &Binding, run: Option<&str>) -> crate::Result<Vec<String>> {
    let found = ctx.audit()?.0.find_recent(
        &want.profile,
        ReceiptKind::ApprovalRequested,
        run,
        CANDIDATES,
    )?;
    let key = SealKey::load(&ctx.secrets)?;
    Ok(found
        .into_iter()
        .filter(|r| {
            let d = details_of(r);
            let sealed = request_seal(
                &want.profile,
                r.run_id.as_deref().unwrap_or_default(),
                &d,
                r.operator_identity_hash.as_deref(),
            );
            text(&d, "seal").is_some_and(|s| key.verify(Domain::Request, &sealed, s))
            && text(&d, "policy_digest") == Some(want.digest.as_str())
            && text(&d, "credential") == Some(want.credential.as_str())
            // Within a run, the request is this requester's.
            && (run.is_none() || r.operator_identity_hash.as_deref() == want.requester.as_deref())
        })
        .map(|r| r.id)
        .collect())
}

/// The outcome of `craik auth approve`.
#[derive(Debug, Serialize)]
pub struct Approved {
    /// The requester's home (its label), for a request from another
    /// machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    pub profile: String,
    pub run: String,
    pub approver: Option<String>,
    pub receipt: String,
    /// When the approval stops holding (`approval_ttl`), if ever.
    pub expires_at: Option<String>,
    /// False when someone had already approved it.
    pub new: bool,
}

/// `craik auth approve <id> --run=<run>`: approves the newest request for
/// the profile and run, under the same envelopes it was made under, when
/// the approver meets every envelope's approver rules. The approval is
/// sealed, and binds to the request's envelopes, credential and
/// requester, with the envelopes' `approval_ttl`.
pub fn approve(
    ctx: &mut Context,
    id: &ProfileId,
    run: &str,
    policy_files: &[PathBuf],
    in_team: bool,
) -> crate::Result<Approved> {
    check_run_id(run)?;
    let policies = policy::load_in_force(&ctx.home, policy_files)?;
    let key = id.to_string();
    let seal_key = SealKey::load(&ctx.secrets)?;
    // The request: this home's newest (sealed here), or with --team the
    // newest in another home's chain (vouched for by the server).
    let (request, request_home, request_label) = if in_team {
        let t = team::request(ctx, &key, run)?;
        (t.receipt, Some(t.home_id), Some(t.label))
    } else {
        let request = ctx
            .audit()?
            .0
            .find_recent(&key, ReceiptKind::ApprovalRequested, Some(run), 1)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::input(
                    format!("no approval request for {key} in run {run}"),
                    "requests are made by craik auth check (or exec/proxy) when a policy asks for approval; list them with: craik auth approvals --pending (a request made on another machine: craik auth approve --team)",
                )
            })?;
        let rd = details_of(&request);
        let request_ok = rd.get("seal").and_then(Value::as_str).is_some_and(|s| {
            seal_key.verify(
                Domain::Request,
                &request_seal(&key, run, &rd, request.operator_identity_hash.as_deref()),
                s,
            )
        });
        if !request_ok {
            return Err(Error::input(
                format!(
                    "the newest approval request for {key} in run {run} was not made by craik here (its seal does not verify)"
                ),
                "nothing was approved; run the request again (craik auth check ... --run) and check the audit log: craik receipts verify",
            ));
        }
        (request, None, None)
    };
    let rd = details_of(&request);
    // The approver's home may not hold the profile: what policy asks of
    // it depends on its id, kind and family, which the request names.
    let profile = match load_profile_or_implicit(ctx, id) {
        Ok(p) => p,
        Err(_) if in_team => requested_profile(id, &request)?,
        Err(e) => return Err(e),
    };
    let asked_with = policy_args(
        rd.get("policies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string)),
    );
    if rd.get("policy_digest").and_then(Value::as_str) != Some(policy::digest(&policies).as_str()) {
        return Err(Error::input(
            format!(
                "the request for {key} in run {run} was made under other policies than those in force here"
            ),
            format!(
                "approve under the policies it was made with: craik auth approve {key} --run={run}{asked_with}"
            ),
        ));
    }
    let rule = policy::evaluate(&policies, &profile, None).approval;
    if rule.mode == RequireApproval::Never {
        return Err(Error::input(
            format!("no policy in force asks for approval of {key}"),
            format!(
                "approve under the policies the request was made with: craik auth approve {key} --run={run}{asked_with}"
            ),
        ));
    }
    let approver = crate::operator::current(ctx)?;
    let needs_identity =
        rule.required_operator || rule.separate_approver || !rule.approver_groups.is_empty();
    if needs_identity && approver.is_none() {
        return Err(OperatorError::NotLoggedIn.into());
    }
    let deny = |ctx: &mut Context, field: &str, message: String| -> crate::Result<Approved> {
        let mut r = profile
            .receipt(ReceiptKind::Denial, Status::Denied)
            .operator(approver.clone())
            .run(run)
            .reason(message.clone())
            .detail("request", request.id.as_str());
        r.capability = Some("approve".into());
        r.policy_condition = Some(field.to_string());
        ctx.record(r)?;
        Err(Error::Denied {
            message,
            hint: "ask an operator the policy names as an approver".into(),
            conditions: vec![field.to_string()],
            login_required: false,
        })
    };
    if let Some(a) = &approver {
        if let Some(iss) = rule.issuers.iter().find(|i| **i != a.issuer) {
            return deny(
                ctx,
                "required_operator_issuer",
                format!(
                    "approver not allowed: the policy trusts operators of {iss}, you logged in at {}",
                    a.issuer
                ),
            );
        }
        for groups in &rule.approver_groups {
            if !a.groups.iter().any(|g| groups.contains(g)) {
                return deny(
                    ctx,
                    "approver_groups",
                    format!(
                        "approver not allowed: needs one of [{}], you have [{}]",
                        groups.join(", "),
                        a.groups.join(", ")
                    ),
                );
            }
        }
    }
    if rule.separate_approver {
        match (&request.operator_identity_hash, &approver) {
            (None, _) if request.operator_subject.is_none() => {
                return deny(
                    ctx,
                    "separate_approver",
                    "separate_approver: the request names no operator, so nobody can tell its approver apart".into(),
                );
            }
            (h, Some(a))
                if h.as_deref() == Some(a.identity_hash.as_str())
                    || (request.operator_subject.as_deref() == Some(a.subject.as_str())
                        && request.operator_issuer.as_deref() == Some(a.issuer.as_str())) =>
            {
                return deny(
                    ctx,
                    "separate_approver",
                    "separate_approver: nobody may approve their own request".into(),
                );
            }
            _ => {}
        }
    }
    let expires_at = rule
        .ttl_secs
        .map(|t| (chrono::Utc::now() + chrono::Duration::seconds(t as i64)).to_rfc3339());
    let mut d = Map::new();
    d.insert("request".into(), request.id.as_str().into());
    d.insert("mode".into(), rule.mode.as_str().into());
    for k in ["policy_digest", "credential"] {
        d.insert(k.into(), rd.get(k).cloned().unwrap_or(Value::Null));
    }
    d.insert(
        "requester".into(),
        request.operator_identity_hash.clone().into(),
    );
    if let Some(e) = &expires_at {
        d.insert("expires_at".into(), e.as_str().into());
    }
    if let Some(s) = &request.operator_subject {
        d.insert("requested_by".into(), s.as_str().into());
    }
    if let Some(h) = &request_home {
        d.insert("request_home".into(), h.as_str().into());
    }
    let sealed = approval_seal(
        &key,
        run,
        &Value::Object(d.clone()),
        approver.as_ref().map(|a| a.identity_hash.as_str()),
    );
    d.insert(
        "seal".into(),
        seal_key.seal(Domain::Approval, &sealed).into(),
    );
    let mut r = profile
        .receipt(ReceiptKind::Approval, Status::Ok)
        .operator(approver.clone())
        .run(run);
    r.details = d;
    let (receipt, new) = ctx.audit()?.0.append_approval(r, &request.id)?;
    if in_team {
        // The requester waits for it: ship it now, not at the end.
        crate::team::ship(ctx)?;
    }
    Ok(Approved {
        home: request_label,
        profile: key,
        run: run.to_string(),
        approver: receipt.operator_subject.clone(),
        expires_at: details_of(&receipt)
            .get("expires_at")
            .and_then(Value::as_str)
            .map(str::to_string),
        receipt: receipt.id,
        new,
    })
}

/// One line of `craik auth approvals`.
#[derive(Debug, Serialize)]
pub struct ApprovalLine {
    pub profile: String,
    pub run: String,
    pub requested_by: Option<String>,
    pub requested_at: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    pub expires_at: Option<String>,
    /// `pending`, `approved` (not used yet), `used` (a call or proxy
    /// session went through on it), `expired`, or `refused` (an approval
    /// whose seal does not verify: not made by craik here).
    pub state: &'static str,
    pub pending: bool,
    /// The `approval_requested` receipt's id.
    pub request: String,
    /// The `approval` receipt's id, once approved.
    pub approval: Option<String>,
}

pub fn approvals(ctx: &mut Context, pending_only: bool) -> crate::Result<Vec<ApprovalLine>> {
    let key = SealKey::load(&ctx.secrets)?;
    let log = &ctx.audit()?.0;
    let requests = log.list(&crate::audit::Filter {
        kind: Some("approval_requested".into()),
        ascending: true,
        ..Default::default()
    })?;
    let mut out = Vec::new();
    for r in requests {
        let (Some(p), Some(run)) = (r.auth_profile_id.clone(), r.run_id.clone()) else {
            continue;
        };
        let a = log
            .find_recent(&p, ReceiptKind::Approval, Some(&run), 64)?
            .into_iter()
            .find(|a| details_of(a).get("request").and_then(Value::as_str) == Some(&r.id));
        let ad = a.as_ref().map(details_of).unwrap_or(Value::Null);
        let expires_at = ad
            .get("expires_at")
            .and_then(Value::as_str)
            .map(str::to_string);
        let state = match &a {
            None => "pending",
            Some(a) => {
                let sealed = approval_seal(&p, &run, &ad, a.operator_identity_hash.as_deref());
                let sealed_ok = ad
                    .get("seal")
                    .and_then(Value::as_str)
                    .is_some_and(|s| key.verify(Domain::Approval, &sealed, s));
                let expired = expires_at.as_deref().is_some_and(|e| {
                    chrono::DateTime::parse_from_rfc3339(e)
                        .map_or(true, |t| t <= chrono::Utc::now())
                });
                if !sealed_ok {
                    "refused"
                } else if expired {
                    "expired"
                } else if log.approval_used(&p, &a.id)? {
                    "used"
                } else {
                    "approved"
                }
            }
        };
        if pending_only && state != "pending" {
            continue;
        }
        out.push(ApprovalLine {
            profile: p,
            run,
            requested_by: r.operator_subject.clone(),
            requested_at: r.created_at.clone(),
            approved_by: a.as_ref().and_then(|a| a.operator_subject.clone()),
            approved_at: a.as_ref().map(|a| a.created_at.clone()),
            expires_at,
            pending: state == "pending",
            state,
            request: r.id.clone(),
            approval: a.as_ref().map(|a| a.id.clone()),
        });
    }
    Ok(out)
}

/// Applies one change to a profile's grants, made by an operator of
/// `issuer` (a grant restricts the profile to that issuer's operators).
fn apply_change(
    g: &mut Grants,
    change: GrantChange,
    groups: &[String],
    subjects: &[String],
    issuer: &str,
) {
    match change {
        GrantChange::Open => {
            g.groups.clear();
            g.subjects.clear();
            g.restricted = false;
            g.issuer = None;
        }
        GrantChange::Grant | GrantChange::Revoke => {
            g.restricted = true;
            g.issuer = Some(issuer.to_string());
            for (list, add) in [(&mut g.groups, groups), (&mut g.subjects, subjects)] {
                for v in add {
                    if change == GrantChange::Grant {
                        if !list.contains(v) {
                            list.push(v.clone());
                        }
                    } else {
                        list.retain(|x| x != v);
                    }
                }
            }
        }
    }
}

/// Records a refused grant (a `denial` receipt, capability `grant`) and
/// returns its error (exit 3).
fn refuse_grant(
    ctx: &mut Context,
    base: NewReceipt,
    op: &Operator,
    groups: &[String],
    subjects: &[String],
    field: &str,
    message: String,
) -> Error {
    let mut r = base
        .operator(Some(op.clone()))
        .reason(message.clone())
        .detail("groups", groups.to_vec())
        .detail("subjects", subjects.to_vec());
    r.capability = Some("grant".into());
    r.policy_condition = Some(field.to_string());
    if let Err(e) = ctx.record(r) {
        return e;
    }
    Error::Denied {
        message: format!("grant refused ({field}): {message}"),
        hint: "ask a policy's admin (or, with none named, another operator allowed to use the profile)".into(),
        conditions: vec![field.to_string()],
        login_required: false,
    }
}

/// What `craik auth grant` / `craik auth revoke` change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantChange {
    /// Add groups and subjects (the profile becomes restricted).
    Grant,
    /// Take groups and subjects back (it stays restricted).
    Revoke,
    /// Open the profile to everyone policy allows (`--to-everyone`).
    Open,
}

/// `craik auth grant` / `craik auth revoke`: changes a profile's grants.
///
/// Who may: when an envelope in force names admins (`admin_groups`,
/// `admin_subjects`), only an operator every such envelope names; else
/// only an operator policy and the grants already allow to use the
/// profile, and never to themselves. A refusal is a `denial` receipt
/// (capability `grant`, exit 3).
pub fn change_grants(
    ctx: &mut Context,
    id: &ProfileId,
    groups: &[String],
    subjects: &[String],
    change: GrantChange,
    policy_files: &[PathBuf],
    in_team: bool,
) -> crate::Result<Grants> {
    let grant = change == GrantChange::Grant;
    if change != GrantChange::Open && groups.is_empty() && subjects.is_empty() {
        return Err(Error::input(
            "name at least one group or subject",
            if grant {
                "pass --to-group G or --to-subject S (or --to-everyone to open the profile)"
            } else {
                "pass --group G or --subject S"
            },
        ));
    }
    if let Some(v) = groups.iter().chain(subjects).find(|v| v.trim().is_empty()) {
        return Err(Error::input(
            format!("an empty group or subject ({v:?})"),
            "name a group or subject as the identity provider sends it",
        ));
    }
    let policies = policy::load_in_force(&ctx.home, policy_files)?;
    if in_team {
        return team::change_team_grants(ctx, id, groups, subjects, change, &policies);
    }
    let profile = load_profile(ctx, id)?;
    if change == GrantChange::Revoke {
        let g = &profile.grants;
        let missing: Vec<String> = groups
            .iter()
            .filter(|x| !g.groups.contains(x))
            .map(|x| format!("group {x}"))
            .chain(
                subjects
                    .iter()
                    .filter(|x| !g.subjects.contains(x))
                    .map(|x| format!("subject {x}")),
            )
            .collect();
        if !missing.is_empty() {
            return Err(Error::input(
                format!("{id} has no grant to {}", missing.join(", ")),
                format!("see its grants with: craik auth status {id}"),
            ));
        }
    }
    ctx.audit()?;
    let op = crate::operator::current(ctx)?.ok_or(OperatorError::NotLoggedIn)?;
    // The admins named now, and those named when the grants were last
    // changed (leaving a --policy out does not lift them).
    let mut admins = policy::admins(&policies);
    for a in &profile.grants.admins {
        if !admins.contains(a) {
            admins.push(a.clone());
        }
    }
    let pinned = policies
        .iter()
        .filter_map(|p| p.envelope.required_operator_issuer.as_deref())
        .chain(profile.grants.issuer.as_deref())
        .find(|iss| *iss != op.issuer);
    let is_admin = (!admins.is_empty()).then(|| admins.iter().all(|a| a.admit(&op)));
    let refusal: Option<(&str, String)> = match is_admin {
        _ if pinned.is_some() => Some((
            "required_operator_issuer",
            format!(
                "only operators of {} may change who uses {id}; you logged in at {}",
                pinned.unwrap_or_default(),
                op.issuer
            ),
        )),
        Some(true) => None,
        Some(false) => Some((
            "admin",
            format!(
                "only the operators a policy names as admins (admin_groups, admin_subjects) may change who uses {id}"
            ),
        )),
        None if !policy::evaluate(&policies, &profile, Some(&op)).allowed => Some((
            "grant_authority",
            format!(
                "you may not use {id} yourself, so you may not grant it; with no admins named in a policy, only an operator allowed to use a profile may grant it"
            ),
        )),
        None if grant
            && (subjects.contains(&op.subject) || op.groups.iter().any(|g| groups.contains(g))) =>
        {
            Some((
                "self_grant",
                "nobody may grant a profile to themselves (or to a group they are in); ask another operator allowed to use it, or name admins in a policy".into(),
            ))
        }
        None => None,
    };
    if let Some((field, message)) = refusal {
        let r = profile.receipt(ReceiptKind::Denial, Status::Denied);
        return Err(refuse_grant(ctx, r, &op, groups, subjects, field, message));
    }
    let home = ctx.home.clone();
    ProfileStore::new(&home).update(|file| {
        let p = file
            .get_mut(id)
            .ok_or_else(|| ProfileError::NotFound(id.to_string()))?;
        p.grants.admins = admins.clone();
        apply_change(&mut p.grants, change, groups, subjects, &op.issuer);
        let p = p.clone();
        let mut r = p
            .receipt(
                if change == GrantChange::Revoke {
                    ReceiptKind::GrantRevoked
                } else {
                    ReceiptKind::Grant
                },
                Status::Ok,
            )
            .operator(Some(op.clone()))
            .detail("groups", groups.to_vec())
            .detail("subjects", subjects.to_vec());
        if change == GrantChange::Open {
            r = r.detail("everyone", true);
        }
        ctx.record(r)?;
        Ok(p.grants)
    })
}
