//! The one path from a request to credential material. Every provider
//! call, and `auth check`, goes through these states in order:
//!
//! ```text
//! CallSpec --resolve--> Resolved --authorize--> Authorized --start--> Started --finish--> receipt
//!                       (a profile)  (policy, grants,   |      (durable authorization
//!                                     approval gate)    |       + call.started, then material)
//!                                                       `--record--> authorization receipt (auth check)
//! ```
//!
//! Each arrow consumes the state before it, so a step cannot be skipped,
//! and only [`Started`] holds material: it exists only once its receipt
//! (`call.started`, or `authorization` for a proxy's session) is durable
//! in the audit log, and [`crate::credential::material`] is called from
//! nowhere else. `exec`, `proxy`, `auth test` and `auth check` differ
//! only in what they do with a state, never in how they reach it.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value};

use crate::Error;
use crate::approval::{self, check_run_id};
use crate::audit::{NewReceipt, Operator, Receipt, ReceiptKind, Status};
use crate::context::Context;
use crate::policy::{self, Evaluation, Policy};
use crate::pool::{Outcome, PoolStore};
use crate::profile::{Kind, Profile, ProfileError, ProfileId, ProfileStore};
use crate::secret::ExposeSecret as _;

/// The conditions about who the operator is: failing one while nobody is
/// logged in means "log in" (exit 6), not "you may not" (exit 3).
const IDENTITY_CONDITIONS: [&str; 7] = [
    "required_operator",
    "required_operator_issuer",
    "allowed_operator_groups",
    "allowed_operator_subjects",
    "profile_grants",
    "allowed_workload_issuers",
    "bound_claims",
];

/// What a request uses a credential for, named in receipts' `capability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capability {
    /// `auth check`: authorize, and stop before any material.
    Check,
    Exec,
    Proxy,
    /// `auth test`.
    Test,
    /// `agent env`: the material written to a file for another process.
    Export,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Check => "check",
            Capability::Exec => "exec",
            Capability::Proxy => "proxy",
            Capability::Test => "test",
            Capability::Export => "export",
        }
    }
}

/// A profile or a pool, as named on the command line.
#[derive(Debug, Clone)]
pub enum Target {
    Profile(ProfileId),
    Pool(ProfileId),
    /// A profile not in the store (`--provider anthropic` resolving to an
    /// environment variable).
    Implicit(Box<Profile>),
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

/// A request: which credential, for what, in which run, under which
/// extra policies, and how long to wait for an approval.
#[derive(Debug, Clone)]
pub struct CallSpec {
    pub target: Target,
    pub run: String,
    pub policy_files: Vec<PathBuf>,
    pub capability: Capability,
    /// Wait this long for an approval instead of failing with exit 4.
    pub wait: Option<Duration>,
}

/// A request narrowed to one profile (a pool's member picked).
#[derive(Debug, Clone)]
pub struct Resolved {
    spec: CallSpec,
    id: ProfileId,
    pool: Option<ProfileId>,
}

impl CallSpec {
    /// Picks the profile: the named one, or a healthy pool member not in
    /// `exclude`.
    pub fn resolve(&self, ctx: &Context, exclude: &[ProfileId]) -> crate::Result<Resolved> {
        let (id, pool) = match &self.target {
            Target::Profile(id) => (id.clone(), None),
            Target::Implicit(p) => (p.id.clone(), None),
            Target::Pool(pool) => {
                let member = PoolStore::new(&ctx.home).pick(pool, exclude)?;
                (member, Some(pool.clone()))
            }
        };
        Ok(Resolved {
            spec: self.clone(),
            id,
            pool,
        })
    }

