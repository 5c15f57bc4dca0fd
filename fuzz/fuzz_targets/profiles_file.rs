//! auth-profiles.json parsing: any bytes give Ok or a typed error, never a
//! panic; whatever parses re-serializes to something that parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("auth-profiles.json");
    if let Ok(file) = craik::profile::ProfileFile::parse(data, path) {
        let again = craik::profile::ProfileFile::parse(&file.to_json(), path)
            .expect("what craik writes, craik reads");
        assert_eq!(file, again);
    }
});
