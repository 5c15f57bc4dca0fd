//! The command line: argument definitions and dispatch. Each command group
//! lives in its own file and is a thin layer over the library.

mod agent;
mod auth;
mod broker;
mod complete;
mod login;
mod output;
mod policy;
mod receipts;
mod team;

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use craik::{Error, exit};
use output::{errln, outln};

/// craik: a credential broker for AI-provider credentials.
///
/// craik hands an agent a provider credential only after checking who is
/// asking, under which policy, with whose approval, and leaves a
/// tamper-evident receipt of every decision and use.
#[derive(Debug, Parser)]
#[command(
    name = "craik",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Credential profiles and the secret store.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Policy envelopes: validate and explain.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The audit log: list, show, verify and export receipts.
    #[command(subcommand)]
    Receipts(receipts::ReceiptsCommand),
    /// Run a command with a credential injected into its environment.
    Exec(broker::ExecArgs),
    /// Coding agents: detect and import their credentials, run them
    /// through craik's proxy.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// A local reverse proxy that injects the credential.
    Proxy(broker::ProxyArgs),
    /// The team store: receipts of every member's home in PostgreSQL.
    #[command(subcommand)]
    Team(team::TeamCommand),
    /// Sign in with OpenID Connect (device code, or --browser).
    Login(login::LoginArgs),
    /// Show the logged-in operator.
    Whoami {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// End the operator session and revoke its refresh token.
    Logout {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Keep the encrypted-file store's key in the kernel keyring for a
    /// while, so commands need no password (any unsandboxed process of
    /// yours can read it while it is there).
    Unlock {
        /// How long (default 15m, at most 1d): 30s, 15m, 2h.
        #[arg(long = "for", value_name = "DURATION", value_parser = unlock_for)]
        duration: Option<std::time::Duration>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Drop the key `craik unlock` kept, before its time.
    Lock {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read-only checks of everything craik depends on; exit 1 if any fails.
    Doctor {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Inside a sandbox without network: relay the proxy (internal).
    #[command(name = "__sandbox-relay", hide = true)]
    SandboxRelay {
        addr: String,
        socket: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        argv: Vec<String>,
    },
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// A clap value parser for a closed list of the library's values, matched
/// by name: `--help` lists them, and any other value is a usage error
/// (exit 2) naming them.
pub fn choice<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
) -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(all.iter().map(|v| name(*v))).map(move |s| {
        *all.iter()
            .find(|v| name(**v) == s)
            .expect("clap passes only listed values")
    })
}

/// A provider name on the command line: a bad one is a usage error (exit
/// 2), with a suggestion.
pub(crate) fn provider_value(s: &str) -> Result<String, String> {
    craik::credential::onboard::parse_provider(s)
        .map(|_| s.to_string())
        .map_err(|e| format!("{e} (hint: {})", e.hint().unwrap_or_default()))
}

/// A `--secret-ref` on the command line: `env:NAME`, `file:/path`, or a
/// bare variable name meaning `env:NAME` (as the docs' examples write it).
/// Stored normalized; a bad one is a usage error (exit 2).
pub(crate) fn secret_ref_value(s: &str) -> Result<String, String> {
    let s = if craik::profile::valid_env_name(s) {
        format!("env:{s}")
    } else {
        s.to_string()
    };
    craik::secret::reference::SecretRef::parse(&s)
        .map(|_| s)
        .map_err(|e| format!("{e} (hint: {})", e.hint().unwrap_or_default()))
}

/// `--wait 5m` means `--wait=5m`: a bare `--wait` takes no value by
/// default (so `auth check --wait openai:work` stays a profile id), and a
/// word after it that begins with a digit is its duration. Nothing after
/// `--` is touched: that is the child's command line.
fn join_wait_values(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(a) = args.next() {
        if a == "--" {
            out.push(a);
            out.extend(args);
            break;
        }
        let takes_next = a == "--wait"
            && args
                .peek()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()));
        match args.next_if(|_| takes_next) {
            Some(value) => {
                let mut joined = OsString::from("--wait=");
                joined.push(value);
                out.push(joined);
            }
            None => out.push(a),
        }
    }
    out
}

/// clap's rendering of a usage error as craik's two lines, `error:` and
/// `hint:`. The hint is the one a value parser gave (`(hint: ...)`), else
/// clap's own tip, else the possible values, else where the usage is.
fn usage_error(rendered: &str) -> (String, String) {
    let mut message = Vec::new();
    let (mut tip, mut values, mut usage) = (None, None, None);
    let mut in_message = true;
    for line in rendered.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Usage: ") {
            usage = Some(rest.to_string());
        } else if let Some(rest) = t.strip_prefix("tip: ") {
            tip.get_or_insert_with(|| rest.to_string());
        } else if let Some(rest) = t.strip_prefix("[possible values: ") {
            values = Some(rest.trim_end_matches(']').to_string());
        } else if t.is_empty() {
            in_message = message.is_empty();
        } else if in_message {
            message.push(t.strip_prefix("error: ").unwrap_or(t).to_string());
        }
    }
    let mut error = message.join(" ");
    let mut hint = None;
    if let Some(i) = error.find(" (hint: ") {
        hint = Some(
            error[i + 8..]
                .strip_suffix(')')
                .unwrap_or(&error[i + 8..])
                .to_string(),
        );
        error.truncate(i);
    }
    // The command path: the usage's words before its first placeholder.
    let command = usage
        .as_deref()
        .map(|u| {
            u.split_whitespace()
                .take_while(|w| !w.starts_with(['[', '<', '-']))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "craik".into());
    let hint = hint
        .or(tip)
        .or(values.map(|v| format!("possible values: {v}")))
        .unwrap_or_else(|| format!("see '{command} --help'"));
    (error, hint)
}

