//! The operator session, `operator-session.json` (0600): who is logged in,
//! from which issuer, until when, and a handle to the refresh token, which
//! lives in the secret store and never in this file.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::flow::{Issuer, LogoutOutcome, Tokens};
use super::{OidcConfig, OperatorError};
use crate::audit::{AuditKey, NewReceipt, Operator, ReceiptKind, Status};
use crate::context::Context;
use crate::home::Home;
use crate::secret::seal::{Domain, SealKey};
use crate::secret::{ExposeSecret as _, Secrets};

pub const SESSION_FILE: &str = "operator-session.json";
/// A command that needs the operator refreshes this close to expiry.
pub const REFRESH_WINDOW_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub version: u32,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// Whether the ID token carried the groups claim (a policy on groups
    /// cannot pass without it, and `whoami` says so).
    #[serde(default = "yes")]
    pub groups_claim_present: bool,
    pub issuer: String,
    pub client_id: String,
    pub groups_claim: String,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// The ID token's jti, or sha256 of `iss:sub:iat` when it has none.
    pub jti: String,
    pub expires_at: DateTime<Utc>,
    pub logged_in_at: DateTime<Utc>,
    pub refreshed_at: Option<DateTime<Utc>>,
    /// Handle of the refresh token in the secret store.
    pub refresh_token_handle: Option<String>,
    /// Handle of the current ID token in the secret store (for an
    /// `oidc-exchange` profile used by a person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_handle: Option<String>,
    /// The seal over every other field ([`crate::secret::seal`]): a
    /// session written or edited by anything but craik, with this home's
    /// key, is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

fn yes() -> bool {
    true
}

fn jti(claims: &super::token::Claims) -> String {
    claims.jti.clone().unwrap_or_else(|| {
        let d = Sha256::digest(format!(
            "{}:{}:{}",
            claims.issuer, claims.subject, claims.issued_at
        ));
        format!("sha256:{}", hex::encode(d))
    })
}

impl Session {
    fn from_tokens(config: &OidcConfig, tokens: &Tokens, handle: Option<String>) -> Session {
        let c = &tokens.claims;
        Session {
            version: 1,
            subject: c.subject.clone(),
            email: c.email.clone(),
            name: c.name.clone(),
            groups: c.groups.clone(),
            groups_claim_present: c.groups_present,
            issuer: c.issuer.clone(),
            client_id: config.client_id.clone(),
            groups_claim: config.groups_claim.clone(),
            scopes: config.scopes.clone(),
            ca_file: config.ca_file.as_ref().map(|p| p.display().to_string()),
            jti: jti(c),
            expires_at: Utc
                .timestamp_opt(c.expires_at, 0)
                .single()
                .unwrap_or_else(Utc::now),
            logged_in_at: Utc::now(),
            refreshed_at: None,
            refresh_token_handle: handle,
            id_token_handle: None,
            seal: None,
        }
    }

    /// The configuration this session was made with (for refresh, logout).
    pub fn config(&self) -> OidcConfig {
        OidcConfig {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            scopes: self.scopes.clone(),
            scopes_chosen: true,
            groups_claim: self.groups_claim.clone(),
            ca_file: self
                .ca_file
                .clone()
                .or_else(|| std::env::var("CRAIK_OIDC_CA_FILE").ok())
                .map(Into::into),
        }
    }

    /// The operator as receipts name it.
    pub fn operator(&self, key: &AuditKey) -> Operator {
        Operator {
            subject: self.subject.clone(),
            issuer: self.issuer.clone(),
            email: self.email.clone(),
            groups: self.groups.clone(),
            identity_hash: key.operator(&self.issuer, &self.subject),
            workload: None,
        }
    }

    pub fn expired(&self) -> bool {
        self.expires_at <= Utc::now()
    }

    fn near_expiry(&self) -> bool {
        (self.expires_at - Utc::now()).num_seconds() < REFRESH_WINDOW_SECS
    }
}

/// What the seal covers: the session's fields, seal left out, in their
/// canonical serialization (so an edit that means the same still fails).
fn sealed_bytes(s: &Session) -> Vec<u8> {
    let unsealed = Session {
        seal: None,
        ..s.clone()
    };
    serde_json::to_vec(&unsealed).expect("session serializes")
}

