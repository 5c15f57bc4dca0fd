//! The operations behind `craik auth ...`: adding, listing and removing
//! profiles and moving secrets. Each change writes its receipt before it
//! takes effect; if the receipt cannot be written, nothing changes.

use serde::Serialize;
use zeroize::Zeroizing;

use crate::Error;
use crate::audit::{NewReceipt, ReceiptKind, Status};
use crate::context::Context;
use crate::credential::source::{self, Health};
use crate::profile::{
    Family, Kind, META_ENV_VAR, META_HANDLE, META_REF, Profile, ProfileError, ProfileId,
    ProfileStore, check_base_url, mask, valid_env_name,
};
use crate::provider;
use crate::secret::reference::SecretRef;
use crate::secret::{Backend, Migration};

/// Metadata key recording the variable a profile was migrated from.
pub const META_MIGRATED_FROM: &str = "migrated_from_env";

/// What `craik auth add` asks for.
pub struct AddRequest {
    pub id: ProfileId,
    pub kind: Kind,
    pub env_var: Option<String>,
    pub secret_ref: Option<String>,
    /// The secret for `keyring-ref` (read by the CLI from stdin or a prompt).
    pub secret: Option<Zeroizing<String>>,
    pub base_url: Option<String>,
    pub allow_local_base_url: bool,
    pub force: bool,
    /// cli-bridge: the program and its arguments, and `--extract`.
    pub command: Vec<String>,
    pub extract: Option<String>,
    /// oidc-exchange: where and for what to exchange.
    pub exchange: Option<ExchangeRequest>,
    /// stigmem-ref: which fact of which node (its API key is `secret`).
    pub stigmem: Option<StigmemRequest>,
}

/// `--node`, `--entity`, `--scope`, `--relation`, `--timeout`.
#[derive(Debug, Clone, Default)]
pub struct StigmemRequest {
    pub node: Option<String>,
    pub entity: Option<String>,
    pub scope: Option<String>,
    pub relation: Option<String>,
    pub timeout: Option<String>,
}

impl StigmemRequest {
    fn any(&self) -> bool {
        self.node.is_some()
            || self.entity.is_some()
            || self.scope.is_some()
            || self.relation.is_some()
            || self.timeout.is_some()
    }
}

/// `--exchange-url`, `--audience`, `--requested-token-type`, `--scope`.
#[derive(Debug, Clone, Default)]
pub struct ExchangeRequest {
    pub url: Option<String>,
    pub audience: Option<String>,
    pub requested_token_type: Option<String>,
    pub scope: Option<String>,
}

fn flag_misuse(flag: &str, kind: Kind) -> Error {
    Error::input(
        format!("{flag} does not apply to --kind={kind}"),
        "api-key takes --env-var, secret-ref takes --secret-ref, keyring-ref takes --stdin (or a prompt), cli-bridge takes --command and --extract, oidc-exchange takes --exchange-url, --audience, --requested-token-type and --scope, stigmem-ref takes --node, --entity, --scope, --relation, --timeout and --stdin",
    )
}

