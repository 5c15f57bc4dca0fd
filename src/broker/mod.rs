//! The broker: every provider call goes through one pipeline
//! ([`pipeline`]): resolve -> policy -> grants -> approval -> durable
//! `call.started` -> credential -> call -> `call.finished` -> pool health.
//! `exec`, `proxy` and `auth test` are three ways of making the call;
//! `auth check` stops before the credential.

pub mod child;
pub mod exec;
pub mod export;
pub mod pipeline;
pub mod proxy;
pub mod sandbox;
#[cfg(target_os = "linux")]
mod seccomp;
pub mod test_call;
mod usage;

pub use pipeline::{Authorized, CallSpec, Capability, Resolved, Started, Target};

use crate::Error;
use crate::audit::Operator;
use crate::context::Context;
use crate::profile::{Profile, ProfileId};

/// The base URL of a call's profile, or an error saying it needs one.
pub fn base_url_of(profile: &Profile) -> crate::Result<String> {
    crate::provider::base_url(profile).ok_or_else(|| {
        Error::input(
            format!("profile {} has no base URL", profile.id),
            format!(
                "add one: craik auth add {} --kind={} --base-url URL --force",
                profile.id, profile.kind
            ),
        )
    })
}

/// What a proxy serves: a started session for every member it may use.
pub struct ProxySessions {
    pub upstreams: Vec<proxy::Upstream>,
    pub pool: Option<ProfileId>,
    pub operator: Option<Operator>,
}

/// Authorizes every member a proxy may use and starts a session with each
/// ([`Authorized::start_session`]). A pool member that is denied or has no
/// credential is left out (its receipts say why); if none is left, the
/// first error is returned.
pub fn start_proxy(ctx: &mut Context, spec: &CallSpec) -> crate::Result<ProxySessions> {
    let members = spec.resolve_all(ctx)?;
    let pool = match &spec.target {
        Target::Pool(p) => Some(p.clone()),
        _ => None,
    };
    let mut upstreams = Vec::new();
    let mut first_err = None;
    let mut operator = None;
    for member in members {
        let session = member
            .authorize(ctx, || {})
            .and_then(|a| a.start_session(ctx));
        match session {
            Ok(s) => {
                operator = s.operator().cloned();
                let recheck = pipeline::Recheck::new(ctx, spec, &s);
                upstreams.push(proxy::Upstream::new(std::sync::Arc::new(s), recheck)?);
            }
            // No receipt can be written: refuse at once (fail closed).
            Err(e) if e.exit_code() == crate::exit::AUDIT_UNAVAILABLE => return Err(e),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if upstreams.is_empty() {
        return Err(
            first_err.unwrap_or_else(|| Error::input("the pool has no members", "add members"))
        );
    }
    Ok(ProxySessions {
        upstreams,
        pool,
        operator,
    })
}

/// Makes the automatic signed checkpoint from a long-lived committer (a
/// proxy's, or `exec --via-proxy`'s) when one is due, as
/// [`crate::context::Context::record`] does for single receipts: after
/// each round of commits (at most every 50 ms, off the writer) it asks
/// [`crate::audit::checkpoint::auto`], which decides (1,000 receipts
/// since the last, or an hour) from the small checkpoint file. One that
/// cannot be made now is tried again later; receipts are durable either
/// way.
/// While a proxy runs, its receipts go to the team store every second
/// (when this home is in a team): the backlog stays small however long
/// the proxy runs. The team's grants are read as often: a change rewrites
/// `team-grants.json`, which the proxy's per-request check watches, so a
/// revocation made on another machine stops its sessions within a second
/// or two. The thread ends with the process.
pub(crate) fn ship_to_team(home: &crate::home::Home) {
    if !home.path(crate::team::CONFIG_FILE).exists() {
        return;
    }
    let home = home.clone();
    std::thread::spawn(move || {
        let mut ctx = crate::context::Context::open(home);
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            let _ = crate::team::ship(&mut ctx);
            let _ = crate::team::grants(&ctx);
        }
    });
}

pub(crate) fn auto_checkpoints(
    ctx: &crate::context::Context,
    committer: &crate::audit::group::GroupCommitter,
) {
    let home = ctx.home.clone();
    let state = std::sync::Mutex::new((
        crate::secret::Secrets::new(&home),
        None::<crate::audit::AuditLog>,
    ));
    committer.after_commits(move |seq| {
        let Ok(mut guard) = state.try_lock() else {
            return;
        };
        let (secrets, log) = &mut *guard;
        if log.is_none() {
            *log = crate::audit::AuditLog::open_for_reading(&home, |_| {}).ok();
        }
        if let Some(log) = log {
            let _ = crate::audit::checkpoint::auto(&home, secrets, log, seq);
        }
    });
}
