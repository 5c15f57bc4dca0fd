//! `craik receipts export`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Only receipts at or after this time (RFC 3339, or 30m, 24h, 7d ago).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Every home's receipts in the team store, oldest first, each with
    /// its home id (a first `home_id` column in CSV).
    #[arg(long)]
    pub team: bool,
}

pub fn run(ctx: Context, args: Args) -> craik::Result<i32> {
    let Args {
        format,
        since,
        team,
    } = args;
    let filter = Filter {
        since: time(since)?,
        ascending: true,
        ..Default::default()
    };
    if team {
        return export_team(ctx, &filter, format);
    }
    let log = open_log(&ctx)?;
    let stdout = output::Out;
    match format {
        ExportFormat::Jsonl => {
            let mut out = std::io::BufWriter::new(stdout);
            log.for_each(&filter, |r| {
                serde_json::to_writer(&mut out, &r.to_json())?;
                out.write_all(b"\n")
            })?;
            out.flush().map_err(io_err)?;
        }
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(stdout);
            w.write_record(CSV_HEADER).map_err(io_err)?;
            log.for_each(&filter, |r| {
                w.write_record(csv_row(&r)).map_err(std::io::Error::other)
            })?;
            w.flush().map_err(io_err)?;
        }
    }
    Ok(exit::OK)
}

fn export_team(mut ctx: Context, filter: &Filter, format: ExportFormat) -> craik::Result<i32> {
    match format {
        ExportFormat::Jsonl => {
            let mut out = std::io::BufWriter::new(output::Out);
            craik::team::query(&mut ctx, filter, |home, r| {
                let mut v = serde_json::to_value(r.to_json()).unwrap_or_default();
                v["home_id"] = home.into();
                serde_json::to_writer(&mut out, &v)?;
                out.write_all(b"\n")
            })?;
            out.flush().map_err(io_err)?;
        }
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(output::Out);
            let mut header = vec!["home_id"];
            header.extend(CSV_HEADER);
            w.write_record(&header).map_err(io_err)?;
            craik::team::query(&mut ctx, filter, |home, r| {
                let mut row = vec![home.to_string()];
                row.extend(csv_row(&r));
                w.write_record(&row).map_err(std::io::Error::other)
            })?;
            w.flush().map_err(io_err)?;
        }
    }
    Ok(exit::OK)
}
