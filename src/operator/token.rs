//! ID-token validation.
//!
//! The signature is checked against the issuer's JWKS with an allow-list of
//! asymmetric algorithms (never `none`, never HS*: a public key can never
//! be used as an HMAC secret). The key is picked by `kid` from the JWKS
//! craik fetched from the issuer's discovery document; header fields that
//! point elsewhere (`jku`, `x5u`, `jwk`, `x5c`) are ignored. Then: `iss`
//! exact; `aud` contains the client id (and `azp` equals it when there are
//! several audiences); `exp`, `iat`, `nbf` with 60 s leeway; `nonce` when
//! the flow sent one; `sub` present. Every failure has its own message.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
pub const LEEWAY_SECS: i64 = 60;
/// Longest token accepted (a real ID token is a few KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why an ID token was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("ID token is too large ({0} bytes)")]
    TooLarge(usize),
    #[error("ID token is not a JWS: expected 3 dot-separated parts, found {0}")]
    Segments(usize),
    #[error("ID token {0} is not valid base64url")]
    Base64(&'static str),
    #[error("ID token {0} is not a JSON object")]
    Json(&'static str),
    #[error("ID token header has no alg")]
    NoAlg,
    #[error("ID token algorithm {0:?} is not allowed (only asymmetric signatures are accepted)")]
    AlgNotAllowed(String),
    #[error("ID token names key {0:?}, which the issuer's JWKS does not hold")]
    UnknownKid(String),
    #[error("ID token has no kid and the issuer's JWKS has no single key for {0}")]
    NoKid(String),
    #[error("key {kid:?} is a {kty} key and cannot verify {alg}")]
    KeyTypeMismatch {
        kid: String,
        kty: String,
        alg: String,
    },
    #[error("key {0:?} in the issuer's JWKS is unusable")]
    BadKey(String),
    #[error("ID token signature does not verify")]
    BadSignature,
    #[error("ID token issuer {got:?} is not the expected {expected:?}")]
    Issuer { expected: String, got: String },
    #[error("ID token audience {got} does not include client {client:?}")]
    Audience { client: String, got: String },
    #[error("ID token has several audiences and its azp {got:?} is not client {client:?}")]
    Azp { client: String, got: String },
    #[error("ID token expired at {0} (unix time)")]
    Expired(i64),
    #[error("ID token was issued in the future ({0}, unix time)")]
    IssuedInFuture(i64),
    #[error("ID token is not valid before {0} (unix time)")]
    NotYetValid(i64),
    #[error("ID token lacks the {0} claim")]
    Missing(&'static str),
    #[error("ID token claim {0} has the wrong type")]
    ClaimType(&'static str),
    #[error("ID token nonce does not match the login request")]
    Nonce,
    #[error("ID token header marks {0:?} as critical, which craik does not understand")]
    Critical(String),
    #[error("ID token header has a kid that is not a string")]
    KidType,
    #[error("ID token claim {0:?} (the groups claim) has the wrong type")]
    GroupsType(String),
}

/// What the token must say.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: Option<&'a str>,
    /// Unix time now.
    pub now: i64,
    /// The claim holding groups (default `groups`).
    pub groups_claim: &'a str,
}

/// The claims craik keeps from a valid ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// Whether the token had the groups claim at all.
    pub groups_present: bool,
    pub jti: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
}

const ALLOWED: &[(&str, Algorithm)] = &[
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

fn kty(jwk: &Jwk) -> &'static str {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => "RSA",
        AlgorithmParameters::EllipticCurve(_) => "EC",
        AlgorithmParameters::OctetKey(_) => "oct",
        AlgorithmParameters::OctetKeyPair(_) => "OKP",
        _ => "unknown",
    }
}

/// Whether `jwk` can verify `alg` (type and curve).
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    use Algorithm::*;
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), RS256 | RS384 | RS512 | PS256 | PS384 | PS512) => true,
        (AlgorithmParameters::EllipticCurve(p), ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), EdDSA) => p.curve == EllipticCurve::Ed25519,
        _ => false,
    }
}

fn decode_part(part: &str, what: &'static str) -> Result<Value, TokenError> {
    let bytes = B64URL.decode(part).map_err(|_| TokenError::Base64(what))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| TokenError::Json(what))?;
    if !v.is_object() {
        return Err(TokenError::Json(what));
    }
    Ok(v)
}

/// The `kid` a token names, if it parses that far (to decide on a JWKS
/// refetch).
pub fn token_kid(raw: &str) -> Option<String> {
    if raw.len() > MAX_TOKEN_LEN {
        return None;
    }
    let header = raw.split('.').next()?;
    decode_part(header, "header").ok()?["kid"]
        .as_str()
        .map(str::to_string)
}

