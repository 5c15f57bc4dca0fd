//! `cli-bridge` profiles: the credential is what a command prints (a
//! vendor's CLI that keeps its own login: `gh auth token`, `gcloud auth
//! print-access-token`, a company's token helper).
//!
//! The command runs without a shell, with craik's own variables removed
//! from its environment, for at most 5 seconds (then its process group is
//! killed), and at most 1 MiB of its output is read. Its standard error is
//! never read, so a helper that prints the secret there cannot put it in
//! craik's errors or receipts. What it gives is kept in this process's
//! memory only, for [`CACHE_FOR`], and never written anywhere.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use zeroize::Zeroizing;

pub use crate::profile::bridge::{Extract, META_COMMAND, META_EXTRACT, of};

/// How long the command may run.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The most of its output read.
pub const MAX_OUTPUT: usize = 1 << 20;
/// How long one answer is reused by this process.
pub const CACHE_FOR: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BridgeError {
    #[error("the bridge command is empty")]
    NoCommand,
    #[error("the bridge command {0:?} could not start: {1}")]
    Start(String, String),
    #[error("the bridge command {0:?} ran longer than {1} s and was stopped")]
    Timeout(String, u64),
    #[error("the bridge command {0:?} printed more than {1} bytes")]
    TooMuch(String, usize),
    #[error(
        "the bridge command {0:?} failed ({1}); its standard error is not shown, as it may hold the secret"
    )]
    Failed(String, String),
    #[error("{0}")]
    NotFound(String),
}

impl BridgeError {
    pub fn hint(&self) -> String {
        match self {
            BridgeError::NoCommand => "give the command after --command".into(),
            BridgeError::Start(..) => {
                "check the program is installed and on PATH (it runs without a shell)".into()
            }
            BridgeError::Timeout(..) | BridgeError::Failed(..) => {
                "run the command yourself to see what it says (it may need a login of its own)"
                    .into()
            }
            BridgeError::TooMuch(..) | BridgeError::NotFound(_) => {
                "run the command yourself and check --extract names where the credential is".into()
            }
        }
    }
}

/// Whether the program can be found, without running it (status and
/// doctor never run a bridge).
pub fn health(profile: &crate::profile::Profile) -> (bool, String) {
    use std::os::unix::fs::PermissionsExt;
    let (command, _) = match of(profile) {
        Ok(c) => c,
        Err(e) => return (false, e),
    };
    let program = &command[0];
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if program.contains('/') {
        runnable(std::path::Path::new(program))
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| runnable(&d.join(program))))
    };
    if found {
        (true, format!("runs {program} at use time"))
    } else {
        (
            false,
            format!("{program} is not found (it runs without a shell, from PATH)"),
        )
    }
}

/// The string at `key` in `v` (array elements by index).
fn at<'a>(v: &'a Value, key: &[String]) -> Option<&'a str> {
    key.iter()
        .try_fold(v, |v, k| match v {
            Value::Array(a) => a.get(k.parse::<usize>().ok()?),
            _ => v.get(k),
        })?
        .as_str()
}

/// Answers by profile id, with when they were got.
type Cache = Mutex<HashMap<String, (Zeroizing<String>, Instant)>>;

fn cache() -> &'static Cache {
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The credential for `profile` (an id, for the cache): from this
/// process's memory if it got it less than [`CACHE_FOR`] ago, else by
/// running the command.
pub fn material(
    profile: &str,
    command: &[String],
    extract: &Extract,
) -> Result<Zeroizing<String>, BridgeError> {
    if let Some((v, at)) = cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(profile)
        && at.elapsed() < CACHE_FOR
    {
        return Ok(v.clone());
    }
    let v = run(command, extract)?;
    cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(profile.to_string(), (v.clone(), Instant::now()));
    Ok(v)
}

