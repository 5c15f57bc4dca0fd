//! An `oidc-exchange` profile's metadata (RFC 8693): where to exchange the
//! operator's token, for which audience, and the cached result's handle
//! and expiry (shared keys with OAuth profiles). Exchanging is
//! [`crate::credential::exchange`]'s.

use super::Profile;

pub const META_EXCHANGE_URL: &str = "exchange_url";
pub const META_AUDIENCE: &str = "audience";
pub const META_REQUESTED_TYPE: &str = "requested_token_type";
pub const META_SCOPE: &str = "scope";
/// A keyed hash of the workload the cached token was exchanged for (its
/// issuer, subject, source and claims): another never gets it.
pub const META_EXCHANGED_FOR: &str = "exchanged_for";

/// Whether `url` carries `user:password@` (it would be shown in errors,
/// `doctor` and receipts).
pub fn has_userinfo(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| !u.username().is_empty() || u.password().is_some())
}

/// The URL and the audience, checked.
pub fn of(p: &Profile) -> Result<(&str, &str), String> {
    let url = p
        .meta(META_EXCHANGE_URL)
        .ok_or("kind oidc-exchange needs metadata exchange_url")?;
    crate::operator::check_issuer(url).map_err(|e| format!("exchange_url: {e}"))?;
    if has_userinfo(url) {
        return Err("exchange_url must not hold a user name or password".into());
    }
    let audience = p
        .meta(META_AUDIENCE)
        .filter(|a| !a.trim().is_empty())
        .ok_or("kind oidc-exchange needs metadata audience")?;
    Ok((url, audience))
}
