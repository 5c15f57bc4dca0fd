//! `craik auth migrate-secrets`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// keychain, secret-service, keyutils, wincred or file (default: the
    /// backend craik would choose now).
    #[arg(long, value_name = "BACKEND")]
    pub to: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args { dry_run, to, json } = args;
    let to: Option<Backend> = to
        .map(|t| t.parse())
        .transpose()
        .map_err(craik::Error::from)?;
    let m = manage::migrate_secrets(&mut ctx, to, dry_run)?;
    if json {
        output::json(&m);
    } else {
        let verb = if dry_run { "would move" } else { "moved" };
        outln!(
            "{verb} {} secret(s) to {}; {} already there",
            m.moved.len(),
            m.to,
            m.already.len()
        );
    }
    Ok(exit::OK)
}
