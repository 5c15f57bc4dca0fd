//! ID-token validation against a fixed JWKS (the test issuer's keys in
//! tests/data/keys/): never a panic, and whatever is accepted is for the
//! expected issuer and client, unexpired.
//!
//! The input is tried twice: as a whole token (text), which exercises the
//! parsing and the signature check, and as the payload of a token the test
//! issuer signs (ES256) on the spot, which a forged token can never reach:
//! the claim checks.
#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use craik::operator::token::{
    Expected, LEEWAY_SECS, MAX_TOKEN_LEN, parse_jwks, token_kid, validate, validate_workload,
};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;

static JWKS: LazyLock<JwkSet> = LazyLock::new(|| {
    parse_jwks(include_str!("../../tests/data/keys/issuer-jwks.json").as_bytes())
        .expect("the test JWKS parses")
});
static EC: LazyLock<EncodingKey> = LazyLock::new(|| {
    EncodingKey::from_ec_pem(include_bytes!("../../tests/data/keys/ec-p256.pem"))
        .expect("ec-p256.pem")
});

const ISSUER: &str = "https://idp.example.test";
const CLIENT: &str = "craik-cli";
const NOW: i64 = 1_750_000_000;
/// `{"alg":"ES256","kid":"craik-test-ec-p256"}`, base64url.
const ES256_HEADER: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImNyYWlrLXRlc3QtZWMtcDI1NiJ9";

/// Validates `raw` (once per nonce expectation unless `once`): no panic, and
/// what is accepted is for the expected issuer and client, unexpired.
fn check(raw: &str, once: Option<bool>) {
    let _ = token_kid(raw);
    let modes: &[(Option<&str>, &str)] = match once {
        None => &[(None, "groups"), (Some("n-0S6_WzA2Mj"), "roles")],
        Some(false) => &[(None, "groups")],
        Some(true) => &[(Some("n-0S6_WzA2Mj"), "roles")],
    };
    for &(nonce, groups_claim) in modes {
        let expected = Expected {
            issuer: ISSUER,
            client_id: CLIENT,
            nonce,
            now: NOW,
            groups_claim,
        };
        if let Ok(claims) = validate(raw, &JWKS, &expected) {
            assert_eq!(claims.issuer, ISSUER);
            assert!(!claims.subject.is_empty());
            assert!(claims.expires_at.saturating_add(LEEWAY_SECS) >= NOW);
            assert!(claims.issued_at.saturating_sub(LEEWAY_SECS) <= NOW);
        }
    }
    // The same bytes as a workload's token (no azp, iat optional).
    if let Ok(w) = validate_workload(raw, &JWKS, ISSUER, CLIENT, NOW) {
        assert_eq!(w.issuer, ISSUER);
        assert!(!w.subject.is_empty());
        assert!(w.expires_at.saturating_add(LEEWAY_SECS) >= NOW);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = std::str::from_utf8(data) {
        check(raw, None);
    }
    // Signing is slow: only JSON objects, which can get past the payload
    // parse, are signed.
    let payload = URL_SAFE_NO_PAD.encode(data);
    if ES256_HEADER.len() + payload.len() + 2 + 86 <= MAX_TOKEN_LEN
        && serde_json::from_slice::<serde_json::Value>(data).is_ok_and(|v| v.is_object())
    {
        let message = format!("{ES256_HEADER}.{payload}");
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &EC, Algorithm::ES256)
            .expect("ES256 signs");
        check(&format!("{message}.{sig}"), Some(data.len() % 2 == 1));
    }
});