/// [`usage_error`], with what clap cannot know: a command named without
/// its subcommand lists them; a word after a bare `--wait` (which takes
/// its duration after `=`) and a command to run given without `--` get
/// a hint that says so.
fn usage_hint(kind: clap::error::ErrorKind, args: &[String], rendered: &str) -> (String, String) {
    use clap::error::ErrorKind;
    let (error, hint) = usage_error(rendered);
    let usage = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .unwrap_or("craik");
    if kind == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let command = usage.split(" <").next().unwrap_or("craik").trim();
        let mut cmd = <Cli as clap::CommandFactory>::command();
        for word in command.split_whitespace().skip(1) {
            match cmd.find_subcommand(word) {
                Some(sub) => cmd = sub.clone(),
                None => break,
            }
        }
        let commands: Vec<&str> = cmd
            .get_subcommands()
            .filter(|c| !c.is_hide_set() && c.get_name() != "help")
            .map(|c| c.get_name())
            .collect();
        let error = format!("'{command}' needs a command: {}", commands.join(", "));
        let hint = if command == "craik" {
            "new here? craik auth setup stores a first key; craik --help lists every command".into()
        } else {
            format!("see '{command} --help'")
        };
        return (error, hint);
    }
    if matches!(
        kind,
        ErrorKind::UnknownArgument | ErrorKind::ArgumentConflict
    ) {
        let before_dashes = args.iter().take_while(|a| *a != "--");
        let bare_wait = before_dashes
            .collect::<Vec<_>>()
            .windows(2)
            .find(|w| w[0] == "--wait")
            .map(|w| w[1].clone());
        if let Some(next) = bare_wait {
            return (
                error,
                format!(
                    "--wait takes its duration after '=' (--wait=5m); '{next}' after a bare --wait is read as the next argument"
                ),
            );
        }
        if usage.contains("-- <") && !args.iter().any(|a| a == "--") {
            return (error, format!("put the command to run after '--': {usage}"));
        }
    }
    (error, hint)
}

/// Runs the command line and returns the exit code.
pub fn run() -> i32 {
    complete::answer_if_asked();
    let cli = match Cli::try_parse_from(join_wait_values(std::env::args_os())) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return exit::OK;
        }
        Err(e) => {
            let args: Vec<String> = join_wait_values(std::env::args_os())
                .into_iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let (error, hint) = usage_hint(e.kind(), &args, &e.render().to_string());
            errln!("error: {error}");
            errln!("hint: {hint}");
            return exit::USAGE;
        }
    };
    // Commands that may have written receipts ship them to the team store
    // afterwards (when this home is in a team).
    let ships = !matches!(
        cli.command,
        Command::Team(_) | Command::Completions { .. } | Command::SandboxRelay { .. }
    );
    let result = match cli.command {
        Command::Auth(cmd) => auth::run(cmd),
        Command::Receipts(cmd) => receipts::run(cmd),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Login(args) => login::login(args),
        Command::Doctor { json } => doctor(json),
        Command::Unlock { duration, json } => unlock(duration, json),
        Command::Lock { json } => lock(json),
        Command::Exec(args) => broker::exec(args),
        Command::Agent(cmd) => agent::run(cmd),
        Command::Proxy(args) => broker::proxy(args),
        Command::Team(cmd) => team::run(cmd),
        Command::Whoami { json } => login::whoami(json),
        Command::Logout { json } => login::logout(json),
        Command::SandboxRelay { addr, socket, argv } => {
            craik::broker::sandbox::relay_inside(&addr, &socket, &argv)
        }
        Command::Completions { shell } => {
            let script = complete::registration(shell);
            output::out!("{}", String::from_utf8_lossy(&script));
            Ok(exit::OK)
        }
    };
    if ships
        && craik::home::Home::default_path()
            .is_ok_and(|p| p.join(craik::team::CONFIG_FILE).exists())
        && let Ok(mut ctx) = context()
    {
        craik::team::ship_quietly(&mut ctx);
    }
    let code = match result {
        Ok(code) => code,
        // Failed on writing to a reader that has gone: end quietly.
        Err(_) if output::reader_gone() => exit::OK,
        // Failed on writing the output: `finish` says so, once.
        Err(e) if output::failed() => e.exit_code(),
        Err(e) => report(&e),
    };
    output::finish(code)
}

