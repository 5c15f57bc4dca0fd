//! The OpenID Connect flows: discovery (cached with the JWKS), the device
//! authorization grant (RFC 8628), authorization code with PKCE on a
//! loopback redirect, refresh, and revocation (RFC 7009).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use chrono::Utc;
use jsonwebtoken::jwk::JwkSet;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreDeviceAuthorizationResponse, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreRevocableToken, CoreSubjectIdentifierType, CoreTokenResponse,
};
use openidconnect::reqwest;
use openidconnect::{
    AdditionalProviderMetadata, AuthType, AuthorizationCode, ClientId, CsrfToken,
    DeviceAuthorizationUrl, DeviceCodeErrorResponseType, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, ProviderMetadata, RedirectUrl, RefreshToken, RequestTokenError,
    RevocationUrl, Scope,
};
use serde::{Deserialize, Serialize};

use super::token::{self, Claims, Expected};
use super::{OidcConfig, OperatorError, http};
use crate::home::Home;
use crate::secret::Secrets;
use crate::secret::seal::{Domain, SealKey};

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ExtraMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revocation_endpoint: Option<RevocationUrl>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// `oidc-cache.json`: the login issuer's discovery document and JWKS.
const CACHE_FILE: &str = "oidc-cache.json";
/// How long a cached discovery document is used.
const CACHE_TTL_SECS: i64 = 3600;

/// The cache is sealed with the home's key: any process of the user can
/// write CRAIK_HOME, and a JWKS (or a token endpoint) it put there would
/// let it forge the identity the next validation accepts.
#[derive(Clone, Serialize, Deserialize)]
struct Cache {
    issuer: String,
    fetched_at: i64,
    metadata: serde_json::Value,
    jwks: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seal: Option<String>,
}

impl Cache {
    fn sealed_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&Cache {
            seal: None,
            ..self.clone()
        })
        .unwrap_or_default()
    }
}

pub(super) fn seal_key(home: &Home) -> Option<SealKey> {
    SealKey::load(&Secrets::new(home)).ok()
}

/// An issuer's metadata, its keys, and the HTTP client to talk to it.
pub struct Issuer {
    pub config: OidcConfig,
    pub http: reqwest::blocking::Client,
    pub metadata: Metadata,
    pub jwks: JwkSet,
    home: Home,
    cache_file: &'static str,
}

fn discovery_error(config: &OidcConfig, e: impl std::fmt::Display) -> OperatorError {
    OperatorError::Discovery {
        issuer: config.issuer.clone(),
        why: one_line(&e.to_string()),
    }
}

pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The full chain of an error's causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    one_line(&s)
}

impl Issuer {
    /// Discovery, from the home's cache when fresh.
    pub fn open(home: &Home, config: &OidcConfig) -> Result<Issuer, OperatorError> {
        let cache_file = CACHE_FILE;
        // The issuer may come from a session file any process of the user
        // can write: nothing is sent to one that is not https (or
        // loopback) before a refresh or a revocation.
        super::check_issuer(&config.issuer)?;
        let http = http::client(config.ca_file.as_deref())?;
        if let Ok(Some(bytes)) = home.read(cache_file)
            && let Ok(cache) = serde_json::from_slice::<Cache>(&bytes)
            && cache.issuer == config.issuer
            && let Some(seal) = &cache.seal
            && seal_key(home)
                .is_some_and(|k| k.verify(Domain::OidcCache, &cache.sealed_bytes(), seal))
            && Utc::now().timestamp() - cache.fetched_at < CACHE_TTL_SECS
            && let Ok(metadata) = serde_json::from_value::<Metadata>(cache.metadata)
            && let Ok(jwks) = serde_json::from_value::<JwkSet>(cache.jwks)
        {
            return Ok(Issuer {
                config: config.clone(),
                http,
                metadata,
                jwks,
                home: home.clone(),
                cache_file,
            }
            .with_advertised_groups());
        }
        Ok(Issuer::discover(home, config, http, cache_file)?.with_advertised_groups())
    }

