//! Rendering: JSON documents, and tables (boxed on a terminal, plain
//! columns in a pipe); and every write to stdout and stderr.
//!
//! Nothing here panics when an output cannot be written (`println!` does,
//! on a closed pipe or a full disk). The first error writing to stdout is
//! kept, later output is dropped, and [`finish`] turns it into the exit
//! code: a reader that stopped reading (`craik receipts list | head`) ends
//! the command quietly, as in ripgrep; any other failure (`> /dev/full`) is
//! an error, so that output nobody received (a checkpoint printed to
//! stdout) is never reported as a success.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

use comfy_table::{ContentArrangement, Table, presets};

use craik::exit;

/// Why stdout could not be written, once it could not.
static FAILED: Mutex<Option<io::Error>> = Mutex::new(None);

/// Stdout, as a writer that keeps its first error (see the module's
/// documentation) and writes nothing after it.
pub struct Out;

impl Out {
    fn run<T>(f: impl FnOnce(&mut io::StdoutLock<'static>) -> io::Result<T>) -> io::Result<T> {
        let mut failed = FAILED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = failed.as_ref() {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        let result = f(&mut io::stdout().lock());
        if let Err(e) = &result {
            *failed = Some(io::Error::new(e.kind(), e.to_string()));
        }
        result
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Out::run(|o| o.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Out::run(|o| o.flush())
    }
}

/// What `outln!` and `out!` call. Control characters other than line
/// breaks and tabs are escaped ([`craik::term::printable_lines`]): human
/// output shows values from files any process of the user can write.
pub fn write(args: fmt::Arguments<'_>) {
    let text = args.to_string();
    let _ = Out.write_all(craik::term::printable_lines(&text).as_bytes());
}

/// Prints a line to stdout, like `println!` but never panicking.
macro_rules! outln {
    () => {
        $crate::cli::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// Prints to stdout, like `print!` but never panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!($($arg)*))
    };
}
pub(crate) use out;

/// Prints a line to stderr, like `eprintln!` but never panicking.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        let _ = writeln!(std::io::stderr(), "{}", craik::term::printable_lines(&line));
    }};
}
pub(crate) use errln;

fn failed_kind() -> Option<io::ErrorKind> {
    FAILED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(io::Error::kind)
}

/// Whether writing to stdout has failed.
pub fn failed() -> bool {
    failed_kind().is_some()
}

/// Whether the reader of stdout has gone (a closed pipe).
pub fn reader_gone() -> bool {
    failed_kind() == Some(io::ErrorKind::BrokenPipe)
}

/// After a command: flushes stdout and gives the exit code, which an
/// output that could not be written turns from success into an error.
pub fn finish(code: i32) -> i32 {
    let _ = Out.flush();
    let failed = FAILED.lock().unwrap_or_else(PoisonError::into_inner).take();
    match failed {
        None => code,
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => code,
        Some(e) => {
            errln!("error: cannot write output: {e}");
            errln!(
                "hint: check where standard output goes (a full disk, a file that cannot be written)"
            );
            if code == exit::OK { exit::ERROR } else { code }
        }
    }
}

/// Prints one JSON document.
pub fn json<T: serde::Serialize>(value: &T) {
    // Buffered: stdout is line-buffered, and a pretty document has many lines.
    let mut out = io::BufWriter::new(Out);
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
    let _ = out.flush();
}

/// A table styled for where stdout goes.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    if io::stdout().is_terminal() {
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        // A terminal that reports no usable width (0, as some do) would
        // squeeze every column to one character: lay it out unwrapped.
        if t.width().is_some_and(|w| w >= 20) {
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
    } else {
        t.load_preset(presets::NOTHING);
    }
    t.set_header(header.iter().copied());
    t
}

pub fn print_table(t: &Table) {
    let mut out = io::BufWriter::new(Out);
    let _ = writeln!(out, "{}", craik::term::printable_lines(&t.to_string()));
    let _ = out.flush();
}

/// Prints one JSON object on one line, flushed (event streams).
pub fn json_line(v: &serde_json::Value) {
    let _ = writeln!(Out, "{v}");
    let _ = Out.flush();
}
