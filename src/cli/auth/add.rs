//! `craik auth add`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile id, <provider_family>:<name> (anthropic:work, openai:ci).
    pub id: String,
    /// What holds the credential.
    #[arg(long, value_parser = crate::cli::choice(&Kind::ALL, Kind::as_str))]
    pub kind: Kind,
    /// api-key: the environment variable holding the key (default: the
    /// family's, e.g. OPENAI_API_KEY).
    #[arg(long, value_name = "NAME")]
    pub env_var: Option<String>,
    /// secret-ref: env:NAME (or just NAME) or file:/absolute/path
    /// (0600, yours).
    #[arg(long, value_name = "REF", value_parser = crate::cli::secret_ref_value)]
    pub secret_ref: Option<String>,
    /// keyring-ref: read the secret from standard input; stigmem-ref: read
    /// the node's API key from it.
    #[arg(long)]
    pub stdin: bool,
    /// cli-bridge: the program that prints the credential, and its
    /// arguments (run without a shell, for at most 5 s). Takes every word
    /// after it: put it last.
    #[arg(long, value_name = "ARG", num_args = 1.., allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// cli-bridge: where the credential is: stdout_line,
    /// stdout_json:KEY.PATH or credentials_file:/ABSOLUTE/PATH:KEY.PATH.
    #[arg(long, value_name = "SPEC")]
    pub extract: Option<String>,
    /// oidc-exchange: the RFC 8693 token endpoint the workload's token is
    /// traded at.
    #[arg(long, value_name = "URL")]
    pub exchange_url: Option<String>,
    /// oidc-exchange: the audience of the credential asked for.
    #[arg(long, value_name = "A")]
    pub audience: Option<String>,
    /// oidc-exchange: the requested_token_type to ask for.
    #[arg(long, value_name = "T")]
    pub requested_token_type: Option<String>,
    /// oidc-exchange: the scope to ask for; stigmem-ref: the fact's scope
    /// (local, team, company or public; default local).
    #[arg(long, value_name = "S")]
    pub scope: Option<String>,
    /// stigmem-ref: the node's URL (https, or http on loopback).
    #[arg(long, value_name = "URL")]
    pub node: Option<String>,
    /// stigmem-ref: the entity whose fact holds the credential.
    #[arg(long, value_name = "E")]
    pub entity: Option<String>,
    /// stigmem-ref: the relation to read (default craik:credential:value).
    #[arg(long, value_name = "R")]
    pub relation: Option<String>,
    /// stigmem-ref: how long to wait for the node (default 5s, at most 60s).
    #[arg(long, value_name = "D")]
    pub timeout: Option<String>,
    /// The provider endpoint, when not the family's default.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Allow a base URL on a loopback or private address.
    #[arg(long)]
    pub allow_local_base_url: bool,
    /// Replace an existing profile with the same id.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args {
        id,
        kind,
        env_var,
        secret_ref,
        stdin,
        command,
        extract,
        exchange_url,
        audience,
        requested_token_type,
        scope,
        node,
        entity,
        relation,
        timeout,
        base_url,
        allow_local_base_url,
        force,
        json,
    } = args;
    let typed_local = id.starts_with("local:");
    let id: ProfileId = id.parse()?;
    if stdin && !matches!(kind, Kind::KeyringRef | Kind::StigmemRef) {
        return Err(Error::input(
            format!("--stdin does not apply to --kind={kind}"),
            "only keyring-ref stores a secret (and stigmem-ref its node's API key); api-key and secret-ref read theirs at use time",
        ));
    }
    let (exchange_scope, stigmem_scope) = if kind == Kind::StigmemRef {
        (None, scope)
    } else {
        (scope, None)
    };
    let mut req = AddRequest {
        id,
        kind,
        env_var,
        secret_ref,
        secret: None,
        base_url,
        allow_local_base_url,
        force,
        command,
        extract,
        exchange: Some(manage::ExchangeRequest {
            url: exchange_url,
            audience,
            requested_token_type,
            scope: exchange_scope,
        }),
        stigmem: Some(manage::StigmemRequest {
            node,
            entity,
            scope: stigmem_scope,
            relation,
            timeout,
        }),
    };
    manage::validate_add(&req)?;
    if kind == Kind::StigmemRef && stdin {
        req.secret = Some(term::read_secret_stdin()?);
    }
    if kind == Kind::KeyringRef {
        req.secret = Some(if stdin {
            term::read_secret_stdin()?
        } else {
            term::prompt_secret(&format!("secret for {}: ", req.id))?
        });
    }
    let p = manage::add_profile(&mut ctx, req)?;
    if json {
        output::json(&serde_json::json!({"added": p.id.to_string(), "kind": p.kind}));
    } else {
        outln!("added {} ({})", p.id, p.kind);
        if typed_local {
            outln!("{LOCAL_ALIAS}");
        }
    }
    Ok(exit::OK)
}