    /// Adds the `groups` scope when the user chose no scopes and the
    /// issuer lists it in `scopes_supported`: without it most issuers send
    /// no groups, and a policy on groups denies with "you have []".
    fn with_advertised_groups(mut self) -> Issuer {
        let advertised = self
            .metadata
            .scopes_supported()
            .is_some_and(|s| s.iter().any(|x| x.as_str() == "groups"));
        if !self.config.scopes_chosen
            && advertised
            && !self.config.scopes.iter().any(|s| s == "groups")
        {
            self.config.scopes.push("groups".into());
        }
        self
    }

    /// The configuration in use (with the scopes actually requested).
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    fn discover(
        home: &Home,
        config: &OidcConfig,
        http: reqwest::blocking::Client,
        cache_file: &'static str,
    ) -> Result<Issuer, OperatorError> {
        let issuer_url =
            IssuerUrl::new(config.issuer.clone()).map_err(|e| discovery_error(config, e))?;
        let metadata = Metadata::discover(&issuer_url, &http)
            .map_err(|e| discovery_error(config, chain(&e)))?;
        let jwks_json =
            serde_json::to_vec(metadata.jwks()).map_err(|e| discovery_error(config, e))?;
        let jwks = token::parse_jwks(&jwks_json).map_err(OperatorError::Jwks)?;
        let issuer = Issuer {
            config: config.clone(),
            http,
            metadata,
            jwks,
            home: home.clone(),
            cache_file,
        };
        issuer.save_cache();
        Ok(issuer)
    }

    fn save_cache(&self) {
        // Without the seal key (a locked store) nothing is cached.
        let Some(key) = seal_key(&self.home) else {
            return;
        };
        let mut cache = Cache {
            issuer: self.config.issuer.clone(),
            fetched_at: Utc::now().timestamp(),
            metadata: serde_json::to_value(&self.metadata).unwrap_or_default(),
            jwks: serde_json::to_value(&self.jwks).unwrap_or_default(),
            seal: None,
        };
        cache.seal = Some(key.seal(Domain::OidcCache, &cache.sealed_bytes()));
        if let Ok(bytes) = serde_json::to_vec(&cache) {
            // A cache; failing to write it is not an error.
            let _ = self.home.write_atomic(self.cache_file, &bytes);
        }
    }

    /// Fetches the JWKS again (key rotation).
    fn refetch_jwks(&mut self) -> Result<(), OperatorError> {
        let uri = self.metadata.jwks_uri().url().clone();
        let resp = self
            .http
            .get(uri)
            .send()
            .map_err(|e| OperatorError::Jwks(chain(&e)))?;
        if !resp.status().is_success() {
            return Err(OperatorError::Jwks(format!("HTTP {}", resp.status())));
        }
        let bytes = resp.bytes().map_err(|e| OperatorError::Jwks(chain(&e)))?;
        if bytes.len() > 1024 * 1024 {
            return Err(OperatorError::Jwks("the JWKS is larger than 1 MiB".into()));
        }
        self.jwks = token::parse_jwks(&bytes).map_err(OperatorError::Jwks)?;
        self.save_cache();
        Ok(())
    }

    /// Validates an ID token; an unknown `kid` triggers one JWKS refetch.
    pub fn validate(&mut self, raw: &str, nonce: Option<&str>) -> Result<Claims, OperatorError> {
        let config = self.config.clone();
        let expected = Expected {
            issuer: &config.issuer,
            client_id: &config.client_id,
            nonce,
            now: Utc::now().timestamp(),
            groups_claim: &config.groups_claim,
        };
        match token::validate(raw, &self.jwks, &expected) {
            Err(token::TokenError::UnknownKid(_)) => {
                self.refetch_jwks()?;
                Ok(token::validate(raw, &self.jwks, &expected)?)
            }
            other => Ok(other?),
        }
    }

