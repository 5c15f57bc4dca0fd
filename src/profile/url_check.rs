//! Base URL checks: a credential must not be sent to a loopback or private
//! address by accident.

use std::net::IpAddr;

/// Why a base URL was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaseUrlError {
    #[error("base URL {url:?} is not a valid URL: {why}")]
    Invalid { url: String, why: String },
    #[error("base URL {url:?} must use https or http")]
    Scheme { url: String },
    #[error("base URL {url:?} points at a loopback or private address")]
    Local { url: String },
    #[error(
        "base URL {url:?} uses plain http to a remote host; the credential would travel unencrypted"
    )]
    Cleartext { url: String },
    #[error("base URL {url:?} must not contain a user name or password")]
    Userinfo { url: String },
}

impl BaseUrlError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            BaseUrlError::Invalid { .. } | BaseUrlError::Scheme { .. } => {
                "give a full URL such as https://api.example.com/v1".into()
            }
            BaseUrlError::Local { .. } => {
                "use the local/chat_completions family, or pass --allow-local-base-url if you mean it".into()
            }
            BaseUrlError::Cleartext { .. } => "use https".into(),
            BaseUrlError::Userinfo { .. } => {
                "put credentials in the profile's secret, never in the URL".into()
            }
        })
    }
}

/// True when `host` is a loopback, private, link-local or unspecified address
/// (or `localhost`). Host names are not resolved.
pub fn is_local_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => is_local_ip(IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) => is_local_ip(IpAddr::V6(*ip)),
    }
}

pub fn is_local_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // CGNAT 100.64/10
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_local_ip(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
        }
    }
}

/// Checks a base URL. `allow_local` permits loopback and private hosts
/// (and plain http to them).
pub fn check_base_url(raw: &str, allow_local: bool) -> Result<url::Url, BaseUrlError> {
    let url = url::Url::parse(raw).map_err(|e| BaseUrlError::Invalid {
        url: raw.to_string(),
        why: e.to_string(),
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(BaseUrlError::Scheme {
            url: raw.to_string(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BaseUrlError::Userinfo {
            url: "<redacted>".to_string(),
        });
    }
    let host = url.host().ok_or_else(|| BaseUrlError::Invalid {
        url: raw.to_string(),
        why: "no host".into(),
    })?;
    let local = is_local_host(&host);
    if local && !allow_local {
        return Err(BaseUrlError::Local {
            url: raw.to_string(),
        });
    }
    if url.scheme() == "http" && !local {
        return Err(BaseUrlError::Cleartext {
            url: raw.to_string(),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert!(check_base_url("https://api.openai.com/v1", false).is_ok());
        for local in [
            "http://127.0.0.1:8080",
            "https://localhost/v1",
            "https://10.1.2.3",
            "https://192.168.0.1",
            "https://172.16.0.1",
            "https://[::1]:9",
            "https://[fd00::1]",
            "https://169.254.169.254",
            "https://0.0.0.0",
            "https://[::ffff:127.0.0.1]",
        ] {
            assert!(
                matches!(
                    check_base_url(local, false),
                    Err(BaseUrlError::Local { .. })
                ),
                "{local}"
            );
            assert!(check_base_url(local, true).is_ok(), "{local}");
        }
        assert!(matches!(
            check_base_url("http://api.example.com", true),
            Err(BaseUrlError::Cleartext { .. })
        ));
        assert!(check_base_url("ftp://x", true).is_err());
        assert!(check_base_url("https://u:p@x.com", true).is_err());
        assert!(check_base_url("not a url", true).is_err());
    }
}
