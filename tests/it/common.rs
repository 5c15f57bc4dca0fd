//! The test harness: a temporary CRAIK_HOME and a way to run the real
//! `craik` binary in it, as a user would.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const PASSWORD: &str = "correct horse battery staple";

/// Variables of the outer environment that would change craik's behaviour.
const SCRUB: &[&str] = &[
    "CRAIK_HOME",
    "CRAIK_KEYRING_BACKEND",
    "CRAIK_KEYRING_PASSWORD",
    "CRAIK_OIDC_ISSUER",
    "CRAIK_OIDC_CLIENT_ID",
    "CRAIK_OIDC_SCOPES",
    "CRAIK_OIDC_CA_FILE",
    "CRAIK_POLICY",
    "CRAIK_AUDIT_KEY",
    "DBUS_SESSION_BUS_ADDRESS",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
];

pub struct Env {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub vars: HashMap<String, String>,
    pub removed: Vec<String>,
}

/// What one run of craik did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts the error shape: one `error:` line and one `hint:` line.
    #[track_caller]
    pub fn out_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }

    pub fn error_with_hint(&self, needle: &str) -> &Self {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert!(
            lines.len() == 2 && lines[0].starts_with("error: ") && lines[1].starts_with("hint: "),
            "expected `error:` and `hint:` lines, got:\n{}",
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

pub fn craik_bin() -> &'static str {
    env!("CARGO_BIN_EXE_craik")
}

impl Env {
    /// A fresh home using the encrypted-file secret store.
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("craik-home");
        let mut vars = HashMap::new();
        vars.insert("CRAIK_HOME".into(), home.display().to_string());
        vars.insert("CRAIK_KEYRING_BACKEND".into(), "file".into());
        vars.insert("CRAIK_KEYRING_PASSWORD".into(), PASSWORD.into());
        vars.insert("HOME".into(), dir.path().display().to_string());
        vars.insert("NO_COLOR".into(), "1".into());
        Env {
            dir,
            home,
            vars,
            removed: Vec::new(),
        }
    }

    pub fn set(&mut self, k: &str, v: &str) -> &mut Self {
        self.vars.insert(k.into(), v.into());
        self
    }

    pub fn unset(&mut self, k: &str) -> &mut Self {
        self.vars.remove(k);
        self.removed.push(k.into());
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(craik_bin());
        c.args(args);
        for k in SCRUB {
            c.env_remove(k);
        }
        for k in &self.removed {
            c.env_remove(k);
        }
        c.envs(&self.vars);
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_stdin(args, None)
    }

    pub fn run_stdin(&self, args: &[&str], input: Option<&str>) -> Run {
        let mut c = self.command(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn craik");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            if let Some(i) = input {
                let _ = stdin.write_all(i.as_bytes());
            }
        }
        let out = child.wait_with_output().expect("wait craik");
        to_run(out)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.home.join(name)
    }

    pub fn read_json(&self, name: &str) -> serde_json::Value {
        let bytes = std::fs::read(self.file(name)).expect("read file");
        serde_json::from_slice(&bytes).expect("valid JSON")
    }
}

pub fn to_run(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Validates `value` against a schema in `schemas/`.
#[track_caller]
pub fn assert_schema(schema_file: &str, value: &serde_json::Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(schema_file);
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("schema")).expect("schema JSON");
    let v = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = v.iter_errors(value).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{schema_file}: {errors:?}\n{value:#}");
}

/// Fails with an install hint when a tool is missing (never skips).
#[track_caller]
pub fn require_tool(tool: &str, install: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "{tool} is not installed; install it with: {install}");
}

/// Fails, saying why, unless the tests run as root: `what` says what the
/// test does that needs it (mounts, `chattr +i`).
pub fn require_root(what: &str) {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test {what}, which needs root: run the suite as root, or with sudo (scripts/test does)"
    );
}

/// A random canary secret.
pub fn canary() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("CANARY-{}", hex_encode(&b))
}

pub fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every byte of every file under `dir`.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The receipts of one kind, newest first (up to 1,000).
pub fn receipts(env: &Env, kind: &str) -> Vec<serde_json::Value> {
    let r = env.run(&[
        "receipts", "list", "--kind", kind, "--json", "--limit", "1000",
    ]);
    r.ok();
    r.json()["receipts"].as_array().unwrap().clone()
}

/// Runs `craik args` on a pseudo-terminal (util-linux `script`), typing
/// `input`: as a user at a terminal would.
pub fn run_on_terminal(env: &Env, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write as _;
    require_tool("script", "apt-get install bsdutils");
    let craik = env.command(args);
    let line = std::iter::once(craik.get_program())
        .chain(craik.get_args())
        .map(|a| format!("'{}'", a.to_str().unwrap()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = std::process::Command::new("script");
    for (k, v) in craik.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut child = cmd
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
