//! Policy envelopes (JSON files teams keep in git): parsing, profile
//! patterns, and evaluation for an operator and a profile.

mod envelope;
mod eval;

use std::path::PathBuf;

pub use envelope::{Envelope, Policy, PolicyError, RequireApproval};
pub use eval::{
    ApprovalRule, Condition, EACH_RUN_TTL_SECS, Evaluation, admins, allows, evaluate, is_admin,
};

use crate::home::Home;

/// The policy file in the home.
pub const HOME_POLICY: &str = "policy.json";

/// The files [`load_in_force`] reads (whether or not they exist): a running
/// proxy watches them to re-authorize when one changes.
pub fn paths_in_force(home: &Home, extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = vec![home.path(HOME_POLICY)];
    if let Some(p) = std::env::var_os("CRAIK_POLICY").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p));
    }
    out.extend(extra.iter().cloned());
    out
}

/// Every envelope in force: `<CRAIK_HOME>/policy.json` if present,
/// `CRAIK_POLICY`, and each `--policy FILE`. Any file that does not parse
/// stops everything (never fail open).
pub fn load_in_force(home: &Home, extra: &[PathBuf]) -> crate::Result<Vec<Policy>> {
    let mut out = Vec::new();
    if let Some(bytes) = home.read(HOME_POLICY)? {
        out.push(Policy::parse(&bytes, &home.path(HOME_POLICY))?);
    }
    if let Some(p) = std::env::var_os("CRAIK_POLICY").filter(|p| !p.is_empty()) {
        out.push(Policy::load(&PathBuf::from(p))?);
    }
    for p in extra {
        out.push(Policy::load(p)?);
    }
    Ok(out)
}

/// The digest of the envelopes in force: an approval made under them
/// holds only while the same envelopes are in force (`sha256:<hex>`).
/// Only what they say counts, not where they were read from or in which
/// order (evaluation depends on neither).
pub fn digest(policies: &[Policy]) -> String {
    use sha2::{Digest, Sha256};
    let mut bodies: Vec<Vec<u8>> = policies
        .iter()
        .map(|p| serde_json::to_vec(&p.envelope).expect("envelopes serialize"))
        .collect();
    bodies.sort();
    bodies.dedup();
    let mut h = Sha256::new();
    for b in &bodies {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}
