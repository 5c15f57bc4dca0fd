//! The broker: every provider call goes through
//! resolve -> policy -> grants -> approval -> durable `call.started` ->
//! credential -> call -> `call.finished` -> pool health.
//! `exec`, `proxy` and `auth test` are three ways of making the call.

pub mod exec;
pub mod proxy;
pub mod test_call;
mod usage;

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use zeroize::Zeroizing;

use crate::Error;
use crate::approval::{self, Authorization, Request};
use crate::audit::{NewReceipt, Operator, Receipt};
use crate::context::Context;
use crate::pool::{Outcome, PoolStore};
use crate::profile::{Kind, Profile, ProfileId, ProfileStore};

/// A profile or a pool, as named on the command line.
#[derive(Debug, Clone)]
pub enum Target {
    Profile(ProfileId),
    Pool(ProfileId),
    /// A profile not in the store (`--provider anthropic` resolving to an
    /// environment variable).
    Implicit(Profile),
}

impl Target {
    fn implicit(&self) -> Option<Profile> {
        match self {
            Target::Implicit(p) => Some(p.clone()),
            _ => None,
        }
    }
}

impl Target {
    /// A pool id if one exists by that name, else a profile id.
    pub fn guess(ctx: &Context, id: &ProfileId) -> crate::Result<Target> {
        if PoolStore::new(&ctx.home).get(id)?.is_some() {
            Ok(Target::Pool(id.clone()))
        } else {
            Ok(Target::Profile(id.clone()))
        }
    }
}

/// How to authorize a call.
#[derive(Debug, Clone)]
pub struct CallSpec {
    pub target: Target,
    pub run: String,
    pub policy_files: Vec<PathBuf>,
    /// `exec`, `proxy`, `test`.
    pub capability: String,
    pub wait: Option<Duration>,
}

/// An authorized call whose `call.started` receipt is durable.
pub struct Call {
    pub profile: Profile,
    pub pool: Option<ProfileId>,
    pub run: String,
    pub operator: Option<Operator>,
    pub started: Receipt,
    /// `None` for marker profiles (the provider's own CLI holds it).
    pub credential: Option<Zeroizing<String>>,
    pub identity_hash: Option<String>,
    pub authorization: Authorization,
}

/// A profile's credential material: OAuth tokens are refreshed or minted
/// first when needed; everything else comes from its source.
pub fn credential(ctx: &mut Context, p: &Profile) -> crate::Result<Zeroizing<String>> {
    if p.kind == Kind::OAuth {
        crate::credential::oauth::access_token(ctx, p)
    } else {
        Ok(crate::credential::source::resolve(p, &ctx.secrets)?)
    }
}

/// Picks the profile: the named one, or a healthy pool member.
fn resolve(
    ctx: &Context,
    target: &Target,
    exclude: &[ProfileId],
) -> crate::Result<(ProfileId, Option<ProfileId>)> {
    match target {
        Target::Profile(id) => Ok((id.clone(), None)),
        Target::Implicit(p) => Ok((p.id.clone(), None)),
        Target::Pool(pool) => {
            let member = PoolStore::new(&ctx.home).pick(pool, exclude)?;
            Ok((member, Some(pool.clone())))
        }
    }
}

fn profile_receipt(
    kind: &str,
    status: &str,
    p: &Profile,
    pool: &Option<ProfileId>,
    op: &Option<Operator>,
    run: &str,
    capability: &str,
) -> NewReceipt {
    let mut r = p.receipt(kind, status).operator(op.clone()).run(run);
    r.capability = Some(capability.to_string());
    r.pool_id = pool.as_ref().map(|p| p.to_string());
    r
}

/// Authorizes, writes `call.started` durably, then reads the credential.
/// Nothing leaves craik before the receipt is in the log.
pub fn start_call(
    ctx: &mut Context,
    spec: &CallSpec,
    exclude: &[ProfileId],
    details: serde_json::Map<String, serde_json::Value>,
) -> crate::Result<Call> {
    let (member, pool) = resolve(ctx, &spec.target, exclude)?;
    let req = Request {
        profile: member.clone(),
        run: spec.run.clone(),
        policy_files: spec.policy_files.clone(),
        capability: spec.capability.clone(),
        wait: spec.wait,
        implicit: spec.target.implicit(),
    };
    let mut auth = approval::authorize(ctx, &req, || {})?;
    let profile = auth.profile_record.take().expect("authorized profile");
    let operator = auth.operator_record.clone();
    let mut r = profile_receipt(
        "call.started",
        "ok",
        &profile,
        &pool,
        &operator,
        &spec.run,
        &spec.capability,
    );
    r.details = details;
    if profile.kind == Kind::Marker {
        r = r.detail("delegated", true);
    }
    if let Some(a) = &auth.approval {
        r = r.detail("approval", a.as_str());
    }
    let started = ctx.record(r)?;
    let (credential, identity_hash) = if profile.kind == Kind::Marker {
        (None, None)
    } else {
        match credential(ctx, &profile) {
            Ok(c) => {
                let h = ctx
                    .audit_key()?
                    .credential_material(profile.provider_family.as_str(), &c);
                (Some(c), Some(h))
            }
            Err(e) => {
                let r = profile_receipt(
                    "call.finished",
                    "credential_unavailable",
                    &profile,
                    &pool,
                    &operator,
                    &spec.run,
                    &spec.capability,
                )
                .reason(e.to_string())
                .detail("started", started.id.as_str());
                ctx.record(r)?;
                if let Some(pool) = &pool {
                    let _ = PoolStore::new(&ctx.home).record(pool, &profile.id, Outcome::Rejected);
                }
                return Err(e);
            }
        }
    };
    Ok(Call {
        profile,
        pool,
        run: spec.run.clone(),
        operator,
        started,
        credential,
        identity_hash,
        authorization: auth,
    })
}

