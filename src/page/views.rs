//! The page's views: the timeline, one receipt, denials by condition,
//! approvals, use over time, the chain's status, and exports.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::Reply;
use super::chart::Daily;
use super::query::Params;
use crate::audit::{AuditLog, Filter, Receipt, ReceiptKind};
use crate::context::Context;

/// At most this many receipts go into one summary (denials, usage): the
/// page says when a filter would need more.
const SUMMARY_CAP: usize = 200_000;

const VIEWS: [(&str, &str); 5] = [
    ("/", "Timeline"),
    ("/denials", "Denials"),
    ("/approvals", "Approvals"),
    ("/usage", "Use"),
    ("/chain", "Chain"),
];

fn layout(active: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · craik audit" }
                link rel="stylesheet" href="/page.css";
                link rel="icon" type="image/svg+xml" href="/favicon.svg";
            }
            body {
                header {
                    strong { "craik audit" }
                    nav {
                        @for (href, name) in VIEWS {
                            @if href == active {
                                a.active href=(href) { (name) } " "
                            } @else {
                                a href=(href) { (name) } " "
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The page for a view that failed.
pub fn failure(why: &str) -> Markup {
    layout("", "Error", html! { div.banner.bad { (why) } })
}

fn page(status: StatusCode, active: &str, title: &str, body: Markup) -> Reply {
    Reply::html(status, layout(active, title, body))
}

fn error_page(active: &str, status: StatusCode, why: String) -> Reply {
    page(status, active, "Error", html! { div.banner.bad { (why) } })
}

/// Answers one request (the path without its query string).
pub fn respond(ctx: &mut Context, path: &str, query: &str) -> Reply {
    let params = Params::parse(query);
    let result = match path {
        "/" => timeline(ctx, &params),
        "/denials" => denials(ctx, &params),
        "/approvals" => approvals(ctx),
        "/usage" => usage(ctx, &params),
        "/chain" => chain(ctx),
        "/export.csv" => export(ctx, &params, false),
        "/export.jsonl" => export(ctx, &params, true),
        p => match p.strip_prefix("/receipt/") {
            Some(id) if !id.is_empty() => receipt(ctx, id),
            _ => Ok(error_page(
                "",
                StatusCode::NOT_FOUND,
                format!("no page {p}"),
            )),
        },
    };
    result.unwrap_or_else(|e| {
        let hint = e.hint().map(|h| format!(" ({h})")).unwrap_or_default();
        error_page("", StatusCode::INTERNAL_SERVER_ERROR, format!("{e}{hint}"))
    })
}

fn status_class(s: &str) -> String {
    format!("status-{s}")
}

fn details(r: &Receipt) -> Value {
    serde_json::from_str(&r.details).unwrap_or(Value::Null)
}

fn operator(r: &Receipt) -> String {
    r.operator_email
        .clone()
        .or_else(|| r.operator_subject.clone())
        .unwrap_or_default()
}

/// Input, output tokens of a call's usage, whatever the provider named them.
fn tokens(d: &Value) -> Option<(i64, i64)> {
    let u = d.get("usage")?;
    let pick = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| u.get(*k).and_then(Value::as_i64))
            .unwrap_or(0)
    };
    Some((
        pick(&["input_tokens", "prompt_tokens", "promptTokenCount"]),
        pick(&["output_tokens", "completion_tokens", "candidatesTokenCount"]),
    ))
}

/// A short account of a receipt's details for the timeline.
fn summary(r: &Receipt) -> Markup {
    let d = details(r);
    let s = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
    html! {
        @if let Some(c) = &r.policy_condition { code { (c) } " " }
        @if let Some(reason) = &r.reason { (reason) " " }
        @if let Some(m) = s("model") { "model " code { (m) } " " }
        @if let Some((i, o)) = tokens(&d) { (i) " in / " (o) " out " }
        @if let Some(st) = d.get("http_status").and_then(Value::as_i64) { "HTTP " (st) " " }
        @if let Some(a) = s("agent") { "agent " (a) " " }
        @if let Some(m) = s("mode") { "mode " (m) }
    }
}

fn filter_form(action: &str, p: &Params) -> Markup {
    let field = |name: &str, label: &str, v: &Option<String>, hint: &str| {
        html! {
            label { (label)
                input type="text" name=(name) value=(v.clone().unwrap_or_default()) placeholder=(hint);
            }
        }
    };
    html! {
        form.filters method="get" action=(action) {
            (field("operator", "operator", &p.operator, "subject or email"))
            (field("profile", "profile", &p.profile, "openai:* or id"))
            (field("pool", "pool", &p.pool, "pool id"))
            label { "kind"
                select name="kind" {
                    option value="" { "any" }
                    @for k in ReceiptKind::ALL {
                        @if p.kind.as_deref() == Some(k.as_str()) {
                            option value=(k.as_str()) selected { (k.as_str()) }
                        } @else {
                            option value=(k.as_str()) { (k.as_str()) }
                        }
                    }
                }
            }
            (field("status", "status", &p.status, "ok, denied, ..."))
            (field("run", "run", &p.run, "run id"))
            (field("since", "since", &p.since, "24h or RFC 3339"))
            (field("until", "until", &p.until, "RFC 3339"))
            button type="submit" { "Filter" }
            @if p.any() { a href=(action) { "clear" } }
        }
    }
}

fn timeline(ctx: &mut Context, p: &Params) -> crate::Result<Reply> {
    let filter = match p.filter() {
        Ok(f) => f,
        Err(why) => {
            return Ok(page(
                StatusCode::BAD_REQUEST,
                "/",
                "Timeline",
                html! { (filter_form("/", p)) div.banner.bad { (why) } },
            ));
        }
    };
    let log = ctx.read_audit_log()?;
    let rows = log.list(&filter)?;
    let limit = filter.limit.unwrap_or(0);
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    let body = html! {
        h1 { "Timeline" }
        p.explain { "Every decision and call, newest first. Profile patterns match as in policies: "
            code { "*" } " within a part, " code { "**" } " across " code { ":" } ", " code { "?" } " one character." }
        (filter_form("/", p))
        p {
            "Export this filter: "
            a id="export-csv" href=(p.href("/export.csv", |q| { q.before = None; q.limit = None; })) { "CSV" } " · "
            a id="export-jsonl" href=(p.href("/export.jsonl", |q| { q.before = None; q.limit = None; })) { "JSONL" }
        }
        @if rows.is_empty() {
            div.banner.note { "No receipt matches." }
        } @else {
            table id="timeline" {
                thead { tr {
                    th.num { "seq" } th { "time" } th { "kind" } th { "status" } th { "operator" }
                    th { "profile" } th { "pool" } th { "run" } th { "via" } th { "what" }
                } }
                tbody {
                    @for r in &rows {
                        tr data-kind=(r.kind) {
                            td.num { a.receipt href=(format!("/receipt/{}", r.seq)) { (r.seq) } }
                            td { (r.created_at) }
                            td { (r.kind) }
                            td class=(status_class(&r.status)) { (r.status) }
                            td { (operator(r)) }
                            td { @if let Some(pr) = &r.auth_profile_id {
                                a href=(p.href("/", |q| { q.profile = Some(pr.clone()); q.before = None; })) { (pr) } } }
                            td { @if let Some(pool) = &r.pool_id {
                                a href=(p.href("/", |q| { q.pool = Some(pool.clone()); q.before = None; })) { (pool) } } }
                            td { @if let Some(run) = &r.run_id {
                                a.run href=(Params::default().href("/", |q| q.run = Some(run.clone()))) { (run) } } }
                            td { (r.capability.clone().unwrap_or_default()) }
                            td { (summary(r)) }
                        }
                    }
                }
            }
        }
        div.pager {
            @if p.before.is_some() { a href=(p.href("/", |q| q.before = None)) { "newest" } }
            @if let Some(n) = next { a id="older" href=(p.href("/", |q| q.before = Some(n))) { "older" } }
        }
    };
    Ok(page(StatusCode::OK, "/", "Timeline", body))
}

/// A receipt's links: the receipts it names and the ones that name it.
fn related(log: &AuditLog, r: &Receipt) -> crate::Result<Vec<(String, Receipt)>> {
    let d = details(r);
    let mut out = Vec::new();
    for (key, label) in [
        ("started", "the call's start"),
        ("approval", "the approval that let it through"),
        ("request", "the request it answers"),
    ] {
        if let Some(id) = d.get(key).and_then(Value::as_str)
            && let Ok(x) = log.get(id)
        {
            out.push((label.to_string(), x));
        }
    }
    let Some(run) = &r.run_id else {
        return Ok(out);
    };
    let in_run = |kind: &str, before: Option<i64>, limit: usize| {
        log.list(&Filter {
            run: Some(run.clone()),
            kind: Some(kind.into()),
            before,
            limit: Some(limit),
            ..Filter::default()
        })
    };
    match r.kind.as_str() {
        "call.started" => {
            if let Some(f) = in_run("call.finished", None, 10_000)?
                .into_iter()
                .find(|f| details(f).get("started").and_then(Value::as_str) == Some(&r.id))
            {
                out.push(("the call's finish".into(), f));
            }
        }
        "approval_requested" => {
            if let Some(a) = in_run("approval", None, 1_000)?
                .into_iter()
                .find(|a| details(a).get("request").and_then(Value::as_str) == Some(&r.id))
            {
                out.push(("the approval given".into(), a));
            }
        }
        _ => {}
    }
    if matches!(r.kind.as_str(), "call.started" | "call.finished") {
        // The authorization the call ran under: the run's latest before it
        // (exec writes it beside call.started; a proxy at its start).
        if let Some(a) = in_run("authorization", Some(r.seq), 1)?.into_iter().next() {
            // A proxied call's approval is named on its session's
            // authorization.
            let approval = details(&a)
                .get("approval")
                .and_then(Value::as_str)
                .map(str::to_string);
            out.push(("the authorization it ran under".into(), a));
            if !out.iter().any(|(l, _)| l.starts_with("the approval"))
                && let Some(x) = approval.and_then(|id| log.get(&id).ok())
            {
                out.push(("the approval that let it through".into(), x));
            }
        }
    }
    Ok(out)
}

fn receipt(ctx: &mut Context, id: &str) -> crate::Result<Reply> {
    let log = ctx.read_audit_log()?;
    let r = match log.get(id) {
        Ok(r) => r,
        Err(crate::audit::AuditError::NotFound(_)) => {
            return Ok(error_page(
                "/",
                StatusCode::NOT_FOUND,
                format!("no receipt {id}"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let links = related(&log, &r)?;
    let d = details(&r);
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let fields: Vec<(&str, String)> = vec![
        ("seq", r.seq.to_string()),
        ("id", r.id.clone()),
        ("time", r.created_at.clone()),
        ("kind", r.kind.clone()),
        ("status", r.status.clone()),
        ("run", o(&r.run_id)),
        ("via", o(&r.capability)),
        ("reason", o(&r.reason)),
        ("policy condition", o(&r.policy_condition)),
        ("profile", o(&r.auth_profile_id)),
        ("profile kind", o(&r.auth_kind)),
        ("provider", o(&r.provider_family)),
        ("pool", o(&r.pool_id)),
        ("operator subject", o(&r.operator_subject)),
        ("operator issuer", o(&r.operator_issuer)),
        ("operator email", o(&r.operator_email)),
        ("operator groups", o(&r.operator_groups)),
    ];
    let body = html! {
        h1 { "Receipt " (r.seq) " · " (r.kind) }
        div.pager {
            @if r.seq > 1 { a id="prev" href=(format!("/receipt/{}", r.seq - 1)) { "previous" } }
            a id="next" href=(format!("/receipt/{}", r.seq + 1)) { "next" }
            @if let Some(run) = &r.run_id {
                a href=(Params::default().href("/", |q| q.run = Some(run.clone()))) { "this run's receipts" }
            }
        }
        dl.fields {
            @for (k, v) in &fields {
                @if !v.is_empty() { dt { (k) } dd { (v) } }
            }
        }
        @if !links.is_empty() {
            h2 { "Linked receipts" }
            ul id="links" {
                @for (label, x) in &links {
                    li { (label) ": " a.link href=(format!("/receipt/{}", x.seq)) { (x.kind) " " (x.seq) } " (" (x.created_at) ")" }
                }
            }
        }
        h2 { "Details" }
        pre { code { (serde_json::to_string_pretty(&d).unwrap_or_default()) } }
        h2 { "Chain" }
        dl.fields {
            dt { "hash" } dd.hash { (r.hash) }
            dt { "previous hash" } dd.hash { (r.prev_hash) }
        }
        p.explain { "The hash covers every field above and the previous receipt's hash, so a receipt changed, removed or inserted breaks the chain from there on (see "
            a href="/chain" { "Chain" } ")." }
        h2 { "Identity hashes" }
        dl.fields {
            dt { "credential" } dd.hash { (o(&r.auth_identity_hash)) }
            dt { "operator" } dd.hash { (o(&r.operator_identity_hash)) }
        }
        p.explain { "Keyed hashes (HMAC-SHA256 with this home's audit key), not the values: the same credential or operator always has the same hash here, and the hash cannot be turned back into the key. "
            code { "craik receipts hash --family F" } " computes a credential's from the key on standard input; "
            code { "craik receipts hash --operator-issuer ISS" } " an operator's from the subject." }
    };
    Ok(page(
        StatusCode::OK,
        "/",
        &format!("Receipt {}", r.seq),
        body,
    ))
}

/// Streams up to [`SUMMARY_CAP`] receipts of `filter` to `f`; whether it
/// stopped at the cap.
fn summarize(
    log: &AuditLog,
    mut filter: Filter,
    mut f: impl FnMut(Receipt),
) -> crate::Result<bool> {
    filter.limit = Some(SUMMARY_CAP);
    filter.before = None;
    let mut n = 0;
    log.for_each(&filter, |r| {
        n += 1;
        f(r);
        Ok(())
    })?;
    Ok(n >= SUMMARY_CAP)
}

fn capped(capped: bool) -> Markup {
    html! {
        @if capped {
            div.banner.note { "Only the newest " (SUMMARY_CAP) " receipts are counted; narrow the filter (since, profile) for the rest." }
        }
    }
}

fn denials(ctx: &mut Context, p: &Params) -> crate::Result<Reply> {
    let filter = match p.filter() {
        Ok(f) => Filter {
            kind: Some("denial".into()),
            ..f
        },
        Err(why) => {
            return Ok(error_page("/denials", StatusCode::BAD_REQUEST, why));
        }
    };
    let log = ctx.read_audit_log()?;
    struct Group {
        count: usize,
        latest: Vec<(i64, String)>,
        profiles: std::collections::BTreeSet<String>,
        reason: Option<String>,
    }
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let cap = summarize(&log, filter, |r| {
        let g = groups
            .entry(
                r.policy_condition
                    .clone()
                    .unwrap_or_else(|| "(none)".into()),
            )
            .or_insert(Group {
                count: 0,
                latest: Vec::new(),
                profiles: Default::default(),
                reason: r.reason.clone(),
            });
        g.count += 1;
        if g.latest.len() < 5 {
            g.latest.push((r.seq, r.created_at.clone()));
        }
        if let Some(pr) = r.auth_profile_id
            && g.profiles.len() < 8
        {
            g.profiles.insert(pr);
        }
    })?;
    let mut sorted: Vec<(String, Group)> = groups.into_iter().collect();
    sorted.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
    let body = html! {
        h1 { "Denials by policy condition" }
        p.explain { "Each denial names the condition of the policy that failed. Filters narrow what is counted." }
        (filter_form("/denials", p))
        (capped(cap))
        @if sorted.is_empty() {
            div.banner.note { "No denial matches." }
        } @else {
            table id="denials" {
                thead { tr { th { "condition" } th.num { "denials" } th { "reason (latest)" } th { "profiles" } th { "latest" } } }
                tbody {
                    @for (cond, g) in &sorted {
                        tr {
                            td { code.condition { (cond) } }
                            td.num { (g.count) }
                            td { (g.reason.clone().unwrap_or_default()) }
                            td { @for pr in &g.profiles { (pr) " " } }
                            td { @for (seq, _) in &g.latest { a.receipt href=(format!("/receipt/{seq}")) { (seq) } " " } }
                        }
                    }
                }
            }
        }
    };
    Ok(page(StatusCode::OK, "/denials", "Denials", body))
}

fn approvals(ctx: &mut Context) -> crate::Result<Reply> {
    let lines = crate::approval::approvals(ctx, false);
    let body = match lines {
        Err(e) => html! {
            h1 { "Approvals" }
            div.banner.bad { "Approvals cannot be checked: " (e.to_string()) }
            p.explain { "Their seals are checked with a key in the secret store: start craik receipts serve where the store opens (its password in CRAIK_KEYRING_PASSWORD, or an unlocked store)." }
        },
        Ok(lines) => {
            let states = ["pending", "approved", "used", "expired", "refused"];
            html! {
                h1 { "Approvals" }
                p.explain { "Requests made at the approval gate and what became of them: pending (no approval yet), approved (not used yet), used (a call or proxy session went through on it), expired, refused (its seal does not verify: not made by craik here)." }
                @for state in states {
                    @let these: Vec<_> = lines.iter().filter(|l| l.state == state).collect();
                    h2 { (state) " (" (these.len()) ")" }
                    @if !these.is_empty() {
                        table.approvals id=(format!("approvals-{state}")) {
                            thead { tr { th { "profile" } th { "run" } th { "requested by" } th { "requested" } th { "approved by" } th { "approved" } th { "expires" } th { "receipts" } } }
                            tbody {
                                @for l in these {
                                    tr {
                                        td { (l.profile) }
                                        td { a.run href=(Params::default().href("/", |q| q.run = Some(l.run.clone()))) { (l.run) } }
                                        td { (l.requested_by.clone().unwrap_or_default()) }
                                        td { (l.requested_at) }
                                        td { (l.approved_by.clone().unwrap_or_default()) }
                                        td { (l.approved_at.clone().unwrap_or_default()) }
                                        td { (l.expires_at.clone().unwrap_or_default()) }
                                        td {
                                            a.receipt href=(format!("/receipt/{}", l.request)) { "request" }
                                            @if let Some(a) = &l.approval { " " a.receipt href=(format!("/receipt/{a}")) { "approval" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(StatusCode::OK, "/approvals", "Approvals", body))
}

fn usage(ctx: &mut Context, p: &Params) -> crate::Result<Reply> {
    let mut p = p.clone();
    if p.since.is_none() && p.until.is_none() {
        p.since = Some("30d".into());
    }
    let filter = match p.filter() {
        Ok(f) => Filter {
            kind: Some("call.finished".into()),
            ..f
        },
        Err(why) => return Ok(error_page("/usage", StatusCode::BAD_REQUEST, why)),
    };
    let log = ctx.read_audit_log()?;
    type PerDay = BTreeMap<String, BTreeMap<String, i64>>;
    let (mut by_op, mut by_cred): (PerDay, PerDay) = Default::default();
    // model -> (calls, input, output)
    let mut models: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    let cap = summarize(&log, filter, |r| {
        let day = r.created_at.get(..10).unwrap_or_default().to_string();
        *by_op
            .entry(day.clone())
            .or_default()
            .entry(operator(&r))
            .or_default() += 1;
        let cred = r.auth_profile_id.clone().unwrap_or_else(|| "(none)".into());
        *by_cred.entry(day).or_default().entry(cred).or_default() += 1;
        let d = details(&r);
        let model = d
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("(not named)")
            .to_string();
        let m = models.entry(model).or_default();
        m.0 += 1;
        if let Some((i, o)) = tokens(&d) {
            m.1 += i;
            m.2 += o;
        }
    })?;
    let daily = |m: PerDay| Daily {
        days: m
            .into_iter()
            .map(|(d, c)| (d, c.into_iter().collect()))
            .collect(),
    };
    let body = html! {
        h1 { "Use over time" }
        p.explain { "Finished calls per day (default: the last 30 days), by operator and by credential, and tokens by model as the proxy read them from the provider's answers." }
        (filter_form("/usage", &p))
        (capped(cap))
        @if models.is_empty() {
            div.banner.note { "No finished call matches." }
        } @else {
            (daily(by_op).svg("Calls per day, by operator"))
            (daily(by_cred).svg("Calls per day, by credential"))
            h2 { "Models and tokens" }
            table id="models" {
                thead { tr { th { "model" } th.num { "calls" } th.num { "input tokens" } th.num { "output tokens" } } }
                tbody {
                    @for (m, (n, i, o)) in &models {
                        tr { td { code { (m) } } td.num { (n) } td.num { (i) } td.num { (o) } }
                    }
                }
            }
        }
    };
    Ok(page(StatusCode::OK, "/usage", "Use", body))
}

fn chain(ctx: &mut Context) -> crate::Result<Reply> {
    use crate::audit::checkpoint;
    let log = ctx.read_audit_log()?;
    let trusted = ctx
        .home
        .read(checkpoint::PUBLIC_KEY_FILE)?
        .map(|b| String::from_utf8_lossy(&b).trim().to_string());
    let auto = checkpoint::load_auto(&ctx.home, trusted.as_deref(), false, false);
    let (cps, missing, auto_err, warnings) = match auto {
        Ok(a) => (
            a.checkpoint.into_iter().collect::<Vec<_>>(),
            a.missing,
            None,
            a.warnings,
        ),
        Err(e) => (Vec::new(), None, Some(e), Vec::new()),
    };
    let report = log.verify_signed(&cps, trusted.as_deref())?;
    let ok = report.ok && missing.is_none() && auto_err.is_none();
    let body = html! {
        h1 { "Chain" }
        @if ok {
            div.banner.good id="verify" { "Verified " (report.verified) " receipts: every hash and link checks out, and the log still holds the checkpoint." }
        } @else {
            div.banner.bad id="verify" {
                @if let Some(d) = &report.damage {
                    "DAMAGED at seq " a href=(format!("/receipt/{}", d.seq)) { (d.seq) } ": " (d.what) ": " (d.detail)
                } @else if let Some(m) = &missing {
                    (m.to_string())
                } @else if let Some(e) = &auto_err {
                    "The automatic checkpoint is refused: " (e.to_string())
                }
            }
        }
        dl.fields {
            dt { "receipts verified" } dd { (report.verified) }
            dt { "tail seq" } dd { a href=(format!("/receipt/{}", report.tail_seq)) { (report.tail_seq) } }
            dt { "tail hash" } dd.hash { (report.tail_hash) }
        }
        h2 { "Last checkpoint" }
        @if cps.is_empty() {
            p { "None held." }
        }
        @for cp in &cps {
            dl.fields id="checkpoint" {
                dt { "file" } dd { (cp.source) }
                dt { "seq" } dd { a href=(format!("/receipt/{}", cp.seq)) { (cp.seq) } }
                dt { "hash" } dd.hash { (cp.hash) }
                dt { "signing key" } dd.hash { (cp.public_key) }
                dt { "key trusted" } dd {
                    @if trusted.is_some() { "yes: it is this home's audit-signing.pub" }
                    @else { "no: this home has no audit-signing.pub, so nothing shows the key is yours" }
                }
            }
        }
        @for w in warnings.iter().chain(report.warnings.iter()) {
            div.banner.note { (w) }
        }
        p.explain { "craik signs a checkpoint of the log's tail after the first receipt and then every 1,000 receipts or hourly. A log rewritten before the checkpoint, or cut, fails here; export checkpoints with "
            code { "craik receipts checkpoint --out" } " to a place agents cannot write, and verify against them with " code { "craik receipts verify --checkpoint" } "." }
    };
    Ok(page(StatusCode::OK, "/chain", "Chain", body))
}

fn export(ctx: &mut Context, p: &Params, jsonl: bool) -> crate::Result<Reply> {
    let mut filter = match p.filter() {
        Ok(f) => f,
        Err(why) => return Ok(error_page("/", StatusCode::BAD_REQUEST, why)),
    };
    filter.limit = p.limit;
    filter.before = None;
    filter.ascending = true;
    // Streamed from a log of its own on a thread of its own: an export of
    // the whole log neither waits in memory nor holds up the other views.
    let log = ctx.read_audit_log()?;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    std::thread::spawn(move || {
        let mut buf = Vec::with_capacity(1 << 16);
        let flush = |buf: &mut Vec<u8>| {
            tx.blocking_send(Ok(bytes::Bytes::from(std::mem::take(buf))))
                // The reader went away: stop (for_each ends quietly).
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        };
        if !jsonl {
            let mut w = csv::Writer::from_writer(&mut buf);
            let _ = w.write_record(crate::audit::CSV_HEADER);
            drop(w);
        }
        let done = log.for_each(&filter, |r| {
            if jsonl {
                serde_json::to_writer(&mut buf, &r.to_json())?;
                buf.push(b'\n');
            } else {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(&mut buf);
                w.write_record(crate::audit::csv_row(&r))
                    .map_err(std::io::Error::other)?;
                w.flush()?;
            }
            if buf.len() >= 1 << 16 {
                flush(&mut buf)?;
            }
            Ok(())
        });
        match done {
            Ok(()) if !buf.is_empty() => {
                let _ = flush(&mut buf);
            }
            Ok(()) => {}
            // The response is under way: cut it short, so the download
            // fails rather than look complete.
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let (ct, ext) = if jsonl {
        ("application/x-ndjson", "jsonl")
    } else {
        ("text/csv; charset=utf-8", "csv")
    };
    Ok(Reply {
        status: StatusCode::OK,
        content_type: ct,
        body: Vec::new(),
        disposition: Some(format!("attachment; filename=\"receipts.{ext}\"")),
        stream: Some(rx),
    })
}
