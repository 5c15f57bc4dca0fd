//! `craik auth remove`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(add = clap_complete::engine::ArgValueCandidates::new(crate::cli::complete::profiles))]
    pub id: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args { id, json } = args;
    let id: ProfileId = id.parse()?;
    let p = manage::remove_profile(&mut ctx, &id)?;
    if json {
        output::json(&serde_json::json!({"removed": [p.id.to_string()]}));
    } else {
        outln!("removed {}", p.id);
    }
    Ok(exit::OK)
}