/// Writes `call.finished`, updates pool health and the profile's
/// `last_used_at` (and, for tests, `last_validated_at`/`last_status`).
pub fn finish_call(
    ctx: &mut Context,
    call: &Call,
    status: &str,
    outcome: Option<Outcome>,
    validated: Option<&str>,
    details: serde_json::Map<String, serde_json::Value>,
) -> crate::Result<Receipt> {
    let mut r = profile_receipt(
        "call.finished",
        status,
        &call.profile,
        &call.pool,
        &call.operator,
        &call.run,
        call.started.capability.as_deref().unwrap_or(""),
    )
    .identity(call.identity_hash.clone())
    .detail("started", call.started.id.as_str());
    for (k, v) in details {
        r.details.insert(k, v);
    }
    if call.credential.is_none() {
        r = r.detail("delegated", true);
    }
    let receipt = ctx.record(r)?;
    if let (Some(pool), Some(o)) = (&call.pool, outcome) {
        PoolStore::new(&ctx.home).record(pool, &call.profile.id, o)?;
    }
    let home = ctx.home.clone();
    let id = call.profile.id.clone();
    ProfileStore::new(&home).update(|f| {
        if let Some(p) = f.get_mut(&id) {
            let now = Utc::now();
            p.last_used_at = Some(now);
            if let Some(v) = validated {
                p.last_validated_at = Some(now);
                p.last_status = Some(v.to_string());
            }
        }
        Ok(())
    })?;
    Ok(receipt)
}

/// Ends a call that failed after its `call.started` receipt but before
/// anything was called: writes `call.finished` (status `not_called`) so no
/// start is left without an end, and hands back the error.
pub fn abandon_call(ctx: &mut Context, call: &Call, err: Error) -> Error {
    let mut details = serde_json::Map::new();
    details.insert("error".into(), err.to_string().into());
    match finish_call(ctx, call, "not_called", None, None, details) {
        Ok(_) => err,
        // The receipt failed too: that is the error that matters.
        Err(audit) => audit,
    }
}

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

/// Authorizes every member a proxy may use and reads their credentials.
/// A pool member that is denied or has no credential is left out (its
/// denial receipt says why); if none is left, the first error is returned.
pub fn proxy_upstreams(
    ctx: &mut Context,
    spec: &CallSpec,
) -> crate::Result<(Vec<proxy::Upstream>, Option<ProfileId>, Option<Operator>)> {
    let (members, pool) = match &spec.target {
        Target::Profile(id) => (vec![id.clone()], None),
        Target::Implicit(p) => (vec![p.id.clone()], None),
        Target::Pool(p) => {
            let pool = PoolStore::new(&ctx.home)
                .get(p)?
                .ok_or_else(|| crate::profile::ProfileError::NotFound(format!("pool {p}")))?;
            (
                pool.members.iter().map(|m| m.profile.clone()).collect(),
                Some(p.clone()),
            )
        }
    };
    let mut ups = Vec::new();
    let mut first_err = None;
    let mut operator = None;
    for id in members {
        let req = Request {
            profile: id.clone(),
            run: spec.run.clone(),
            policy_files: spec.policy_files.clone(),
            capability: spec.capability.clone(),
            wait: spec.wait,
            implicit: spec.target.implicit(),
        };
        let auth = match approval::authorize(ctx, &req, || {}) {
            Ok(a) => a,
            Err(e) => {
                first_err.get_or_insert(e);
                continue;
            }
        };
        let profile = auth.profile_record.clone().expect("authorized profile");
        operator = auth.operator_record.clone();
        if profile.kind == Kind::Marker {
            first_err.get_or_insert(Error::input(
                format!(
                    "profile {} delegates to its provider's CLI and cannot be proxied",
                    profile.id
                ),
                "proxy a profile that holds a credential",
            ));
            continue;
        }
        let cred = match credential(ctx, &profile) {
            Ok(c) => c,
            Err(e) => {
                first_err.get_or_insert(e);
                continue;
            }
        };
        let base_url = match base_url_of(&profile) {
            Ok(b) => b,
            Err(e) => {
                first_err.get_or_insert(e);
                continue;
            }
        };
        let identity_hash = Some(
            ctx.audit_key()?
                .credential_material(profile.provider_family.as_str(), &cred),
        );
        ctx.record(
            profile
                .receipt("authorization", "allowed")
                .operator(operator.clone())
                .run(&spec.run)
                .detail("capability", "proxy"),
        )?;
        ups.push(proxy::Upstream {
            profile,
            credential: cred,
            base_url,
            identity_hash,
        });
    }
    if ups.is_empty() {
        return Err(
            first_err.unwrap_or_else(|| Error::input("the pool has no members", "add members"))
        );
    }
    Ok((ups, pool, operator))
}