    /// Every profile the request may use (a pool's members, in order),
    /// for a proxy that authorizes them all at its start.
    pub fn resolve_all(&self, ctx: &Context) -> crate::Result<Vec<Resolved>> {
        let one = |id: ProfileId| Resolved {
            spec: self.clone(),
            id,
            pool: None,
        };
        match &self.target {
            Target::Profile(id) => Ok(vec![one(id.clone())]),
            Target::Implicit(p) => Ok(vec![one(p.id.clone())]),
            Target::Pool(p) => {
                let pool = PoolStore::new(&ctx.home)
                    .get(p)?
                    .ok_or_else(|| ProfileError::NotFound(format!("pool {p}")))?;
                Ok(pool
                    .members
                    .iter()
                    .map(|m| Resolved {
                        spec: self.clone(),
                        id: m.profile.clone(),
                        pool: Some(p.clone()),
                    })
                    .collect())
            }
        }
    }
}

fn load_profile(ctx: &Context, id: &ProfileId) -> crate::Result<Profile> {
    let file = ProfileStore::new(&ctx.home).load()?;
    file.get(id).cloned().ok_or_else(|| file.missing(id).into())
}

impl Resolved {
    pub fn profile_id(&self) -> &ProfileId {
        &self.id
    }

    /// Policy (every envelope in force, grants included), then the
    /// approval gate, each leaving its receipt: a `denial` (exit 3), an
    /// `approval_requested` (exit 4, or a wait). `on_wait` is ticked while
    /// waiting for an approval.
    pub fn authorize(self, ctx: &mut Context, on_wait: impl FnMut()) -> crate::Result<Authorized> {
        let spec = &self.spec;
        check_run_id(&spec.run)?;
        let policies: Vec<Policy> = policy::load_in_force(&ctx.home, &spec.policy_files)?;
        let profile = match &spec.target {
            Target::Implicit(p) => (**p).clone(),
            _ => load_profile(ctx, &self.id)?,
        };
        // Fail closed before deciding anything: every outcome leaves a
        // receipt, and a team's store is not left too far behind.
        ctx.audit()?;
        crate::team::check_backlog(ctx)?;
        // Grants an admin made for the whole team count here too.
        let profile = approval::with_team_grants(ctx, profile, &policies)?;
        let operator = crate::operator::current(ctx)?;
        let evaluation = policy::evaluate(&policies, &profile, operator.as_ref());
        let mut authorized = Authorized {
            profile,
            pool: self.pool,
            run: spec.run.clone(),
            capability: spec.capability,
            operator,
            approval: None,
            evaluation,
        };
        if !authorized.evaluation.allowed {
            return Err(authorized.deny(ctx, &self.id));
        }
        let binding = approval::Binding::of(
            ctx,
            &authorized.profile,
            &spec.run,
            &policies,
            &authorized.evaluation.approval,
            authorized.operator.as_ref(),
            &spec.policy_files,
        )?;
        authorized.approval = approval::gate(
            ctx,
            &authorized.receipt(ReceiptKind::ApprovalRequested, Status::Ok),
            &binding,
            spec.wait,
            on_wait,
        )?;
        Ok(authorized)
    }
}

/// An allowed request: policy and grants passed, and any approval the
/// policy asks for was found. Holds no material.
#[derive(Debug)]
pub struct Authorized {
    profile: Profile,
    pool: Option<ProfileId>,
    run: String,
    capability: Capability,
    operator: Option<Operator>,
    approval: Option<approval::Approval>,
    evaluation: Evaluation,
}

impl Authorized {
    pub fn profile(&self) -> &Profile {
        &self.profile
    }
    pub fn run(&self) -> &str {
        &self.run
    }
    pub fn operator(&self) -> Option<&Operator> {
        self.operator.as_ref()
    }
    /// The id of the `approval` receipt that let the request through.
    pub fn approval(&self) -> Option<&str> {
        self.approval.as_ref().map(|a| a.id.as_str())
    }

    /// When the approval that let it through stops holding, if ever.
    pub fn approval_expires(&self) -> Option<chrono::DateTime<Utc>> {
        self.approval.as_ref().and_then(|a| a.expires_at)
    }
    pub fn evaluation(&self) -> &Evaluation {
        &self.evaluation
    }

    /// A receipt about this request: profile, operator, run, capability
    /// and pool filled in.
    fn receipt(&self, kind: ReceiptKind, status: Status) -> NewReceipt {
        let mut r = self
            .profile
            .receipt(kind, status)
            .operator(self.operator.clone())
            .run(&self.run);
        r.capability = Some(self.capability.as_str().to_string());
        r.pool_id = self.pool.as_ref().map(|p| p.to_string());
        r
    }

