//! The audit page's query string (`craik receipts serve`): any bytes give
//! filters or a refusal, never a panic, and the links the page writes
//! from them read back as the same filters.
#![no_main]

use libfuzzer_sys::fuzz_target;

use craik::page::query::Params;

fuzz_target!(|data: &[u8]| {
    let q = String::from_utf8_lossy(data);
    let p = Params::parse(&q);
    let _ = p.filter();
    let link = p.href("/", |_| {});
    let back = Params::parse(link.strip_prefix("/?").unwrap_or(""));
    assert_eq!(back, p, "{link}");
});
