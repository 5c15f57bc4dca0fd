//! JWKS parsing of arbitrary bytes, then validation against whatever parsed:
//! never a panic. The input is a JWKS document, optionally followed by a NUL
//! byte and a token of the fuzzer's own; fixed tokens signed by the test keys
//! in tests/data/keys/ (with and without a kid, RS256, PS256 and ES256) are
//! validated against every JWKS that parses, so the fuzzer's keys reach the
//! signature check.
#![no_main]

use std::sync::LazyLock;

use craik::operator::token::{Expected, parse_jwks, validate};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://idp.example.test";
const CLIENT: &str = "craik-cli";
const NOW: i64 = 1_750_000_000;

static TOKENS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let rsa1 = EncodingKey::from_rsa_pem(include_bytes!("../../tests/data/keys/rsa1.pem"))
        .expect("rsa1.pem");
    let rsa2 = EncodingKey::from_rsa_pem(include_bytes!("../../tests/data/keys/rsa2.pem"))
        .expect("rsa2.pem");
    let ec = EncodingKey::from_ec_pem(include_bytes!("../../tests/data/keys/ec-p256.pem"))
        .expect("ec-p256.pem");
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": CLIENT, "sub": "248289761001",
        "iat": NOW - 10, "exp": NOW + 3600, "groups": ["admins"],
    });
    let header = |alg, kid: Option<&str>| {
        let mut h = Header::new(alg);
        h.kid = kid.map(str::to_string);
        h
    };
    [
        (header(Algorithm::RS256, Some("craik-test-rsa-1")), &rsa1),
        (header(Algorithm::RS256, None), &rsa1),
        (header(Algorithm::PS256, Some("craik-test-rsa-1")), &rsa1),
        (header(Algorithm::RS256, Some("craik-test-rsa-2")), &rsa2),
        (header(Algorithm::ES256, Some("craik-test-ec-p256")), &ec),
        (header(Algorithm::ES256, None), &ec),
    ]
    .iter()
    .map(|(h, k)| encode(h, &claims, k).expect("sign"))
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let (jwks_bytes, token) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], std::str::from_utf8(&data[i + 1..]).ok()),
        None => (data, None),
    };
    let Ok(jwks) = parse_jwks(jwks_bytes) else {
        return;
    };
    let expected = Expected {
        issuer: ISSUER,
        client_id: CLIENT,
        nonce: None,
        now: NOW,
        groups_claim: "groups",
    };
    for raw in TOKENS.iter() {
        if let Ok(claims) = validate(raw, &jwks, &expected) {
            assert_eq!(claims.subject, "248289761001");
        }
    }
    if let Some(raw) = token {
        let _ = validate(raw, &jwks, &expected);
    }
});