    fn client(
        &self,
    ) -> openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            self.metadata.clone(),
            ClientId::new(self.config.client_id.clone()),
            None,
        )
        .set_auth_type(AuthType::RequestBody)
    }

    fn scopes(&self) -> Vec<Scope> {
        self.config
            .scopes
            .iter()
            .filter(|s| *s != "openid")
            .map(|s| Scope::new(s.clone()))
            .collect()
    }

    /// Refreshes with a refresh token; returns the new tokens.
    pub fn refresh(&mut self, refresh_token: &str) -> Result<Tokens, OperatorError> {
        // The discovery document may come from oidc-cache.json, which any
        // process of the user can write.
        if let Some(t) = self.metadata.token_endpoint() {
            super::check_issuer(t.as_str())?;
        }
        let resp = self
            .client()
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
            .map_err(|e| OperatorError::Flow(chain(&e)))?
            .request(&self.http)
            .map_err(|e| OperatorError::Flow(token_error(&e)))?;
        self.tokens(resp, None)
    }

    fn tokens(
        &mut self,
        resp: CoreTokenResponse,
        nonce: Option<&str>,
    ) -> Result<Tokens, OperatorError> {
        let raw = resp
            .extra_fields()
            .id_token()
            .map(|t| t.to_string())
            .ok_or(OperatorError::NoIdToken)?;
        let claims = self.validate(&raw, nonce)?;
        Ok(Tokens {
            id_token: crate::secret::hold(&raw),
            claims,
            refresh_token: resp
                .refresh_token()
                .map(|r| crate::secret::hold(r.secret())),
            access_token: crate::secret::hold(resp.access_token().secret()),
            expires_in: resp.expires_in(),
        })
    }

    /// Revokes a refresh token when the issuer supports it.
    pub fn revoke(&self, refresh_token: &str) -> LogoutOutcome {
        let Some(url) = self
            .metadata
            .additional_metadata()
            .revocation_endpoint
            .clone()
        else {
            return LogoutOutcome::NotSupported;
        };
        if let Err(e) = super::check_issuer(url.as_str()) {
            return LogoutOutcome::Failed(e.to_string());
        }
        let client = self.client().set_revocation_url(url);
        let req = match client.revoke_token(CoreRevocableToken::from(RefreshToken::new(
            refresh_token.to_string(),
        ))) {
            Ok(r) => r,
            Err(e) => return LogoutOutcome::Failed(chain(&e)),
        };
        match req.request(&self.http) {
            Ok(()) => LogoutOutcome::Revoked,
            Err(e) => LogoutOutcome::Failed(token_error(&e)),
        }
    }
}

fn token_error<RE: std::error::Error + 'static, T: openidconnect::ErrorResponse + 'static>(
    e: &RequestTokenError<RE, T>,
) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => one_line(&r.to_string()),
        other => chain(other),
    }
}

/// The result of a successful login or refresh.
pub struct Tokens {
    pub claims: Claims,
    /// The ID token itself, validated.
    pub id_token: crate::secret::SecretString,
    pub refresh_token: Option<crate::secret::SecretString>,
    /// The OAuth access token (used by provider OAuth profiles).
    pub access_token: crate::secret::SecretString,
    pub expires_in: Option<Duration>,
}

/// What `craik login` reports as it goes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LoginEvent {
    DeviceCode {
        verification_uri: String,
        verification_uri_complete: Option<String>,
        user_code: String,
        expires_in: u64,
    },
    Browser {
        url: String,
        opened: bool,
    },
    Waiting,
}

/// The device authorization grant. `on_event` is told the code to show and
/// is ticked while polling.
pub fn device_login(
    issuer: &mut Issuer,
    mut on_event: impl FnMut(&LoginEvent),
) -> Result<Tokens, OperatorError> {
    let device_url = issuer
        .metadata
        .additional_metadata()
        .device_authorization_endpoint
        .clone()
        .ok_or(OperatorError::NoDeviceEndpoint)?;
    let client = issuer.client().set_device_authorization_url(device_url);
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(issuer.scopes())
        .request(&issuer.http)
        .map_err(|e| OperatorError::Flow(token_error(&e)))?;
    on_event(&LoginEvent::DeviceCode {
        verification_uri: details.verification_uri().to_string(),
        verification_uri_complete: details
            .verification_uri_complete()
            .map(|u| u.secret().to_string()),
        user_code: details.user_code().secret().to_string(),
        expires_in: details.expires_in().as_secs(),
    });
    let on_event = std::cell::RefCell::new(on_event);
    let sleep = |d: Duration| {
        let end = Instant::now() + d;
        while Instant::now() < end {
            (on_event.borrow_mut())(&LoginEvent::Waiting);
            std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
        }
    };
    let resp = client
        .exchange_device_access_token(&details)
        .map_err(|e| OperatorError::Flow(chain(&e)))?
        .request(&issuer.http, sleep, None)
        .map_err(|e| match &e {
            RequestTokenError::ServerResponse(r) => match r.error() {
                DeviceCodeErrorResponseType::AccessDenied => OperatorError::Denied,
                DeviceCodeErrorResponseType::ExpiredToken => OperatorError::CodeExpired,
                _ => OperatorError::Flow(token_error(&e)),
            },
            _ => OperatorError::Flow(token_error(&e)),
        })?;
    issuer.tokens(resp, None)
}