/// Checks an add request before anything is stored.
pub fn validate_add(req: &AddRequest) -> crate::Result<()> {
    let id = req.id.to_string();
    if id.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(Error::input(
            format!("profile id {id} has upper-case letters"),
            format!(
                "profile ids are lower-case, so policy patterns read the same: use {}",
                id.to_ascii_lowercase()
            ),
        ));
    }
    match req.kind {
        Kind::OAuth => {
            return Err(Error::input(
                "oauth profiles are made by craik auth login",
                "run craik auth login <provider>",
            ));
        }
        Kind::ApiKey => {
            if req.secret_ref.is_some() {
                return Err(flag_misuse("--secret-ref", req.kind));
            }
            if let Some(v) = &req.env_var
                && !valid_env_name(v)
            {
                return Err(Error::input(
                    format!("{v:?} is not a valid environment variable name"),
                    "use letters, digits and '_', not starting with a digit",
                ));
            }
        }
        Kind::SecretRef => {
            if req.env_var.is_some() {
                return Err(flag_misuse("--env-var", req.kind));
            }
            let r = req.secret_ref.as_deref().ok_or_else(|| {
                Error::input(
                    "--kind=secret-ref needs --secret-ref env:NAME or file:PATH",
                    "for example --secret-ref file:/home/me/.secrets/openai",
                )
            })?;
            SecretRef::parse(r)
                .map_err(|e| Error::input(e.to_string(), e.hint().unwrap_or_default()))?;
        }
        Kind::KeyringRef
        | Kind::Marker
        | Kind::CliBridge
        | Kind::OidcExchange
        | Kind::StigmemRef => {
            if req.env_var.is_some() {
                return Err(flag_misuse("--env-var", req.kind));
            }
            if req.secret_ref.is_some() {
                return Err(flag_misuse("--secret-ref", req.kind));
            }
        }
    }
    if req.kind == Kind::StigmemRef {
        // Checked as the profile will be: build it and ask.
        let mut p = Profile::new(req.id.clone(), req.kind);
        stigmem_metadata(&mut p, req)?;
        crate::profile::stigmem::of(&p).map_err(|why| {
            Error::input(
                why,
                "--kind=stigmem-ref takes --node URL (https, or http on loopback) --entity E [--scope local|team|company|public] [--relation R] [--timeout 5s] [--stdin for the node's API key]",
            )
        })?;
    } else if req.stigmem.as_ref().is_some_and(StigmemRequest::any) {
        return Err(flag_misuse(
            "--node/--entity/--relation/--timeout",
            req.kind,
        ));
    }
    if req.kind == Kind::OidcExchange {
        let x = req.exchange.clone().unwrap_or_default();
        let url = x.url.as_deref().ok_or_else(|| {
            Error::input(
                "--kind=oidc-exchange needs --exchange-url URL",
                "the RFC 8693 token endpoint that trades the workload's token, e.g. --exchange-url https://sts.example.com/token",
            )
        })?;
        crate::operator::check_issuer(url).map_err(|e| {
            Error::input(
                format!("--exchange-url: {e}"),
                "use https (plain http only on loopback addresses)",
            )
        })?;
        if x.audience.as_deref().is_none_or(|a| a.trim().is_empty()) {
            return Err(Error::input(
                "--kind=oidc-exchange needs --audience A",
                "the audience the issued credential is for, as the exchange endpoint names it",
            ));
        }
    } else if req.exchange.as_ref().is_some_and(|x| {
        x.url.is_some()
            || x.audience.is_some()
            || x.requested_token_type.is_some()
            || x.scope.is_some()
    }) {
        return Err(flag_misuse("--exchange-url/--audience", req.kind));
    }
    if req.kind == Kind::CliBridge {
        // --command takes every word after it (its arguments may start
        // with '-'): one of craik's own flags there was meant for craik.
        if let Some(f) = req.command.iter().find(|a| {
            a.split('=').next().is_some_and(|f| {
                [
                    "--extract",
                    "--json",
                    "--force",
                    "--base-url",
                    "--allow-local-base-url",
                ]
                .contains(&f)
            })
        }) {
            return Err(Error::input(
                format!(
                    "--command takes every word after it, so {f} became an argument of the command"
                ),
                "put --command last, e.g. --extract stdout_line --command gh auth token",
            ));
        }
        if req.command.first().is_none_or(|c| c.is_empty()) {
            return Err(Error::input(
                "--kind=cli-bridge needs --command PROGRAM [ARG...]",
                "for example --command gh auth token --extract stdout_line",
            ));
        }
        let spec = req.extract.as_deref().ok_or_else(|| {
            Error::input(
                "--kind=cli-bridge needs --extract",
                "stdout_line, stdout_json:KEY.PATH or credentials_file:/ABSOLUTE/PATH:KEY.PATH",
            )
        })?;
        crate::profile::bridge::Extract::parse(spec).map_err(|e| {
            Error::input(
                e.to_string(),
                "for example --extract stdout_json:token or --extract stdout_line",
            )
        })?;
    } else {
        if !req.command.is_empty() {
            return Err(flag_misuse("--command", req.kind));
        }
        if req.extract.is_some() {
            return Err(flag_misuse("--extract", req.kind));
        }
    }
    if let Some(url) = &req.base_url {
        let local_ok = req.allow_local_base_url || req.id.family() == Family::ChatCompletions;
        check_base_url(url, local_ok).map_err(ProfileError::from)?;
    } else if req.id.family() == Family::ChatCompletions {
        return Err(Error::input(
            format!("profile {} needs --base-url", req.id),
            "chat_completions/local profiles talk to an endpoint you name, e.g. --base-url http://127.0.0.1:8080/v1",
        ));
    }
    Ok(())
}

