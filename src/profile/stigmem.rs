//! A `stigmem-ref` profile's metadata: the credential is a fact a stigmem
//! node holds (the value of `relation` on `entity`, in `scope`). The
//! node's API key, when it needs one, is in the secret store under the
//! profile's `handle`. Reading it is [`crate::credential::stigmem`]'s.

use super::Profile;

pub const META_NODE: &str = "node_url";
pub const META_ENTITY: &str = "entity";
pub const META_SCOPE: &str = "scope";
pub const META_RELATION: &str = "relation";
pub const META_TIMEOUT: &str = "timeout_ms";

/// The relation read when none is named.
pub const DEFAULT_RELATION: &str = "craik:credential:value";
/// The scopes a node knows.
pub const SCOPES: [&str; 4] = ["local", "team", "company", "public"];
pub const DEFAULT_SCOPE: &str = "local";
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// Where and what to read, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact<'a> {
    pub node: &'a str,
    pub entity: &'a str,
    pub scope: &'a str,
    pub relation: &'a str,
    pub timeout_ms: u64,
}

pub fn of(p: &Profile) -> Result<Fact<'_>, String> {
    let node = p
        .meta(META_NODE)
        .ok_or("kind stigmem-ref needs metadata node_url")?;
    crate::operator::check_issuer(node).map_err(|e| format!("node_url: {e}"))?;
    if super::exchange::has_userinfo(node) {
        return Err("node_url must not hold a user name or password (store the node's API key with --stdin)".into());
    }
    let entity = p
        .meta(META_ENTITY)
        .filter(|e| !e.trim().is_empty())
        .ok_or("kind stigmem-ref needs metadata entity")?;
    let scope = p.meta(META_SCOPE).unwrap_or(DEFAULT_SCOPE);
    if !SCOPES.contains(&scope) {
        return Err(format!(
            "scope {scope:?} is not one of {}",
            SCOPES.join(", ")
        ));
    }
    let relation = p
        .meta(META_RELATION)
        .filter(|r| !r.trim().is_empty())
        .unwrap_or(DEFAULT_RELATION);
    let timeout_ms = match p.meta(META_TIMEOUT) {
        None => DEFAULT_TIMEOUT_MS,
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|t| (1..=MAX_TIMEOUT_MS).contains(t))
            .ok_or_else(|| format!("timeout_ms {t:?} is not 1..={MAX_TIMEOUT_MS}"))?,
    };
    Ok(Fact {
        node,
        entity,
        scope,
        relation,
        timeout_ms,
    })
}