fn int_claim(c: &Value, name: &'static str) -> Result<Option<i64>, TokenError> {
    match c.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or(TokenError::ClaimType(name)),
    }
}

fn str_claim(c: &Value, name: &'static str) -> Result<Option<String>, TokenError> {
    match c.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenError::ClaimType(name)),
    }
}

/// Validates `raw` against `jwks` and `expected`.
pub fn validate(raw: &str, jwks: &JwkSet, expected: &Expected<'_>) -> Result<Claims, TokenError> {
    let c = verified_payload(raw, jwks)?;
    let iss = str_claim(&c, "iss")?.ok_or(TokenError::Missing("iss"))?;
    if iss != expected.issuer {
        return Err(TokenError::Issuer {
            expected: expected.issuer.to_string(),
            got: iss,
        });
    }
    let auds = audiences(&c)?;
    if !auds.iter().any(|a| a == expected.client_id) {
        return Err(TokenError::Audience {
            client: expected.client_id.to_string(),
            got: format!("{auds:?}"),
        });
    }
    let azp = str_claim(&c, "azp")?;
    if auds.len() > 1 || azp.is_some() {
        match &azp {
            Some(a) if a == expected.client_id => {}
            Some(a) => {
                return Err(TokenError::Azp {
                    client: expected.client_id.to_string(),
                    got: a.clone(),
                });
            }
            None => {
                return Err(TokenError::Azp {
                    client: expected.client_id.to_string(),
                    got: "(none)".into(),
                });
            }
        }
    }
    let (exp, iat) = times(&c, expected.now, true)?;
    let sub = str_claim(&c, "sub")?
        .filter(|s| !s.is_empty())
        .ok_or(TokenError::Missing("sub"))?;
    if let Some(n) = expected.nonce {
        match str_claim(&c, "nonce")? {
            Some(got) if got == n => {}
            _ => return Err(TokenError::Nonce),
        }
    }
    let groups_present = !matches!(c.get(expected.groups_claim), None | Some(Value::Null));
    let groups = match c.get(expected.groups_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(_) => return Err(TokenError::GroupsType(expected.groups_claim.to_string())),
    };
    Ok(Claims {
        issuer: iss,
        subject: sub,
        email: str_claim(&c, "email")?,
        name: str_claim(&c, "name")?,
        groups,
        groups_present,
        jti: str_claim(&c, "jti")?,
        issued_at: iat.unwrap_or_default(),
        expires_at: exp,
    })
}

/// A workload's token (GitHub Actions, a Kubernetes service account):
/// what it says once it verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadClaims {
    pub issuer: String,
    pub subject: String,
    pub expires_at: i64,
    /// Every claim of the token, for policies' `bound_claims`.
    pub claims: serde_json::Map<String, Value>,
}

/// Validates a workload's token: the same signature rules as an ID token,
/// `iss` exactly `issuer`, `aud` containing `audience` (no `azp` rule:
/// workload tokens are not issued to a client), `exp` required and `iat`,
/// `nbf` checked when present, all with [`LEEWAY_SECS`], `sub` present.
pub fn validate_workload(
    raw: &str,
    jwks: &JwkSet,
    issuer: &str,
    audience: &str,
    now: i64,
) -> Result<WorkloadClaims, TokenError> {
    let c = verified_payload(raw, jwks)?;
    let iss = str_claim(&c, "iss")?.ok_or(TokenError::Missing("iss"))?;
    if iss != issuer {
        return Err(TokenError::Issuer {
            expected: issuer.to_string(),
            got: iss,
        });
    }
    let auds = audiences(&c)?;
    if !auds.iter().any(|a| a == audience) {
        return Err(TokenError::Audience {
            client: audience.to_string(),
            got: format!("{auds:?}"),
        });
    }
    let (exp, _) = times(&c, now, false)?;
    let sub = str_claim(&c, "sub")?
        .filter(|s| !s.is_empty())
        .ok_or(TokenError::Missing("sub"))?;
    let Value::Object(claims) = c else {
        return Err(TokenError::Json("payload"));
    };
    Ok(WorkloadClaims {
        issuer: iss,
        subject: sub,
        expires_at: exp,
        claims,
    })
}

fn audiences(c: &Value) -> Result<Vec<String>, TokenError> {
    Ok(match c.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or(TokenError::ClaimType("aud"))
            })
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) => return Err(TokenError::Missing("aud")),
        Some(_) => return Err(TokenError::ClaimType("aud")),
    })
}

