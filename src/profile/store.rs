//! `auth-profiles.json`: `{"version":1,"profiles":[...]}`.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Profile, ProfileError, ProfileId};
use crate::home::Home;
use crate::secret::Secrets;
use crate::secret::seal::{Domain, SealKey};

pub const PROFILES_FILE: &str = "auth-profiles.json";
const VERSION: u32 = 1;

/// The parsed contents of `auth-profiles.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    pub version: u32,
    pub profiles: Vec<Profile>,
    /// The seal over the rest ([`crate::secret::seal`]), written by
    /// [`ProfileStore`]: a file edited outside craik is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

impl Default for ProfileFile {
    fn default() -> Self {
        ProfileFile {
            version: VERSION,
            profiles: Vec::new(),
            seal: None,
        }
    }
}

impl ProfileFile {
    /// Parses and validates the file's bytes; `path` names it in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<ProfileFile, ProfileError> {
        let corrupt = |detail: String| ProfileError::Corrupt {
            path: path.to_path_buf(),
            detail,
        };
        let file: ProfileFile = serde_json::from_slice(bytes).map_err(|e| {
            corrupt(format!(
                "line {} column {}: {}",
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ))
        })?;
        if file.version != VERSION {
            return Err(corrupt(format!(
                "unsupported version {} (this craik reads version {VERSION})",
                file.version
            )));
        }
        let mut seen = HashSet::new();
        for p in &file.profiles {
            if !seen.insert(&p.id) {
                return Err(corrupt(format!("profile {} appears twice", p.id)));
            }
            p.validate().map_err(|e| corrupt(e.to_string()))?;
        }
        Ok(file)
    }

    /// What the seal covers: everything but the seal, canonically.
    fn sealed_bytes(&self) -> Vec<u8> {
        let unsealed = ProfileFile {
            version: self.version,
            profiles: self.profiles.clone(),
            seal: None,
        };
        serde_json::to_vec(&unsealed).expect("profiles serialize")
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("profiles serialize");
        out.push(b'\n');
        out
    }

    pub fn get(&self, id: &ProfileId) -> Option<&Profile> {
        self.profiles.iter().find(|p| &p.id == id)
    }

    /// The error for an id the file does not hold, suggesting a close one.
    pub fn missing(&self, id: &ProfileId) -> ProfileError {
        let want = id.to_string();
        let ids: Vec<String> = self.profiles.iter().map(|p| p.id.to_string()).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        match crate::term::did_you_mean(&want, &refs) {
            Some(near) => ProfileError::NotFoundNear {
                id: want,
                near: near.to_string(),
            },
            None => ProfileError::NotFound(want),
        }
    }

    pub fn get_mut(&mut self, id: &ProfileId) -> Option<&mut Profile> {
        self.profiles.iter_mut().find(|p| &p.id == id)
    }

    /// Inserts or replaces (by id) a profile, keeping the order stable.
    pub fn upsert(&mut self, profile: Profile) {
        match self.get_mut(&profile.id) {
            Some(p) => *p = profile,
            None => self.profiles.push(profile),
        }
    }

    pub fn remove(&mut self, id: &ProfileId) -> Option<Profile> {
        let i = self.profiles.iter().position(|p| &p.id == id)?;
        Some(self.profiles.remove(i))
    }
}

/// serde_json appends " at line X column Y"; we print the position first.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

/// Reads and writes `auth-profiles.json` in a home.
pub struct ProfileStore<'h> {
    home: &'h Home,
}

impl<'h> ProfileStore<'h> {
    pub fn new(home: &'h Home) -> Self {
        ProfileStore { home }
    }

    /// Loads the profiles (an absent file is an empty set). A file whose
    /// seal does not verify (edited by hand, or by a craik before seals)
    /// is refused: its grants and handles are not trusted.
    pub fn load(&self) -> crate::Result<ProfileFile> {
        let Some(bytes) = self.home.read(PROFILES_FILE)? else {
            return Ok(ProfileFile::default());
        };
        let path = self.home.path(PROFILES_FILE);
        let file = ProfileFile::parse(&bytes, &path)?;
        let why = match &file.seal {
            None => "it has no seal",
            Some(seal)
                if !self
                    .key()?
                    .verify(Domain::Profiles, &file.sealed_bytes(), seal) =>
            {
                "it does not match its seal"
            }
            Some(_) => return Ok(file),
        };
        Err(ProfileError::Unsealed {
            path,
            why: why.into(),
        }
        .into())
    }

    /// Loads the file without checking its seal (`craik auth reseal`, and
    /// only after the user confirmed the change is theirs).
    pub fn load_unchecked(&self) -> crate::Result<ProfileFile> {
        match self.home.read(PROFILES_FILE)? {
            None => Ok(ProfileFile::default()),
            Some(bytes) => Ok(ProfileFile::parse(&bytes, &self.home.path(PROFILES_FILE))?),
        }
    }

    fn key(&self) -> crate::Result<SealKey> {
        Ok(SealKey::load(&Secrets::new(self.home))?)
    }

    /// Seals and writes `file`.
    pub fn save(&self, file: &ProfileFile) -> crate::Result<()> {
        let sealed = ProfileFile {
            seal: Some(self.key()?.seal(Domain::Profiles, &file.sealed_bytes())),
            ..file.clone()
        };
        self.home.write_atomic(PROFILES_FILE, &sealed.to_json())?;
        Ok(())
    }

    /// Seals the file as it is now, whatever its seal says (`craik auth
    /// reseal`), under the lock: `before` sees exactly what will be
    /// sealed (and writes its receipt) first. Returns it.
    pub fn reseal(
        &self,
        before: impl FnOnce(&ProfileFile) -> crate::Result<()>,
    ) -> crate::Result<ProfileFile> {
        let _lock = self.home.lock(PROFILES_FILE)?;
        let file = self.load_unchecked()?;
        before(&file)?;
        self.save(&file)?;
        Ok(file)
    }

    /// Read-modify-write under the profiles lock. The file is written only
    /// when `f` succeeds and changed something.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut ProfileFile) -> crate::Result<T>,
    ) -> crate::Result<T> {
        let _lock = self.home.lock(PROFILES_FILE)?;
        let before = self.load()?;
        let mut file = before.clone();
        let out = f(&mut file)?;
        if file != before {
            self.save(&file)?;
        }
        Ok(out)
    }
}