fn profile_receipt(kind: ReceiptKind, p: &Profile) -> NewReceipt {
    p.receipt(kind, Status::Ok)
}

/// Adds (or with `force` replaces) a profile. Writes `profile_added`.
pub fn add_profile(ctx: &mut Context, req: AddRequest) -> crate::Result<Profile> {
    validate_add(&req)?;
    // Fail closed before touching anything.
    ctx.audit()?;
    let operator = crate::operator::current(ctx)?;
    let mut profile = Profile::new(req.id.clone(), req.kind);
    profile.base_url = req.base_url.clone();
    match req.kind {
        Kind::ApiKey => {
            let var = req
                .env_var
                .clone()
                .unwrap_or_else(|| provider::info(req.id.family()).source_var.to_string());
            profile.metadata.insert(META_ENV_VAR.into(), var);
        }
        Kind::SecretRef => {
            profile
                .metadata
                .insert(META_REF.into(), req.secret_ref.clone().unwrap_or_default());
        }
        Kind::CliBridge => {
            use crate::profile::bridge::{META_COMMAND, META_EXTRACT};
            profile.metadata.insert(
                META_COMMAND.into(),
                serde_json::to_string(&req.command).unwrap_or_default(),
            );
            profile
                .metadata
                .insert(META_EXTRACT.into(), req.extract.clone().unwrap_or_default());
        }
        Kind::OidcExchange => {
            use crate::profile::exchange::*;
            let x = req.exchange.clone().unwrap_or_default();
            for (k, v) in [
                (META_EXCHANGE_URL, x.url),
                (META_AUDIENCE, x.audience),
                (META_REQUESTED_TYPE, x.requested_token_type),
                (META_SCOPE, x.scope),
            ] {
                if let Some(v) = v {
                    profile.metadata.insert(k.into(), v);
                }
            }
        }
        Kind::StigmemRef => stigmem_metadata(&mut profile, &req)?,
        Kind::KeyringRef | Kind::Marker | Kind::OAuth => {}
    }
    let home = ctx.home.clone();
    let store = ProfileStore::new(&home);
    let mut replaced_handle = None;
    let mut replaced_access = None;
    let result = store.update(|file| {
        if let Some(old) = file.get(&req.id) {
            if !req.force {
                return Err(ProfileError::Exists(req.id.clone()).into());
            }
            replaced_handle = old.meta(META_HANDLE).map(str::to_string);
            if old.kind == Kind::OidcExchange {
                replaced_access = old
                    .meta(crate::profile::oauth_meta::META_ACCESS)
                    .map(str::to_string);
            }
            profile.created_at = old.created_at;
            profile.grants = old.grants.clone();
        }
        let mut new_handle = None;
        if req.kind == Kind::StigmemRef
            && let Some(key) = &req.secret
        {
            let handle = ctx.secrets.put(
                &crate::secret::purpose::stigmem_key(&req.id.to_string()),
                key.as_bytes(),
            )?;
            profile.metadata.insert(META_HANDLE.into(), handle.clone());
            new_handle = Some(handle);
        }
        if req.kind == Kind::KeyringRef {
            let secret = req.secret.as_ref().ok_or_else(|| {
                Error::input(
                    "--kind=keyring-ref needs the secret",
                    "pass --stdin and pipe it in, or run on a terminal to be prompted",
                )
            })?;
            let handle = ctx.secrets.put(
                &crate::secret::purpose::profile(&req.id.to_string()),
                secret.as_bytes(),
            )?;
            profile.metadata.insert(META_HANDLE.into(), handle.clone());
            new_handle = Some(handle);
        }
        // A stigmem-ref's secret is the node's API key, not the credential.
        let material = req
            .secret
            .as_deref()
            .map(|s| s.as_str())
            .filter(|_| req.kind == Kind::KeyringRef);
        let receipt = super::identity_hash(ctx, &profile, material).and_then(|identity| {
            let mut r = profile_receipt(ReceiptKind::ProfileAdded, &profile)
                .identity(identity)
                .operator(operator.clone());
            if req.force {
                r = r.detail(
                    "replaced",
                    replaced_handle.is_some() || file.get(&req.id).is_some(),
                );
            }
            if let Some(b) = &profile.base_url {
                r = r.detail("base_url", b.as_str());
            }
            ctx.record(r)
        });
        if let Err(e) = receipt {
            if let Some(h) = new_handle {
                let _ = ctx.secrets.delete(&h);
            }
            return Err(e);
        }
        file.upsert(profile.clone());
        Ok(())
    });
    result?;
    for h in [replaced_handle, replaced_access].into_iter().flatten() {
        let _ = ctx.secrets.delete(&h);
    }
    Ok(profile)
}