/// The invocation's context, with notices for the user on stderr.
pub(crate) fn context() -> craik::Result<craik::context::Context> {
    let mut ctx = craik::context::Context::open_default()?;
    ctx.set_notice(|n| errln!("craik: {n}"));
    Ok(ctx)
}

/// `--for`'s value: a bad one is a usage error (exit 2), with the hint.
fn unlock_for(s: &str) -> Result<std::time::Duration, String> {
    craik::duration::parse_nonzero(s, craik::secret::unlock::MAX_FOR)
        .map_err(|e| format!("{e} (hint: {})", e.hint()))
}

/// An unlock or lock names a home that does not exist: said, and no
/// home is made for it.
fn no_home() -> craik::Result<Option<std::path::PathBuf>> {
    let path = craik::home::Home::default_path()?;
    Ok((!path.exists()).then_some(path))
}

fn unlock(duration: Option<std::time::Duration>, json: bool) -> craik::Result<i32> {
    if let Some(path) = no_home()? {
        return Err(craik::Error::input(
            format!(
                "there is no craik home at {}, so nothing to unlock",
                path.display()
            ),
            "check CRAIK_HOME; craik unlock is for a home whose encrypted-file store holds a secret",
        ));
    }
    let mut ctx = context()?;
    let ttl = duration.unwrap_or(craik::secret::unlock::DEFAULT_FOR);
    let secs = craik::credential::manage::unlock(&mut ctx, ttl)?;
    if json {
        output::json(&serde_json::json!({ "unlocked": true, "for_seconds": secs }));
    } else {
        outln!(
            "unlocked {} for {}: craik needs no password until then (craik lock ends it sooner)",
            ctx.home.root().display(),
            humantime::format_duration(ttl)
        );
    }
    Ok(exit::OK)
}

fn lock(json: bool) -> craik::Result<i32> {
    let (root, was) = match no_home()? {
        // No home to record in; a key a removed home left still goes.
        Some(path) => {
            let was = craik::secret::unlock::forget(&path).map_err(|why| {
                craik::Error::input(
                    format!("cannot drop the key from the kernel keyring: {why}"),
                    "it ends by itself when its --for runs out",
                )
            })?;
            (path, was)
        }
        None => {
            let mut ctx = context()?;
            let was = craik::credential::manage::lock(&mut ctx)?;
            (ctx.home.root().to_path_buf(), was)
        }
    };
    if json {
        output::json(&serde_json::json!({ "locked": true, "was_unlocked": was }));
    } else if was {
        outln!("locked {}", root.display());
    } else {
        outln!("{} was not unlocked", root.display());
    }
    Ok(exit::OK)
}

fn doctor(json: bool) -> craik::Result<i32> {
    use craik::doctor::Level;
    let mut ctx = context()?;
    let checks = craik::doctor::run(&mut ctx);
    let failed = checks.iter().any(|c| c.level == Level::Fail);
    if json {
        output::json(&serde_json::json!({ "ok": !failed, "checks": checks }));
    } else {
        for c in &checks {
            let tag = match c.level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            outln!("{tag}  {}: {}", c.name, c.message);
            if let Some(h) = &c.hint
                && c.level != Level::Ok
            {
                outln!("      hint: {h}");
            }
        }
    }
    Ok(if failed { exit::ERROR } else { exit::OK })
}

/// Prints an error as `error: ...` and `hint: ...`; returns its exit code.
pub fn report(e: &Error) -> i32 {
    // One line: flatten any newlines from nested sources.
    let msg = e.chain().replace('\n', " ");
    errln!("error: {msg}");
    if let Some(h) = e.hint() {
        errln!("hint: {h}");
    }
    e.exit_code()
}
