//! The command line: argument definitions and dispatch. Each command group
//! lives in its own file and is a thin layer over the library.

mod agent;
mod auth;
mod broker;
mod login;
mod output;
mod policy;
mod receipts;

use clap::{CommandFactory, Parser, Subcommand};

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
    /// Read-only checks of everything craik depends on; exit 1 if any fails.
    Doctor {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
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

/// Runs the command line and returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let result = match cli.command {
        Command::Auth(cmd) => auth::run(cmd),
        Command::Receipts(cmd) => receipts::run(cmd),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Login(args) => login::login(args),
        Command::Doctor { json } => doctor(json),
        Command::Exec(args) => broker::exec(args),
        Command::Agent(cmd) => agent::run(cmd),
        Command::Proxy(args) => broker::proxy(args),
        Command::Whoami { json } => login::whoami(json),
        Command::Logout { json } => login::logout(json),
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics when a write fails.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "craik", &mut script);
            output::out!("{}", String::from_utf8_lossy(&script));
            Ok(exit::OK)
        }
    };
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
    let msg = e.to_string().replace('\n', " ");
    errln!("error: {msg}");
    if let Some(h) = e.hint() {
        errln!("hint: {h}");
    }
    e.exit_code()
}
