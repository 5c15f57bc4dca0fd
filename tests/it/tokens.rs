//! ID-token validation against a corpus of crafted tokens (issue 4, "Bad
//! tokens" and "ID-token validation").
//!
//! Every bad token is rejected with the `TokenError` variant its case names,
//! none panics, and no two variants share a message. The good tokens return
//! the right `Claims`. Keys are the test-only keys in `tests/data/keys/`; the
//! issuer's JWKS holds `rsa1` and `ec-p256`, `rsa2` is a key the issuer does
//! not publish (an attacker's, or the next one after a rotation).
//!
//! Tokens are signed with `jsonwebtoken::encode` where it can make them, and
//! by hand (base64url JSON parts joined with '.', signed with
//! `jsonwebtoken::crypto::sign`) where it cannot. The validator gets a fixed
//! `now`, so nothing here depends on the clock.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use craik::operator::token::{
    Claims, Expected, LEEWAY_SECS, MAX_TOKEN_LEN, TokenError, parse_jwks, token_kid, validate,
};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Map, Value, json};

const RSA1_PEM: &str = include_str!("../data/keys/rsa1.pem");
const RSA1_PUB_PEM: &str = include_str!("../data/keys/rsa1.pub.pem");
const RSA1_JWK: &str = include_str!("../data/keys/rsa1.jwk.json");
const RSA2_PEM: &str = include_str!("../data/keys/rsa2.pem");
const RSA2_JWK: &str = include_str!("../data/keys/rsa2.jwk.json");
const EC_PEM: &str = include_str!("../data/keys/ec-p256.pem");
const ISSUER_JWKS: &str = include_str!("../data/keys/issuer-jwks.json");

const RSA1_KID: &str = "craik-test-rsa-1";
const RSA2_KID: &str = "craik-test-rsa-2";
const EC_KID: &str = "craik-test-ec-p256";

const ISSUER: &str = "https://idp.example.test";
const CLIENT: &str = "craik-cli";
const NONCE: &str = "n-0S6_WzA2Mj";
const SUBJECT: &str = "248289761001";
const NOW: i64 = 1_750_000_000;
/// An RS256 signature by a 2048-bit key, base64url: 256 bytes.
const RSA_SIG_LEN: usize = 342;

static RSA1: LazyLock<EncodingKey> =
    LazyLock::new(|| EncodingKey::from_rsa_pem(RSA1_PEM.as_bytes()).expect("rsa1.pem"));
static RSA2: LazyLock<EncodingKey> =
    LazyLock::new(|| EncodingKey::from_rsa_pem(RSA2_PEM.as_bytes()).expect("rsa2.pem"));
static EC: LazyLock<EncodingKey> =
    LazyLock::new(|| EncodingKey::from_ec_pem(EC_PEM.as_bytes()).expect("ec-p256.pem"));
/// The issuer's JWKS: rsa1 and ec-p256.
static JWKS: LazyLock<JwkSet> =
    LazyLock::new(|| parse_jwks(ISSUER_JWKS.as_bytes()).expect("issuer-jwks.json"));

// ---------------------------------------------------------------------------
// Token construction
// ---------------------------------------------------------------------------

fn good_claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": SUBJECT,
        "email": "alice@example.test",
        "name": "Alice Liddell",
        "groups": ["admins", "devs"],
        "jti": "jti-0001",
        "nonce": NONCE,
        "iat": NOW - 10,
        "exp": NOW + 3600,
        "auth_time": NOW - 10,
    })
}

/// The good claims, edited.
fn claims_with(edit: impl FnOnce(&mut Map<String, Value>)) -> Value {
    let mut claims = good_claims();
    edit(claims.as_object_mut().expect("an object"));
    claims
}

fn header(alg: Algorithm, kid: &str) -> Header {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_string());
    h
}

/// RS256, signed by rsa1 with rsa1's kid: what the issuer sends.
fn rs256(claims: &Value) -> String {
    encode(&header(Algorithm::RS256, RSA1_KID), claims, &RSA1).expect("encode RS256")
}

fn es256(claims: &Value) -> String {
    encode(&header(Algorithm::ES256, EC_KID), claims, &EC).expect("encode ES256")
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64_json(v: &Value) -> String {
    b64(serde_json::to_vec(v).expect("JSON"))
}

/// The base64url header rsa1 signs with.
fn rs256_header_b64() -> String {
    b64_json(&json!({"alg": "RS256", "typ": "JWT", "kid": RSA1_KID}))
}

/// `header_b64.payload_b64`, signed as is: for tokens `encode` cannot make.
fn sign_raw(header_b64: &str, payload_b64: &str, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!("{header_b64}.{payload_b64}");
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).expect("sign");
    format!("{message}.{sig}")
}

/// A hand-made header over the good claims, signed by rsa1 with RS256.
fn rs256_with_raw_header(header: &Value) -> String {
    sign_raw(
        &b64_json(header),
        &b64_json(&good_claims()),
        &RSA1,
        Algorithm::RS256,
    )
}

/// A hand-made header over the good claims with a signature of junk.
fn unsigned(header: &Value, sig: &str) -> String {
    format!("{}.{}.{sig}", b64_json(header), b64_json(&good_claims()))
}

fn split3(token: &str) -> (String, String, String) {
    let mut parts = token.split('.').map(str::to_string);
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("not three parts: {token}");
    };
    (h, p, s)
}

fn jwk(json: &str) -> Jwk {
    serde_json::from_str(json).expect("a JWK")
}

