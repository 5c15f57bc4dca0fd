//! `craik auth approvals`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only requests nobody has approved yet.
    #[arg(long)]
    pub pending: bool,
    /// The requests of every home in the team store, and their approvals
    /// from other machines.
    #[arg(long)]
    pub team: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args {
        pending,
        team,
        json,
    } = args;
    if team {
        return run_team(&ctx, pending, json);
    }
    let list = craik::approval::approvals(&mut ctx, pending)?;
    if json {
        output::json(&serde_json::json!({ "approvals": list }));
    } else if list.is_empty() {
        outln!("no approval requests");
    } else {
        let mut t = output::table(&COLUMNS);
        for l in list {
            t.add_row(cells(l));
        }
        output::print_table(&t);
    }
    Ok(exit::OK)
}

const COLUMNS: [&str; 7] = [
    "PROFILE",
    "RUN",
    "REQUESTED BY",
    "REQUESTED AT",
    "APPROVED BY",
    "EXPIRES",
    "STATE",
];

/// A line's cells, in [`COLUMNS`]' order.
fn cells(l: craik::approval::ApprovalLine) -> Vec<String> {
    vec![
        l.profile,
        l.run,
        l.requested_by.unwrap_or_default(),
        l.requested_at,
        l.approved_by.unwrap_or_default(),
        l.expires_at.unwrap_or_else(|| "-".into()),
        l.state.to_string(),
    ]
}

fn run_team(ctx: &Context, pending: bool, json: bool) -> craik::Result<i32> {
    let list = craik::approval::team_approvals(ctx, pending)?;
    if json {
        output::json(&serde_json::json!({ "approvals": list }));
    } else if list.is_empty() {
        outln!("no approval requests in the team store");
    } else {
        let mut header = vec!["HOME"];
        header.extend(COLUMNS);
        let mut t = output::table(&header);
        // Other homes wrote these: print_table escapes control characters.
        for l in list {
            let mut row = vec![l.home];
            row.extend(cells(l.line));
            t.add_row(row);
        }
        output::print_table(&t);
    }
    Ok(exit::OK)
}
