//! An `oidc-exchange` profile's metadata (RFC 8693): where to exchange the
//! operator's token, for which audience, and the cached result's handle
//! and expiry (shared keys with OAuth profiles). Exchanging is
//! [`crate::credential::exchange`]'s.

use super::Profile;

pub const META_EXCHANGE_URL: &str = "exchange_url";
pub const META_AUDIENCE: &str = "audience";
pub const META_REQUESTED_TYPE: &str = "requested_token_type";
pub const META_SCOPE: &str = "scope";
/// The identity hash of the operator the cached token was exchanged for:
/// another operator never gets it.
pub const META_EXCHANGED_FOR: &str = "exchanged_for";

/// The URL and the audience, checked.
pub fn of(p: &Profile) -> Result<(&str, &str), String> {
    let url = p
        .meta(META_EXCHANGE_URL)
        .ok_or("kind oidc-exchange needs metadata exchange_url")?;
    crate::operator::check_issuer(url).map_err(|e| format!("exchange_url: {e}"))?;
    let audience = p
        .meta(META_AUDIENCE)
        .filter(|a| !a.trim().is_empty())
        .ok_or("kind oidc-exchange needs metadata audience")?;
    Ok((url, audience))
}