    /// Writes the `denial` receipt naming the first failing condition
    /// (all of them in `details`) and returns the error (exit 3).
    fn deny(&self, ctx: &mut Context, asked: &ProfileId) -> Error {
        let eval = &self.evaluation;
        let first = eval.first_failure().expect("a failure").clone();
        let failing: Vec<_> = eval.failures().cloned().collect();
        let mut r = self
            .profile
            .receipt(ReceiptKind::Denial, Status::Denied)
            .operator(self.operator.clone())
            .run(&self.run)
            .reason(first.fix.clone().unwrap_or_default())
            .detail(
                "conditions",
                serde_json::to_value(&failing).unwrap_or_default(),
            );
        if !eval.bound_claims.is_empty() {
            r = r.detail("bound_claims", bound_claims_json(eval));
        }
        r.capability = Some(self.capability.as_str().to_string());
        r.policy_condition = Some(first.field.clone());
        if let Err(e) = ctx.record(r) {
            return e;
        }
        // Logged out, and the policy decides by who the operator is: the
        // fix is to log in (exit 6), with the issuer a policy names.
        // Only when logging in could fix every failing condition.
        let login_required = self.operator.is_none()
            && failing
                .iter()
                .all(|c| IDENTITY_CONDITIONS.contains(&c.field.as_str()));
        let hint = if login_required {
            failing
                .iter()
                .find(|c| {
                    c.field == "required_operator_issuer" || c.field == "allowed_workload_issuers"
                })
                .and_then(|c| c.fix.clone())
                .unwrap_or_else(|| "run craik login".into())
        } else if failing.len() > 1 {
            format!(
                "{} conditions failed; see them with: craik policy explain --profile {asked}",
                failing.len(),
            )
        } else {
            format!("see every condition with: craik policy explain --profile {asked}")
        };
        Error::Denied {
            conditions: failing.iter().map(|c| c.field.clone()).collect(),
            message: format!(
                "denied by policy ({}): {}",
                first.field,
                first.fix.clone().unwrap_or_default()
            ),
            hint,
            login_required,
        }
    }

    /// `auth check` ends here: an `authorization` receipt (status
    /// `allowed`), and no material.
    pub fn record(self, ctx: &mut Context) -> crate::Result<Receipt> {
        ctx.record(self.authorization_receipt())
    }

    /// One call: writes its `authorization` and `call.started` durably
    /// in one transaction (adjacent in the chain; `call.started` carries
    /// `details`), then hands out the credential. Nothing leaves craik
    /// before the receipts are in the log. Every capability thus leaves
    /// the same decision receipt as `auth check` and a proxy's session.
    pub fn start(self, ctx: &mut Context, details: Map<String, Value>) -> crate::Result<Started> {
        let mut r = self.receipt(ReceiptKind::CallStarted, Status::Ok);
        r.details.extend(details);
        if self.profile.kind == Kind::Marker {
            r = r.detail("delegated", true);
        }
        r = self.approval_details(r);
        let authorization = self.authorization_receipt();
        self.begin(ctx, Some(authorization), r)
    }

    /// Names the approval that let the request through, and the home
    /// whose chain in the team store holds it when another machine's.
    fn approval_details(&self, mut r: NewReceipt) -> NewReceipt {
        if let Some(a) = &self.approval {
            r = r.detail("approval", a.id.as_str());
            if let Some(h) = &a.home {
                r = r.detail("approval_home", h.as_str());
            }
        }
        r
    }

    /// The `authorization` receipt of this request (status `allowed`).
    fn authorization_receipt(&self) -> NewReceipt {
        let mut r = self.receipt(ReceiptKind::Authorization, Status::Allowed);
        if !self.evaluation.bound_claims.is_empty() {
            r = r.detail("bound_claims", bound_claims_json(&self.evaluation));
        }
        r = self.approval_details(r);
        r
    }

