//! A `cli-bridge` profile's metadata: the command (a JSON array of the
//! program and its arguments) and where the credential is in what it
//! gives. Running it is [`crate::credential::bridge`]'s.

use std::path::PathBuf;

/// Metadata keys of a `cli-bridge` profile.
pub const META_COMMAND: &str = "command";
pub const META_EXTRACT: &str = "extract";

/// Where the credential is in what the command gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extract {
    /// A string at a dotted path in the JSON it prints.
    StdoutJson(Vec<String>),
    /// The first non-empty line it prints.
    StdoutLine,
    /// A string at a dotted path in a JSON file it writes or refreshes.
    CredentialsFile { path: PathBuf, key: Vec<String> },
}

/// A refused `--extract`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--extract {0:?}: write stdout_json:KEY.PATH, stdout_line or credentials_file:/ABSOLUTE/PATH:KEY.PATH"
)]
pub struct BadExtract(pub String);

fn path_of(s: &str) -> Vec<String> {
    s.split('.').map(str::to_string).collect()
}

impl Extract {
    pub fn parse(spec: &str) -> Result<Extract, BadExtract> {
        let bad = || BadExtract(spec.to_string());
        let keyed = |k: &str| {
            (!k.is_empty() && k.split('.').all(|p| !p.is_empty()))
                .then(|| path_of(k))
                .ok_or_else(bad)
        };
        if spec == "stdout_line" {
            return Ok(Extract::StdoutLine);
        }
        if let Some(k) = spec.strip_prefix("stdout_json:") {
            return Ok(Extract::StdoutJson(keyed(k)?));
        }
        if let Some(rest) = spec.strip_prefix("credentials_file:") {
            let (path, key) = rest.rsplit_once(':').ok_or_else(bad)?;
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(bad());
            }
            return Ok(Extract::CredentialsFile {
                path,
                key: keyed(key)?,
            });
        }
        Err(bad())
    }
}

/// A profile's command and extraction, from its metadata.
pub fn of(profile: &super::Profile) -> Result<(Vec<String>, Extract), String> {
    let command: Vec<String> = profile
        .meta(META_COMMAND)
        .and_then(|c| serde_json::from_str(c).ok())
        .filter(|c: &Vec<String>| !c.is_empty() && !c[0].is_empty())
        .ok_or(
            "kind cli-bridge needs metadata command, a JSON array of the program and its arguments",
        )?;
    let extract = Extract::parse(profile.meta(META_EXTRACT).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    Ok((command, extract))
}
