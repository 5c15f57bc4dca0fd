//! The HTTP client for the identity provider: rustls with the web PKI
//! roots plus `CRAIK_OIDC_CA_FILE`, no redirects (following them opens the
//! door to SSRF), timeouts.

use std::path::Path;
use std::time::Duration;

use openidconnect::reqwest;

use super::OperatorError;

pub fn client(ca_file: Option<&Path>) -> Result<reqwest::blocking::Client, OperatorError> {
    let mut b = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("craik/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let bad = |why: String| OperatorError::CaFile {
            path: path.to_path_buf(),
            why,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in the file".into()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| OperatorError::Flow(e.to_string()))
}