/// Reads the session file; `None` when there is none. A session whose seal
/// does not verify with this home's key (written or edited by hand, copied
/// from another home, or written by a craik before seals) is refused with
/// [`OperatorError::SessionForged`]: its identity is not what the IdP said.
pub fn load(home: &Home) -> crate::Result<Option<Session>> {
    let Some(bytes) = home.read(SESSION_FILE)? else {
        return Ok(None);
    };
    let path = home.path(SESSION_FILE);
    let s: Session = serde_json::from_slice(&bytes).map_err(|e| OperatorError::SessionCorrupt {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let Some(seal) = &s.seal else {
        return Err(OperatorError::SessionForged {
            path,
            why: "it has no seal".into(),
        }
        .into());
    };
    let key = SealKey::load(&Secrets::new(home))?;
    if !key.verify(Domain::Session, &sealed_bytes(&s), seal) {
        return Err(OperatorError::SessionForged {
            path,
            why: "it does not match its seal".into(),
        }
        .into());
    }
    Ok(Some(s))
}

fn save(ctx: &Context, s: &Session) -> crate::Result<()> {
    let key = SealKey::load(&ctx.secrets)?;
    let sealed = Session {
        seal: Some(key.seal(Domain::Session, &sealed_bytes(s))),
        ..s.clone()
    };
    let mut bytes = serde_json::to_vec_pretty(&sealed).expect("session serializes");
    bytes.push(b'\n');
    ctx.home.write_atomic(SESSION_FILE, &bytes)?;
    Ok(())
}

/// Writes the receipt of a refused session (a `denial` with condition
/// `operator_session`), best effort when the log cannot take it, and
/// hands the error back.
pub fn refuse_forged(ctx: &mut Context, err: crate::Error) -> crate::Error {
    if let crate::Error::Operator(OperatorError::SessionForged { why, .. }) = &err {
        let mut r = NewReceipt::new(ReceiptKind::Denial, Status::Denied)
            .reason(format!("operator session refused: {why}"));
        r.policy_condition = Some("operator_session".into());
        if let Err(e) = ctx.record(r) {
            return e;
        }
    }
    err
}

fn login_receipt(s: &Session, key: &AuditKey, kind: ReceiptKind, status: Status) -> NewReceipt {
    NewReceipt::new(kind, status)
        .operator(Some(s.operator(key)))
        .detail("issuer", s.issuer.as_str())
        .detail("client_id", s.client_id.as_str())
        .detail("expires_at", s.expires_at.to_rfc3339())
}

/// Makes the session from a successful login: stores the refresh token,
/// writes the `login` receipt, then the session file. Replaces an earlier
/// session (its refresh token is deleted).
pub fn establish(
    ctx: &mut Context,
    config: &OidcConfig,
    tokens: Tokens,
    flow: &str,
) -> crate::Result<Session> {
    ctx.audit()?;
    let _lock = ctx.home.lock(SESSION_FILE)?;
    // A refused (forged) session's handle is never trusted, not even to
    // delete the secret it names.
    let old = load(&ctx.home).ok().flatten();
    let handle = match &tokens.refresh_token {
        Some(rt) => Some(ctx.secrets.put(
            crate::secret::purpose::OPERATOR_REFRESH,
            rt.expose_secret().as_bytes(),
        )?),
        None => None,
    };
    let mut session = Session::from_tokens(config, &tokens, handle.clone());
    let id_handle = ctx.secrets.put(
        crate::secret::purpose::OPERATOR_ID_TOKEN,
        tokens.id_token.expose_secret().as_bytes(),
    )?;
    session.id_token_handle = Some(id_handle.clone());
    let receipt = {
        let key = ctx.audit_key()?;
        login_receipt(&session, key, ReceiptKind::Login, Status::Ok).detail("flow", flow)
    };
    if let Err(e) = ctx.record(receipt).and_then(|_| save(ctx, &session)) {
        if let Some(h) = handle {
            let _ = ctx.secrets.delete(&h);
        }
        let _ = ctx.secrets.delete(&id_handle);
        return Err(e);
    }
    if let Some(o) = old {
        for h in [o.refresh_token_handle, o.id_token_handle]
            .into_iter()
            .flatten()
        {
            let _ = ctx.secrets.delete(&h);
        }
    }
    Ok(session)
}

/// Records a failed login (best effort: the login already failed).
/// `craik login`: opens the audit log first (failing closed before anyone
/// approves anything), runs the device-code flow (or, with `browser`,
/// the authorization code flow with PKCE), and establishes the session;
/// a flow that fails leaves a failed `login` receipt. `on_event` shows
/// the user what to do.
pub fn login(
    ctx: &mut Context,
    config: &OidcConfig,
    browser: bool,
    on_event: impl FnMut(&super::LoginEvent),
) -> crate::Result<Session> {
    ctx.audit()?;
    let mut issuer = Issuer::open(&ctx.home, config)?;
    let (flow, result) = if browser {
        ("browser", super::browser_login(&mut issuer, on_event))
    } else {
        ("device_code", super::device_login(&mut issuer, on_event))
    };
    let tokens = match result {
        Ok(t) => t,
        Err(e) => {
            record_failed_login(ctx, config, &e);
            return Err(e.into());
        }
    };
    establish(ctx, issuer.config(), tokens, flow)
}

pub fn record_failed_login(ctx: &mut Context, config: &OidcConfig, err: &OperatorError) {
    let r = NewReceipt::new(ReceiptKind::Login, Status::Failed)
        .reason(err.to_string())
        .detail("issuer", config.issuer.as_str())
        .detail("error", err.code());
    let _ = ctx.record(r);
}

/// The current session, refreshed first when it ends within 5 minutes.
/// Concurrent craik processes refresh once: the first takes the lock and
/// refreshes, the others wait and then find the fresh session.
pub fn current_session(ctx: &mut Context) -> crate::Result<Session> {
    let before = match load(&ctx.home) {
        Ok(s) => s.ok_or(OperatorError::NotLoggedIn)?,
        Err(e) => return Err(refuse_forged(ctx, e)),
    };
    if !before.near_expiry() {
        return Ok(before);
    }
    let _lock = ctx.home.lock(SESSION_FILE)?;
    let s = load(&ctx.home)?.ok_or(OperatorError::NotLoggedIn)?;
    // Another process refreshed (or logged in again) while we waited.
    if s != before || !s.near_expiry() {
        return Ok(s);
    }
    let Some(handle) = s.refresh_token_handle.clone() else {
        return if s.expired() {
            Err(OperatorError::Expired("there is no refresh token".into()).into())
        } else {
            Ok(s)
        };
    };
    match refresh(ctx, &s, &handle) {
        Ok(fresh) => Ok(fresh),
        Err(e) => {
            let why = e.to_string();
            if let Ok(key) = ctx.audit_key() {
                let r = login_receipt(&s, key, ReceiptKind::Refresh, Status::Failed)
                    .reason(why.clone());
                ctx.record(r)?;
            }
            if s.expired() {
                Err(OperatorError::Expired(why).into())
            } else {
                Ok(s)
            }
        }
    }
}

fn refresh(ctx: &mut Context, s: &Session, handle: &str) -> crate::Result<Session> {
    let rt = ctx
        .secrets
        .get_for(handle, crate::secret::purpose::OPERATOR_REFRESH)?;
    let rt = String::from_utf8_lossy(&rt).into_owned();
    let config = s.config();
    let mut issuer = Issuer::open(&ctx.home, &config)?;
    let tokens = issuer.refresh(&rt)?;
    if tokens.claims.subject != s.subject || tokens.claims.issuer != s.issuer {
        return Err(OperatorError::Flow(
            "the refreshed ID token names a different operator".into(),
        )
        .into());
    }
    // Rotated refresh tokens replace the old one in place (atomically).
    if let Some(new_rt) = &tokens.refresh_token {
        ctx.secrets
            .replace(handle, new_rt.expose_secret().as_bytes())?;
    }
    let mut fresh = Session::from_tokens(&config, &tokens, Some(handle.to_string()));
    fresh.id_token_handle = Some(match &s.id_token_handle {
        Some(h) => {
            ctx.secrets
                .replace(h, tokens.id_token.expose_secret().as_bytes())?;
            h.clone()
        }
        None => ctx.secrets.put(
            crate::secret::purpose::OPERATOR_ID_TOKEN,
            tokens.id_token.expose_secret().as_bytes(),
        )?,
    });
    fresh.logged_in_at = s.logged_in_at;
    fresh.refreshed_at = Some(Utc::now());
    let receipt = login_receipt(&fresh, ctx.audit_key()?, ReceiptKind::Refresh, Status::Ok);
    ctx.record(receipt)?;
    save(ctx, &fresh)?;
    Ok(fresh)
}

/// Logs out: revokes the refresh token where the issuer supports it,
/// deletes it and the session, writes a `logout` receipt. Idempotent.
pub fn logout(ctx: &mut Context) -> crate::Result<Option<(Session, LogoutOutcome)>> {
    let _lock = ctx.home.lock(SESSION_FILE)?;
    let s = match load(&ctx.home) {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        Err(crate::Error::Operator(
            OperatorError::SessionForged { path, why }
            | OperatorError::SessionCorrupt { path, why },
        )) => {
            // Nothing in it is trusted: no handle is read or deleted, no
            // token revoked. The file goes, with a receipt saying why.
            let r = NewReceipt::new(ReceiptKind::Logout, Status::Ok)
                .reason(format!("removed a refused operator session: {why}"))
                .detail("revocation", "skipped");
            ctx.record(r)?;
            ctx.home.remove(SESSION_FILE)?;
            return Err(OperatorError::SessionRemoved { path, why }.into());
        }
        Err(e) => return Err(e),
    };
    ctx.audit()?;
    let token = s
        .refresh_token_handle
        .as_deref()
        .and_then(|h| {
            ctx.secrets
                .get_for(h, crate::secret::purpose::OPERATOR_REFRESH)
                .ok()
        })
        .map(|t| String::from_utf8_lossy(&t).into_owned());
    let outcome = match token {
        None => LogoutOutcome::NoToken,
        Some(rt) => match Issuer::open(&ctx.home, &s.config()) {
            Ok(issuer) => issuer.revoke(&rt),
            Err(e) => LogoutOutcome::Failed(e.to_string()),
        },
    };
    let receipt = {
        let key = ctx.audit_key()?;
        let mut r = login_receipt(&s, key, ReceiptKind::Logout, Status::Ok)
            .detail("revocation", outcome.as_str());
        if let LogoutOutcome::Failed(why) = &outcome {
            r = r.reason(why.clone());
        }
        r
    };
    ctx.record(receipt)?;
    ctx.home.remove(SESSION_FILE)?;
    for h in [&s.refresh_token_handle, &s.id_token_handle]
        .into_iter()
        .flatten()
    {
        let _ = ctx.secrets.delete(h);
    }
    Ok(Some((s, outcome)))
}