fn stigmem_metadata(p: &mut Profile, req: &AddRequest) -> crate::Result<()> {
    use crate::profile::stigmem::*;
    let x = req.stigmem.clone().unwrap_or_default();
    let timeout = x
        .timeout
        .as_deref()
        .map(|t| {
            crate::duration::parse_nonzero(t, std::time::Duration::from_millis(MAX_TIMEOUT_MS))
                .map_err(|e| Error::input(format!("--timeout: {e}"), e.hint()))
        })
        .transpose()?;
    for (k, v) in [
        (META_NODE, x.node),
        (META_ENTITY, x.entity),
        (META_SCOPE, x.scope),
        (META_RELATION, x.relation),
        (
            META_TIMEOUT,
            timeout.map(|t| t.as_millis().max(1).to_string()),
        ),
    ] {
        if let Some(v) = v {
            p.metadata.insert(k.into(), v);
        }
    }
    Ok(())
}

/// Removes profiles (and their stored secrets); writes `profile_removed`
/// for each. Returns the ids removed.
fn remove_where(ctx: &mut Context, pred: impl Fn(&Profile) -> bool) -> crate::Result<Vec<Profile>> {
    ctx.audit()?;
    let operator = crate::operator::current(ctx)?;
    let home = ctx.home.clone();
    let store = ProfileStore::new(&home);
    let pools = crate::pool::PoolStore::new(&home).load()?;
    let removed = store.update(|file| {
        let doomed: Vec<Profile> = file.profiles.iter().filter(|p| pred(p)).cloned().collect();
        for p in &doomed {
            let identity = super::identity_hash(ctx, p, None).unwrap_or(None);
            // It leaves every pool too (the receipt names them): a pool
            // must never pick a profile that is gone.
            let in_pools: Vec<String> = pools
                .pools
                .iter()
                .filter(|pool| pool.members.iter().any(|m| m.profile == p.id))
                .map(|pool| pool.id.to_string())
                .collect();
            ctx.record(
                profile_receipt(ReceiptKind::ProfileRemoved, p)
                    .identity(identity)
                    .operator(operator.clone())
                    .detail("pools", in_pools),
            )?;
            file.remove(&p.id);
        }
        Ok(doomed)
    })?;
    let ids: Vec<ProfileId> = removed.iter().map(|p| p.id.clone()).collect();
    crate::pool::drop_members(&home, &ids)?;
    for p in &removed {
        if let Some(h) = p.meta(META_HANDLE) {
            ctx.secrets.delete(h)?;
        }
        // An exchanged token cached for an oidc-exchange profile.
        if p.kind == Kind::OidcExchange
            && let Some(h) = p.meta(crate::profile::oauth_meta::META_ACCESS)
        {
            let _ = ctx.secrets.delete(h);
        }
    }
    Ok(removed)
}

/// `craik auth reseal`: accepts `auth-profiles.json` as it is now (after
/// a change made outside craik, which the user vouched for), writing a
/// `profiles_resealed` receipt (naming each profile's kind, base URL,
/// grants and source) first. A seal key lost from the store (the kernel
/// keyring after a reboot) is made anew here, and only here. Returns the
/// profiles sealed.
pub fn reseal(ctx: &mut Context) -> crate::Result<Vec<Profile>> {
    crate::secret::seal::SealKey::load_or(&ctx.secrets, true)?;
    let home = ctx.home.clone();
    let store = ProfileStore::new(&home);
    let was_sealed = store.load().is_ok();
    let operator = crate::operator::current(ctx).ok().flatten();
    let file = store.reseal(|file| {
        let r = NewReceipt::new(ReceiptKind::ProfilesResealed, Status::Ok)
            .operator(operator)
            .detail("profiles", reseal_summary(file))
            .detail("was_sealed", was_sealed);
        ctx.record(r).map(|_| ())
    })?;
    Ok(file.profiles)
}

