//! `craik receipts export`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Only receipts at or after this time (RFC 3339, or 30m, 24h, 7d ago).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
}

pub fn run(ctx: Context, args: Args) -> craik::Result<i32> {
    let Args { format, since } = args;
    let filter = Filter {
        since: time(since)?,
        ascending: true,
        ..Default::default()
    };
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
