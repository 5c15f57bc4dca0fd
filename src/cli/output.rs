//! Rendering: JSON documents, and tables (boxed on a terminal, plain
//! columns in a pipe).

use std::io::{IsTerminal, Write};

use comfy_table::{ContentArrangement, Table, presets};

/// Prints one JSON document.
pub fn json<T: serde::Serialize>(value: &T) {
    // Buffered: stdout is line-buffered, and a pretty document has many lines.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
    let _ = out.flush();
}

/// A table styled for where stdout goes.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    if std::io::stdout().is_terminal() {
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        t.load_preset(presets::NOTHING);
    }
    t.set_header(header.iter().copied());
    t
}

pub fn print_table(t: &Table) {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = writeln!(out, "{t}");
    let _ = out.flush();
}

/// Prints one JSON object on one line, flushed (event streams).
pub fn json_line(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}
