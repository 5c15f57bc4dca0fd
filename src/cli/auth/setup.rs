//! `craik auth setup`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// openai, anthropic, gemini or local.
    #[arg(value_parser = crate::cli::provider_value)]
    pub provider: String,
    /// The profile name (default: default).
    #[arg(long, value_name = "N", default_value = "default")]
    pub name: String,
    /// The provider endpoint, when not the family's default.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// The environment variable an api-key profile reads.
    #[arg(long, value_name = "NAME", conflicts_with = "secret_ref")]
    pub env_var: Option<String>,
    /// Read the key at use time from env:NAME (or just NAME) or
    /// file:/absolute/path (0600, yours).
    #[arg(long, value_name = "REF", value_parser = crate::cli::secret_ref_value)]
    pub secret_ref: Option<String>,
    /// Allow a loopback or private base URL.
    #[arg(long)]
    pub allow_local_base_url: bool,
    /// Validate the shape; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace a profile (and its pool) of the same id.
    #[arg(long)]
    pub force: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args {
        provider,
        name,
        base_url,
        env_var,
        secret_ref,
        allow_local_base_url,
        dry_run,
        force,
        json,
    } = args;
    let r = craik::credential::onboard::setup(
        &mut ctx,
        craik::credential::onboard::SetupRequest {
            family: craik::credential::onboard::parse_provider(&provider)?,
            name,
            base_url,
            env_var,
            secret_ref,
            allow_local_base_url,
            dry_run,
            force,
        },
    )?;
    if json {
        output::json(&r);
    } else {
        let verb = if r.dry_run { "would write" } else { "wrote" };
        outln!("{verb} profile {} ({}) and pool {}", r.id, r.kind, r.pool);
        if provider == "local" {
            outln!("{LOCAL_ALIAS}");
        }
        if let Some(b) = &r.base_url {
            outln!("base URL: {b}");
        }
        outln!(
            "credential: {}{}",
            if r.health.ok { "ok: " } else { "missing: " },
            r.health.message
        );
        if let Some(n) = &r.next_step {
            outln!("next: {n}");
        }
    }
    Ok(exit::OK)
}
