//! `craik auth approvals`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only requests nobody has approved yet.
    #[arg(long)]
    pub pending: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args { pending, json } = args;
    let list = craik::approval::approvals(&mut ctx, pending)?;
    if json {
        output::json(&serde_json::json!({ "approvals": list }));
    } else if list.is_empty() {
        outln!("no approval requests");
    } else {
        let mut t = output::table(&[
            "PROFILE",
            "RUN",
            "REQUESTED BY",
            "REQUESTED AT",
            "APPROVED BY",
            "EXPIRES",
            "STATE",
        ]);
        for l in list {
            t.add_row(vec![
                l.profile,
                l.run,
                l.requested_by.unwrap_or_default(),
                l.requested_at,
                l.approved_by.unwrap_or_default(),
                l.expires_at.unwrap_or_else(|| "-".into()),
                l.state.to_string(),
            ]);
        }
        output::print_table(&t);
    }
    Ok(exit::OK)
}
