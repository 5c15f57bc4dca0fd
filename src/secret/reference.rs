//! Secret references: `env:NAME` or `file:PATH`, resolved at use time.
//!
//! A referenced file must be a regular file owned by the current user with
//! no permission bits for group or others (0600 or 0400). It is opened
//! first and checked through the open descriptor, so it cannot be swapped
//! between the check and the read.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use zeroize::Zeroizing;

/// Largest secret file craik reads.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretRefError {
    #[error("invalid secret reference {0:?}: expected env:NAME or file:/absolute/path")]
    Invalid(String),
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
    #[error("cannot read secret file {path}: {source}")]
    FileIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret file {path} has mode {mode:04o}; it must be readable by you alone")]
    FilePerms { path: PathBuf, mode: u32 },
    #[error("secret file {path} is not owned by you")]
    FileOwner { path: PathBuf },
    #[error("secret file {path} is not a regular file")]
    FileType { path: PathBuf },
    #[error("secret file {path} is larger than {MAX_SECRET_FILE} bytes")]
    FileTooLarge { path: PathBuf },
    #[error("secret file {path} is empty")]
    FileEmpty { path: PathBuf },
}

impl SecretRefError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            SecretRefError::Invalid(_) => {
                "write env:OPENAI_API_KEY or file:/home/me/.secrets/openai".into()
            }
            SecretRefError::EnvMissing(n) | SecretRefError::EnvEmpty(n) => {
                format!("export {n} in the environment craik runs in")
            }
            SecretRefError::FileIo { .. } => "check the path in the reference".into(),
            SecretRefError::FilePerms { path, .. } => format!("run: chmod 600 {}", path.display()),
            SecretRefError::FileOwner { path } => {
                format!(
                    "the file must belong to you: chown \"$USER\" {}",
                    path.display()
                )
            }
            SecretRefError::FileType { .. } => "point the reference at a regular file".into(),
            SecretRefError::FileTooLarge { .. } | SecretRefError::FileEmpty { .. } => {
                "the file must hold just the secret".into()
            }
        })
    }
}

/// A parsed secret reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

impl SecretRef {
    pub fn parse(s: &str) -> Result<SecretRef, SecretRefError> {
        if let Some(name) = s.strip_prefix("env:") {
            if valid_env_name(name) {
                return Ok(SecretRef::Env(name.to_string()));
            }
        } else if let Some(path) = s.strip_prefix("file:") {
            let path = PathBuf::from(path);
            if path.is_absolute() {
                return Ok(SecretRef::File(path));
            }
        }
        Err(SecretRefError::Invalid(s.to_string()))
    }

    /// Reads the secret. Surrounding whitespace (a trailing newline) is
    /// trimmed.
    pub fn resolve(&self) -> Result<Zeroizing<String>, SecretRefError> {
        match self {
            SecretRef::Env(name) => {
                let v =
                    std::env::var(name).map_err(|_| SecretRefError::EnvMissing(name.clone()))?;
                let v = Zeroizing::new(v);
                if v.trim().is_empty() {
                    return Err(SecretRefError::EnvEmpty(name.clone()));
                }
                Ok(Zeroizing::new(v.trim().to_string()))
            }
            SecretRef::File(path) => read_secret_file(path),
        }
    }

    /// Checks the reference resolves, without returning the secret.
    pub fn check(&self) -> Result<(), SecretRefError> {
        self.resolve().map(drop)
    }
}

fn read_secret_file(path: &PathBuf) -> Result<Zeroizing<String>, SecretRefError> {
    let io = |source| SecretRefError::FileIo {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(SecretRefError::FileType { path: path.clone() });
    }
    if meta.uid() != crate::home::current_uid() {
        return Err(SecretRefError::FileOwner { path: path.clone() });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretRefError::FilePerms {
            path: path.clone(),
            mode,
        });
    }
    if meta.len() > MAX_SECRET_FILE {
        return Err(SecretRefError::FileTooLarge { path: path.clone() });
    }
    let mut buf = Zeroizing::new(Vec::new());
    file.by_ref()
        .take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_SECRET_FILE {
        return Err(SecretRefError::FileTooLarge { path: path.clone() });
    }
    let s = std::str::from_utf8(&buf).map_err(|_| SecretRefError::FileIo {
        path: path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"),
    })?;
    let s = s.trim();
    if s.is_empty() {
        return Err(SecretRefError::FileEmpty { path: path.clone() });
    }
    Ok(Zeroizing::new(s.to_string()))
}

/// True for a valid environment variable name.
pub fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 256
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!(
            SecretRef::parse("env:X").unwrap(),
            SecretRef::Env("X".into())
        );
        assert!(SecretRef::parse("file:/a/b").is_ok());
        for bad in ["", "env:", "env:1A", "file:rel/path", "vault:x", "X"] {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
    }
}
