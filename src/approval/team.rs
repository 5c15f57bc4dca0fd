//! Approvals across a team's machines (docs/team.md): a request made in
//! one home reaches the team store with its chain, an approver on another
//! machine answers it with `craik auth approve --team`, and the requester's
//! gate finds the answer in the approver's chain.
//!
//! What the requester trusts: not the approval's seal (it is keyed by the
//! approver's home), but the server. The row is in the chain of a home
//! another login registered, that login shipped it, and the store's
//! administrator named that login as the very person (issuer, subject) the
//! approval names (`craik_members`). An agent holding this home's login
//! can write only to this home's chain, which the gate never reads for
//! approvals. The approval must also answer one of this home's own sealed
//! requests, bind to the request as it is now (envelopes, credential,
//! expiry), and its approver must meet this home's policies: issuers,
//! approver groups (as the approver's ID token named them), and never the
//! requester.

use serde::Serialize;
use serde_json::Value;

use super::{
    Approval, ApprovalLine, Binding, GrantChange, apply_change, binds, details_of, expiry, requests,
};
use crate::audit::{NewReceipt, Operator, Receipt, ReceiptKind, Status};
use crate::context::Context;
use crate::operator::OperatorError;
use crate::policy::{self, Policy, RequireApproval};
use crate::profile::{Grants, Profile, ProfileId};
use crate::team::store::{Db, Person, TeamRow};
use crate::team::{self, TeamError};

/// This home's team store, kept open while a request waits.
pub(super) struct Store {
    home_id: String,
    db: Option<Db>,
}

fn text<'a>(d: &'a Value, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Value::as_str)
}

impl Store {
    /// `None` when this home is in no team, or no envelope in force pins
    /// the store it ships to (`team_store`): then nothing from a team store
    /// counts.
    pub(super) fn open(ctx: &Context, want: &Binding) -> Option<Store> {
        let c = team::config(&ctx.home).ok().flatten()?;
        if !want
            .team_store
            .as_deref()
            .is_some_and(|pin| team::same_store(pin, &c.audit_url))
        {
            return None;
        }
        Some(Store {
            home_id: c.home_id,
            db: None,
        })
    }

    /// Ships this home's backlog (its new request among it); whether it
    /// went.
    pub(super) fn ship(&mut self, ctx: &mut Context) -> bool {
        team::ship(ctx).is_ok()
    }

    /// The newest approval from another home that lets `want` through.
    /// A store that does not answer finds none (this home's own approvals
    /// still count).
    pub(super) fn approved(
        &mut self,
        ctx: &mut Context,
        want: &Binding,
    ) -> crate::Result<Option<Approval>> {
        let run = (want.mode == RequireApproval::EachRun).then_some(want.run.as_str());
        if self.db.is_none() {
            self.db = team::connect(ctx).ok().flatten().map(|(_, db)| db);
        }
        let Some(db) = self.db.as_mut() else {
            return Ok(None);
        };
        let mine = requests(ctx, want, run)?;
        if mine.is_empty() {
            return Ok(None);
        }
        let rows = match db.approvals_for(&want.profile, run, &self.home_id, &mine) {
            Ok(rows) => rows,
            Err(_) => {
                // Connect again at the next look.
                self.db = None;
                return Ok(None);
            }
        };
        Ok(rows
            .into_iter()
            .find(|row| self.honours(row, want, &mine))
            .map(|row| Approval {
                expires_at: expiry(&row.receipt),
                id: row.receipt.id,
                home: Some(row.home_id),
            }))
    }

    fn honours(&self, row: &TeamRow, want: &Binding, mine: &[String]) -> bool {
        let a = &row.receipt;
        let d = details_of(a);
        row.home_id != self.home_id
            && row.vouched()
            && text(&d, "request_home") == Some(self.home_id.as_str())
            && text(&d, "request").is_some_and(|r| mine.iter().any(|m| m == r))
            && binds(a, &d, want)
            && within_ttl(row, want)
            && row.person().is_some_and(|p| approver_allowed(p, want))
    }
}

