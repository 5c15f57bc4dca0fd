//! Operator identity: OpenID Connect login (device code, or loopback with
//! PKCE), ID-token validation, the session and its refresh, and logout with
//! token revocation.

mod flow;
mod http;
pub mod session;
pub mod token;
pub mod workload;

use std::path::PathBuf;

pub use flow::{Issuer, LoginEvent, LogoutOutcome, browser_login, device_login};
pub use session::logout;

/// The HTTP client craik uses for identity providers.
pub fn http_client(
    ca_file: Option<&std::path::Path>,
) -> Result<openidconnect::reqwest::blocking::Client, OperatorError> {
    http::client(ca_file)
}

pub use session::{Session, current_session};

use crate::exit;

/// Default scopes (`CRAIK_OIDC_SCOPES` overrides).
pub const DEFAULT_SCOPES: &str = "openid profile email";
/// Default claim holding the operator's groups.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    #[error("not logged in")]
    NotLoggedIn,
    #[error("the operator session expired and could not be refreshed: {0}")]
    Expired(String),
    #[error("no OpenID issuer configured")]
    NoIssuer,
    #[error("no OpenID client id configured")]
    NoClientId,
    #[error("issuer {0:?} must use https (plain http is allowed only on loopback addresses)")]
    InsecureIssuer(String),
    #[error("issuer {0:?} is not a valid URL")]
    BadIssuer(String),
    #[error("cannot read CRAIK_OIDC_CA_FILE {path}: {why}")]
    CaFile { path: PathBuf, why: String },
    #[error("OpenID discovery at {issuer} failed: {why}")]
    Discovery { issuer: String, why: String },
    #[error("the issuer does not support the device authorization grant")]
    NoDeviceEndpoint,
    #[error("login was denied at the identity provider")]
    Denied,
    #[error("the device code expired before the login was approved")]
    CodeExpired,
    #[error("login failed: {0}")]
    Flow(String),
    #[error("the identity provider returned no ID token")]
    NoIdToken,
    #[error("cannot fetch the issuer's keys: {0}")]
    Jwks(String),
    #[error(transparent)]
    Token(#[from] token::TokenError),
    #[error("operator session file {path}: {why}")]
    SessionCorrupt { path: PathBuf, why: String },
    #[error("login was interrupted")]
    Interrupted,
    /// The session file is not the one craik wrote at login or refresh.
    #[error("operator session {path} refused: {why} (written or edited outside craik)")]
    SessionForged { path: PathBuf, why: String },
    /// `craik logout` removed a refused session (exit 6, not an error to
    /// retry: the next step is to log in).
    #[error("removed the refused operator session {path} ({why}); nothing in it was trusted")]
    SessionRemoved { path: PathBuf, why: String },
    /// A workload's token could not be read.
    #[error("{0}")]
    Workload(String),
    #[error("unknown workload {0:?}: expected github, kubernetes or file:PATH")]
    BadWorkload(String),
    #[error("no issuer to trust for this workload's token")]
    NoWorkloadIssuer,
    #[error("the workload's token was refused: {0}")]
    WorkloadToken(token::TokenError),
}