/// `exp` (required), `iat` (required when `need_iat`) and `nbf`, each
/// with the leeway.
fn times(c: &Value, now: i64, need_iat: bool) -> Result<(i64, Option<i64>), TokenError> {
    let exp = int_claim(c, "exp")?.ok_or(TokenError::Missing("exp"))?;
    if exp.saturating_add(LEEWAY_SECS) < now {
        return Err(TokenError::Expired(exp));
    }
    let iat = int_claim(c, "iat")?;
    match iat {
        None if need_iat => return Err(TokenError::Missing("iat")),
        Some(iat) if iat.saturating_sub(LEEWAY_SECS) > now => {
            return Err(TokenError::IssuedInFuture(iat));
        }
        _ => {}
    }
    if let Some(nbf) = int_claim(c, "nbf")?
        && nbf.saturating_sub(LEEWAY_SECS) > now
    {
        return Err(TokenError::NotYetValid(nbf));
    }
    Ok((exp, iat))
}

/// Checks the signature of `raw` with a key of `jwks` and returns its
/// payload (claims not yet checked).
fn verified_payload(raw: &str, jwks: &JwkSet) -> Result<Value, TokenError> {
    if raw.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge(raw.len()));
    }
    let parts: Vec<&str> = raw.split('.').collect();
    if parts.len() != 3 {
        return Err(TokenError::Segments(parts.len()));
    }
    let header = decode_part(parts[0], "header")?;
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenError::NoAlg)?;
    let alg = ALLOWED
        .iter()
        .find(|(n, _)| *n == alg_name)
        .map(|(_, a)| *a)
        .ok_or_else(|| TokenError::AlgNotAllowed(alg_name.to_string()))?;
    // jku, x5u, jwk and x5c are deliberately ignored: keys come only from
    // the issuer's JWKS.
    // RFC 7515 4.1.11: a critical extension we do not implement must be
    // refused.
    if let Some(crit) = header.get("crit") {
        let names = crit
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_else(|| crit.to_string());
        return Err(TokenError::Critical(names));
    }
    if header.get("kid").is_some_and(|k| !k.is_string()) {
        return Err(TokenError::KidType);
    }
    let usable = |k: &Jwk| {
        // A key for encryption, or pinned to another algorithm, never
        // verifies this token.
        let use_ok = !matches!(&k.common.public_key_use, Some(u) if *u != jsonwebtoken::jwk::PublicKeyUse::Signature);
        let alg_ok = k
            .common
            .key_algorithm
            .is_none_or(|ka| ka.to_string() == alg_name);
        use_ok && alg_ok
    };
    let jwk = match header.get("kid").and_then(Value::as_str) {
        Some(kid) => {
            let jwk = jwks
                .keys
                .iter()
                .find(|k| k.common.key_id.as_deref() == Some(kid))
                .ok_or_else(|| TokenError::UnknownKid(kid.to_string()))?;
            if !key_fits(jwk, alg) || !usable(jwk) {
                return Err(TokenError::KeyTypeMismatch {
                    kid: kid.to_string(),
                    kty: kty(jwk).to_string(),
                    alg: alg_name.to_string(),
                });
            }
            jwk
        }
        None => {
            let fits: Vec<&Jwk> = jwks
                .keys
                .iter()
                .filter(|k| key_fits(k, alg) && usable(k))
                .collect();
            match fits.as_slice() {
                [one] => *one,
                _ => return Err(TokenError::NoKid(alg_name.to_string())),
            }
        }
    };
    let kid = jwk.common.key_id.clone().unwrap_or_default();
    let key = DecodingKey::from_jwk(jwk).map_err(|_| TokenError::BadKey(kid.clone()))?;
    let message_len = parts[0].len() + 1 + parts[1].len();
    let ok = jsonwebtoken::crypto::verify(parts[2], &raw.as_bytes()[..message_len], &key, alg)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::Base64(_) => TokenError::Base64("signature"),
            jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
            | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_)
            | jsonwebtoken::errors::ErrorKind::InvalidKeyFormat => TokenError::BadKey(kid.clone()),
            _ => TokenError::BadSignature,
        })?;
    if !ok {
        return Err(TokenError::BadSignature);
    }

    // The signature holds; the caller checks the claims.
    decode_part(parts[1], "payload")
}

/// Parses a JWKS document (a fuzz target).
pub fn parse_jwks(bytes: &[u8]) -> Result<JwkSet, String> {
    // Parse key by key so one key of an unknown type does not hide the rest.
    let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let keys = v
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no keys array")?;
    Ok(JwkSet {
        keys: keys
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .collect(),
    })
}
