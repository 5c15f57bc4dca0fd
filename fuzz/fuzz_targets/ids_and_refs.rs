//! Profile ids, secret references, base URLs, families, kinds, relative
//! times and cli-bridge `--extract` specs from arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(id) = s.parse::<craik::profile::ProfileId>() {
        assert_eq!(id.to_string().parse::<craik::profile::ProfileId>().unwrap(), id);
    }
    let _ = craik::secret::reference::SecretRef::parse(s);
    let _ = craik::profile::check_base_url(s, false);
    let _ = craik::profile::check_base_url(s, true);
    let _ = s.parse::<craik::profile::Family>();
    let _ = s.parse::<craik::profile::Kind>();
    let _ = craik::audit::parse_time(s);
    let _ = craik::profile::mask(s);
    if let Ok(craik::profile::bridge::Extract::StdoutJson(key)) =
        craik::profile::bridge::Extract::parse(s)
    {
        assert!(!key.is_empty() && key.iter().all(|k| !k.is_empty()));
    }
});
