//! `craik login`, `craik whoami`, `craik logout`.

use std::io::IsTerminal;

use clap::Args;

use craik::exit;
use craik::operator::session::{self, Session};
use craik::operator::workload::{self, Source, WorkloadConfig, WorkloadSession};
use craik::operator::{self, LoginEvent, OidcConfig, OperatorError};

use super::output::{self, outln};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The OpenID issuer URL (default: CRAIK_OIDC_ISSUER).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// The OAuth client id (default: CRAIK_OIDC_CLIENT_ID).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// A scope to request (repeatable; default: CRAIK_OIDC_SCOPES or
    /// "openid profile email").
    #[arg(long = "scope", value_name = "S")]
    scopes: Vec<String>,
    /// The ID-token claim holding the operator's groups.
    #[arg(long, value_name = "NAME")]
    groups_claim: Option<String>,
    /// Use the browser (authorization code + PKCE on a loopback redirect)
    /// instead of the device code.
    #[arg(long)]
    browser: bool,
    /// Log in as this workload, with no person: github (GitHub Actions'
    /// OIDC token), kubernetes (the projected token at
    /// /var/run/secrets/tokens/craik, or CRAIK_WORKLOAD_TOKEN_FILE) or
    /// file:PATH. --issuer names the issuer to trust (default: GitHub's,
    /// or CRAIK_WORKLOAD_ISSUER).
    #[arg(long, value_name = "SOURCE", conflicts_with_all = ["client_id", "scopes", "groups_claim", "browser"])]
    workload: Option<String>,
    /// The audience the workload's token must carry (and GitHub is asked
    /// for; default: CRAIK_WORKLOAD_AUDIENCE or "craik").
    #[arg(long, value_name = "A", requires = "workload")]
    audience: Option<String>,
    /// One JSON object per line: device_code, then logged_in or error.
    #[arg(long)]
    json: bool,
}

fn workload_json(s: &WorkloadSession) -> serde_json::Value {
    serde_json::json!({
        "subject": s.subject,
        "issuer": s.issuer,
        "workload": s.source,
        "audience": s.audience,
        "claims": s.claims,
        "expires_at": s.expires_at.to_rfc3339(),
    })
}

fn workload_login(args: LoginArgs, source: &str) -> craik::Result<i32> {
    let mut ctx = super::context()?;
    let config = WorkloadConfig::resolve(Source::parse(source)?, args.issuer, args.audience)?;
    let s = workload::login_now(&mut ctx, &config)?;
    if args.json {
        let mut v = workload_json(&s);
        v["event"] = "logged_in".into();
        output::json_line(&v);
    } else {
        outln!(
            "logged in as workload {} ({}) via {}; session ends with the token at {}",
            craik::term::printable(&s.subject),
            s.source,
            s.issuer,
            s.expires_at.to_rfc3339()
        );
    }
    Ok(exit::OK)
}

fn session_json(s: &Session) -> serde_json::Value {
    serde_json::json!({
        "subject": s.subject,
        "email": s.email,
        "name": s.name,
        "groups": s.groups,
        "groups_claim_present": s.groups_claim_present,
        "scopes": s.scopes,
        "issuer": s.issuer,
        "expires_at": s.expires_at.to_rfc3339(),
    })
}

pub fn login(args: LoginArgs) -> craik::Result<i32> {
    let json = args.json;
    let result = login_inner(args);
    if json && let Err(e) = &result {
        let code = match e {
            craik::Error::Operator(o) => o.code(),
            craik::Error::Audit(_) => "audit_unavailable",
            _ => "login_failed",
        };
        output::json_line(
            &serde_json::json!({"event": "error", "error": code, "message": e.to_string()}),
        );
    }
    result
}

fn login_inner(args: LoginArgs) -> craik::Result<i32> {
    if let Some(source) = args.workload.clone() {
        return workload_login(args, &source);
    }
    let mut ctx = super::context()?;
    let config = OidcConfig::resolve(args.issuer, args.client_id, args.scopes, args.groups_claim)?;
    let json = args.json;
    let spinner = (!json && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message("waiting for approval (Ctrl-C to cancel)");
        pb
    });
    let on_event = |e: &LoginEvent| match e {
        LoginEvent::Waiting => {
            if let Some(pb) = &spinner {
                pb.tick();
            }
        }
        other if json => output::json_line(&serde_json::to_value(other).unwrap_or_default()),
        LoginEvent::DeviceCode {
            verification_uri,
            verification_uri_complete,
            user_code,
            expires_in,
        } => {
            outln!("To sign in, open {verification_uri} and enter the code {user_code}");
            if let Some(c) = verification_uri_complete {
                outln!("or open {c}");
            }
            outln!("(the code expires in {} minutes)", expires_in / 60);
        }
        LoginEvent::Browser { url, opened } => {
            if *opened {
                outln!("Opened your browser to sign in. If it did not open, visit:\n{url}");
            } else {
                outln!("Open this URL in a browser to sign in:\n{url}");
            }
        }
    };
    let result = session::login(&mut ctx, &config, args.browser, on_event);
    if let Some(pb) = &spinner {
        pb.finish_and_clear();
    }
    let s = result?;
    if json {
        let mut v = session_json(&s);
        v["event"] = "logged_in".into();
        output::json_line(&v);
    } else {
        outln!(
            "logged in as {} ({}) via {}; session expires {}",
            s.email.as_deref().unwrap_or(&s.subject),
            s.subject,
            s.issuer,
            s.expires_at.to_rfc3339()
        );
    }
    Ok(exit::OK)
}