/// An approval from another home says itself how long it holds: under an
/// `approval_ttl` here it must say, and no longer than that from when the
/// server took it.
fn within_ttl(row: &TeamRow, want: &Binding) -> bool {
    let Some(ttl) = want.ttl_secs else {
        return true;
    };
    let (Some(exp), Ok(shipped)) = (
        expiry(&row.receipt),
        chrono::DateTime::parse_from_rfc3339(&row.shipped_at),
    ) else {
        return false;
    };
    exp <= shipped.with_timezone(&chrono::Utc) + chrono::Duration::seconds(ttl as i64 + 60)
}

/// Whether the approver the server vouches for meets `want`'s approver
/// rules, checked here: every envelope's issuer, one group of each list
/// (the groups the roster gives them: a receipt's own claim of groups is
/// its writer's word), and (under `separate_approver`) not the requester.
fn approver_allowed(p: &Person, want: &Binding) -> bool {
    want.approver_issuers.iter().all(|i| *i == p.issuer)
        && want
            .approver_groups
            .iter()
            .all(|list| p.groups.iter().any(|g| list.contains(g)))
        && !(want.separate_approver
            && want
                .requester_person
                .as_ref()
                .is_none_or(|(ri, rs)| *ri == p.issuer && *rs == p.subject))
}

/// A request in another home's chain, for `craik auth approve --team`.
pub(super) struct TeamRequest {
    pub receipt: Receipt,
    pub home_id: String,
    pub label: String,
}

/// The newest request for `profile` in `run` in another home's chain.
/// A request that names an operator must be vouched for by the server
/// (shipped by its home's login, the member it names): otherwise anyone
/// could ask in another's name.
pub(super) fn request(ctx: &Context, profile: &str, run: &str) -> crate::Result<TeamRequest> {
    let (c, mut db) = team::connect(ctx)?.ok_or(TeamError::NotJoined)?;
    if c.reader {
        return Err(crate::Error::input(
            "this home joined its team to read only; its approvals would reach no one",
            "approve from a home joined with a craik_writer login",
        ));
    }
    let row = db
        .recent(
            ReceiptKind::ApprovalRequested.as_str(),
            Some(profile),
            Some(run),
            16,
        )?
        .into_iter()
        .find(|r| r.home_id != c.home_id)
        .ok_or_else(|| {
            crate::Error::input(
                format!("no approval request for {profile} in run {run} in the team store"),
                "list the team's requests with: craik auth approvals --team --pending",
            )
        })?;
    if row.receipt.operator_subject.is_some() && !row.vouched() {
        return Err(crate::Error::input(
            format!(
                "the request for {profile} in run {run} names {} but was shipped by login {}, which the team store's administrator has not named as that person",
                row.receipt.operator_subject.as_deref().unwrap_or_default(),
                row.shipped_by
            ),
            "nothing was approved; the administrator names members with: craik team member add",
        ));
    }
    Ok(TeamRequest {
        receipt: row.receipt,
        home_id: row.home_id,
        label: row.label,
    })
}

/// One line of `craik auth approvals --team`: a line as for one home,
/// and the home whose chain holds the request.
#[derive(Debug, Serialize)]
pub struct TeamApprovalLine {
    pub home: String,
    pub home_id: String,
    /// `state` is `pending`, `approved` or `expired` here.
    #[serde(flatten)]
    pub line: ApprovalLine,
}

/// How many of the store's newest requests `auth approvals --team` reads.
const LISTED: i64 = 500;