/// What `auth reseal` shows and records of each profile: what a hand edit
/// could have changed (never a secret).
pub fn reseal_summary(file: &crate::profile::ProfileFile) -> serde_json::Value {
    file.profiles
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": p.id.to_string(),
                "kind": p.kind.as_str(),
                "base_url": p.base_url,
                "grants": p.grants,
                "source": p.metadata,
            })
        })
        .collect()
}

/// `craik auth remove <id>`.
pub fn remove_profile(ctx: &mut Context, id: &ProfileId) -> crate::Result<Profile> {
    let file = ProfileStore::new(&ctx.home).load()?;
    if file.get(id).is_none() {
        return Err(file.missing(id).into());
    }
    let mut removed = remove_where(ctx, |p| &p.id == id)?;
    removed
        .pop()
        .ok_or_else(|| ProfileError::NotFound(id.to_string()).into())
}

/// The profiles `craik auth logout <target>` would remove (`--dry-run`);
/// none is an error.
pub fn logout_plan(ctx: &Context, target: &str) -> crate::Result<Vec<ProfileId>> {
    let file = ProfileStore::new(&ctx.home).load()?;
    let ids: Vec<ProfileId> = if target.contains(':') {
        let id: ProfileId = target.parse()?;
        file.get(&id).map(|p| p.id.clone()).into_iter().collect()
    } else {
        let family: Family = target.parse()?;
        file.profiles
            .iter()
            .filter(|p| p.provider_family == family)
            .map(|p| p.id.clone())
            .collect()
    };
    if ids.is_empty() {
        let what = if target.contains(':') {
            target.to_string()
        } else {
            format!("{target}:*")
        };
        return Err(ProfileError::NotFound(what).into());
    }
    Ok(ids)
}

/// `craik auth logout <provider-or-id>`: one profile, or every profile of a
/// provider family.
pub fn logout(ctx: &mut Context, target: &str) -> crate::Result<Vec<Profile>> {
    logout_plan(ctx, target)?;
    if target.contains(':') {
        let id: ProfileId = target.parse()?;
        return Ok(vec![remove_profile(ctx, &id)?]);
    }
    let family: Family = target.parse()?;
    let removed = remove_where(ctx, |p| p.provider_family == family)?;
    if removed.is_empty() {
        return Err(ProfileError::NotFound(format!("{family}:*")).into());
    }
    Ok(removed)
}

/// One line of `craik auth status`.
#[derive(Debug, Serialize)]
pub struct ProfileStatus {
    pub id: String,
    pub provider_family: String,
    pub kind: String,
    pub backend: String,
    pub base_url: Option<String>,
    pub metadata: std::collections::BTreeMap<String, String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub last_validated_at: Option<String>,
    pub last_status: Option<String>,
    pub health: Health,
}

/// `craik auth status`: every profile with masked metadata and health.
pub fn status(ctx: &Context) -> crate::Result<Vec<ProfileStatus>> {
    let file = ProfileStore::new(&ctx.home).load()?;
    let ts =
        |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(file
        .profiles
        .iter()
        .map(|p| ProfileStatus {
            id: p.id.to_string(),
            provider_family: p.provider_family.to_string(),
            kind: p.kind.to_string(),
            backend: source::backend_label(p, &ctx.secrets),
            base_url: p.base_url.clone(),
            metadata: p
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), mask(v)))
                .collect(),
            created_at: ts(&p.created_at),
            last_used_at: p.last_used_at.as_ref().map(ts),
            last_validated_at: p.last_validated_at.as_ref().map(ts),
            last_status: p.last_status.clone(),
            health: super::health(p, &ctx.secrets),
        })
        .collect())
}

/// One profile's outcome in `migrate-from-env`.
#[derive(Debug, Serialize)]
pub struct EnvMigration {
    pub id: String,
    pub env_var: String,
    /// `migrated`, `would migrate`, `already migrated`, `env var not set`.
    pub outcome: String,
}