    /// A proxy's session with this profile: refuses what cannot be
    /// proxied (a marker profile, no base URL) before writing anything,
    /// then writes an `authorization` receipt durably and reads the
    /// credential, which the proxy injects per request after each
    /// request's own `call.started`.
    pub fn start_session(self, ctx: &mut Context) -> crate::Result<Started> {
        if self.profile.kind == Kind::Marker {
            return Err(Error::input(
                format!(
                    "profile {} delegates to its provider's CLI and cannot be proxied",
                    self.profile.id
                ),
                "proxy a profile that holds a credential",
            ));
        }
        super::base_url_of(&self.profile)?;
        let r = self
            .authorization_receipt()
            .detail("capability", self.capability.as_str());
        self.begin(ctx, None, r)
    }

    /// Makes `start` durable, then (for all but marker profiles) reads the
    /// material. When it cannot be read, `call.finished` with status
    /// `credential_unavailable` ends what was started (exit 7).
    /// The material is read first, inside craik, so that the starting
    /// receipt can name the credential's identity hash; it leaves craik
    /// only through [`Started`], after that receipt is durable.
    fn begin(
        self,
        ctx: &mut Context,
        authorization: Option<NewReceipt>,
        start: NewReceipt,
    ) -> crate::Result<Started> {
        let material = (self.profile.kind != Kind::Marker)
            .then(|| crate::credential::material(ctx, &self.profile, self.operator.as_ref()));
        let identity_hash = match &material {
            Some(Ok(m)) => Some(
                ctx.audit_key()?
                    .credential_material(self.profile.provider_family.as_str(), m.expose_secret()),
            ),
            _ => None,
        };
        let batch = authorization
            .into_iter()
            .chain([start])
            .map(|r| r.identity(identity_hash.clone()))
            .collect();
        let receipt = ctx
            .record_all(batch)?
            .pop()
            .expect("the starting receipt was appended");
        let mut started = Started {
            authorized: self,
            receipt,
            material: None,
            identity_hash,
        };
        match material {
            None => Ok(started),
            Some(Ok(m)) => {
                started.material = Some(m);
                Ok(started)
            }
            Some(Err(e)) => {
                let r = started
                    .receipt(ReceiptKind::CallFinished, Status::CredentialUnavailable)
                    .identity(None)
                    .reason(e.to_string());
                ctx.record(r)?;
                if let Some(pool) = &started.authorized.pool {
                    let _ = PoolStore::new(&ctx.home).record(
                        pool,
                        &started.authorized.profile.id,
                        Outcome::Rejected,
                    );
                }
                Err(e)
            }
        }
    }
}

/// A request whose starting receipt is durable, holding the material (none
/// for a marker profile, whose provider CLI holds its own).
pub struct Started {
    authorized: Authorized,
    receipt: Receipt,
    material: Option<crate::secret::SecretString>,
    identity_hash: Option<String>,
}

impl Started {
    pub fn profile(&self) -> &Profile {
        &self.authorized.profile
    }
    pub fn pool(&self) -> Option<&ProfileId> {
        self.authorized.pool.as_ref()
    }
    pub fn run(&self) -> &str {
        &self.authorized.run
    }
    pub fn operator(&self) -> Option<&Operator> {
        self.authorized.operator.as_ref()
    }
    /// The receipt that started it (`call.started`, or a proxy session's
    /// `authorization`).
    pub fn started(&self) -> &Receipt {
        &self.receipt
    }
    pub fn identity_hash(&self) -> Option<&str> {
        self.identity_hash.as_deref()
    }
    /// Whether the provider's own CLI holds the credential (a marker).
    pub fn delegated(&self) -> bool {
        self.material.is_none()
    }

    /// The credential material: only the broker reads it, to inject it.
    pub(super) fn material(&self) -> Option<&str> {
        self.material.as_ref().map(|m| m.expose_secret())
    }

    /// A receipt about this call: profile, operator, run, capability,
    /// pool and credential identity filled in (a proxy's per-request
    /// receipts).
    pub fn receipt_about(&self, kind: ReceiptKind, status: Status) -> NewReceipt {
        self.authorized
            .receipt(kind, status)
            .identity(self.identity_hash.clone())
    }