/// Runs the command and extracts the credential.
pub fn run(command: &[String], extract: &Extract) -> Result<Zeroizing<String>, BridgeError> {
    use std::os::unix::process::CommandExt;
    let (program, args) = command.split_first().ok_or(BridgeError::NoCommand)?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group, so a timeout stops what it started too.
        .process_group(0);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CRAIK_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| BridgeError::Start(program.clone(), e.to_string()))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Zeroizing::new(Vec::new());
        let _ = (&mut stdout)
            .take(MAX_OUTPUT as u64 + 1)
            .read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if started.elapsed() < TIMEOUT => std::thread::sleep(Duration::from_millis(5)),
            _ => break None,
        }
    };
    let pid = child.id() as i32;
    let stop = || {
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    };
    let Some(status) = status else {
        stop();
        let _ = child.wait();
        return Err(BridgeError::Timeout(program.clone(), TIMEOUT.as_secs()));
    };
    // What it started may still hold the pipe open: stop them too.
    stop();
    let out = reader.join().unwrap_or_default();
    if out.len() > MAX_OUTPUT {
        return Err(BridgeError::TooMuch(program.clone(), MAX_OUTPUT));
    }
    if !status.success() {
        return Err(BridgeError::Failed(program.clone(), status.to_string()));
    }
    let missing = |what: String| BridgeError::NotFound(what);
    let found = match extract {
        Extract::StdoutLine => String::from_utf8_lossy(&out)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
            .ok_or_else(|| missing(format!("the bridge command {program:?} printed nothing")))?,
        Extract::StdoutJson(key) => {
            let v: Value = serde_json::from_slice(&out).map_err(|_| {
                missing(format!("the bridge command {program:?} did not print JSON"))
            })?;
            at(&v, key).map(str::to_string).ok_or_else(|| {
                missing(format!(
                    "the JSON the bridge command {program:?} printed has no string at {}",
                    key.join(".")
                ))
            })?
        }
        Extract::CredentialsFile { path, key } => {
            let bytes = Zeroizing::new(
                std::fs::read(path).map_err(|e| missing(format!("{}: {e}", path.display())))?,
            );
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|_| missing(format!("{} is not JSON", path.display())))?;
            at(&v, key).map(str::to_string).ok_or_else(|| {
                missing(format!(
                    "{} has no string at {}",
                    path.display(),
                    key.join(".")
                ))
            })?
        }
    };
    if found.is_empty() {
        return Err(missing(format!(
            "the bridge command {program:?} gave an empty credential"
        )));
    }
    Ok(Zeroizing::new(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn extracts_and_refuses() {
        assert_eq!(Extract::parse("stdout_line").unwrap(), Extract::StdoutLine);
        assert_eq!(
            Extract::parse("stdout_json:a.b").unwrap(),
            Extract::StdoutJson(vec!["a".into(), "b".into()])
        );
        for bad in [
            "",
            "stdout_json:",
            "stdout_json:a..b",
            "credentials_file:rel:a",
            "x",
        ] {
            assert!(Extract::parse(bad).is_err(), "{bad}");
        }
        let json = Extract::parse("stdout_json:t.0.v").unwrap();
        assert_eq!(
            run(&sh(r#"echo '{"t":[{"v":"s3"}]}'"#), &json)
                .unwrap()
                .as_str(),
            "s3"
        );
        assert_eq!(
            run(&sh("printf '\\n  tok  \\nx'"), &Extract::StdoutLine)
                .unwrap()
                .as_str(),
            "tok"
        );
        assert!(matches!(
            run(&sh("echo secret >&2; exit 3"), &Extract::StdoutLine),
            Err(BridgeError::Failed(..))
        ));
        assert!(matches!(
            run(&sh("head -c 2000000 /dev/zero"), &Extract::StdoutLine),
            Err(BridgeError::TooMuch(..))
        ));
        assert!(matches!(
            run(&["/nonexistent/x".into()], &Extract::StdoutLine),
            Err(BridgeError::Start(..))
        ));
    }
}
