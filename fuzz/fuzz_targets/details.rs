//! The audit log's compact `details` (a template and its values, schema 6)
//! from arbitrary text: any text is stored as itself, and arbitrary stored
//! parts either read back as text that splits into the same parts or are
//! refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    assert_eq!(
        craik::audit::store::compact::stored_details(s).as_deref(),
        Some(s)
    );
    for cut in [0, s.len() / 2, s.len()] {
        if let (Some(t), Some(v)) = (s.get(..cut), s.get(cut..)) {
            let _ = craik::audit::store::compact::read_parts(t, v);
        }
    }
});