/// `craik auth migrate-from-env`: moves the values of set environment
/// variables into the secret store and turns those `api-key` profiles into
/// `keyring-ref`. Never touches the environment.
pub fn migrate_from_env(ctx: &mut Context, apply: bool) -> crate::Result<Vec<EnvMigration>> {
    if apply {
        ctx.audit()?;
    }
    let operator = crate::operator::current(ctx)?;
    let home = ctx.home.clone();
    let store = ProfileStore::new(&home);
    let plan = |file: &crate::profile::ProfileFile| -> Vec<EnvMigration> {
        file.profiles
            .iter()
            .filter_map(|p| {
                let (var, outcome) = match p.kind {
                    Kind::ApiKey => {
                        let var = p.meta(META_ENV_VAR).unwrap_or_default().to_string();
                        let set = std::env::var(&var).is_ok_and(|v| !v.is_empty());
                        (
                            var,
                            if set {
                                "would migrate"
                            } else {
                                "env var not set"
                            },
                        )
                    }
                    Kind::KeyringRef => {
                        (p.meta(META_MIGRATED_FROM)?.to_string(), "already migrated")
                    }
                    _ => return None,
                };
                Some(EnvMigration {
                    id: p.id.to_string(),
                    env_var: var,
                    outcome: outcome.to_string(),
                })
            })
            .collect()
    };
    if !apply {
        return Ok(plan(&store.load()?));
    }
    store.update(|file| {
        let mut report = plan(file);
        for m in report.iter_mut().filter(|m| m.outcome == "would migrate") {
            let id: ProfileId = m.id.parse()?;
            let value = Zeroizing::new(std::env::var(&m.env_var).unwrap_or_default());
            let handle = ctx.secrets.put(
                &crate::secret::purpose::profile(&id.to_string()),
                value.as_bytes(),
            )?;
            let p = file.get_mut(&id).expect("planned from this file");
            let before = p.clone();
            p.kind = Kind::KeyringRef;
            p.metadata.remove(META_ENV_VAR);
            p.metadata.insert(META_HANDLE.into(), handle.clone());
            p.metadata
                .insert(META_MIGRATED_FROM.into(), m.env_var.clone());
            let after = p.clone();
            let identity = super::identity_hash(ctx, &after, Some(&value))?;
            let r = profile_receipt(ReceiptKind::SecretMigrated, &after)
                .identity(identity)
                .operator(operator.clone())
                .detail("from", format!("env:{}", m.env_var))
                .detail("to", ctx.secrets.backend_of(&handle)?.as_str())
                .detail("previous_kind", before.kind.as_str());
            if let Err(e) = ctx.record(r) {
                let _ = ctx.secrets.delete(&handle);
                *file.get_mut(&id).expect("present") = before;
                return Err(e);
            }
            m.outcome = "migrated".into();
        }
        Ok(report)
    })
}

/// `craik auth migrate-secrets`: moves every stored secret to `to`
/// (default: the backend selection would pick). Writes `secret_migrated`.
pub fn migrate_secrets(
    ctx: &mut Context,
    to: Option<Backend>,
    dry_run: bool,
) -> crate::Result<Migration> {
    let to = match to {
        Some(b) => b,
        None => ctx.secrets.selection()?.backend,
    };
    if dry_run {
        return Ok(ctx.secrets.migrate(to, true)?);
    }
    let plan = ctx.secrets.migrate(to, true)?;
    let index = ctx.secrets.index()?;
    // craik's own keys go first, so that the audit key is read where it
    // will be; then make sure receipts can be written before moving the
    // rest.
    ctx.secrets.migrate_internal(to)?;
    ctx.audit()?;
    if plan.moved.is_empty() {
        return Ok(ctx.secrets.migrate(to, false)?);
    }
    let operator = crate::operator::current(ctx)?;
    let mut r = NewReceipt::new(ReceiptKind::SecretMigrated, Status::Ok)
        .operator(operator)
        .detail("to", to.as_str())
        .detail("count", plan.moved.len());
    let purposes: Vec<String> = plan
        .moved
        .iter()
        .filter_map(|h| {
            index
                .secrets
                .get(h)
                .map(|e| format!("{} (from {})", e.purpose, e.backend))
        })
        .collect();
    r = r.detail("secrets", purposes);
    ctx.record(r)?;
    let mut done = ctx.secrets.migrate(to, false)?;
    // Report what moved in this command, the internal keys included.
    done.already.retain(|h| !plan.moved.contains(h));
    done.moved = plan.moved;
    Ok(done)
}