/// `craik auth approvals --team`: the newest requests of every home in
/// the team store, and the approvals (vouched for by the server) that
/// answer them.
pub fn team_approvals(ctx: &Context, pending_only: bool) -> crate::Result<Vec<TeamApprovalLine>> {
    let (_, mut db) = team::connect(ctx)?.ok_or(TeamError::NotJoined)?;
    let requests = db.recent(ReceiptKind::ApprovalRequested.as_str(), None, None, LISTED)?;
    let approvals: Vec<(TeamRow, Value)> = db
        .recent(ReceiptKind::Approval.as_str(), None, None, LISTED * 4)?
        .into_iter()
        .filter(|a| a.vouched())
        .map(|a| {
            let d = details_of(&a.receipt);
            (a, d)
        })
        .collect();
    let mut out = Vec::new();
    for r in requests {
        let answer = approvals.iter().find(|(a, d)| {
            a.home_id != r.home_id
                && text(d, "request") == Some(r.receipt.id.as_str())
                && text(d, "request_home") == Some(r.home_id.as_str())
        });
        let expires_at = answer.and_then(|(_, d)| text(d, "expires_at").map(str::to_string));
        let state = match answer {
            None => "pending",
            Some((a, _)) if expiry(&a.receipt).is_some_and(|t| t <= chrono::Utc::now()) => {
                "expired"
            }
            Some(_) => "approved",
        };
        if pending_only && state != "pending" {
            continue;
        }
        out.push(TeamApprovalLine {
            home: r.label,
            home_id: r.home_id,
            line: ApprovalLine {
                profile: r.receipt.auth_profile_id.clone().unwrap_or_default(),
                run: r.receipt.run_id.clone().unwrap_or_default(),
                requested_by: r.receipt.operator_subject.clone(),
                requested_at: r.receipt.created_at.clone(),
                approved_by: answer.and_then(|(a, _)| a.receipt.operator_subject.clone()),
                approved_at: answer.map(|(a, _)| a.receipt.created_at.clone()),
                expires_at,
                pending: state == "pending",
                state,
                request: r.receipt.id,
                approval: answer.map(|(a, _)| a.receipt.id.clone()),
            },
        });
    }
    Ok(out)
}

/// The receipt kind and change a team grant records.
fn change_of(g: &crate::team::TeamGrant) -> GrantChange {
    if g.kind == ReceiptKind::GrantRevoked.as_str() {
        GrantChange::Revoke
    } else if g.details.get("everyone") == Some(&Value::Bool(true)) {
        GrantChange::Open
    } else {
        GrantChange::Grant
    }
}