impl OperatorError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            OperatorError::NotLoggedIn | OperatorError::Expired(_) => "run craik login".into(),
            OperatorError::NoIssuer => {
                "pass --issuer https://idp.example.com or set CRAIK_OIDC_ISSUER".into()
            }
            OperatorError::NoClientId => "pass --client-id or set CRAIK_OIDC_CLIENT_ID".into(),
            OperatorError::InsecureIssuer(_) | OperatorError::BadIssuer(_) => {
                "use the issuer URL your identity provider publishes (https://...)".into()
            }
            OperatorError::CaFile { .. } => {
                "point CRAIK_OIDC_CA_FILE at a PEM certificate file".into()
            }
            OperatorError::Discovery { .. } => {
                "check the issuer URL and that /.well-known/openid-configuration is reachable (a private CA needs CRAIK_OIDC_CA_FILE)".into()
            }
            OperatorError::NoDeviceEndpoint => "use craik login --browser".into(),
            OperatorError::Denied => "ask for access, then run craik login again".into(),
            OperatorError::CodeExpired => {
                "run craik login again and approve within the time shown".into()
            }
            OperatorError::Flow(_) | OperatorError::NoIdToken => {
                "check the client id and scopes (openid is required)".into()
            }
            OperatorError::Jwks(_) => "check that the issuer's jwks_uri is reachable".into(),
            OperatorError::Token(_) => {
                "the identity provider sent a token craik will not trust; check the issuer and client id, then run craik login again".into()
            }
            OperatorError::SessionCorrupt { .. } => {
                "run craik logout, then craik login".into()
            }
            OperatorError::Interrupted => "run craik login again".into(),
            OperatorError::SessionForged { .. } => {
                "log in again: craik logout, then craik login (a receipt records the refusal)".into()
            }
            OperatorError::SessionRemoved { .. } => "run craik login".into(),
            OperatorError::Workload(_) => {
                "run it inside the workload: a GitHub Actions job with permissions: id-token: write, or a pod with a projected token (CRAIK_WORKLOAD_TOKEN_FILE names its path)".into()
            }
            OperatorError::BadWorkload(_) => {
                "use --workload github, --workload kubernetes or --workload file:/path/to/token (the same for CRAIK_WORKLOAD)".into()
            }
            OperatorError::NoWorkloadIssuer => {
                "name the issuer whose keys sign the token: --issuer URL or CRAIK_WORKLOAD_ISSUER (a cluster's is in kubectl get --raw /.well-known/openid-configuration)".into()
            }
            OperatorError::WorkloadToken(_) => {
                "check --issuer and --audience (CRAIK_WORKLOAD_ISSUER, CRAIK_WORKLOAD_AUDIENCE) against the token the platform issues".into()
            }
        })
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            OperatorError::NotLoggedIn
            | OperatorError::Expired(_)
            | OperatorError::SessionForged { .. }
            | OperatorError::SessionRemoved { .. }
            | OperatorError::Workload(_)
            | OperatorError::WorkloadToken(_) => exit::LOGIN_REQUIRED,
            _ => exit::ERROR,
        }
    }

    /// A short machine-readable code for `--json` error events.
    pub fn code(&self) -> &'static str {
        match self {
            OperatorError::Denied => "access_denied",
            OperatorError::CodeExpired => "expired_token",
            OperatorError::NotLoggedIn => "not_logged_in",
            OperatorError::Expired(_) => "session_expired",
            OperatorError::Token(_) => "invalid_id_token",
            OperatorError::Discovery { .. } => "discovery_failed",
            OperatorError::Interrupted => "interrupted",
            OperatorError::SessionForged { .. } => "session_refused",
            OperatorError::SessionRemoved { .. } => "session_removed",
            OperatorError::Workload(_) => "workload_token_unavailable",
            OperatorError::NoWorkloadIssuer => "no_workload_issuer",
            OperatorError::BadWorkload(_) => "unknown_workload",
            OperatorError::WorkloadToken(_) => "invalid_workload_token",
            _ => "login_failed",
        }
    }
}

/// Where and as whom to log in.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// Whether the scopes were chosen (a flag or CRAIK_OIDC_SCOPES): when
    /// not, `groups` is added if the issuer advertises it.
    pub scopes_chosen: bool,
    pub groups_claim: String,
    pub ca_file: Option<PathBuf>,
}

impl OidcConfig {
    /// Flags win over `CRAIK_OIDC_*` variables.
    pub fn resolve(
        issuer: Option<String>,
        client_id: Option<String>,
        scopes: Vec<String>,
        groups_claim: Option<String>,
    ) -> Result<OidcConfig, OperatorError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let issuer = issuer
            .or_else(|| env("CRAIK_OIDC_ISSUER"))
            .ok_or(OperatorError::NoIssuer)?;
        check_issuer(&issuer)?;
        let client_id = client_id
            .or_else(|| env("CRAIK_OIDC_CLIENT_ID"))
            .ok_or(OperatorError::NoClientId)?;
        let scopes_chosen = !scopes.is_empty() || env("CRAIK_OIDC_SCOPES").is_some();
        let mut scopes: Vec<String> = if scopes.is_empty() {
            env("CRAIK_OIDC_SCOPES")
                .unwrap_or_else(|| DEFAULT_SCOPES.to_string())
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        } else {
            scopes
        };
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        Ok(OidcConfig {
            issuer,
            client_id,
            scopes,
            scopes_chosen,
            groups_claim: groups_claim.unwrap_or_else(|| DEFAULT_GROUPS_CLAIM.to_string()),
            ca_file: env("CRAIK_OIDC_CA_FILE").map(PathBuf::from),
        })
    }
}

/// The issuer must be https, except on loopback addresses.
pub fn check_issuer(issuer: &str) -> Result<(), OperatorError> {
    let url = url::Url::parse(issuer).map_err(|_| OperatorError::BadIssuer(issuer.into()))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(OperatorError::InsecureIssuer(issuer.into()))
            }
        }
        _ => Err(OperatorError::BadIssuer(issuer.into())),
    }
}

/// The logged-in operator receipts should name, if any (refreshing a
/// session near expiry). No session, or an expired one: `None`.
/// A workload (`CRAIK_WORKLOAD`, or a session of `craik login --workload`)
/// comes first: in CI, the job is the operator.
pub fn current(ctx: &mut crate::context::Context) -> crate::Result<Option<crate::audit::Operator>> {
    if let Some(w) = workload::current(ctx)? {
        return Ok(Some(w.operator(ctx.audit_key()?)));
    }
    match session::load(&ctx.home) {
        Ok(None) => return Ok(None),
        Ok(Some(_)) => {}
        Err(e) => return Err(session::refuse_forged(ctx, e)),
    }
    match current_session(ctx) {
        Ok(s) => Ok(Some(s.operator(ctx.audit_key()?))),
        Err(crate::Error::Operator(OperatorError::SessionForged { path, why })) => {
            Err(OperatorError::SessionForged { path, why }.into())
        }
        Err(crate::Error::Operator(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