fn jwks_of(keys: &[&str]) -> JwkSet {
    JwkSet {
        keys: keys.iter().map(|k| jwk(k)).collect(),
    }
}

fn expected() -> Expected<'static> {
    Expected {
        issuer: ISSUER,
        client_id: CLIENT,
        nonce: Some(NONCE),
        now: NOW,
        groups_claim: "groups",
    }
}

/// `[[[...]]]`, `depth` deep.
fn nested_arrays(depth: usize) -> String {
    let mut s = "[".repeat(depth);
    s.push_str(&"]".repeat(depth));
    s
}

// ---------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------

struct Case {
    name: &'static str,
    token: String,
    jwks: JwkSet,
    expected: Expected<'static>,
    /// A `matches!` on the variant this case must be rejected with.
    check: fn(&TokenError) -> bool,
}

fn case(name: &'static str, token: String, check: fn(&TokenError) -> bool) -> Case {
    Case {
        name,
        token,
        jwks: JWKS.clone(),
        expected: expected(),
        check,
    }
}

impl Case {
    fn jwks(mut self, jwks: JwkSet) -> Self {
        self.jwks = jwks;
        self
    }

    fn nonce(mut self, nonce: Option<&'static str>) -> Self {
        self.expected.nonce = nonce;
        self
    }
}

