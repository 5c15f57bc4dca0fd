//! The approval gate: after policy allows a request, a policy that asks for
//! approval (`first_use`, `each_run`) lets it through only when an
//! `approval` receipt binds to this request as it is now: made under the
//! same envelopes, for the same credential, not expired, sealed with this
//! home's key, and (for `each_run`) for this run and this requester.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Approval, Binding, CANDIDATES, approval_seal, binds, expiry, requests};
use crate::Error;
use crate::audit::{NewReceipt, Receipt, ReceiptKind, Status};
use crate::context::Context;
use crate::policy::RequireApproval;
use crate::secret::seal::{Domain, SealKey};

fn details(r: &Receipt) -> Value {
    serde_json::from_str(&r.details).unwrap_or(Value::Null)
}

fn text<'a>(d: &'a Value, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Value::as_str)
}

/// Whether the approval `a` lets `want` through now.
pub(super) fn honours(key: &SealKey, a: &Receipt, want: &Binding) -> bool {
    let d = details(a);
    let Some(seal) = text(&d, "seal") else {
        return false;
    };
    let sealed = approval_seal(
        a.auth_profile_id.as_deref().unwrap_or_default(),
        a.run_id.as_deref().unwrap_or_default(),
        &d,
        a.operator_identity_hash.as_deref(),
    );
    key.verify(Domain::Approval, &sealed, seal) && binds(a, &d, want)
}

/// The newest approval that lets `want` through, if any.
fn approved(ctx: &mut Context, want: &Binding) -> crate::Result<Option<Approval>> {
    let run = (want.mode == RequireApproval::EachRun).then_some(want.run.as_str());
    let found =
        ctx.audit()?
            .0
            .find_recent(&want.profile, ReceiptKind::Approval, run, CANDIDATES)?;
    if found.is_empty() {
        return Ok(None);
    }
    let key = SealKey::load(&ctx.secrets)?;
    Ok(found
        .into_iter()
        .find(|a| honours(&key, a, want))
        .map(|a| Approval {
            expires_at: expiry(&a),
            id: a.id,
            home: None,
        }))
}

/// Whether a request for `want` is already waiting (same run, envelopes,
/// credential and requester): it is written once.
fn requested(ctx: &mut Context, want: &Binding) -> crate::Result<bool> {
    Ok(!requests(ctx, want, Some(&want.run))?.is_empty())
}

/// Finds the approval `request` (an `approval_requested` receipt about the
/// profile and run) needs. Without one it writes the request (once per
/// binding) and fails with exit 4, or, given `wait`, polls for an approval
/// until then, ticking `on_wait`. Returns the id of the approval that let
/// it through (`None` when none is needed).
pub fn gate(
    ctx: &mut Context,
    request: &NewReceipt,
    want: &Binding,
    wait: Option<Duration>,
    mut on_wait: impl FnMut(),
) -> crate::Result<Option<Approval>> {
    if want.mode == RequireApproval::Never {
        return Ok(None);
    }
    if want.separate_approver && want.requester.is_none() {
        // Nobody could tell the approver from the requester.
        let mut r = request
            .clone()
            .reason("separate_approver needs an identified requester; nobody is logged in");
        r.kind = ReceiptKind::Denial;
        r.status = Status::Denied;
        r.policy_condition = Some("separate_approver".into());
        ctx.record(r)?;
        return Err(Error::Denied {
            message: format!(
                "denied by policy (separate_approver): a request for {} needs an identified requester, so its approver can be told apart",
                want.profile
            ),
            hint: "run craik login".into(),
            conditions: vec!["separate_approver".into()],
            login_required: true,
        });
    }
    if let Some(a) = approved(ctx, want)? {
        return Ok(Some(a));
    }
    // In a team, an approver on another machine may have answered.
    let mut team = super::team::Store::open(ctx, want);
    if let Some(t) = team.as_mut()
        && let Some(a) = t.approved(ctx, want)?
    {
        return Ok(Some(a));
    }
    if !requested(ctx, want)? {
        let key = SealKey::load(&ctx.secrets)?;
        ctx.record(want.request_details(request.clone(), &key))?;
    }
    // Approvers on other machines see it once it is in the team store.
    let mut shipped = team.as_mut().is_none_or(|t| t.ship(ctx));
    let id = &want.profile;
    let run = &want.run;
    let command = format!("craik auth approve {id} --run={run}{}", want.policy_args());
    let mode = want.mode.as_str();
    let Some(wait) = wait else {
        return Err(Error::ApprovalRequired {
            mode: mode.into(),
            approve: command.clone(),
            message: format!(
                "approval required ({mode}) for {id}; an approver must run: {command}"
            ),
            hint: format!(
                "once it is approved, run the same command again with --run={run} (or add --wait to wait for it)"
            ),
        });
    };
    let deadline = Instant::now() + wait;
    loop {
        if let Some(a) = approved(ctx, want)? {
            return Ok(Some(a));
        }
        if let Some(t) = team.as_mut() {
            shipped = shipped || t.ship(ctx);
            if let Some(a) = t.approved(ctx, want)? {
                return Ok(Some(a));
            }
        }
        if Instant::now() > deadline {
            return Err(Error::ApprovalRequired {
                mode: mode.into(),
                approve: command.clone(),
                message: format!(
                    "no approval within {}s for {id}; an approver must run: {command}",
                    wait.as_secs()
                ),
                hint: format!("run again with --run={run} once it is approved"),
            });
        }
        for _ in 0..5 {
            on_wait();
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
