//! The `craik` binary: parse, dispatch, map errors to exit codes.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = cli::run();
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
