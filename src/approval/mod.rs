//! Approvals and grants: the approval gate a request passes after policy
//! ([`gate`], called by the broker's pipeline), `auth approve`,
//! `auth approvals`, and `auth grant`/`auth revoke`.

mod gate;

pub use gate::gate;

use std::path::PathBuf;
use std::time::Duration;

use rand::RngCore;
use serde::Serialize;

use crate::Error;
use crate::audit::{NewReceipt, Operator, ReceiptKind, Status};
use crate::context::Context;
use crate::operator::OperatorError;
use crate::policy::{self, Evaluation};
use crate::profile::{Profile, ProfileError, ProfileId, ProfileStore};

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
    ProfileStore::new(&ctx.home)
        .load()?
        .get(id)
        .cloned()
        .ok_or_else(|| ProfileError::NotFound(id.to_string()).into())
}

/// Evaluates without writing anything (`policy explain`).
pub fn explain(
    ctx: &mut Context,
    id: &ProfileId,
    policy_files: &[PathBuf],
) -> crate::Result<(Evaluation, Option<Operator>)> {
    let policies = policy::load_in_force(&ctx.home, policy_files)?;
    let profile = load_profile(ctx, id)?;
    let op = crate::operator::current(ctx)?;
    Ok((policy::evaluate(&policies, &profile, op.as_ref()), op))
}

/// The outcome of `craik auth approve`.
#[derive(Debug, Serialize)]
pub struct Approved {
    pub profile: String,
    pub run: String,
    pub approver: Option<String>,
    pub receipt: String,
    /// False when someone had already approved it.
    pub new: bool,
}

/// `craik auth approve <id> --run=<run>`.
pub fn approve(
    ctx: &mut Context,
    id: &ProfileId,
    run: &str,
    policy_files: &[PathBuf],
) -> crate::Result<Approved> {
    check_run_id(run)?;
    let policies = policy::load_in_force(&ctx.home, policy_files)?;
    let profile = load_profile(ctx, id)?;
    ctx.audit()?;
    let key = id.to_string();
    let request = ctx
        .audit()?
        .0
        .find(&key, ReceiptKind::ApprovalRequested, Some(run))?
        .ok_or_else(|| {
            Error::input(
                format!("no approval request for {key} in run {run}"),
                "requests are made by craik auth check (or exec/proxy) when a policy asks for approval; check the run id",
            )
        })?;
    let rule = policy::evaluate(&policies, &profile, None).approval;
    let approver = crate::operator::current(ctx)?;
    let needs_identity =
        rule.required_operator || rule.separate_approver || !rule.approver_groups.is_empty();
    if needs_identity && approver.is_none() {
        return Err(OperatorError::NotLoggedIn.into());
    }
    let deny = |ctx: &mut Context, field: &str, message: String| -> crate::Result<Approved> {
        let mut r = NewReceipt::new(ReceiptKind::Denial, Status::Denied)
            .profile(
                &key,
                profile.kind.as_str(),
                profile.provider_family.as_str(),
            )
            .operator(approver.clone())
            .run(run)
            .reason(message.clone());
        r.capability = Some("approve".into());
        r.policy_condition = Some(field.to_string());
        ctx.record(r)?;
        Err(Error::Denied {
            message,
            hint: "ask an operator the policy names as an approver".into(),
            conditions: vec![field.to_string()],
        })
    };
    if let Some(a) = &approver {
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
        if rule.separate_approver
            && request.operator_subject.as_deref() == Some(a.subject.as_str())
            && request.operator_issuer.as_deref() == Some(a.issuer.as_str())
        {
            return deny(
                ctx,
                "separate_approver",
                "separate_approver: nobody may approve their own request".into(),
            );
        }
    }
    let mut r = NewReceipt::new(ReceiptKind::Approval, Status::Ok)
        .profile(
            &key,
            profile.kind.as_str(),
            profile.provider_family.as_str(),
        )
        .operator(approver.clone())
        .run(run)
        .detail("request", request.id.as_str())
        .detail("mode", rule.mode.as_str());
    if let Some(s) = &request.operator_subject {
        r = r.detail("requested_by", s.as_str());
    }
    let (receipt, new) = ctx.audit()?.0.append_once(r)?;
    Ok(Approved {
        profile: key,
        run: run.to_string(),
        approver: receipt.operator_subject.clone(),
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
    pub pending: bool,
}

pub fn approvals(ctx: &mut Context, pending_only: bool) -> crate::Result<Vec<ApprovalLine>> {
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
        let a = log.find(&p, ReceiptKind::Approval, Some(&run))?;
        if pending_only && a.is_some() {
            continue;
        }
        out.push(ApprovalLine {
            profile: p,
            run,
            requested_by: r.operator_subject.clone(),
            requested_at: r.created_at.clone(),
            approved_by: a.as_ref().and_then(|a| a.operator_subject.clone()),
            approved_at: a.as_ref().map(|a| a.created_at.clone()),
            pending: a.is_none(),
        });
    }
    Ok(out)
}

/// `craik auth grant` / `craik auth revoke`: changes a profile's grants.
/// Needs a logged-in operator (the receipt names who granted).
pub fn change_grants(
    ctx: &mut Context,
    id: &ProfileId,
    groups: &[String],
    subjects: &[String],
    grant: bool,
) -> crate::Result<crate::profile::Grants> {
    if groups.is_empty() && subjects.is_empty() {
        return Err(Error::input(
            "name at least one group or subject",
            if grant {
                "pass --to-group G or --to-subject S"
            } else {
                "pass --group G or --subject S"
            },
        ));
    }
    ctx.audit()?;
    let op = crate::operator::current(ctx)?.ok_or(OperatorError::NotLoggedIn)?;
    let home = ctx.home.clone();
    ProfileStore::new(&home).update(|file| {
        let p = file
            .get_mut(id)
            .ok_or_else(|| ProfileError::NotFound(id.to_string()))?;
        for (list, add) in [
            (&mut p.grants.groups, groups),
            (&mut p.grants.subjects, subjects),
        ] {
            for v in add {
                if grant {
                    if !list.contains(v) {
                        list.push(v.clone());
                    }
                } else {
                    list.retain(|x| x != v);
                }
            }
        }
        let p = p.clone();
        let r = p
            .receipt(
                if grant {
                    ReceiptKind::Grant
                } else {
                    ReceiptKind::GrantRevoked
                },
                Status::Ok,
            )
            .operator(Some(op.clone()))
            .detail("groups", groups.to_vec())
            .detail("subjects", subjects.to_vec());
        ctx.record(r)?;
        Ok(p.grants)
    })
}
