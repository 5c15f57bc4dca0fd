//! `craik exec` and `craik proxy`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use craik::broker::proxy::Proxy;
use craik::broker::{CallSpec, Capability, Target};
use craik::context::Context;
use craik::profile::{ProfileId, ProfileStore};
use craik::{Error, exit};

use super::auth::WaitArg;

/// Which credential: a profile or a pool.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// A profile id.
    #[arg(long, value_name = "ID", add = clap_complete::engine::ArgValueCandidates::new(super::complete::profiles))]
    profile: Option<String>,
    /// A pool id.
    #[arg(long, value_name = "P", add = clap_complete::engine::ArgValueCandidates::new(super::complete::pools))]
    pool: Option<String>,
    /// A provider family, resolved to its first working source (anthropic:
    /// the Claude CLI marker, then CLAUDE_CODE_OAUTH_TOKEN, ANTHROPIC_TOKEN,
    /// ANTHROPIC_API_KEY).
    #[arg(long, value_name = "FAMILY", value_parser = super::provider_value)]
    provider: Option<String>,
}

impl TargetArgs {
    pub fn target(&self, ctx: &Context) -> craik::Result<Target> {
        match (&self.profile, &self.pool, &self.provider) {
            (Some(p), _, _) => Ok(Target::Profile(p.parse::<ProfileId>()?)),
            (None, Some(p), _) => Ok(Target::Pool(p.parse::<ProfileId>()?)),
            (None, None, Some(f)) if f == "anthropic" => {
                let (checks, chosen) = craik::credential::onboard::anthropic_sources(ctx)?;
                match chosen {
                    Some(p) => {
                        if ProfileStore::new(&ctx.home).load()?.get(&p.id).is_some() {
                            Ok(Target::Profile(p.id))
                        } else {
                            Ok(Target::Implicit(Box::new(p)))
                        }
                    }
                    _ => Err(Error::input(
                        format!(
                            "no Anthropic credential source resolves ({})",
                            checks
                                .iter()
                                .filter_map(|c| c.passed_over.clone())
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                        "run craik auth login anthropic, or set CLAUDE_CODE_OAUTH_TOKEN or ANTHROPIC_API_KEY",
                    )),
                }
            }
            (None, None, Some(f)) => {
                let family = craik::credential::onboard::parse_provider(f)?;
                Ok(Target::Pool(ProfileId::new(family, "default")?))
            }
            _ => Err(Error::input(
                "name --profile, --pool or --provider",
                "craik exec --profile openai:work -- CMD",
            )),
        }
    }
}

/// The run, approval wait and extra policies of a call (`exec`, `agent
/// run`, `agent env`).
#[derive(Debug, Args)]
pub struct CallOpts {
    /// The run id (default: a fresh run_<hex>).
    #[arg(long, value_name = "R")]
    run: Option<String>,
    #[command(flatten)]
    wait: WaitArg,
    /// An extra policy envelope (repeatable).
    #[arg(long = "policy", value_name = "FILE")]
    policies: Vec<PathBuf>,
}

impl CallOpts {
    /// The run id (a fresh one unless given), the extra policy files and
    /// the approval wait.
    pub fn parts(self) -> craik::Result<(String, Vec<PathBuf>, Option<std::time::Duration>)> {
        Ok((
            self.run.unwrap_or_else(craik::approval::new_run_id),
            self.policies,
            self.wait.duration()?,
        ))
    }

    /// The call these options describe, for `target`.
    pub fn spec(self, target: Target, capability: Capability) -> craik::Result<CallSpec> {
        let (run, policy_files, wait) = self.parts()?;
        Ok(CallSpec {
            target,
            run,
            policy_files,
            capability,
            wait,
        })
    }
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    call: CallOpts,
    /// Give the child only a local proxy's address and token: the real
    /// credential never enters the child.
    #[arg(long)]
    via_proxy: bool,
    /// Run the child under bubblewrap: no CRAIK_HOME, secret stores,
    /// keyrings, session bus or SSH agent, craik's process invisible, only
    /// the working directory writable (see docs/security.md).
    #[arg(long)]
    sandbox: bool,
    /// The command and its arguments (after --).
    #[arg(last = true, required = true, value_name = "CMD")]
    argv: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Where to listen (loopback only unless --allow-remote).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: String,
    /// Allow a non-loopback listen address.
    #[arg(long)]
    allow_remote: bool,
    /// The run id (default: a fresh run_<hex>).
    #[arg(long, value_name = "R")]
    run: Option<String>,
    #[command(flatten)]
    wait: WaitArg,
    /// An extra policy file in force (repeatable).
    #[arg(long = "policy", value_name = "FILE")]
    policies: Vec<PathBuf>,
    /// Also write the proxy token to this file (0600).
    #[arg(long, value_name = "F")]
    token_file: Option<PathBuf>,
    /// Print {"listen":...,"token":...,"env":{...}} on one line.
    #[arg(long)]
    json: bool,
}

pub fn exec(args: ExecArgs) -> craik::Result<i32> {
    let mut ctx = super::context()?;
    let spec = craik::broker::exec::ExecSpec {
        call: args
            .call
            .spec(args.target.target(&ctx)?, Capability::Exec)?,
        via_proxy: args.via_proxy,
        sandbox: args.sandbox,
        argv: args.argv,
        launch: None,
    };
    craik::broker::exec::exec(&mut ctx, spec)
}

pub fn proxy(args: ProxyArgs) -> craik::Result<i32> {
    // `localhost:PORT` means the IPv4 loopback address (resolved here,
    // never through a resolver that could point it elsewhere).
    let listen = match args.listen.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => args.listen.clone(),
    };
    let addr: SocketAddr = listen.parse().map_err(|_| {
        Error::input(
            format!("cannot read the listen address {:?}", args.listen),
            "write 127.0.0.1:8080, localhost:8080 or [::1]:8080",
        )
    })?;
    Proxy::check_listen(addr, args.allow_remote)?;
    let mut ctx = super::context()?;
    let spec = CallSpec {
        target: args.target.target(&ctx)?,
        run: args.run.unwrap_or_else(craik::approval::new_run_id),
        policy_files: args.policies,
        capability: Capability::Proxy,
        wait: args.wait.duration()?,
    };
    let proxy = Proxy::bind(&mut ctx, &spec, addr, args.allow_remote)?;
    let bound = proxy.addr();
    if let Some(f) = &args.token_file {
        craik::home::write_atomic_path(f, proxy.token().as_bytes())?;
    }
    let env: serde_json::Map<String, serde_json::Value> = proxy
        .client_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
    {
        let mut out = std::io::stdout().lock();
        if args.json {
            let _ = writeln!(
                out,
                "{}",
                serde_json::json!({"listen": bound.to_string(), "token": proxy.token(), "run": spec.run, "env": env})
            );
        } else {
            let _ = writeln!(
                out,
                "craik proxy listening on http://{bound} (run {})",
                spec.run
            );
            let _ = writeln!(out, "token: {}", proxy.token());
            for (k, v) in &env {
                let _ = writeln!(out, "export {k}={}", v.as_str().unwrap_or_default());
            }
        }
        let _ = out.flush();
    }
    proxy.serve()?;
    Ok(exit::OK)
}
