//! `craik unlock` / `craik lock`: the encrypted-file store's derived key,
//! kept for a while in the kernel keyring so that nobody needs
//! `CRAIK_KEYRING_PASSWORD` in their environment (as `sudo` keeps its
//! timestamp, or `op` its session).
//!
//! The key (32 bytes of argon2id output, never the password) is a `user`
//! key named `craik:unlock:<home>` (a hash of the home's path) in the
//! caller's session keyring, or the user-session keyring when the login
//! has none, with a timeout: the kernel drops it when the time is up.
//! Only a possessor may read it (other processes of the user may only see
//! that it exists). A cached key is used only when it opens the file
//! (the header's password check), so a stale or planted key is ignored.
//!
//! What it does not stop: a same-user process outside a sandbox can link
//! the session keyring into its own and read the key, as it could read a
//! password from the environment. A child that `--sandbox` runs has no
//! system call left to reach it (`broker::seccomp`). docs/security.md
//! says so.

use std::time::Duration;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::home::Home;

/// The longest `craik unlock --for` accepted.
pub const MAX_FOR: Duration = Duration::from_secs(24 * 3600);
/// `craik unlock` without `--for`.
pub const DEFAULT_FOR: Duration = Duration::from_secs(15 * 60);

/// The key's description: the same home gives the same name in every
/// process, and another home another name.
pub fn description(home: &Home) -> String {
    description_at(home.root())
}

/// [`description`] of the home at `root`, which need not exist.
fn description_at(root: &std::path::Path) -> String {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    format!("craik:unlock:{}", hex::encode(&digest[..16]))
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use linux_keyutils::{KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

    /// The session keyring (the user-session keyring when there is none:
    /// without `create`, so craik never makes one that dies with it).
    fn ring() -> Result<KeyRing, String> {
        KeyRing::from_special_id(KeyRingIdentifier::Session, false).map_err(|e| e.to_string())
    }

    pub fn put(home: &Home, key: &[u8; 32], ttl: Duration) -> Result<(), String> {
        let ring = ring()?;
        let k = ring
            .add_key(&description(home), key)
            .map_err(|e| e.to_string())?;
        let perms = KeyPermissionsBuilder::builder()
            .posessor(Permission::ALL)
            .user(Permission::VIEW)
            .build();
        let done = k
            .set_perms(perms)
            .and_then(|()| k.set_timeout(ttl.as_secs().max(1) as usize));
        if let Err(e) = done {
            let _ = k.invalidate();
            return Err(e.to_string());
        }
        Ok(())
    }

    pub fn get(home: &Home) -> Option<Zeroizing<[u8; 32]>> {
        let k = ring().ok()?.search(&description(home)).ok()?;
        let bytes = Zeroizing::new(k.read_to_vec().ok()?);
        let mut key = Zeroizing::new([0u8; 32]);
        (bytes.len() == 32).then(|| key.copy_from_slice(&bytes))?;
        Some(key)
    }

    /// Seconds left, when a key of this home is cached.
    pub fn remaining(home: &Home) -> Option<u64> {
        let k = ring().ok()?.search(&description(home)).ok()?;
        // The kernel shows the expiry only in /proc/keys (in the "expires"
        // column, as 5m, 2h, 1d or "perm").
        let id = format!("{:08x}", k.get_id().as_raw_id());
        let keys = std::fs::read_to_string("/proc/keys").ok()?;
        let line = keys.lines().find(|l| l.starts_with(&id))?;
        let expires = line.split_whitespace().nth(3)?;
        let (n, unit) = expires.split_at(expires.len().checked_sub(1)?);
        let n: u64 = n.parse().ok()?;
        Some(match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86400,
            "w" => n * 7 * 86400,
            _ => return None,
        })
    }

    /// Drops the key of the home at `root`, which need not exist any
    /// more (a key left by a home since moved or removed).
    pub fn forget(root: &std::path::Path) -> Result<bool, String> {
        let mut any = false;
        // Every key of that name in reach (one per keyring it was added
        // to); an invalidated key is out of reach at once.
        for _ in 0..16 {
            let Ok(k) = ring()?.search(&description_at(root)) else {
                break;
            };
            k.invalidate().map_err(|e| e.to_string())?;
            any = true;
        }
        Ok(any)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;
    pub fn put(_: &Home, _: &[u8; 32], _: Duration) -> Result<(), String> {
        Err("the kernel keyring is Linux only".into())
    }
    pub fn get(_: &Home) -> Option<Zeroizing<[u8; 32]>> {
        None
    }
    pub fn remaining(_: &Home) -> Option<u64> {
        None
    }
    pub fn forget(_: &std::path::Path) -> Result<bool, String> {
        Ok(false)
    }
}

pub use imp::{forget, remaining};
pub(super) use imp::{get, put};
