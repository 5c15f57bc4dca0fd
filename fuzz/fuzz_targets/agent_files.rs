//! The agents' credential files (`craik agent import`): any bytes, read as
//! any agent's file, give credentials or a typed error, never a panic; an
//! expiry read from them is a real instant.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for agent in craik::agent::Agent::ALL {
        if let Ok((found, _)) = craik::agent::source::parse(agent, None, "fuzz", data) {
            for f in found {
                let d = f.describe();
                if let Some(t) = d.expires_at {
                    let v = serde_json::Value::String(t);
                    assert!(craik::agent::source::parse_expiry(&v).is_some());
                }
            }
        }
    }
});
