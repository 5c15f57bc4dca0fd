//! `craik auth login`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// openai, anthropic, gemini or local.
    #[arg(value_parser = crate::cli::provider_value)]
    pub provider: String,
    /// Which flow (default: the strongest the provider supports).
    #[arg(long, value_parser = crate::cli::choice(&Mode::ALL, Mode::as_str))]
    pub mode: Option<Mode>,
    /// Capture an API key instead of a browser flow, and open no
    /// browser (not even the provider's key page).
    #[arg(long)]
    pub no_browser: bool,
    /// The environment variable an api-key profile reads.
    #[arg(long, value_name = "NAME", conflicts_with = "secret_ref")]
    pub env_var: Option<String>,
    /// Read the key at use time from env:NAME (or just NAME) or
    /// file:/absolute/path (0600, yours).
    #[arg(long, value_name = "REF", value_parser = crate::cli::secret_ref_value)]
    pub secret_ref: Option<String>,
    /// Read the API key from standard input.
    #[arg(long)]
    pub stdin: bool,
    /// Validate the shape; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The profile name (default: default).
    #[arg(long, value_name = "N")]
    pub name: Option<String>,
    /// The provider endpoint, when not the family's default.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Allow a loopback or private base URL (implied for local).
    #[arg(long)]
    pub allow_local_base_url: bool,
    /// openai: the OAuth issuer (default https://auth.openai.com).
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// openai: the OAuth client id.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// gemini: the Google Cloud project.
    #[arg(long, value_name = "ID")]
    pub project_id: Option<String>,
    /// gemini: a service-account key file (JWT bearer grant).
    #[arg(long, value_name = "FILE")]
    pub service_account: Option<std::path::PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args {
        provider,
        mode,
        no_browser,
        env_var,
        secret_ref,
        stdin,
        dry_run,
        name,
        base_url,
        allow_local_base_url,
        issuer,
        client_id,
        project_id,
        service_account,
        json,
    } = args;
    let family = craik::credential::onboard::parse_provider(&provider)?;
    let req = craik::credential::onboard::LoginRequest {
        mode,
        no_browser,
        env_var,
        secret_ref,
        stdin,
        dry_run,
        name,
        base_url,
        allow_local_base_url,
        issuer,
        client_id,
        project_id,
        service_account,
    };
    let flow = craik::credential::onboard::pick_flow(family, &req)?;
    if flow == craik::credential::onboard::Flow::OAuth && !dry_run {
        let client = req
            .client_id
            .as_deref()
            .unwrap_or(craik::credential::onboard::OPENAI_CLIENT_ID);
        let notice = format!(
            "note: the consent screen will name the OAuth client craik uses ({client}); pass --client-id to use your own"
        );
        if json {
            output::json_line(&serde_json::json!({"event": "notice", "message": notice}));
        } else {
            errln!("{notice}");
        }
    }
    let r = craik::credential::onboard::login(
        &mut ctx,
        family,
        &req,
        || {
            if stdin {
                return term::read_secret_stdin();
            }
            // Typing a key on a terminal: show where to create one.
            if let Some(page) = craik::credential::onboard::key_page(family)
                && std::io::IsTerminal::is_terminal(&std::io::stdin())
            {
                if !no_browser && term::open_browser(page) {
                    errln!("opened {page} in your browser: create a key there and paste it here");
                } else {
                    errln!("create a key at {page} and paste it here");
                }
            }
            term::prompt_secret(&format!("{provider} API key: "))
        },
        |e| match e {
            craik::operator::LoginEvent::Browser { url, opened } if json => output::json_line(
                &serde_json::json!({"event": "browser", "url": url, "opened": opened}),
            ),
            craik::operator::LoginEvent::Browser { url, .. } => {
                outln!("Open this URL in a browser to sign in:\n{url}")
            }
            _ => {}
        },
    )?;
    if json {
        let mut v = serde_json::to_value(&r).unwrap_or_default();
        v["event"] = "done".into();
        output::json_line(&v);
    } else {
        let verb = if r.written { "wrote" } else { "would write" };
        outln!("{verb} profile {}: {}", r.profile, r.flow.describe());
        if let Some(n) = &r.note {
            outln!("{n}");
        }
    }
    Ok(exit::OK)
}