fn corpus() -> Vec<Case> {
    let good = rs256(&good_claims());
    let (good_h, good_p, good_s) = split3(&good);
    let rsa1_n = rsa_modulus(&jwk(RSA1_JWK));
    let attacker = {
        let mut h = header(Algorithm::RS256, RSA1_KID);
        h.jwk = Some(jwk(RSA2_JWK));
        h
    };

    vec![
        // --- Algorithm confusion -------------------------------------------
        case(
            "alg none, empty signature",
            unsigned(&json!({"alg": "none", "kid": RSA1_KID}), ""),
            |e| matches!(e, TokenError::AlgNotAllowed(a) if a == "none"),
        ),
        case(
            "alg none, non-empty signature",
            unsigned(&json!({"alg": "none", "kid": RSA1_KID}), &good_s),
            |e| matches!(e, TokenError::AlgNotAllowed(a) if a == "none"),
        ),
        case(
            "alg None, no kid, empty signature",
            unsigned(&json!({"alg": "None", "typ": "JWT"}), ""),
            |e| matches!(e, TokenError::AlgNotAllowed(a) if a == "None"),
        ),
        case(
            "HS256 keyed with the RSA public key PEM",
            encode(
                &header(Algorithm::HS256, RSA1_KID),
                &good_claims(),
                &EncodingKey::from_secret(RSA1_PUB_PEM.as_bytes()),
            )
            .expect("HS256"),
            |e| matches!(e, TokenError::AlgNotAllowed(a) if a == "HS256"),
        ),
        case(
            "HS256 keyed with the RSA modulus bytes",
            encode(
                &header(Algorithm::HS256, RSA1_KID),
                &good_claims(),
                &EncodingKey::from_secret(&rsa1_n),
            )
            .expect("HS256"),
            |e| matches!(e, TokenError::AlgNotAllowed(a) if a == "HS256"),
        ),
        case(
            "HS512 keyed with the RSA public key PEM, no kid",
            encode(
                &Header::new(Algorithm::HS512),
                &good_claims(),
                &EncodingKey::from_secret(RSA1_PUB_PEM.as_bytes()),
            )
            .expect("HS512"),
            |e| matches!(e, TokenError::AlgNotAllowed(a) if a == "HS512"),
        ),
        case(
            "lowercase rs256, otherwise valid",
            rs256_with_raw_header(&json!({"alg": "rs256", "typ": "JWT", "kid": RSA1_KID})),
            |e| matches!(e, TokenError::AlgNotAllowed(a) if a == "rs256"),
        ),
        case(
            "ES512 (not on the allow-list)",
            unsigned(&json!({"alg": "ES512", "kid": EC_KID}), &good_s),
            |e| matches!(e, TokenError::AlgNotAllowed(a) if a == "ES512"),
        ),
        case(
            "header without alg",
            unsigned(&json!({"typ": "JWT", "kid": RSA1_KID}), &good_s),
            |e| matches!(e, TokenError::NoAlg),
        ),
        case(
            "alg is a number",
            unsigned(&json!({"alg": 256, "kid": RSA1_KID}), &good_s),
            |e| matches!(e, TokenError::NoAlg),
        ),
        // --- Keys ---------------------------------------------------------------
        case(
            "unknown kid (rsa2, not in the JWKS)",
            encode(&header(Algorithm::RS256, RSA2_KID), &good_claims(), &RSA2).expect("RS256"),
            |e| matches!(e, TokenError::UnknownKid(k) if k == RSA2_KID),
        ),
        case(
            "EC kid with RS256",
            encode(&header(Algorithm::RS256, EC_KID), &good_claims(), &RSA1).expect("RS256"),
            |e| {
                matches!(e, TokenError::KeyTypeMismatch { kid, kty, alg }
                    if kid == EC_KID && kty == "EC" && alg == "RS256")
            },
        ),
        case(
            "RSA kid with ES256",
            encode(&header(Algorithm::ES256, RSA1_KID), &good_claims(), &EC).expect("ES256"),
            |e| {
                matches!(e, TokenError::KeyTypeMismatch { kid, kty, alg }
                    if kid == RSA1_KID && kty == "RSA" && alg == "ES256")
            },
        ),
        case(
            "P-256 kid with ES384 (wrong curve)",
            unsigned(&json!({"alg": "ES384", "kid": EC_KID}), &good_s),
            |e| matches!(e, TokenError::KeyTypeMismatch { kty, alg, .. } if kty == "EC" && alg == "ES384"),
        ),
        case(
            "no kid, two RSA keys in the JWKS",
            encode(&Header::new(Algorithm::RS256), &good_claims(), &RSA1).expect("RS256"),
            |e| matches!(e, TokenError::NoKid(a) if a == "RS256"),
        )
        .jwks(jwks_of(&[RSA1_JWK, RSA2_JWK])),
        case(
            "no kid, EdDSA, no OKP key in the JWKS",
            unsigned(&json!({"alg": "EdDSA"}), &good_s),
            |e| matches!(e, TokenError::NoKid(a) if a == "EdDSA"),
        ),
        case(
            "the JWKS key's modulus is not base64url",
            good.clone(),
            |e| matches!(e, TokenError::BadKey(k) if k == RSA1_KID),
        )
        .jwks(JwkSet {
            keys: vec![{
                let mut v: Value = serde_json::from_str(RSA1_JWK).expect("JSON");
                v["n"] = json!("!!not base64!!");
                serde_json::from_value(v).expect("a JWK")
            }],
        }),
        // --- Signatures ---------------------------------------------------------
        case(
            "signed by rsa2 under rsa1's kid",
            encode(&header(Algorithm::RS256, RSA1_KID), &good_claims(), &RSA2).expect("RS256"),
            |e| matches!(e, TokenError::BadSignature),
        ),
        case(
            "tampered payload (sub changed, signature kept)",
            format!(
                "{good_h}.{}.{good_s}",
                b64_json(&claims_with(|c| {
                    c.insert("sub".into(), json!("root"));
                }))
            ),
            |e| matches!(e, TokenError::BadSignature),
        ),
        case(
            "tampered header (typ added, signature kept)",
            format!(
                "{}.{good_p}.{good_s}",
                b64_json(&json!({"alg": "RS256", "typ": "at+jwt", "kid": RSA1_KID}))
            ),
            |e| matches!(e, TokenError::BadSignature),
        ),
        case(
            "truncated signature",
            format!("{good_h}.{good_p}.{}", &good_s[..good_s.len() - 2]),
            |e| matches!(e, TokenError::BadSignature),
        ),
        case(
            "embedded jwk header with the attacker's key, signed by it",
            encode(&attacker, &good_claims(), &RSA2).expect("RS256"),
            |e| matches!(e, TokenError::BadSignature),
        ),
        case(
            "ES256 signature of the wrong length",
            format!(
                "{}.{good_p}.{}",
                b64_json(&json!({"alg": "ES256", "kid": EC_KID})),
                b64([7u8; 63])
            ),
            |e| matches!(e, TokenError::BadSignature),
        ),
        // --- Critical extensions and odd kids -----------------------------------
        case(
            "crit names an extension craik does not implement",
            rs256_with_raw_header(
                &json!({"alg": "RS256", "kid": RSA1_KID, "crit": ["x-unknown"], "x-unknown": 1}),
            ),
            |e| matches!(e, TokenError::Critical(c) if c == "x-unknown"),
        ),
        case(
            "crit b64=false (unencoded payload)",
            rs256_with_raw_header(
                &json!({"alg": "RS256", "kid": RSA1_KID, "crit": ["b64"], "b64": false}),
            ),
            |e| matches!(e, TokenError::Critical(c) if c == "b64"),
        ),
        case(
            "kid is a number",
            rs256_with_raw_header(&json!({"alg": "RS256", "kid": 5})),
            |e| matches!(e, TokenError::KidType),
        ),
        // --- Headers that point elsewhere ---------------------------------------
        case(
            "jku pointing elsewhere with an unknown kid",
            {
                let mut h = header(Algorithm::RS256, "attacker-key");
                h.jku = Some("https://attacker.example/jwks.json".into());
                encode(&h, &good_claims(), &RSA2).expect("RS256")
            },
            |e| matches!(e, TokenError::UnknownKid(k) if k == "attacker-key"),
        ),
        case(
            "x5u pointing elsewhere with an unknown kid",
            {
                let mut h = header(Algorithm::RS256, "attacker-cert");
                h.x5u = Some("https://attacker.example/cert.pem".into());
                h.x5c = Some(vec![STANDARD.encode(b"not a certificate")]);
                encode(&h, &good_claims(), &RSA2).expect("RS256")
            },
            |e| matches!(e, TokenError::UnknownKid(k) if k == "attacker-cert"),
        ),
        // --- Encoding -------------------------------------------------------
        case(
            "bad base64 in the header",
            format!("eyJhbGciOiJSUzI1NiJ9*.{good_p}.{good_s}"),
            |e| matches!(e, TokenError::Base64("header")),
        ),
        case(
            "standard (not url-safe) base64 in the header",
            format!(
                "{}.{good_p}.{good_s}",
                standard_b64_with_plus_or_slash(
                    r#"{"alg":"RS256","kid":"craik-test-rsa-1","x":">>>???"}"#
                )
            ),
            |e| matches!(e, TokenError::Base64("header")),
        ),
        case(
            "bad base64 in the payload, validly signed",
            sign_raw(&good_h, "eyJpc3Mi$$$", &RSA1, Algorithm::RS256),
            |e| matches!(e, TokenError::Base64("payload")),
        ),
        case(
            "bad base64 in the signature",
            format!("{good_h}.{good_p}.{}*", &good_s[..good_s.len() - 1]),
            |e| matches!(e, TokenError::Base64("signature")),
        ),
        case(
            "padded signature",
            format!("{good_h}.{good_p}.{good_s}=="),
            |e| matches!(e, TokenError::Base64("signature")),
        ),
        case(
            "header not JSON",
            format!(
                "{}.{good_p}.{good_s}",
                b64("alg=RS256; kid=craik-test-rsa-1")
            ),
            |e| matches!(e, TokenError::Json("header")),
        ),
        case(
            "header a JSON array",
            format!(
                "{}.{good_p}.{good_s}",
                b64(r#"["RS256","craik-test-rsa-1"]"#)
            ),
            |e| matches!(e, TokenError::Json("header")),
        ),
        case(
            "header not UTF-8",
            format!("{}.{good_p}.{good_s}", b64([0xff, 0xfe, b'{', 0x80])),
            |e| matches!(e, TokenError::Json("header")),
        ),
        case(
            "payload a JSON array, validly signed",
            sign_raw(
                &good_h,
                &b64(format!(r#"[{}]"#, good_claims())),
                &RSA1,
                Algorithm::RS256,
            ),
            |e| matches!(e, TokenError::Json("payload")),
        ),
        case(
            "payload JSON null, validly signed",
            sign_raw(&good_h, &b64("null"), &RSA1, Algorithm::RS256),
            |e| matches!(e, TokenError::Json("payload")),
        ),
        case(
            "deeply nested header (5000 arrays)",
            format!("{}.{good_p}.{good_s}", b64(nested_arrays(5_000))),
            |e| matches!(e, TokenError::Json("header")),
        ),
        case(
            "deeply nested claim (5000 arrays), validly signed",
            sign_raw(
                &good_h,
                &b64(format!(
                    r#"{{"iss":"{ISSUER}","aud":"{CLIENT}","x":{}}}"#,
                    nested_arrays(5_000)
                )),
                &RSA1,
                Algorithm::RS256,
            ),
            |e| matches!(e, TokenError::Json("payload")),
        ),
        case(
            "deeply nested payload (100000 arrays): over the size cap",
            format!("{good_h}.{}.{good_s}", b64(nested_arrays(100_000))),
            |e| matches!(e, TokenError::TooLarge(n) if *n > MAX_TOKEN_LEN),
        ),
        // --- Shape ----------------------------------------------------------
        case("empty string", String::new(), |e| {
            matches!(e, TokenError::Segments(1))
        }),
        case("two segments", format!("{good_h}.{good_p}"), |e| {
            matches!(e, TokenError::Segments(2))
        }),
        case(
            "alg none as two segments (no signature part)",
            format!(
                "{}.{good_p}",
                b64_json(&json!({"alg": "none", "kid": RSA1_KID}))
            ),
            |e| matches!(e, TokenError::Segments(2)),
        ),
        case("four segments", format!("{good}.{good_s}"), |e| {
            matches!(e, TokenError::Segments(4))
        }),
        case(
            "five segments (a JWE)",
            format!("{good_h}.{good_p}.{good_s}.{good_s}.{good_s}"),
            |e| matches!(e, TokenError::Segments(5)),
        ),
        case(
            "a 1 MB token",
            format!("{}.{}.{good_s}", rs256_header_b64(), "A".repeat(1 << 20)),
            |e| matches!(e, TokenError::TooLarge(n) if *n > 1 << 20),
        ),
        case(
            "one byte over MAX_TOKEN_LEN",
            sized_token(MAX_TOKEN_LEN + 1),
            |e| matches!(e, TokenError::TooLarge(n) if *n == MAX_TOKEN_LEN + 1),
        ),
        // --- Issuer and audience --------------------------------------------
        case(
            "wrong iss",
            rs256(&claims_with(|c| {
                c.insert("iss".into(), json!("https://evil.example.test"));
            })),
            |e| {
                matches!(e, TokenError::Issuer { expected, got }
                    if expected == ISSUER && got == "https://evil.example.test")
            },
        ),
        case(
            "iss with a trailing slash (not exact)",
            rs256(&claims_with(|c| {
                c.insert("iss".into(), json!(format!("{ISSUER}/")));
            })),
            |e| matches!(e, TokenError::Issuer { got, .. } if got.ends_with('/')),
        ),
        case(
            "missing iss",
            rs256(&claims_with(|c| {
                c.remove("iss");
            })),
            |e| matches!(e, TokenError::Missing("iss")),
        ),
        case(
            "wrong aud",
            rs256(&claims_with(|c| {
                c.insert("aud".into(), json!("another-client"));
            })),
            |e| matches!(e, TokenError::Audience { client, got } if client == CLIENT && got.contains("another-client")),
        ),
        case(
            "empty aud array",
            rs256(&claims_with(|c| {
                c.insert("aud".into(), json!([]));
            })),
            |e| matches!(e, TokenError::Audience { .. }),
        ),
        case(
            "missing aud",
            rs256(&claims_with(|c| {
                c.remove("aud");
            })),
            |e| matches!(e, TokenError::Missing("aud")),
        ),
        case(
            "aud a number",
            rs256(&claims_with(|c| {
                c.insert("aud".into(), json!(42));
            })),
            |e| matches!(e, TokenError::ClaimType("aud")),
        ),
        case(
            "several audiences without azp",
            rs256(&claims_with(|c| {
                c.insert("aud".into(), json!([CLIENT, "another-client"]));
            })),
            |e| matches!(e, TokenError::Azp { got, .. } if got == "(none)"),
        ),
        case(
            "several audiences, azp another client",
            rs256(&claims_with(|c| {
                c.insert("aud".into(), json!([CLIENT, "another-client"]));
                c.insert("azp".into(), json!("another-client"));
            })),
            |e| matches!(e, TokenError::Azp { client, got } if client == CLIENT && got == "another-client"),
        ),
        case(
            "one audience, azp another client",
            rs256(&claims_with(|c| {
                c.insert("azp".into(), json!("another-client"));
            })),
            |e| matches!(e, TokenError::Azp { got, .. } if got == "another-client"),
        ),
        // --- Times ------------------------------------------------------------
        case(
            "expired an hour ago",
            rs256(&claims_with(|c| {
                c.insert("iat".into(), json!(NOW - 7200));
                c.insert("exp".into(), json!(NOW - 3600));
            })),
            |e| matches!(e, TokenError::Expired(t) if *t == NOW - 3600),
        ),
        case(
            "expired one second beyond the leeway",
            rs256(&claims_with(|c| {
                c.insert("exp".into(), json!(NOW - LEEWAY_SECS - 1));
            })),
            |e| matches!(e, TokenError::Expired(t) if *t == NOW - LEEWAY_SECS - 1),
        ),
        case(
            "missing exp",
            rs256(&claims_with(|c| {
                c.remove("exp");
            })),
            |e| matches!(e, TokenError::Missing("exp")),
        ),
        case(
            "exp a string",
            rs256(&claims_with(|c| {
                c.insert("exp".into(), json!((NOW + 3600).to_string()));
            })),
            |e| matches!(e, TokenError::ClaimType("exp")),
        ),
        case(
            "exp a boolean",
            rs256(&claims_with(|c| {
                c.insert("exp".into(), json!(true));
            })),
            |e| matches!(e, TokenError::ClaimType("exp")),
        ),
        case(
            "iat in the future beyond the leeway",
            rs256(&claims_with(|c| {
                c.insert("iat".into(), json!(NOW + 120));
            })),
            |e| matches!(e, TokenError::IssuedInFuture(t) if *t == NOW + 120),
        ),
        case(
            "missing iat",
            rs256(&claims_with(|c| {
                c.remove("iat");
            })),
            |e| matches!(e, TokenError::Missing("iat")),
        ),
        case(
            "nbf in the future beyond the leeway",
            rs256(&claims_with(|c| {
                c.insert("nbf".into(), json!(NOW + 120));
            })),
            |e| matches!(e, TokenError::NotYetValid(t) if *t == NOW + 120),
        ),
        case(
            "nbf a string",
            rs256(&claims_with(|c| {
                c.insert("nbf".into(), json!("now"));
            })),
            |e| matches!(e, TokenError::ClaimType("nbf")),
        ),
        // --- Subject, nonce, groups --------------------------------------------
        case(
            "missing sub",
            rs256(&claims_with(|c| {
                c.remove("sub");
            })),
            |e| matches!(e, TokenError::Missing("sub")),
        ),
        case(
            "empty sub",
            rs256(&claims_with(|c| {
                c.insert("sub".into(), json!(""));
            })),
            |e| matches!(e, TokenError::Missing("sub")),
        ),
        case(
            "sub a number",
            rs256(&claims_with(|c| {
                c.insert("sub".into(), json!(248289761001_i64));
            })),
            |e| matches!(e, TokenError::ClaimType("sub")),
        ),
        case(
            "nonce mismatch",
            rs256(&claims_with(|c| {
                c.insert("nonce".into(), json!("another-nonce"));
            })),
            |e| matches!(e, TokenError::Nonce),
        ),
        case(
            "nonce missing when the flow sent one",
            rs256(&claims_with(|c| {
                c.remove("nonce");
            })),
            |e| matches!(e, TokenError::Nonce),
        ),
        case("the flow sent another nonce", good.clone(), |e| {
            matches!(e, TokenError::Nonce)
        })
        .nonce(Some("a-nonce-of-another-login")),
        case(
            "nonce a number",
            rs256(&claims_with(|c| {
                c.insert("nonce".into(), json!(12345));
            })),
            |e| matches!(e, TokenError::ClaimType("nonce")),
        ),
        case(
            "groups an object",
            rs256(&claims_with(|c| {
                c.insert("groups".into(), json!({"admins": true}));
            })),
            |e| matches!(e, TokenError::GroupsType(c) if c == "groups"),
        ),
        case(
            "email a number",
            rs256(&claims_with(|c| {
                c.insert("email".into(), json!(7));
            })),
            |e| matches!(e, TokenError::ClaimType("email")),
        ),
    ]
}

/// The modulus of an RSA JWK, as bytes.
fn rsa_modulus(jwk: &Jwk) -> Vec<u8> {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => URL_SAFE_NO_PAD.decode(&p.n).expect("n is base64url"),
        _ => panic!("not an RSA JWK"),
    }
}

/// Standard base64 (with `+` or `/` and padding) of `json`, which a
/// base64url decoder must refuse.
fn standard_b64_with_plus_or_slash(json: &str) -> String {
    (0..3)
        .map(|spaces| STANDARD.encode(format!("{}{json}", " ".repeat(spaces))))
        .find(|s| s.contains(['+', '/']))
        .expect("some alignment gives + or /")
}

/// An otherwise valid RS256 token by rsa1 exactly `len` bytes long, made
/// with JSON whitespace in the header and a padding claim.
fn sized_token(len: usize) -> String {
    let with_pad = |pad: usize| {
        claims_with(|c| {
            c.insert("pad".into(), json!("x".repeat(pad)));
        })
    };
    let base = serde_json::to_vec(&with_pad(0)).expect("JSON").len();
    // Unpadded base64 of n bytes is ceil(4n / 3) characters.
    let b64_len = |n: usize| (4 * n).div_ceil(3);
    for spaces in 0..3 {
        let header_b64 = b64(format!(
            r#"{{"alg":"RS256","kid":"{RSA1_KID}"{}}}"#,
            " ".repeat(spaces)
        ));
        let Some(target) = len.checked_sub(header_b64.len() + 2 + RSA_SIG_LEN) else {
            continue;
        };
        if let Some(pad) = (0..=target).find(|pad| b64_len(base + pad) == target) {
            let token = sign_raw(
                &header_b64,
                &b64_json(&with_pad(pad)),
                &RSA1,
                Algorithm::RS256,
            );
            assert_eq!(token.len(), len);
            return token;
        }
    }
    panic!("no token of {len} bytes");
}

/// `AlgNotAllowed("none")` → `AlgNotAllowed`.
fn variant(e: &TokenError) -> String {
    let debug = format!("{e:?}");
    debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}

const ALL_VARIANTS: &[&str] = &[
    "TooLarge",
    "Segments",
    "Base64",
    "Json",
    "NoAlg",
    "AlgNotAllowed",
    "UnknownKid",
    "NoKid",
    "KeyTypeMismatch",
    "BadKey",
    "BadSignature",
    "Issuer",
    "Audience",
    "Azp",
    "Expired",
    "IssuedInFuture",
    "NotYetValid",
    "Missing",
    "ClaimType",
    "Nonce",
    "Critical",
    "KidType",
    "GroupsType",
];

#[test]
fn bad_token_corpus_each_rejected_with_its_own_error() {
    let cases = corpus();
    assert!(cases.len() >= 25, "only {} cases", cases.len());

    let mut failures = Vec::new();
    let mut names = BTreeSet::new();
    // Variant name → the messages its cases produced.
    let mut messages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in &cases {
        assert!(names.insert(c.name), "two cases named {:?}", c.name);
        match catch_unwind(AssertUnwindSafe(|| {
            validate(&c.token, &c.jwks, &c.expected)
        })) {
            Err(_) => failures.push(format!("{}: validate panicked", c.name)),
            Ok(Ok(claims)) => failures.push(format!("{}: accepted: {claims:?}", c.name)),
            Ok(Err(e)) => {
                if !(c.check)(&e) {
                    failures.push(format!("{}: rejected with the wrong error {e:?}", c.name));
                }
                let message = e.to_string();
                if message.trim().is_empty() {
                    failures.push(format!("{}: empty message", c.name));
                }
                messages.entry(variant(&e)).or_default().insert(message);
            }
        }
        if catch_unwind(AssertUnwindSafe(|| token_kid(&c.token))).is_err() {
            failures.push(format!("{}: token_kid panicked", c.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Each message belongs to one variant: "its own message".
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for (variant, msgs) in &messages {
        for m in msgs {
            if let Some(other) = owner.insert(m, variant) {
                panic!("{variant} and {other} share the message {m:?}");
            }
        }
    }
    let missing: Vec<_> = ALL_VARIANTS
        .iter()
        .filter(|v| !messages.contains_key(**v))
        .collect();
    assert!(missing.is_empty(), "no case is rejected with {missing:?}");
    assert_eq!(
        messages.len(),
        ALL_VARIANTS.len(),
        "a variant outside the list: {:?}",
        messages.keys()
    );
}

// ---------------------------------------------------------------------------
// Good tokens
// ---------------------------------------------------------------------------

#[track_caller]
fn accept(token: &str, jwks: &JwkSet, expected: &Expected<'_>) -> Claims {
    match validate(token, jwks, expected) {
        Ok(claims) => claims,
        Err(e) => panic!("rejected: {e:?}: {e}"),
    }
}

#[test]
fn valid_rs256_returns_the_claims() {
    let claims = accept(&rs256(&good_claims()), &JWKS, &expected());
    assert_eq!(
        claims,
        Claims {
            issuer: ISSUER.into(),
            subject: SUBJECT.into(),
            email: Some("alice@example.test".into()),
            name: Some("Alice Liddell".into()),
            groups: vec!["admins".into(), "devs".into()],
            groups_present: true,
            jti: Some("jti-0001".into()),
            issued_at: NOW - 10,
            expires_at: NOW + 3600,
        }
    );
}

#[test]
fn optional_claims_may_be_absent() {
    let token = rs256(&claims_with(|c| {
        for k in ["email", "name", "groups", "jti", "nonce"] {
            c.remove(k);
        }
    }));
    let claims = accept(
        &token,
        &JWKS,
        &Expected {
            nonce: None,
            ..expected()
        },
    );
    assert_eq!(claims.subject, SUBJECT);
    assert_eq!((claims.email, claims.name, claims.jti), (None, None, None));
    assert!(claims.groups.is_empty());
}

#[test]
fn groups_come_from_the_configured_claim() {
    let token = rs256(&claims_with(|c| {
        c.insert(
            "https://craik.example/roles".into(),
            json!(["operators", 7, "auditors"]),
        );
        c.insert("cognito:groups".into(), json!("solo"));
    }));
    let with = |claim| Expected {
        groups_claim: claim,
        ..expected()
    };
    // Non-string members are skipped; a single string is one group.
    assert_eq!(
        accept(&token, &JWKS, &with("https://craik.example/roles")).groups,
        ["operators", "auditors"]
    );
    assert_eq!(
        accept(&token, &JWKS, &with("cognito:groups")).groups,
        ["solo"]
    );
    assert_eq!(
        accept(&token, &JWKS, &with("groups")).groups,
        ["admins", "devs"]
    );
    assert!(accept(&token, &JWKS, &with("absent")).groups.is_empty());
}

#[test]
fn valid_es256_is_accepted() {
    let claims = accept(&es256(&good_claims()), &JWKS, &expected());
    assert_eq!(claims.subject, SUBJECT);
    assert_eq!(claims.email.as_deref(), Some("alice@example.test"));
}

#[test]
fn other_allowed_rsa_algorithms_are_accepted() {
    // A key pinned to RS256 (its JWK says "alg": "RS256") verifies RS256
    // only.
    let pinned =
        encode(&header(Algorithm::RS384, RSA1_KID), &good_claims(), &RSA1).expect("encode");
    assert!(matches!(
        validate(&pinned, &JWKS, &expected()),
        Err(TokenError::KeyTypeMismatch { .. })
    ));
    // The same key without a pinned algorithm verifies every RSA one.
    let mut unpinned = JWKS.clone();
    for k in &mut unpinned.keys {
        k.common.key_algorithm = None;
    }
    for alg in [
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS512,
    ] {
        let token = encode(&header(alg, RSA1_KID), &good_claims(), &RSA1).expect("encode");
        assert_eq!(
            accept(&token, &unpinned, &expected()).subject,
            SUBJECT,
            "{alg:?}"
        );
    }
}

#[test]
fn several_audiences_with_azp_equal_to_the_client_are_accepted() {
    let token = rs256(&claims_with(|c| {
        c.insert("aud".into(), json!(["another-client", CLIENT]));
        c.insert("azp".into(), json!(CLIENT));
    }));
    assert_eq!(accept(&token, &JWKS, &expected()).subject, SUBJECT);
    // One audience in an array, azp equal to it.
    let token = rs256(&claims_with(|c| {
        c.insert("aud".into(), json!([CLIENT]));
        c.insert("azp".into(), json!(CLIENT));
    }));
    assert_eq!(accept(&token, &JWKS, &expected()).subject, SUBJECT);
}

#[test]
fn leeway_tolerates_sixty_seconds_of_skew() {
    let cases = [
        ("exp 30 s ago", "exp", NOW - 30),
        ("exp exactly the leeway ago", "exp", NOW - LEEWAY_SECS),
        ("iat 30 s ahead", "iat", NOW + 30),
        ("iat exactly the leeway ahead", "iat", NOW + LEEWAY_SECS),
        ("nbf 30 s ahead", "nbf", NOW + 30),
        ("nbf exactly the leeway ahead", "nbf", NOW + LEEWAY_SECS),
    ];
    for (what, claim, t) in cases {
        let token = rs256(&claims_with(|c| {
            c.insert(claim.into(), json!(t));
        }));
        let claims = validate(&token, &JWKS, &expected())
            .unwrap_or_else(|e| panic!("{what}: rejected: {e}"));
        assert_eq!(claims.subject, SUBJECT, "{what}");
    }
    // A fractional NumericDate is allowed by RFC 7519.
    let token = rs256(&claims_with(|c| {
        c.insert("exp".into(), json!(NOW as f64 + 0.5));
    }));
    assert_eq!(accept(&token, &JWKS, &expected()).expires_at, NOW);
}

#[test]
fn jku_x5u_x5c_and_jwk_headers_are_ignored() {
    // A valid kid and a valid signature: accepted, so the URL was never used
    // (there is no network here, and nothing answers at attacker.example).
    let mut h = header(Algorithm::RS256, RSA1_KID);
    h.jku = Some("https://attacker.example/jwks.json".into());
    h.x5u = Some("https://attacker.example/cert.pem".into());
    h.x5c = Some(vec![STANDARD.encode(b"not a certificate")]);
    h.jwk = Some(jwk(RSA2_JWK));
    let token = encode(&h, &good_claims(), &RSA1).expect("encode");
    assert_eq!(accept(&token, &JWKS, &expected()).subject, SUBJECT);
}

#[test]
fn no_kid_picks_the_single_key_that_fits() {
    // The issuer's JWKS holds one RSA key and one P-256 key.
    let token = encode(&Header::new(Algorithm::RS256), &good_claims(), &RSA1).expect("encode");
    assert_eq!(accept(&token, &JWKS, &expected()).subject, SUBJECT);
    let token = encode(&Header::new(Algorithm::ES256), &good_claims(), &EC).expect("encode");
    assert_eq!(accept(&token, &JWKS, &expected()).subject, SUBJECT);
}

#[test]
fn a_rotated_key_verifies_once_in_the_jwks() {
    let token = encode(&header(Algorithm::RS256, RSA2_KID), &good_claims(), &RSA2).expect("encode");
    assert!(matches!(
        validate(&token, &JWKS, &expected()),
        Err(TokenError::UnknownKid(k)) if k == RSA2_KID
    ));
    // After the refetch the JWKS holds both keys.
    let rotated = jwks_of(&[RSA1_JWK, RSA2_JWK]);
    assert_eq!(accept(&token, &rotated, &expected()).subject, SUBJECT);
    assert_eq!(
        accept(&rs256(&good_claims()), &rotated, &expected()).subject,
        SUBJECT
    );
}

#[test]
fn a_token_of_exactly_max_len_is_accepted() {
    let token = sized_token(MAX_TOKEN_LEN);
    assert_eq!(token.len(), MAX_TOKEN_LEN);
    assert_eq!(accept(&token, &JWKS, &expected()).subject, SUBJECT);
}

// ---------------------------------------------------------------------------
// token_kid and parse_jwks
// ---------------------------------------------------------------------------

#[test]
fn token_kid_reads_the_header_and_never_panics() {
    assert_eq!(token_kid(&rs256(&good_claims())).as_deref(), Some(RSA1_KID));
    assert_eq!(token_kid(&es256(&good_claims())).as_deref(), Some(EC_KID));
    assert_eq!(token_kid(""), None);
    assert_eq!(token_kid("!!!.x.y"), None);
    assert_eq!(token_kid(&b64(r#"{"kid":5}"#)), None);
    // Deep nesting errors in serde_json (recursion limit); no stack overflow.
    assert_eq!(token_kid(&b64(nested_arrays(100_000))), None);
    let deep_object = format!("{}{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000));
    assert_eq!(token_kid(&b64(deep_object)), None);
}

#[test]
fn parse_jwks_keeps_known_keys_and_rejects_garbage() {
    assert_eq!(JWKS.keys.len(), 2);
    let kids: Vec<_> = JWKS
        .keys
        .iter()
        .map(|k| k.common.key_id.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(kids, [RSA1_KID, EC_KID]);

    // A key of an unknown type, or one that is not an object, does not hide
    // the others. (jsonwebtoken keeps an unknown key as
    // `AlgorithmParameters::Other`, which fits no algorithm.)
    let mixed = format!(r#"{{"keys":[{{"kty":"PQC","kid":"future"}},42,"x",{RSA1_JWK}]}}"#);
    let jwks = parse_jwks(mixed.as_bytes()).expect("parses");
    let kids: Vec<_> = jwks
        .keys
        .iter()
        .map(|k| k.common.key_id.as_deref())
        .collect();
    assert_eq!(kids, [Some("future"), Some(RSA1_KID)]);
    assert_eq!(
        accept(&rs256(&good_claims()), &jwks, &expected()).subject,
        SUBJECT
    );
    let future =
        encode(&header(Algorithm::RS256, "future"), &good_claims(), &RSA1).expect("encode");
    assert!(matches!(
        validate(&future, &jwks, &expected()),
        Err(TokenError::KeyTypeMismatch { kty, .. }) if kty == "unknown"
    ));

    for bad in [
        &b""[..],
        b"null",
        b"[]",
        b"{}",
        br#"{"keys":{}}"#,
        b"\xff\xfe",
        nested_arrays(100_000).as_bytes(),
        format!(r#"{{"keys":{}}}"#, nested_arrays(100_000)).as_bytes(),
    ] {
        let got = catch_unwind(|| parse_jwks(bad));
        assert!(
            matches!(got, Ok(Err(_))),
            "{:?}…",
            String::from_utf8_lossy(&bad[..bad.len().min(40)])
        );
    }
    // An empty key list parses, and then every kid is unknown.
    let empty = parse_jwks(br#"{"keys":[]}"#).expect("parses");
    assert!(matches!(
        validate(&rs256(&good_claims()), &empty, &expected()),
        Err(TokenError::UnknownKid(_))
    ));
}

// ---------------------------------------------------------------------------
// Extreme but well-typed NumericDate values (exp i64::MAX, or 1e300 which
// `f as i64` saturates; iat or nbf i64::MIN) used to overflow the leeway
// arithmetic in `validate`: a panic in debug builds ("attempt to add with
// overflow"), wrapping in release. Fixed in 74b56ea (saturating arithmetic);
// this is its regression test. Only a token the issuer signed reaches it.
// ---------------------------------------------------------------------------

#[test]
fn extreme_numeric_dates_do_not_panic() {
    type Outcome = fn(&Result<Claims, TokenError>) -> bool;
    let accepted: Outcome = |r| r.is_ok();
    let extremes: [(&str, &str, Value, Outcome); 10] = [
        ("exp i64::MAX", "exp", json!(i64::MAX), accepted),
        ("exp u64::MAX", "exp", json!(u64::MAX), accepted),
        ("exp 1e300", "exp", json!(1e300), accepted),
        ("exp i64::MIN", "exp", json!(i64::MIN), |r| {
            matches!(r, Err(TokenError::Expired(i64::MIN)))
        }),
        ("exp -1e300", "exp", json!(-1e300), |r| {
            matches!(r, Err(TokenError::Expired(i64::MIN)))
        }),
        ("iat i64::MIN", "iat", json!(i64::MIN), accepted),
        ("iat -1e300", "iat", json!(-1e300), accepted),
        ("iat i64::MAX", "iat", json!(i64::MAX), |r| {
            matches!(r, Err(TokenError::IssuedInFuture(i64::MAX)))
        }),
        ("nbf i64::MIN", "nbf", json!(i64::MIN), accepted),
        ("nbf i64::MAX", "nbf", json!(i64::MAX), |r| {
            matches!(r, Err(TokenError::NotYetValid(i64::MAX)))
        }),
    ];
    let mut failed = Vec::new();
    for (what, claim, value, outcome) in extremes {
        let token = rs256(&claims_with(|c| {
            c.insert(claim.into(), value);
        }));
        match catch_unwind(AssertUnwindSafe(|| validate(&token, &JWKS, &expected()))) {
            Err(_) => failed.push(format!("{what}: panicked")),
            Ok(r) if !outcome(&r) => failed.push(format!("{what}: {r:?}")),
            Ok(_) => {}
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}