    /// [`Started::receipt_about`], with `started` naming the receipt that
    /// started the call.
    pub fn receipt(&self, kind: ReceiptKind, status: Status) -> NewReceipt {
        self.receipt_about(kind, status)
            .detail("started", self.receipt.id.as_str())
    }

    /// Writes `call.finished` (with `details`), updates pool health and
    /// the profile's `last_used_at` (and, for `auth test`, its
    /// `last_validated_at`/`last_status`).
    pub fn finish(
        &self,
        ctx: &mut Context,
        status: Status,
        outcome: Option<Outcome>,
        validated: Option<Status>,
        details: Map<String, Value>,
    ) -> crate::Result<Receipt> {
        let mut r = self.receipt(ReceiptKind::CallFinished, status);
        for (k, v) in details {
            r.details.insert(k, v);
        }
        if self.delegated() {
            r = r.detail("delegated", true);
        }
        let receipt = ctx.record(r)?;
        let profile = &self.authorized.profile;
        if let (Some(pool), Some(o)) = (&self.authorized.pool, outcome) {
            PoolStore::new(&ctx.home).record(pool, &profile.id, o)?;
        }
        let home = ctx.home.clone();
        ProfileStore::new(&home).update(|f| {
            if let Some(p) = f.get_mut(&profile.id) {
                let now = Utc::now();
                p.last_used_at = Some(now);
                if let Some(v) = validated {
                    p.last_validated_at = Some(now);
                    p.last_status = Some(v.as_str().to_string());
                }
            }
            Ok(())
        })?;
        Ok(receipt)
    }

    /// Ends a call that failed after it started but before anything was
    /// called: `call.finished` with status `not_called`, so no start is
    /// left without an end, and hands back the error.
    pub fn abandon(&self, ctx: &mut Context, err: Error) -> Error {
        let mut details = Map::new();
        details.insert("error".into(), err.to_string().into());
        match self.finish(ctx, Status::NotCalled, None, None, details) {
            Ok(_) => err,
            // The receipt failed too: that is the error that matters.
            Err(audit) => audit,
        }
    }
}

/// The stamp of a file a decision was made from: a change of any of these
/// means the decision must be made again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    exists: bool,
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

fn stamp(path: &std::path::Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => Stamp {
            exists: true,
            len: m.len(),
            modified: m.modified().ok(),
            inode: m.ino(),
        },
        Err(_) => Stamp {
            exists: false,
            len: 0,
            modified: None,
            inode: 0,
        },
    }
}

/// What was true when a running session was last authorized.
struct Seen {
    stamps: Vec<Stamp>,
    /// When the decision must be made again whatever the files say: the
    /// operator's session nearing its expiry, or the approval expiring.
    until: Option<chrono::DateTime<Utc>>,
}

/// Re-authorization for a long-running session (a proxy): before each
/// request, [`Recheck::check`] makes sure the decision that started it
/// still holds. A change to a policy file, `auth-profiles.json` (a grant
/// revoked, the profile removed or replaced), `operator-session.json`
/// (logout, another operator) or, in a team, `team-grants.json`, or the
/// session nearing its expiry, runs the
/// whole authorization again (its denial receipt included); otherwise the
/// check is a `stat` of each watched file.
pub struct Recheck {
    home: crate::home::Home,
    spec: CallSpec,
    started: Profile,
    watched: Vec<PathBuf>,
    seen: std::sync::Mutex<Option<Seen>>,
}

impl Recheck {
    /// For a session of `started`'s profile under `spec` (its run,
    /// policies and target).
    pub fn new(ctx: &Context, spec: &CallSpec, started: &Started) -> Recheck {
        Recheck::for_profile(
            &ctx.home,
            spec,
            started.profile(),
            started.authorized.approval_expires(),
        )
    }