/// How long the loopback listener waits for the browser.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(300);

/// Authorization code with PKCE (S256) and a loopback redirect.
pub fn browser_login(
    issuer: &mut Issuer,
    mut on_event: impl FnMut(&LoginEvent),
) -> Result<Tokens, OperatorError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| OperatorError::Flow(e.to_string()))?;
    let port = listener
        .local_addr()
        .map_err(|e| OperatorError::Flow(e.to_string()))?
        .port();
    let redirect = RedirectUrl::new(format!("http://127.0.0.1:{port}/callback"))
        .map_err(|e| OperatorError::Flow(e.to_string()))?;
    let client = issuer.client().set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scopes(issuer.scopes())
        .set_pkce_challenge(challenge)
        .url();
    let opened = crate::term::open_browser(url.as_str());
    on_event(&LoginEvent::Browser {
        url: url.to_string(),
        opened,
    });
    let code = wait_for_callback(&listener, state.secret())?;
    let resp = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| OperatorError::Flow(chain(&e)))?
        .set_pkce_verifier(verifier)
        .request(&issuer.http)
        .map_err(|e| OperatorError::Flow(token_error(&e)))?;
    issuer.tokens(resp, Some(nonce.secret()))
}

/// Serves the loopback redirect until a callback with the right state
/// arrives; answers other requests with 404.
fn wait_for_callback(listener: &TcpListener, state: &str) -> Result<String, OperatorError> {
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    listener
        .set_nonblocking(true)
        .map_err(|e| OperatorError::Flow(e.to_string()))?;
    loop {
        if Instant::now() > deadline {
            return Err(OperatorError::Flow(
                "no browser callback within 5 minutes".into(),
            ));
        }
        let (mut stream, _) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(OperatorError::Flow(e.to_string())),
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut line = String::new();
        let mut reader = BufReader::new(std::io::Read::take(&stream, 8192));
        let _ = reader.read_line(&mut line);
        let target = line.split_whitespace().nth(1).unwrap_or("");
        let Ok(url) = url::Url::parse(&format!("http://127.0.0.1{target}")) else {
            respond(&mut stream, 400, "bad request");
            continue;
        };
        if url.path() != "/callback" {
            respond(&mut stream, 404, "not found");
            continue;
        }
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        if q.get("state").map(String::as_str) != Some(state) {
            respond(
                &mut stream,
                400,
                "state mismatch: this is not the login craik started",
            );
            continue;
        }
        if let Some(err) = q.get("error") {
            respond(&mut stream, 200, "login failed; you can close this window");
            return Err(if err == "access_denied" {
                OperatorError::Denied
            } else {
                OperatorError::Flow(format!(
                    "{err}: {}",
                    q.get("error_description").map(String::as_str).unwrap_or("")
                ))
            });
        }
        let Some(code) = q.get("code") else {
            respond(&mut stream, 400, "no code");
            continue;
        };
        respond(
            &mut stream,
            200,
            "craik: login complete; you can close this window",
        );
        return Ok(code.clone());
    }
}

fn respond(stream: &mut std::net::TcpStream, status: u16, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        if status == 200 { "OK" } else { "Error" },
        body.len()
    );
    let _ = stream.flush();
}

/// What happened to the refresh token at logout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutOutcome {
    Revoked,
    NotSupported,
    Failed(String),
    /// There was no refresh token to revoke.
    NoToken,
}

impl LogoutOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            LogoutOutcome::Revoked => "revoked",
            LogoutOutcome::NotSupported => "not supported",
            LogoutOutcome::Failed(_) => "failed",
            LogoutOutcome::NoToken => "no refresh token",
        }
    }
}