fn strings(d: &Value, k: &str) -> Vec<String> {
    d.get(k)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Applies, in the order the server took them, the team grants for
/// `profile` made by an operator every admin list admits: those of
/// `policies`, and those `recorded` with the profile's own grants (as for
/// a local grant: leaving a `--policy` out does not lift them), of every
/// pinned issuer (the envelopes' and the grants' own).
fn apply_team_grants(
    g: &mut Grants,
    all: &[crate::team::TeamGrant],
    profile: &str,
    policies: &[Policy],
) {
    let mut admins = policy::admins(policies);
    for a in &g.admins {
        if !admins.contains(a) {
            admins.push(a.clone());
        }
    }
    let mut pinned: Vec<String> = policies
        .iter()
        .filter_map(|p| p.envelope.required_operator_issuer.clone())
        .collect();
    pinned.extend(g.issuer.clone());
    for t in all.iter().filter(|t| t.profile == profile) {
        let op = Operator {
            subject: t.subject.clone(),
            issuer: t.issuer.clone(),
            groups: t.groups.clone(),
            ..Operator::default()
        };
        if admins.is_empty()
            || !admins.iter().all(|a| a.admit(&op))
            || pinned.iter().any(|i| *i != t.issuer)
        {
            continue;
        }
        apply_change(
            g,
            change_of(t),
            &strings(&t.details, "groups"),
            &strings(&t.details, "subjects"),
            &t.issuer,
        );
    }
}

/// The team store the envelopes in force pin (`team_store`), checked
/// against the one this home ships to: `None` when none pins one (nothing
/// from a team store counts then); exit 5 when this home ships elsewhere
/// or nowhere (an agent that joined the home to a store of its own, or
/// deleted `team.json`, stops calls rather than lifting revocations).
fn pinned_team(ctx: &Context, policies: &[Policy]) -> crate::Result<Option<String>> {
    let mut pins = policies
        .iter()
        .filter_map(|p| p.envelope.team_store.as_deref());
    let Some(pin) = pins.next() else {
        return Ok(None);
    };
    if let Some(other) = pins.find(|p| *p != pin) {
        return Err(crate::Error::input(
            format!("the policies in force name two team stores: {pin} and {other}"),
            "name one team_store in the envelopes a call is made under",
        ));
    }
    let found = match team::config(&ctx.home)? {
        Some(c) if team::same_store(pin, &c.audit_url) => return Ok(Some(pin.to_string())),
        Some(c) => format!("ships to {}", c.audit_url),
        None => "is in no team".into(),
    };
    Err(TeamError::NotPinned {
        pinned: pin.to_string(),
        found,
    }
    .into())
}

/// `profile` with the grants an admin made for the whole team applied on
/// top of its own (`auth grant --team` on any member's machine). They
/// count only under an envelope that pins this home's team store
/// (`team_store`), only from admins (the envelopes' or those the profile
/// recorded); this home reads them from the team store at each use (or a
/// copy at most five minutes old, else exit 5).
pub fn with_team_grants(
    ctx: &Context,
    mut profile: Profile,
    policies: &[Policy],
) -> crate::Result<Profile> {
    if pinned_team(ctx, policies)?.is_none() {
        return Ok(profile);
    }
    if policy::admins(policies).is_empty() && profile.grants.admins.is_empty() {
        return Ok(profile);
    }
    let Some(all) = crate::team::grants(ctx)? else {
        return Ok(profile);
    };
    let id = profile.id.to_string();
    apply_team_grants(&mut profile.grants, &all, &id, policies);
    Ok(profile)
}

/// `craik auth grant|revoke --team`: a change every member's machine
/// applies. Only an admin every envelope in force names may make one
/// (no envelope naming admins: nobody), from a home that ships; the
/// receipt goes to the store at once. Returns the team's grants for the
/// profile as they stand now.
pub(super) fn change_team_grants(
    ctx: &mut Context,
    id: &ProfileId,
    groups: &[String],
    subjects: &[String],
    change: GrantChange,
    policies: &[Policy],
) -> crate::Result<Grants> {
    let c = team::config(&ctx.home)?.ok_or(TeamError::NotJoined)?;
    if c.reader {
        return Err(crate::Error::input(
            "this home joined its team to read only; its grants would reach no one",
            "grant from a home joined with a craik_writer login",
        ));
    }
    if pinned_team(ctx, policies)?.is_none() {
        return Err(crate::Error::input(
            "no envelope in force names the team store (team_store); members count team grants only under one",
            format!(
                "pass the team's envelope with --policy (it names \"team_store\": \"{}\")",
                c.audit_url
            ),
        ));
    }
    ctx.audit()?;
    let op = crate::operator::current(ctx)?.ok_or(OperatorError::NotLoggedIn)?;
    let admins = policy::admins(policies);
    let pinned = policies
        .iter()
        .filter_map(|p| p.envelope.required_operator_issuer.as_deref())
        .find(|iss| *iss != op.issuer);
    let key = id.to_string();
    let refusal = if let Some(iss) = pinned {
        Some((
            "required_operator_issuer",
            format!(
                "only operators of {iss} may change who uses {key}; you logged in at {}",
                op.issuer
            ),
        ))
    } else if admins.is_empty() {
        Some((
            "admin",
            format!(
                "a team grant needs admins named in a policy (admin_groups, admin_subjects); none in force names any, so nobody may change who uses {key} across the team"
            ),
        ))
    } else if !admins.iter().all(|a| a.admit(&op)) {
        Some((
            "admin",
            format!(
                "only the operators a policy names as admins (admin_groups, admin_subjects) may change who uses {key}"
            ),
        ))
    } else {
        None
    };
    let kind = if change == GrantChange::Revoke {
        ReceiptKind::GrantRevoked
    } else {
        ReceiptKind::Grant
    };
    let about = |kind, status| {
        let mut r = NewReceipt::new(kind, status);
        r.auth_profile_id = Some(key.clone());
        r.provider_family = Some(id.family().as_str().to_string());
        r
    };
    if let Some((field, message)) = refusal {
        let r = about(ReceiptKind::Denial, Status::Denied);
        return Err(super::refuse_grant(
            ctx, r, &op, groups, subjects, field, message,
        ));
    }
    let mut r = about(kind, Status::Ok)
        .operator(Some(op.clone()))
        .detail("groups", groups.to_vec())
        .detail("subjects", subjects.to_vec())
        .detail("team", true);
    if change == GrantChange::Open {
        r = r.detail("everyone", true);
    }
    ctx.record(r)?;
    // Every member's next call reads it: ship it now.
    team::ship(ctx)?;
    let mut g = Grants::default();
    if let Some(all) = team::grants(ctx)? {
        apply_team_grants(&mut g, &all, &key, policies);
    }
    Ok(g)
}