pub fn whoami(json: bool) -> craik::Result<i32> {
    let result = whoami_inner(json);
    match &result {
        // With --json, an error is JSON too (and still on stderr in words).
        Err(e) if json => {
            let mut v = serde_json::json!({
                "logged_in": false,
                "error": e.to_string(),
                "hint": e.hint(),
                "exit_code": e.exit_code(),
            });
            for (k, x) in e.json_fields() {
                v[k] = x;
            }
            output::json(&v);
            Ok(super::report(e))
        }
        _ => result,
    }
}

fn whoami_inner(json: bool) -> craik::Result<i32> {
    let mut ctx = super::context()?;
    if let Some(w) = workload::current(&mut ctx)? {
        if json {
            output::json(&workload_json(&w));
        } else {
            use craik::term::printable;
            outln!("subject:  {}", printable(&w.subject));
            outln!("workload: {}", printable(&w.source));
            outln!("issuer:   {}", printable(&w.issuer));
            outln!("audience: {}", printable(&w.audience));
            for (k, v) in &w.claims {
                if let Some(v) = v.as_str() {
                    outln!("  {k}: {}", printable(v));
                }
            }
            outln!("expires:  {}", w.expires_at.to_rfc3339());
        }
        return Ok(exit::OK);
    }
    let s = operator::current_session(&mut ctx)?;
    if s.expired() {
        return Err(OperatorError::Expired("the session has expired".into()).into());
    }
    if json {
        output::json(&session_json(&s));
    } else {
        use craik::term::printable;
        outln!("subject: {}", printable(&s.subject));
        outln!("email:   {}", printable(s.email.as_deref().unwrap_or("-")));
        outln!("name:    {}", printable(s.name.as_deref().unwrap_or("-")));
        outln!(
            "groups:  {}",
            if !s.groups_claim_present {
                format!(
                    "- (the ID token had no {:?} claim: log in with the groups scope, craik login --scope openid --scope groups, or name the claim your issuer uses with --groups-claim)",
                    s.groups_claim
                )
            } else if s.groups.is_empty() {
                "-".to_string()
            } else {
                printable(&s.groups.join(", ")).into_owned()
            }
        );
        outln!("issuer:  {}", printable(&s.issuer));
        outln!("expires: {}", s.expires_at.to_rfc3339());
    }
    Ok(exit::OK)
}

pub fn logout(json: bool) -> craik::Result<i32> {
    let mut ctx = super::context()?;
    match workload::logout(&mut ctx)? {
        Some(workload::Logout::Removed(w)) => {
            if json {
                output::json(&serde_json::json!({
                    "logged_out": true, "subject": w.subject, "workload": w.source,
                    "revocation": "none",
                }));
            } else {
                outln!(
                    "logged out workload {}: its session is deleted (the token is the platform's; nothing to revoke)",
                    craik::term::printable(&w.subject)
                );
            }
            return Ok(exit::OK);
        }
        Some(workload::Logout::RemovedRefused) => {
            return Err(OperatorError::SessionRemoved {
                path: ctx.home.path(workload::SESSION_FILE),
                why: "it does not match its seal".into(),
            }
            .into());
        }
        None => {}
    }
    match operator::logout(&mut ctx)? {
        None => {
            if json {
                output::json(&serde_json::json!({"logged_out": false, "revocation": null}));
            } else {
                outln!("not logged in; nothing to do");
            }
        }
        Some((s, outcome)) => {
            if json {
                let why = match &outcome {
                    operator::LogoutOutcome::Failed(w) => Some(w.clone()),
                    _ => None,
                };
                output::json(&serde_json::json!({
                    "logged_out": true, "subject": s.subject,
                    "revocation": outcome.as_str(), "revocation_error": why,
                }));
            } else {
                let detail = match &outcome {
                    operator::LogoutOutcome::Revoked => {
                        "refresh token revoked at the issuer".to_string()
                    }
                    operator::LogoutOutcome::NotSupported => {
                        "the issuer does not support revocation; the refresh token was deleted here"
                            .to_string()
                    }
                    operator::LogoutOutcome::Failed(w) => {
                        format!("revocation failed ({w}); the refresh token was deleted here")
                    }
                    operator::LogoutOutcome::NoToken => "there was no refresh token".to_string(),
                };
                outln!(
                    "logged out {}: {detail}",
                    s.email.as_deref().unwrap_or(&s.subject)
                );
            }
        }
    }
    Ok(exit::OK)
}