    /// [`Recheck::new`] from the profile as it was started, and when the
    /// approval that let it start expires (the session is authorized again
    /// then: a new approval, or a 403).
    pub fn for_profile(
        home: &crate::home::Home,
        spec: &CallSpec,
        started: &Profile,
        approval_expires: Option<chrono::DateTime<Utc>>,
    ) -> Recheck {
        let mut watched = policy::paths_in_force(home, &spec.policy_files);
        watched.push(home.path(crate::profile::PROFILES_FILE));
        watched.push(home.path(crate::operator::session::SESSION_FILE));
        if home.path(crate::team::CONFIG_FILE).exists() {
            // The team's grants, as the proxy's shipping thread reads them.
            watched.push(home.path(crate::team::GRANTS_FILE));
        }
        let target = match &spec.target {
            Target::Implicit(p) => Target::Implicit(p.clone()),
            _ => Target::Profile(started.id.clone()),
        };
        let recheck = Recheck {
            home: home.clone(),
            spec: CallSpec {
                target,
                wait: None,
                ..spec.clone()
            },
            started: started.clone(),
            seen: std::sync::Mutex::new(None),
            watched,
        };
        // The decision just made counts as seen now.
        let stamps = recheck.stamps();
        let until = earliest(recheck.session_until(), approval_expires);
        *recheck.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(Seen { stamps, until });
        recheck
    }

    fn stamps(&self) -> Vec<Stamp> {
        self.watched.iter().map(|p| stamp(p)).collect()
    }

    fn session_until(&self) -> Option<chrono::DateTime<Utc>> {
        crate::operator::session::load(&self.home)
            .ok()
            .flatten()
            .map(|s| {
                s.expires_at
                    - chrono::Duration::seconds(crate::operator::session::REFRESH_WINDOW_SECS)
            })
    }

    /// Whether nothing the decision was made from has changed (a `stat` of
    /// each watched file and a look at the clock): the per-request fast
    /// path.
    pub fn unchanged(&self) -> bool {
        let stamps = self.stamps();
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.as_ref()
            .is_some_and(|s| s.stamps == stamps && s.until.is_none_or(|u| Utc::now() < u))
    }

    /// Ok when the session may go on; the error (a denial, an approval
    /// required, a profile that changed) when it may not. Blocking: call
    /// it off the async workers when it may take the slow path.
    pub fn check(&self) -> crate::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        let stamps = self.stamps();
        let mut ctx = Context::open(self.home.clone());
        let authorized = self.spec.resolve(&ctx, &[])?.authorize(&mut ctx, || {})?;
        if !same_credential(authorized.profile(), &self.started) {
            let id = &self.started.id;
            let mut r = authorized
                .receipt(ReceiptKind::Denial, Status::Denied)
                .reason("the profile changed since the session started");
            r.policy_condition = Some("profile_changed".into());
            ctx.record(r)?;
            return Err(Error::Denied {
                message: format!(
                    "profile {id} changed since this session started (its credential, kind or base URL)"
                ),
                hint: "start the proxy (or exec --via-proxy) again to use the profile as it is now"
                    .into(),
                conditions: vec!["profile_changed".into()],
                login_required: false,
            });
        }
        let until = earliest(self.session_until(), authorized.approval_expires());
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(Seen { stamps, until });
        Ok(())
    }
}

fn earliest(
    a: Option<chrono::DateTime<Utc>>,
    b: Option<chrono::DateTime<Utc>>,
) -> Option<chrono::DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether two records of a profile name the same credential the same
/// way (what its use records, not when it was last used or refreshed).
fn same_credential(a: &Profile, b: &Profile) -> bool {
    use crate::profile::oauth_meta::{META_EXPIRES, META_LAST_REFRESH};
    let meta = |p: &Profile| {
        p.metadata
            .iter()
            .filter(|(k, _)| k.as_str() != META_EXPIRES && k.as_str() != META_LAST_REFRESH)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    a.id == b.id
        && a.kind == b.kind
        && a.provider_family == b.provider_family
        && a.base_url == b.base_url
        && meta(a) == meta(b)
}

/// The bound claims a workload's token matched, for receipts.
fn bound_claims_json(eval: &Evaluation) -> Value {
    Value::Object(
        eval.bound_claims
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}
