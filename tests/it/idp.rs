//! The test OpenID provider: the npm package `oidc-provider` started from
//! tests/idp/ over TLS with a certificate made for the test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Env, Run, require_tool, to_run};

pub fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/idp")
}

/// How long a provider may take to print its ready line (it takes about
/// a second), and how many starts are tried.
const STARTUP: Duration = Duration::from_secs(30);
const ATTEMPTS: usize = 3;

pub struct Idp {
    child: Child,
    pub issuer: String,
    pub port: u16,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// Makes a self-signed server certificate rustls accepts as a root.
fn make_cert(dir: &Path) {
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(st.success(), "openssl could not make a test certificate");
}

pub fn require_idp() {
    require_tool("node", "apt-get install -y nodejs npm");
    require_tool("openssl", "apt-get install -y openssl");
    assert!(
        idp_dir().join("node_modules/oidc-provider").is_dir(),
        "the test OpenID provider is not installed; run: (cd tests/idp && npm ci)"
    );
}

impl Idp {
    /// Starts a provider on a free port with extra environment.
    pub fn start(env: &[(&str, &str)]) -> Idp {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        make_cert(&dir);
        let mut idp = Idp::start_in(&dir, 0, env);
        idp._tmp = Some(tmp);
        idp
    }

    /// Starts a provider with its certificate and keys in `dir`. A start
    /// that fails is reported on stderr and tried again (up to ATTEMPTS
    /// in all), so one stuck start on a loaded CI machine does not fail an
    /// unrelated test; when every start fails the test fails with the
    /// provider's stderr of each.
    pub fn start_in(dir: &Path, port: u16, env: &[(&str, &str)]) -> Idp {
        require_idp();
        let mut failures = Vec::new();
        for attempt in 1..=ATTEMPTS {
            match Idp::try_start(dir, port, env, STARTUP) {
                Ok(idp) => return idp,
                Err(e) => {
                    eprintln!("warning: start {attempt} of {ATTEMPTS}: {e}");
                    failures.push(e);
                }
            }
        }
        panic!("{}", failures.join("\n---\n"))
    }

    fn try_start(
        dir: &Path,
        port: u16,
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Idp, String> {
        let log_path = dir.join("idp.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the IdP log");
        let mut cmd = Command::new("node");
        cmd.arg("server.js")
            .current_dir(idp_dir())
            .env("IDP_PORT", port.to_string())
            .env("IDP_CERT", dir.join("cert.pem"))
            .env("IDP_KEY", dir.join("key.pem"))
            .env("IDP_JWKS_FILE", dir.join("jwks.json"))
            .env("IDP_DEVICE_INTERVAL", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let started = Instant::now();
        let mut child = cmd.spawn().expect("start node");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let outcome = rx.recv_timeout(timeout);
        let ready = outcome
            .as_ref()
            .ok()
            .and_then(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .and_then(|v| Some((v["issuer"].as_str()?.to_string(), v["port"].as_u64()?)));
        if let Some((issuer, port)) = ready {
            return Ok(Idp {
                issuer,
                port: port as u16,
                child,
                dir: dir.to_path_buf(),
                _tmp: None,
            });
        }
        let status = child.try_wait().ok().flatten();
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let mut tail: Vec<&str> = log.lines().rev().take(20).collect();
        tail.reverse();
        Err(format!(
            "the test OpenID provider did not start after {:.1} s ({}); exit status {:?}; its stderr ({}):\n{}",
            started.elapsed().as_secs_f64(),
            match &outcome {
                Err(_) => "no ready line".to_string(),
                Ok(l) => format!("first line {l:?}"),
            },
            status,
            log_path.display(),
            tail.join("\n"),
        ))
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Configures a craik environment for this provider.
    pub fn configure(&self, env: &mut Env) {
        env.set("CRAIK_OIDC_ISSUER", &self.issuer)
            .set("CRAIK_OIDC_CLIENT_ID", "craik-cli")
            .set("CRAIK_OIDC_SCOPES", "openid profile email groups")
            .set("CRAIK_OIDC_CA_FILE", &self.ca().display().to_string());
    }

    fn script(&self, args: &[&str]) -> Run {
        let out = Command::new("node")
            .args(args)
            .current_dir(idp_dir())
            .env("IDP_CA", self.ca())
            .output()
            .expect("run node");
        to_run(out)
    }

    /// Approves (or denies) a pending device code as `user`.
    pub fn device(&self, user_code: &str, user: &str, deny: bool) {
        let mut args = vec!["approve-device.js", &self.issuer, user_code, user];
        if deny {
            args.push("deny");
        }
        let r = self.script(&args);
        assert_eq!(r.code, 0, "approve-device.js failed: {r:?}");
    }

    /// Plays the browser for an authorization URL as `user`.
    pub fn browser(&self, url: &str, user: &str) -> Run {
        self.script(&["browser-login.js", url, user])
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `craik login --json` (device flow), has `user` approve it (or
/// deny, or leave it), and returns the JSON events and the run.
pub fn device_login(
    env: &Env,
    idp: &Idp,
    user: Option<&str>,
    deny: bool,
) -> (Vec<serde_json::Value>, Run) {
    let mut c = env.command(&["login", "--json"]);
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let ev: serde_json::Value = serde_json::from_str(&first)
        .unwrap_or_else(|_| panic!("first login line is not JSON: {first:?}"));
    if let Some(u) = user {
        idp.device(ev["user_code"].as_str().unwrap(), u, deny);
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let status = child.wait().unwrap();
    let mut events = vec![ev];
    events.extend(rest.lines().map(|l| serde_json::from_str(l).unwrap()));
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: format!("{first}{rest}"),
        stderr,
    };
    (events, run)
}

/// Logs `user` in with the device flow and asserts success.
pub fn login_as(env: &Env, idp: &Idp, user: &str) {
    let (events, run) = device_login(env, idp, Some(user), false);
    run.ok();
    assert_eq!(events.last().unwrap()["event"], "logged_in", "{events:?}");
}

/// Waits for a condition (bounded).
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
