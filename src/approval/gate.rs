//! The approval gate: after policy allows a request, a policy that asks for
//! approval (`first_use`, `each_run`) lets it through only when an
//! `approval` receipt exists for the profile (and the run, for each_run).

use std::time::{Duration, Instant};

use crate::Error;
use crate::audit::{NewReceipt, ReceiptKind};
use crate::context::Context;
use crate::policy::RequireApproval;

/// Finds the approval `request` (an `approval_requested` receipt about the
/// profile and run) needs under `mode`. Without one it writes the request
/// (once per profile and run) and fails with exit 4, or, given `wait`,
/// polls for an approval until then, ticking `on_wait`. Returns the id of
/// the approval that let it through (`None` when none is needed).
pub fn gate(
    ctx: &mut Context,
    request: &NewReceipt,
    mode: RequireApproval,
    wait: Option<Duration>,
    mut on_wait: impl FnMut(),
) -> crate::Result<Option<String>> {
    if mode == RequireApproval::Never {
        return Ok(None);
    }
    let id = request.auth_profile_id.clone().unwrap_or_default();
    let run = request.run_id.clone().unwrap_or_default();
    let run_filter = match mode {
        RequireApproval::EachRun => Some(run.as_str()),
        _ => None,
    };
    if let Some(a) = ctx
        .audit()?
        .0
        .find(&id, ReceiptKind::Approval, run_filter)?
    {
        return Ok(Some(a.id));
    }
    if ctx
        .audit()?
        .0
        .find(&id, ReceiptKind::ApprovalRequested, Some(&run))?
        .is_none()
    {
        ctx.record(request.clone().detail("mode", mode.as_str()))?;
    }
    let command = format!("craik auth approve {id} --run={run}");
    let Some(wait) = wait else {
        return Err(Error::ApprovalRequired {
            mode: mode.as_str().into(),
            approve: command.clone(),
            message: format!(
                "approval required ({}) for {id}; an approver must run: {command}",
                mode.as_str()
            ),
            hint: format!("or wait for it: add --wait (run id {run})"),
        });
    };
    let deadline = Instant::now() + wait;
    loop {
        if let Some(a) = ctx
            .audit()?
            .0
            .find(&id, ReceiptKind::Approval, run_filter)?
        {
            return Ok(Some(a.id));
        }
        if Instant::now() > deadline {
            return Err(Error::ApprovalRequired {
                mode: mode.as_str().into(),
                approve: command.clone(),
                message: format!(
                    "no approval within {}s for {id}; an approver must run: {command}",
                    wait.as_secs()
                ),
                hint: "run again once it is approved".into(),
            });
        }
        for _ in 0..5 {
            on_wait();
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
