//! `craik receipts hash`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Hash a credential of this provider family (openai, anthropic,
    /// gemini, chat_completions) read from standard input.
    #[arg(
        long,
        value_name = "F",
        conflicts_with = "operator_issuer",
        required_unless_present = "operator_issuer"
    )]
    pub family: Option<String>,
    /// Hash an operator subject read from standard input, of this
    /// issuer.
    #[arg(long, value_name = "ISS")]
    pub operator_issuer: Option<String>,
}

pub fn run(ctx: Context, args: Args) -> craik::Result<i32> {
    let Args {
        family,
        operator_issuer,
    } = args;
    if operator_issuer
        .as_deref()
        .is_some_and(|i| i.trim().is_empty())
    {
        return Err(Error::input(
            "--operator-issuer is empty",
            "give the issuer URL the operator signs in with (craik whoami --json shows it)",
        ));
    }
    let mut value = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut value)
        .map_err(|e| {
            Error::input(
                format!("cannot read standard input: {e}"),
                "pipe the value in",
            )
        })?;
    let v = value.trim_end_matches(['\r', '\n']);
    if v.is_empty() {
        return Err(Error::input(
            "nothing on standard input",
            "pipe the value in: printf %s \"$KEY\" | craik receipts hash --family openai",
        ));
    }
    let key = ctx.load_audit_key()?;
    let h = match (family, operator_issuer) {
        (Some(f), _) => {
            let f: Family = f.parse()?;
            key.credential_material(f.as_str(), v)
        }
        (None, Some(iss)) => key.operator(&iss, v),
        (None, None) => unreachable!("clap requires one"),
    };
    outln!("{h}");
    Ok(exit::OK)
}
