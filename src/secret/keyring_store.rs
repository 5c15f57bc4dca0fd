//! OS keyring backends through the `keyring` crate. Each backend is built
//! explicitly (not through the crate's platform default), so craik decides
//! which store is used and can report it.

use zeroize::Zeroizing;

use super::{Backend, Result, SecretError, SecretStore};

/// The keyring service name under which craik keeps its entries.
pub const SERVICE: &str = "craik";

pub struct KeyringStore {
    backend: Backend,
}

impl KeyringStore {
    pub fn new(backend: Backend) -> KeyringStore {
        KeyringStore { backend }
    }

    fn entry(&self, handle: &str) -> Result<keyring::Entry> {
        let unavailable = |e: keyring::Error| SecretError::Unavailable {
            backend: self.backend,
            why: e.to_string(),
        };
        let cred: Box<keyring::Credential> = match self.backend {
            #[cfg(target_os = "linux")]
            Backend::SecretService => Box::new(
                keyring::secret_service::SsCredential::new_with_target(None, SERVICE, handle)
                    .map_err(unavailable)?,
            ),
            #[cfg(target_os = "linux")]
            Backend::Keyutils => Box::new(
                keyring::keyutils::KeyutilsCredential::new_with_target(None, SERVICE, handle)
                    .map_err(unavailable)?,
            ),
            #[cfg(target_os = "macos")]
            Backend::Keychain => Box::new(
                keyring::macos::MacCredential::new_with_target(None, SERVICE, handle)
                    .map_err(unavailable)?,
            ),
            #[cfg(target_os = "windows")]
            Backend::Wincred => Box::new(
                keyring::windows::WinCredential::new_with_target(None, SERVICE, handle)
                    .map_err(unavailable)?,
            ),
            other => return Err(SecretError::NotCompiled(other)),
        };
        Ok(keyring::Entry::new_with_credential(cred))
    }

    fn fail(&self, e: keyring::Error) -> SecretError {
        SecretError::Unavailable {
            backend: self.backend,
            why: e.to_string(),
        }
    }
}

impl SecretStore for KeyringStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    fn get(&self, handle: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        match self.entry(handle)?.get_secret() {
            Ok(s) => Ok(Some(Zeroizing::new(s))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn set(&self, handle: &str, secret: &[u8]) -> Result<()> {
        self.entry(handle)?
            .set_secret(secret)
            .map_err(|e| self.fail(e))
    }

    fn delete(&self, handle: &str) -> Result<bool> {
        match self.entry(handle)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(self.fail(e)),
        }
    }
}
