//! The `craik` binary: parse, dispatch, map errors to exit codes.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any secret is read: no other process of the user may read
    // this one's memory, and it never dumps core.
    craik::secret::memory::protect_process();
    let code = cli::run();
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