/// `craik auth storage status`.
#[derive(Debug, Serialize)]
pub struct StorageStatus {
    pub backend: String,
    pub reason: String,
    pub volatile: bool,
    pub probes: Vec<crate::secret::Probe>,
    /// Secrets the selected backend holds (opened to count them).
    pub secrets: usize,
    /// Secrets recorded in other backends (for example before a migration).
    pub elsewhere: std::collections::BTreeMap<String, usize>,
    pub notes: Vec<String>,
}

pub fn storage_status(ctx: &Context) -> crate::Result<StorageStatus> {
    let sel = ctx.secrets.selection()?.clone();
    let index = ctx.secrets.index()?;
    let mut elsewhere = std::collections::BTreeMap::new();
    let mut held = 0;
    let store = crate::secret::open_backend(&ctx.home, sel.backend)?;
    if sel.backend == Backend::File {
        held = crate::secret::FileStore::new(ctx.home.clone()).count()?;
    }
    for (handle, e) in &index.secrets {
        if e.backend == sel.backend {
            if sel.backend != Backend::File && store.get(handle)?.is_some() {
                held += 1;
            }
        } else {
            *elsewhere.entry(e.backend.to_string()).or_insert(0) += 1;
        }
    }
    let mut notes = Vec::new();
    if sel.backend.volatile() {
        notes.push(
            "kernel keyring (keyutils) secrets do not survive a reboot; use secret-service or file for lasting storage"
                .to_string(),
        );
    }
    if !elsewhere.is_empty() {
        notes.push(format!(
            "some secrets live in another backend; move them with: craik auth migrate-secrets --to {}",
            sel.backend
        ));
    }
    Ok(StorageStatus {
        backend: sel.backend.to_string(),
        reason: sel.reason,
        volatile: sel.backend.volatile(),
        probes: sel.probes,
        secrets: held,
        elsewhere,
        notes,
    })
}

/// `craik unlock`: keeps the file store's key in the kernel keyring for
/// `ttl` ([`crate::secret::unlock`]), after the password opened the file;
/// a `store_unlocked` receipt records it (with the duration). Returns the
/// seconds granted.
pub fn unlock(ctx: &mut Context, ttl: std::time::Duration) -> crate::Result<u64> {
    use crate::secret::unlock::MAX_FOR;
    if ttl.is_zero() || ttl > MAX_FOR {
        return Err(Error::input(
            "--for must be between 1s and 1d",
            "unlock for a working session (15m, 2h) and run craik lock when done",
        ));
    }
    let file = ctx.home.path(crate::secret::SECRETS_FILE);
    if !file.exists() {
        return Err(Error::input(
            format!(
                "there is no encrypted secret store to unlock ({})",
                file.display()
            ),
            "craik unlock is for the encrypted-file store (CRAIK_KEYRING_BACKEND=file), once it holds a secret",
        ));
    }
    crate::secret::FileStore::new(ctx.home.clone()).unlock(ttl)?;
    let operator = crate::operator::current(ctx)?;
    let r = NewReceipt::new(ReceiptKind::StoreUnlocked, Status::Ok)
        .operator(operator)
        .detail("for_seconds", ttl.as_secs());
    if let Err(e) = ctx.record(r) {
        // No receipt, no unlock: fail closed.
        let _ = crate::secret::unlock::forget(ctx.home.root());
        return Err(e);
    }
    Ok(ttl.as_secs())
}

/// `craik lock`: drops the key `unlock` kept (a `store_locked` receipt
/// first, while the store can still be opened). False when it was locked.
pub fn lock(ctx: &mut Context) -> crate::Result<bool> {
    if crate::secret::unlock::remaining(&ctx.home).is_none() {
        return Ok(crate::secret::unlock::forget(ctx.home.root()).unwrap_or(false));
    }
    let operator = crate::operator::current(ctx).ok().flatten();
    let r = NewReceipt::new(ReceiptKind::StoreLocked, Status::Ok).operator(operator);
    // The key goes whether or not the receipt could be written.
    let recorded = ctx.record(r);
    let forgot = crate::secret::unlock::forget(ctx.home.root()).map_err(|why| {
        crate::secret::SecretError::Unavailable {
            backend: Backend::Keyutils,
            why: format!("cannot drop the key from the kernel keyring: {why}"),
        }
    })?;
    recorded?;
    Ok(forgot)
}
