//! `report.html`: one self-contained page for people, from the same [`Report`].
//!
//! Contract:
//! - No network at all: the CSS and the script are inline, nothing names another
//!   resource (no `src`, no external `href`, no font, no CDN), and a
//!   Content-Security-Policy of `default-src 'none'` with the hashes of exactly
//!   our own `<style>` and `<script>` makes the browser refuse anything else —
//!   also any markup that escaping should ever miss.
//! - Rendered on the server: every row is HTML, so the page reads in full with
//!   the script off and when printed. No JSON is embedded; the script only sorts,
//!   filters and pages rows and builds one chart from digits in `data-h`.
//! - Every piece of report text goes through [`push_text`]: control and invisible
//!   format characters become visible escapes (`\x1b`, `\u{202e}`), then
//!   `& < > " '` become entities. User agents, session ids, principals, names and
//!   reasons are attacker- or caller-chosen, so none of them can become markup.
//! - At 10,000 accounts the big tables are paged (100 rows on screen, all rows
//!   in print and without the script), and long lists fold into `<details>`.
//! - Same report, same bytes (rows in the report's order or by stable keys).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use sha2::{Digest, Sha256};

use super::{escape_terminal, ReportWriter};
use crate::model::{
    AccountReport, AccountStatus, Finding, Flag, RegionStatus, Report, Session, SessionEvent,
    Severity,
};

const STYLE: &str = include_str!("html.css");
const SCRIPT: &str = include_str!("html.js");
/// Runs first, so rows past the first page are hidden from the first paint.
const EARLY_SCRIPT: &str = "document.documentElement.classList.add('js');";

/// Rows of a paged table shown at once on screen.
pub const PAGE_ROWS: usize = 100;
/// Reasons listed before the rest fold into a `<details>`.
const REASONS_SHOWN: usize = 20;
/// How many actors "Busiest actors" lists.
const TOP_ACTORS: usize = 20;
/// The longest user agent or error message shown (in characters); report.json has it whole.
const MAX_FIELD: usize = 2000;
/// Windows longer than this many days get week columns in the per-account timeline.
const MAX_DAY_COLUMNS: usize = 31;

pub struct HtmlReport;

impl ReportWriter for HtmlReport {
    fn file_name(&self) -> &'static str {
        "report.html"
    }

    fn write(&self, report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
        out.write_all(render(report).as_bytes())?;
        out.flush()
    }
}

/// The whole page.
pub fn render(report: &Report) -> String {
    let ix = Index::new(report);
    let mut h = String::with_capacity(64 * 1024 + report.accounts.len() * 400);
    head(&mut h, report);
    h.push_str("<body>\n<header>\n<h1>Session Manager audit</h1>\n");
    run_meta(&mut h, report);
    h.push_str(
        "<nav class=\"noprint\"><a href=\"#verdict\">Verdict</a><a href=\"#coverage\">Coverage</a>\
         <a href=\"#findings\">Findings</a><a href=\"#evidence\">Evidence</a>\
         <a href=\"#timeline\">Timeline</a><a href=\"#actors\">Busiest actors</a>\
         <label title=\"Off: print only the rows on screen (each table's current page and filters)\">\
         <input type=\"checkbox\" id=\"print-all\" checked> print every row</label></nav>\n</header>\n<main>\n",
    );
    verdict(&mut h, report, &ix);
    coverage(&mut h, report, &ix);
    findings(&mut h, report, &ix);
    evidence(&mut h, report, &ix);
    timeline(&mut h, report);
    actors(&mut h, report);
    h.push_str("</main>\n<footer>\n<p>Written by ssm-session-audit ");
    push_text(&mut h, &report.run.tool_version);
    h.push_str(" from the same run as <code>report.json</code> (schema ");
    push_text(&mut h, &report.schema);
    h.push_str(
        "), which holds every event and session in full; <code>SHA256SUMS</code> in the same \
         folder lets anyone check that neither was altered. Times are UTC.</p>\n</footer>\n<script>",
    );
    h.push_str(SCRIPT);
    h.push_str("</script>\n</body>\n</html>\n");
    h
}

// ---------------------------------------------------------------------------
// Escaping.
// ---------------------------------------------------------------------------

/// Report text as HTML text or attribute value: controls and invisible format
/// characters made visible, then the five HTML metacharacters as entities.
pub fn push_text(h: &mut String, s: &str) {
    push_capped(h, s, usize::MAX);
}

/// [`push_text`], cut to `max` characters (after making escapes visible) with
/// a note of how much is left out.
fn push_capped(h: &mut String, s: &str, max: usize) {
    let visible = escape_terminal(s);
    let total = visible.chars().count();
    for c in visible.chars().take(max) {
        match c {
            '&' => h.push_str("&amp;"),
            '<' => h.push_str("&lt;"),
            '>' => h.push_str("&gt;"),
            '"' => h.push_str("&quot;"),
            '\'' => h.push_str("&#39;"),
            c => h.push(c),
        }
    }
    if total > max {
        let _ = write!(h, "… ({} more characters in report.json)", total - max);
    }
}

fn text(s: &str) -> String {
    let mut h = String::with_capacity(s.len() + 8);
    push_text(&mut h, s);
    h
}

// ---------------------------------------------------------------------------
// Lookups shared by the sections.
// ---------------------------------------------------------------------------

struct Index<'a> {
    events: HashMap<&'a str, &'a SessionEvent>,
    /// Event id → its row in the evidence table (`e<n>`), in evidence order.
    evidence: BTreeMap<&'a str, usize>,
    /// Account id → its row in the coverage matrix (`a<n>`).
    account_row: HashMap<&'a str, usize>,
    /// Event id → the findings (indexes) that cite it.
    cited_by: HashMap<&'a str, Vec<usize>>,
    /// Coverage rows in display order (indexes into `report.accounts`).
    account_order: Vec<usize>,
}

impl<'a> Index<'a> {
    fn new(r: &'a Report) -> Self {
        let events: HashMap<&str, &SessionEvent> =
            r.events.iter().map(|e| (e.event_id.as_str(), e)).collect();
        let mut cited_by: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, f) in r.findings.iter().enumerate() {
            for id in &f.event_ids {
                cited_by.entry(id.as_str()).or_default().push(i);
            }
        }
        // Evidence rows in time order (then id), so the table reads as a log.
        let mut cited: Vec<&str> = cited_by.keys().copied().collect();
        cited.sort_by(|a, b| {
            let ta = events.get(a).map(|e| e.event_time);
            let tb = events.get(b).map(|e| e.event_time);
            ta.cmp(&tb).then_with(|| a.cmp(b))
        });
        let evidence = cited
            .into_iter()
            .enumerate()
            .map(|(i, id)| (id, i))
            .collect();
        let mut account_order: Vec<usize> = (0..r.accounts.len()).collect();
        account_order.sort_by_key(|&i| {
            let a = &r.accounts[i];
            (concern_rank(a), a.account_id.as_str())
        });
        let account_row = account_order
            .iter()
            .enumerate()
            .map(|(row, &i)| (r.accounts[i].account_id.as_str(), row))
            .collect();
        Index {
            events,
            evidence,
            account_row,
            cited_by,
            account_order,
        }
    }

    fn first_time(&self, f: &Finding) -> Option<DateTime<Utc>> {
        f.event_ids
            .iter()
            .filter_map(|id| self.events.get(id.as_str()).map(|e| e.event_time))
            .min()
    }
}

/// Problems first: failed, partial, then by worst finding, then clean, then skipped.
fn concern_rank(a: &AccountReport) -> (u8, u8) {
    let cov = match a.coverage.status {
        AccountStatus::Failed => 0,
        AccountStatus::Partial => 1,
        AccountStatus::Complete => 2,
        AccountStatus::Skipped => 3,
    };
    let sev = a.max_severity.map_or(9, |s| 4 - s as u8);
    (cov, sev)
}

fn sev_rank(s: Severity) -> u8 {
    s as u8
}

/// Who really acted (PRODUCT.md "actor"): an IAM Identity Center user by the
/// session name of its `AWSReservedSSO_` role, the role itself for any other
/// assumed role (its session names are the caller's choice), else the principal.
pub fn actor(e: &SessionEvent) -> String {
    if e.principal_type == "AssumedRole" {
        let role = e.session_issuer_arn.as_deref().unwrap_or("");
        let role_name = role.rsplit('/').next().unwrap_or("");
        if role_name.starts_with("AWSReservedSSO_") {
            if let Some(user) = e.user_name.as_deref().filter(|u| !u.is_empty()) {
                return format!("{user} (Identity Center)");
            }
        }
        if !role.is_empty() {
            return role.to_string();
        }
    }
    e.principal().to_string()
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

// ---------------------------------------------------------------------------
// Head, header.
// ---------------------------------------------------------------------------

/// `'sha256-…'` of an inline block, for the Content-Security-Policy.
fn csp_hash(block: &str) -> String {
    format!("'sha256-{}'", base64(&Sha256::digest(block.as_bytes())))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The policy the page carries: nothing but our own style and scripts, and
/// the empty data: icon (so the browser asks no server for a favicon).
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; style-src {}; script-src {} {}; img-src data:; \
         base-uri 'none'; form-action 'none'",
        csp_hash(STYLE),
        csp_hash(EARLY_SCRIPT),
        csp_hash(SCRIPT)
    )
}

fn head(h: &mut String, r: &Report) {
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        h,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        content_security_policy()
    );
    h.push_str(
        "<meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>Session Manager audit",
    );
    if let Some(org) = &r.run.organization_id {
        h.push_str(" — ");
        push_text(h, org);
    }
    let _ = write!(
        h,
        " — {} to {} UTC</title>\n<script>{EARLY_SCRIPT}</script>\n<style>{STYLE}</style>\n</head>\n",
        r.run.window.start.format("%Y-%m-%d %H:%M"),
        r.run.window.end.format("%Y-%m-%d %H:%M")
    );
}

fn run_meta(h: &mut String, r: &Report) {
    let run = &r.run;
    h.push_str("<dl class=\"meta\">\n");
    let row = |h: &mut String, k: &str, v: &str| {
        let _ = write!(h, "<dt>{k}</dt><dd>");
        push_text(h, v);
        h.push_str("</dd>\n");
    };
    row(
        h,
        "Window",
        &format!(
            "{} to {} UTC (start included, end excluded)",
            fmt_time(run.window.start),
            fmt_time(run.window.end)
        ),
    );
    row(
        h,
        "Organization",
        run.organization_id.as_deref().unwrap_or("(not known)"),
    );
    row(
        h,
        "Caller",
        run.caller_arn.as_deref().unwrap_or("(not known)"),
    );
    row(h, "Regions", &run.regions.join(", "));
    row(h, "Calls read", &run.event_names.join(", "));
    row(h, "Source", &run.source);
    row(
        h,
        "Run",
        &format!(
            "{} to {} UTC, ssm-session-audit {}",
            fmt_time(run.started_at),
            fmt_time(run.finished_at),
            run.tool_version
        ),
    );
    row(h, "Config digest", &run.config_digest);
    h.push_str("</dl>\n");
}

// ---------------------------------------------------------------------------
// Verdict.
// ---------------------------------------------------------------------------

/// Why the run is not complete, one line each, from what the report holds.
/// Never empty when `run.complete` is false.
pub fn incompleteness_reasons(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    if r.run.interrupted {
        out.push(
            "the run was interrupted (SIGINT or SIGTERM) before every partition was read".into(),
        );
    }
    for a in &r.accounts {
        if !matches!(
            a.coverage.status,
            AccountStatus::Failed | AccountStatus::Partial
        ) {
            continue;
        }
        let mut line = format!("account {}", a.account_id);
        if !a.account_name.is_empty() {
            line.push_str(&format!(" ({})", a.account_name));
        }
        line.push_str(&format!(" {}", a.coverage.status.as_str()));
        if let Some(reason) = &a.coverage.reason {
            line.push_str(&format!(": {reason}"));
        }
        // Regions failing for the same reason are named together.
        let mut by_error: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (region, c) in &a.coverage.regions {
            if c.status == RegionStatus::Failed {
                by_error
                    .entry(c.error.as_deref().unwrap_or("no reason recorded"))
                    .or_default()
                    .push(region);
            }
        }
        for (error, regions) in by_error {
            if a.coverage.reason.as_deref() == Some(error) {
                line.push_str(&format!("; regions not read: {}", regions.join(", ")));
            } else {
                line.push_str(&format!("; {}: {error}", regions.join(", ")));
            }
        }
        out.push(line);
    }
    if let Some(sh) = &r.run.security_hub {
        if !sh.succeeded() {
            let mut line = format!(
                "Security Hub import into {}: {} of {} findings accepted",
                sh.region, sh.imported, sh.findings
            );
            if let Some(e) = &sh.error {
                line.push_str(&format!("; stopped: {e}"));
            }
            for f in &sh.failed {
                line.push_str(&format!(
                    "; {} refused ({}: {})",
                    f.id, f.error_code, f.error_message
                ));
            }
            out.push(line);
        }
    }
    if !r.run.complete && out.is_empty() {
        out.push("report.json marks the run incomplete (run.complete is false)".into());
    }
    out
}

/// What does not make the run incomplete but an auditor should know.
fn notes(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    if r.run.stats.malformed > 0 {
        out.push(format!(
            "{} could not be parsed; they are counted per region and their event ids are in report.json",
            plural(r.run.stats.malformed as usize, "record", "records")
        ));
    }
    if let Some(trail) = &r.run.trail {
        for (key, what) in [
            ("bad_files", "trail files could not be read"),
            (
                "missing_days",
                "account, region and day ranges had no trail file",
            ),
            (
                "accounts_without_files",
                "requested accounts had no trail file",
            ),
        ] {
            if let Some(n) = trail.get(key).and_then(|v| v.as_array()).map(Vec::len) {
                if n > 0 {
                    out.push(format!("{n} {what} (run.trail.{key} in report.json)"));
                }
            }
        }
    }
    if let Some(sh) = &r.run.security_hub {
        if sh.succeeded() {
            out.push(format!(
                "all {} imported into Security Hub in {} ({})",
                plural(sh.findings as usize, "finding", "findings"),
                sh.region,
                sh.product_arn
            ));
        }
    }
    out
}

fn push_list(h: &mut String, items: &[String], class: &str) {
    let _ = writeln!(h, "<ol class=\"{class}\">");
    for (i, item) in items.iter().enumerate() {
        if i == REASONS_SHOWN {
            let _ = write!(
                h,
                "</ol>\n<details class=\"more\"><summary>{} more</summary>\n<ol class=\"{class}\" start=\"{}\">\n",
                items.len() - REASONS_SHOWN,
                REASONS_SHOWN + 1
            );
        }
        h.push_str("<li>");
        push_text(h, item);
        h.push_str("</li>\n");
    }
    h.push_str("</ol>\n");
    if items.len() > REASONS_SHOWN {
        h.push_str("</details>\n");
    }
}

fn verdict(h: &mut String, r: &Report, ix: &Index<'_>) {
    let reasons = incompleteness_reasons(r);
    let complete = r.run.complete && reasons.is_empty();
    let _ = writeln!(
        h,
        "<section id=\"verdict\" class=\"verdict {}\">",
        if complete { "good" } else { "bad" }
    );
    if complete {
        h.push_str(
            "<h2>Coverage complete</h2>\n<p>Every session call in scope was read: every account \
             scanned is complete and every region is read to its last page or not enabled.</p>\n",
        );
    } else {
        let _ = writeln!(
            h,
            "<h2>Coverage INCOMPLETE: {}</h2>\n<p>What was not read can hold any activity: an \
             empty result there proves nothing.</p>",
            plural(reasons.len(), "reason", "reasons")
        );
        push_list(h, &reasons, "reasons");
    }

    let mut by_status: BTreeMap<AccountStatus, usize> = BTreeMap::new();
    for a in &r.accounts {
        *by_status.entry(a.coverage.status).or_default() += 1;
    }
    let count = |s| by_status.get(&s).copied().unwrap_or(0);
    h.push_str("<div class=\"tiles\">\n");
    let _ = writeln!(
        h,
        "<div class=\"tile\"><b>{}</b>accounts: {} complete, {} partial, {} failed, {} skipped</div>",
        r.accounts.len(),
        count(AccountStatus::Complete),
        count(AccountStatus::Partial),
        count(AccountStatus::Failed),
        count(AccountStatus::Skipped)
    );
    let _ = writeln!(
        h,
        "<div class=\"tile\"><b>{}</b>partitions (account × region) read, {} calls, {} retried</div>",
        r.run.stats.partitions, r.run.stats.calls, r.run.stats.retries
    );
    let _ = writeln!(
        h,
        "<div class=\"tile\"><b>{}</b>session calls, in {} sessions</div>",
        r.events.len(),
        r.sessions.len()
    );
    let mut sev: BTreeMap<Severity, usize> = BTreeMap::new();
    for f in &r.findings {
        *sev.entry(f.severity).or_default() += 1;
    }
    let _ = write!(
        h,
        "<div class=\"tile\"><b>{}</b>findings:",
        r.findings.len()
    );
    for s in Severity::ALL.iter().rev() {
        if let Some(n) = sev.get(s) {
            let _ = write!(h, " <span class=\"sev sev-{s}\">{n} {s}</span>");
        }
    }
    if r.findings.is_empty() {
        h.push_str(" none");
    }
    let _ = writeln!(
        h,
        "</div>\n<div class=\"tile\"><b>{}</b>events cited as evidence</div>\n</div>",
        ix.evidence.len()
    );
    let notes = notes(r);
    if !notes.is_empty() {
        h.push_str("<div class=\"notes\"><h3>Notes</h3>\n");
        push_list(h, &notes, "reasons");
        h.push_str("</div>\n");
    }
    h.push_str("</section>\n");
}

// ---------------------------------------------------------------------------
// Coverage matrix.
// ---------------------------------------------------------------------------

/// The run's regions first (as asked), then any other region an account reports.
fn region_columns(r: &Report) -> Vec<String> {
    let mut cols = r.run.regions.clone();
    let extra: BTreeSet<&String> = r
        .accounts
        .iter()
        .flat_map(|a| a.coverage.regions.keys())
        .filter(|k| !r.run.regions.contains(k))
        .collect();
    cols.extend(extra.into_iter().cloned());
    cols
}

fn paged_class(i: usize) -> &'static str {
    if i >= PAGE_ROWS {
        " class=\"pg-off\""
    } else {
        ""
    }
}

fn coverage(h: &mut String, r: &Report, ix: &Index<'_>) {
    let cols = region_columns(r);
    h.push_str(
        "<section id=\"coverage\">\n<h2>Coverage: accounts × regions</h2>\n\
         <p>Each cell is one partition: the number of session calls read (green), \
         <b>failed</b> (red: not read, with the reason on hover and in the account's status), \
         or – (the account has not enabled the region: it can hold no activity). \
         Problems first.</p>\n<div class=\"controls noprint\">\
         <label>Status <select data-filter-for=\"coverage-t\" data-key=\"status\">\
         <option value=\"\">any</option><option value=\"failed\">failed</option>\
         <option value=\"partial\">partial</option><option value=\"complete\">complete</option>\
         <option value=\"skipped\">skipped</option><option value=\"flagged\">with findings</option>\
         </select></label>\
         <label>Search <input type=\"search\" data-filter-for=\"coverage-t\" data-key=\"text\" \
         placeholder=\"account id, name, reason\"></label>\
         <span class=\"count\" id=\"coverage-count\"></span></div>\n\
         <div class=\"scroll\"><table id=\"coverage-t\" data-page=\"100\">\n<thead><tr>\
         <th data-sort=\"text\">Account</th><th data-sort=\"text\">Name</th>\
         <th data-sort=\"num\">Status</th><th data-sort=\"num\" class=\"num\">Events</th>\
         <th data-sort=\"num\" class=\"num\">Sessions</th><th data-sort=\"num\">Worst finding</th>",
    );
    for c in &cols {
        h.push_str("<th data-sort=\"num\">");
        push_text(h, c);
        h.push_str("</th>");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (row, &i) in ix.account_order.iter().enumerate() {
        let a = &r.accounts[i];
        let status = a.coverage.status.as_str();
        let _ = write!(
            h,
            "<tr id=\"a{row}\" data-status=\"{status}\" data-flagged=\"{}\"{}>",
            u8::from(!a.flags.is_empty()),
            paged_class(row)
        );
        h.push_str("<td class=\"mono\">");
        push_text(h, &a.account_id);
        h.push_str("</td><td>");
        push_text(h, &a.account_name);
        let (rank, _) = concern_rank(a);
        let _ = write!(
            h,
            "</td><td data-v=\"{rank}\"><span class=\"st st-{status}\">{status}</span>"
        );
        if let Some(reason) = &a.coverage.reason {
            h.push_str("<span class=\"why\">");
            push_text(h, reason);
            h.push_str("</span>");
        }
        let _ = write!(
            h,
            "</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            a.events, a.sessions
        );
        match a.max_severity {
            Some(s) => {
                let _ = write!(
                    h,
                    "<td data-v=\"{}\"><span class=\"sev sev-{s}\">{s}</span> {}</td>",
                    sev_rank(s) + 1,
                    a.flags.iter().map(|f| f.count).sum::<u64>()
                );
            }
            None => h.push_str("<td data-v=\"0\"></td>"),
        }
        if a.coverage.regions.is_empty() {
            // Skipped, or failed before any region (no credentials): one cell says so.
            let class = if a.coverage.status == AccountStatus::Skipped {
                "c-skip"
            } else {
                "c-bad"
            };
            let _ = write!(
                h,
                "<td class=\"{class}\" colspan=\"{}\" data-v=\"-2\"",
                cols.len().max(1)
            );
            h.push_str(" title=\"");
            push_text(h, a.coverage.reason.as_deref().unwrap_or(status));
            let _ = write!(
                h,
                "\">{}</td>",
                if a.coverage.status == AccountStatus::Skipped {
                    "not scanned"
                } else {
                    "not read"
                }
            );
        } else {
            for c in &cols {
                match a.coverage.regions.get(c) {
                    None => h.push_str("<td data-v=\"-3\"></td>"),
                    Some(rc) => match rc.status {
                        RegionStatus::Ok => {
                            // A title only where there is more to say (it costs bytes at scale).
                            let _ = write!(h, "<td class=\"c-ok\" data-v=\"{}\"", rc.events);
                            if rc.retries > 0 || rc.malformed > 0 {
                                let _ = write!(
                                    h,
                                    " title=\"ok: {} pages, {} retries, {} malformed records\"",
                                    rc.pages, rc.retries, rc.malformed
                                );
                            }
                            let _ = write!(
                                h,
                                ">{}{}</td>",
                                rc.events,
                                if rc.malformed > 0 { " ⚠" } else { "" }
                            );
                        }
                        RegionStatus::NotEnabled => {
                            h.push_str("<td class=\"c-ne\" data-v=\"-1\" title=\"not enabled");
                            if let Some(e) = &rc.error {
                                h.push_str(": ");
                                push_capped(h, e, MAX_FIELD);
                            }
                            h.push_str("\">–</td>");
                        }
                        RegionStatus::Failed => {
                            h.push_str("<td class=\"c-bad\" data-v=\"-2\" title=\"failed: ");
                            push_capped(
                                h,
                                rc.error.as_deref().unwrap_or("no reason recorded"),
                                MAX_FIELD,
                            );
                            h.push_str("\">failed</td>");
                        }
                    },
                }
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str(
        "</tbody></table></div>\n<div class=\"pager noprint\" data-for=\"coverage-t\"></div>\n</section>\n",
    );
}

// ---------------------------------------------------------------------------
// Findings and their evidence.
// ---------------------------------------------------------------------------

fn findings(h: &mut String, r: &Report, ix: &Index<'_>) {
    h.push_str("<section id=\"findings\">\n<h2>Findings</h2>\n");
    if r.findings.is_empty() {
        h.push_str("<p>No finding: no rule fired on the calls that were read.</p>\n</section>\n");
        return;
    }
    h.push_str(
        "<div class=\"controls noprint\"><label>Severity <select data-filter-for=\"findings-t\" \
         data-key=\"sev\"><option value=\"\">any</option>",
    );
    for s in Severity::ALL.iter().rev() {
        let _ = write!(
            h,
            "<option value=\"{}\">{s}{}</option>",
            sev_rank(*s),
            if *s == Severity::Critical {
                ""
            } else {
                " and above"
            }
        );
    }
    h.push_str(
        "</select></label><label>Flag <select data-filter-for=\"findings-t\" data-key=\"flag\">\
         <option value=\"\">any</option>",
    );
    let flags: BTreeSet<Flag> = r.findings.iter().map(|f| f.flag).collect();
    for f in flags {
        let _ = write!(h, "<option value=\"{f}\">{f}</option>");
    }
    h.push_str(
        "</select></label><label>Account <select data-filter-for=\"findings-t\" data-key=\"acct\">\
         <option value=\"\">any</option>",
    );
    let accounts: BTreeSet<&str> = r.findings.iter().map(|f| f.account_id.as_str()).collect();
    for a in accounts {
        let a = text(a);
        let _ = write!(h, "<option value=\"{a}\">{a}</option>");
    }
    h.push_str(
        "</select></label><label>Search <input type=\"search\" data-filter-for=\"findings-t\" \
         data-key=\"text\" placeholder=\"principal, detail, session\"></label>\
         <span class=\"count\" id=\"findings-count\"></span></div>\n\
         <div class=\"scroll\"><table id=\"findings-t\" class=\"t-wide\" data-page=\"100\">\n<thead><tr>\
         <th data-sort=\"num\" aria-sort=\"descending\">Severity</th><th data-sort=\"text\">Flag</th>\
         <th data-sort=\"text\">Account</th><th data-sort=\"text\">Region</th>\
         <th data-sort=\"num\">First call (UTC)</th><th data-sort=\"text\">Principal</th>\
         <th data-sort=\"text\">Session</th><th>Detail</th><th>Proving events</th></tr></thead>\n<tbody>\n",
    );
    // Worst first, then by time; row ids keep the report's order (`f<index>`).
    let mut order: Vec<usize> = (0..r.findings.len()).collect();
    order.sort_by_key(|&i| {
        let f = &r.findings[i];
        (std::cmp::Reverse(f.severity), ix.first_time(f), i)
    });
    for (row, &i) in order.iter().enumerate() {
        let f = &r.findings[i];
        let sev = f.severity;
        let acct = text(&f.account_id);
        let _ = write!(
            h,
            "<tr id=\"f{i}\" data-sev=\"{}\" data-flag=\"{}\" data-acct=\"{acct}\"{}>\
             <td data-v=\"{}\"><span class=\"sev sev-{sev}\">{sev}</span></td><td class=\"mono nw\">{}</td><td class=\"mono nw\">",
            sev_rank(sev),
            f.flag,
            paged_class(row),
            sev_rank(sev),
            f.flag
        );
        match ix.account_row.get(f.account_id.as_str()) {
            Some(row) => {
                let _ = write!(h, "<a href=\"#a{row}\">{acct}</a>");
            }
            None => h.push_str(&acct),
        }
        h.push_str("</td><td class=\"nw\">");
        push_text(h, &f.region);
        match ix.first_time(f) {
            Some(t) => {
                let _ = write!(
                    h,
                    "</td><td class=\"nw\" data-v=\"{}\">{}",
                    t.timestamp(),
                    fmt_time(t)
                );
            }
            None => h.push_str("</td><td data-v=\"0\">"),
        }
        h.push_str("</td><td class=\"mono\">");
        push_text(h, &f.principal_arn);
        // The actor the rules keyed on, where it is not the principal itself
        // (an assumed role's session name dropped, an instance's role).
        if !f.actor.is_empty() && f.actor != f.principal_arn {
            h.push_str("<br><span class=\"actor\">actor ");
            push_text(h, &f.actor);
            h.push_str("</span>");
        }
        h.push_str("</td><td class=\"mono\">");
        if let Some(s) = &f.session_id {
            push_text(h, s);
        }
        h.push_str("</td><td class=\"text\">");
        push_text(h, &f.detail);
        h.push_str("</td><td class=\"mono\">");
        for id in &f.event_ids {
            match ix.evidence.get(id.as_str()) {
                Some(n) => {
                    let _ = write!(h, "<a class=\"ev\" href=\"#e{n}\">");
                    push_text(h, id);
                    h.push_str("</a>");
                }
                None => {
                    h.push_str("<span class=\"ev\">");
                    push_text(h, id);
                    h.push_str("</span>");
                }
            }
        }
        h.push_str("</td></tr>\n");
    }
    h.push_str(
        "</tbody></table></div>\n<div class=\"pager noprint\" data-for=\"findings-t\"></div>\n</section>\n",
    );
}

fn evidence(h: &mut String, r: &Report, ix: &Index<'_>) {
    h.push_str("<section id=\"evidence\">\n<h2>Evidence: the calls the findings cite</h2>\n");
    if ix.evidence.is_empty() {
        h.push_str("<p>No finding, so no event is cited. report.json and events.csv list every call.</p>\n</section>\n");
        return;
    }
    h.push_str(
        "<p>Each CloudTrail record a finding rests on, as read; user agents and other \
         caller-chosen text are shown as text. Every other call is in report.json and events.csv.</p>\n\
         <div class=\"scroll\"><table id=\"evidence-t\" class=\"t-wide\" data-page=\"100\">\n<thead><tr>\
         <th data-sort=\"num\">Time (UTC), event id</th><th data-sort=\"text\">Call, account, region</th>\
         <th data-sort=\"text\">Principal</th><th data-sort=\"text\">Source, user agent</th>\
         <th data-sort=\"text\">Target, session</th><th data-sort=\"text\">Result</th>\
         <th>Cited by</th></tr></thead>\n<tbody>\n",
    );
    let mut rows: Vec<(&str, usize)> = ix.evidence.iter().map(|(id, n)| (*id, *n)).collect();
    rows.sort_by_key(|(_, n)| *n);
    for (id, n) in rows {
        let _ = write!(h, "<tr id=\"e{n}\"{}>", paged_class(n));
        let Some(e) = ix.events.get(id) else {
            h.push_str("<td class=\"mono\">");
            push_text(h, id);
            h.push_str("</td><td colspan=\"5\">(not among the report's events)");
            h.push_str("</td><td>");
            for &fi in ix.cited_by.get(id).map(Vec::as_slice).unwrap_or(&[]) {
                let _ = write!(
                    h,
                    "<a class=\"ev\" href=\"#f{fi}\">{}</a>",
                    r.findings[fi].flag
                );
            }
            h.push_str("</td></tr>\n");
            continue;
        };
        let _ = write!(
            h,
            "<td data-v=\"{}\"><span class=\"nw\">{}</span><div class=\"mono small\">",
            e.event_time.timestamp(),
            fmt_time(e.event_time)
        );
        push_text(h, id);
        h.push_str("</div></td><td><b>");
        push_text(h, &e.event_name);
        h.push_str("</b><div class=\"mono nw\">");
        push_text(h, &e.account_id);
        h.push_str("</div><div class=\"nw\">");
        push_text(h, &e.region);
        h.push_str("</div></td><td class=\"mono\">");
        push_text(h, e.principal());
        h.push_str("</td><td><div class=\"mono\">");
        push_text(h, e.source_ip.as_deref().unwrap_or(""));
        h.push_str("</div><div class=\"ua mono text\">");
        push_capped(h, e.user_agent.as_deref().unwrap_or(""), MAX_FIELD);
        h.push_str("</div></td><td class=\"mono\">");
        push_text(h, e.target.as_deref().unwrap_or(""));
        if let Some(d) = &e.document_name {
            h.push_str("<div>");
            push_text(h, d);
            h.push_str("</div>");
        }
        if let Some(sid) = &e.session_id {
            h.push_str("<div class=\"small\">");
            push_text(h, sid);
            h.push_str("</div>");
        }
        h.push_str("</td><td class=\"text\">");
        match &e.error_code {
            Some(code) => {
                h.push_str("<b>");
                push_text(h, code);
                h.push_str("</b>");
                if let Some(m) = &e.error_message {
                    h.push_str(": ");
                    push_capped(h, m, MAX_FIELD);
                }
            }
            None => h.push_str("ok"),
        }
        h.push_str("</td><td>");
        for &fi in ix.cited_by.get(id).map(Vec::as_slice).unwrap_or(&[]) {
            let _ = write!(
                h,
                "<a class=\"ev\" href=\"#f{fi}\">{}</a>",
                r.findings[fi].flag
            );
        }
        h.push_str("</td></tr>\n");
    }
    h.push_str(
        "</tbody></table></div>\n<div class=\"pager noprint\" data-for=\"evidence-t\"></div>\n</section>\n",
    );
}

// ---------------------------------------------------------------------------
// Timeline.
// ---------------------------------------------------------------------------

/// When a session happened, for the timeline: its start, else the first thing known.
fn session_time(s: &Session) -> Option<DateTime<Utc>> {
    s.start_time
        .or_else(|| s.resumes.iter().map(|r| r.time).min())
        .or(s.end_time)
}

fn level(n: usize, max: usize) -> usize {
    if n == 0 || max == 0 {
        0
    } else {
        (5 * n).div_ceil(max).clamp(1, 5)
    }
}

fn timeline(h: &mut String, r: &Report) {
    h.push_str("<section id=\"timeline\">\n<h2>Sessions by day and hour (UTC)</h2>\n");
    let times: Vec<(&str, DateTime<Utc>)> = r
        .sessions
        .iter()
        .filter_map(|s| session_time(s).map(|t| (s.account_id.as_str(), t)))
        .collect();
    let last = r.run.window.end - Duration::nanoseconds(1);
    let first_day = times
        .iter()
        .map(|(_, t)| t.date_naive())
        .chain([r.run.window.start.date_naive()])
        .min()
        .unwrap_or_else(|| r.run.window.start.date_naive());
    let last_day = times
        .iter()
        .map(|(_, t)| t.date_naive())
        .chain([last.date_naive().max(first_day)])
        .max()
        .unwrap_or(first_day);
    let days: Vec<NaiveDate> = first_day
        .iter_days()
        .take_while(|d| *d <= last_day)
        .collect();
    let day_index = |d: NaiveDate| (d - first_day).num_days() as usize;

    // The organization: days × hours.
    let mut grid = vec![[0usize; 24]; days.len()];
    for (_, t) in &times {
        grid[day_index(t.date_naive())][t.hour() as usize] += 1;
    }
    let max = grid.iter().flatten().copied().max().unwrap_or(0);
    let _ = writeln!(
        h,
        "<p>{} started in the window (sessions that began earlier count at their first call seen).</p>\n\
         <h3>Whole organization</h3>\n<div class=\"scroll\"><table id=\"heat-org\" class=\"heat\">\n<thead><tr><th>day</th>",
        plural(times.len(), "session", "sessions")
    );
    for hour in 0..24 {
        let _ = write!(h, "<th>{hour:02}</th>");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (di, d) in days.iter().enumerate() {
        let label = d.format("%a %Y-%m-%d").to_string();
        let _ = write!(h, "<tr><th>{label}</th>");
        for (hour, &n) in grid[di].iter().enumerate() {
            let _ = write!(
                h,
                "<td class=\"h{}\" title=\"{label} {hour:02}:00 UTC: {}\">{}</td>",
                level(n, max),
                plural(n, "session", "sessions"),
                if n > 0 { n.to_string() } else { String::new() }
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");

    // Per account: one row each, a column a day (or a week for long windows).
    let mut per_account: BTreeMap<&str, BTreeMap<(usize, u32), usize>> = BTreeMap::new();
    for (a, t) in &times {
        *per_account
            .entry(a)
            .or_default()
            .entry((day_index(t.date_naive()), t.hour()))
            .or_default() += 1;
    }
    h.push_str("<h3>Per account</h3>\n");
    if per_account.is_empty() {
        h.push_str("<p>No session in the window.</p>\n</section>\n");
        return;
    }
    let weekly = days.len() > MAX_DAY_COLUMNS;
    let columns: Vec<(String, Vec<usize>)> = if weekly {
        let mut cols: Vec<(String, Vec<usize>)> = Vec::new();
        for (di, d) in days.iter().enumerate() {
            let monday = *d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
            let label = format!("wk {}", monday.format("%m-%d"));
            match cols.last_mut() {
                Some((l, v)) if *l == label => v.push(di),
                _ => cols.push((label, vec![di])),
            }
        }
        cols
    } else {
        days.iter()
            .enumerate()
            .map(|(di, d)| (d.format("%m-%d").to_string(), vec![di]))
            .collect()
    };
    let mut rows: Vec<(&str, usize, &BTreeMap<(usize, u32), usize>)> = per_account
        .iter()
        .map(|(a, m)| (*a, m.values().sum(), m))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let names: HashMap<&str, &str> = r
        .accounts
        .iter()
        .map(|a| (a.account_id.as_str(), a.account_name.as_str()))
        .collect();
    let _ = writeln!(
        h,
        "<p class=\"noprint\">Busiest first. Hover a cell for its hours; choose an account to see \
         its sessions by day and hour.</p>\n<div id=\"tl-panel\"></div>\n\
         <div class=\"scroll\"><table id=\"tl-t\" class=\"daytl\" data-page=\"100\">\n<thead><tr>\
         <th data-sort=\"text\">Account</th><th data-sort=\"text\">Name</th><th data-sort=\"num\" class=\"num\">Sessions</th>"
    );
    for (label, _) in &columns {
        let _ = write!(h, "<th>{label}</th>");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (row, (account, total, hours)) in rows.iter().enumerate() {
        let mut data = String::new();
        for ((d, hr), n) in hours.iter() {
            if !data.is_empty() {
                data.push(' ');
            }
            let _ = write!(data, "{d}.{hr}.{n}");
        }
        let _ = write!(
            h,
            "<tr data-h=\"{data}\"{}><td class=\"mono\"><button type=\"button\" class=\"linkish\">",
            paged_class(row)
        );
        push_text(h, account);
        h.push_str("</button></td><td>");
        push_text(h, names.get(account).copied().unwrap_or(""));
        let _ = write!(h, "</td><td class=\"num\">{total}</td>");
        let per_col: Vec<usize> = columns
            .iter()
            .map(|(_, ds)| {
                hours
                    .iter()
                    .filter(|((d, _), _)| ds.contains(d))
                    .map(|(_, n)| *n)
                    .sum()
            })
            .collect();
        let row_max = per_col.iter().copied().max().unwrap_or(0);
        for ((label, ds), n) in columns.iter().zip(&per_col) {
            if *n == 0 {
                h.push_str("<td class=\"d\"></td>");
                continue;
            }
            let mut title = format!("{label}: {}", plural(*n, "session", "sessions"));
            let mut sep = " at ";
            for ((d, hr), k) in hours.iter().filter(|((d, _), _)| ds.contains(d)) {
                let day = if weekly {
                    format!("{} ", days[*d].format("%m-%d"))
                } else {
                    String::new()
                };
                let _ = write!(title, "{sep}{day}{hr:02}h×{k}");
                sep = ", ";
            }
            let _ = write!(
                h,
                "<td class=\"d h{}\" title=\"{}\">{n}</td>",
                level(*n, row_max),
                text(&title)
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str(
        "</tbody></table></div>\n<div class=\"pager noprint\" data-for=\"tl-t\"></div>\n</section>\n",
    );
}

// ---------------------------------------------------------------------------
// Busiest actors.
// ---------------------------------------------------------------------------

#[derive(Default)]
struct ActorStats<'a> {
    sessions: usize,
    calls: usize,
    denied: usize,
    accounts: BTreeSet<&'a str>,
    principal_types: BTreeSet<&'a str>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    findings: usize,
}

fn actors(h: &mut String, r: &Report) {
    h.push_str("<section id=\"actors\">\n<h2>Busiest actors</h2>\n");
    let mut by: BTreeMap<String, ActorStats<'_>> = BTreeMap::new();
    let mut actor_of: HashMap<&str, String> = HashMap::new();
    for e in &r.events {
        let a = actor(e);
        actor_of.entry(e.principal()).or_insert_with(|| a.clone());
        let s = by.entry(a).or_default();
        s.calls += 1;
        if e.is_denied() {
            s.denied += 1;
        } else if e.event_name == "StartSession" {
            s.sessions += 1;
        }
        s.accounts.insert(e.account_id.as_str());
        s.principal_types.insert(e.principal_type.as_str());
        s.first = Some(s.first.map_or(e.event_time, |t| t.min(e.event_time)));
        s.last = Some(s.last.map_or(e.event_time, |t| t.max(e.event_time)));
    }
    for f in &r.findings {
        if let Some(a) = actor_of.get(f.principal_arn.as_str()) {
            if let Some(s) = by.get_mut(a) {
                s.findings += 1;
            }
        }
    }
    if by.is_empty() {
        h.push_str("<p>No session call in the window.</p>\n</section>\n");
        return;
    }
    let mut list: Vec<(&String, &ActorStats<'_>)> = by.iter().collect();
    list.sort_by(|a, b| {
        (b.1.sessions, b.1.calls)
            .cmp(&(a.1.sessions, a.1.calls))
            .then_with(|| a.0.cmp(b.0))
    });
    let _ = writeln!(
        h,
        "<p>Who acted most ({} of {}): an Identity Center user by name, an IAM user, root, or the \
         role itself for other assumed roles (its session names are the caller's choice).</p>\n\
         <div class=\"scroll\"><table id=\"actors-t\" class=\"t-wide\">\n<thead><tr>\
         <th data-sort=\"text\">Actor</th><th data-sort=\"text\">Type</th>\
         <th data-sort=\"num\" class=\"num\">Sessions started</th><th data-sort=\"num\" class=\"num\">Calls</th>\
         <th data-sort=\"num\" class=\"num\">Denied</th><th data-sort=\"num\" class=\"num\">Accounts</th>\
         <th data-sort=\"num\" class=\"num\">Findings</th><th data-sort=\"num\">First call</th>\
         <th data-sort=\"num\">Last call</th></tr></thead>\n<tbody>",
        list.len().min(TOP_ACTORS),
        list.len()
    );
    for (name, s) in list.into_iter().take(TOP_ACTORS) {
        h.push_str("<tr><td class=\"mono\">");
        push_text(h, name);
        h.push_str("</td><td>");
        push_text(
            h,
            &s.principal_types
                .iter()
                .copied()
                .collect::<Vec<_>>()
                .join(", "),
        );
        let _ = write!(
            h,
            "</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td>",
            s.sessions,
            s.calls,
            s.denied,
            s.accounts.len(),
            s.findings
        );
        for t in [s.first, s.last] {
            match t {
                Some(t) => {
                    let _ = write!(h, "<td data-v=\"{}\">{}</td>", t.timestamp(), fmt_time(t));
                }
                None => h.push_str("<td></td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    fn page() -> String {
        let mut out = Vec::new();
        HtmlReport.write(&fixture::report(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Every `<tag` the page opens, by name.
    fn tags(page: &str) -> BTreeSet<String> {
        page.match_indices('<')
            .filter_map(|(i, _)| {
                let name: String = page[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                (!name.is_empty()).then(|| name.to_ascii_lowercase())
            })
            .collect()
    }

    #[test]
    fn every_account_and_finding_is_on_the_page() {
        let r = fixture::report();
        let p = page();
        for a in &r.accounts {
            assert!(p.contains(&a.account_id), "{}", a.account_id);
        }
        for (i, f) in r.findings.iter().enumerate() {
            let row = p
                .split(&format!("<tr id=\"f{i}\""))
                .nth(1)
                .unwrap_or_else(|| panic!("finding {i} has a row"));
            let row = &row[..row.find("</tr>").unwrap()];
            assert!(row.contains(f.flag.as_str()), "{row}");
            assert!(row.contains(&text(&f.detail)), "{row}");
            assert!(row.contains(&text(&f.principal_arn)), "{row}");
            assert!(row.contains(&text(&f.actor)), "{row}");
            for id in &f.event_ids {
                assert!(row.contains(id), "{id} cited in {row}");
            }
        }
    }

    #[test]
    fn findings_link_to_their_events_and_back() {
        let r = fixture::report();
        let p = page();
        let ix = Index::new(&r);
        for (i, f) in r.findings.iter().enumerate() {
            for id in &f.event_ids {
                let n = ix.evidence[id.as_str()];
                assert!(p.contains(&format!("<a class=\"ev\" href=\"#e{n}\">{id}</a>")));
                assert!(p.contains(&format!("<tr id=\"e{n}\"")));
                assert!(p.contains(&format!("href=\"#f{i}\"")));
            }
        }
    }

    #[test]
    fn hostile_text_is_text() {
        let mut r = fixture::report();
        let evil = "<img src=x onerror=alert(1)></script><script>alert(2)</script>\"'&\u{202e}";
        r.events[0].user_agent = Some(evil.into());
        r.findings[0].detail = evil.into();
        r.findings[0].session_id = Some(evil.into());
        r.accounts[0].account_name = evil.into();
        r.accounts[2].coverage.reason = Some(evil.into());
        r.run.caller_arn = Some(evil.into());
        let p = render(&r);
        assert!(!p.contains("<img"));
        assert!(!p.contains("onerror=alert(1)>"));
        assert_eq!(p.matches("<script").count(), 2, "our two scripts only");
        assert_eq!(p.matches("</script").count(), 2);
        assert!(p.contains(
            "&lt;img src=x onerror=alert(1)&gt;&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;&quot;&#39;&amp;\\u{202e}"
        ));
        let allowed: BTreeSet<String> = [
            "a", "b", "body", "br", "button", "code", "dd", "details", "div", "dl", "dt", "footer",
            "h1", "h2", "h3", "head", "header", "html", "input", "label", "li", "link", "main",
            "meta", "nav", "ol", "option", "p", "script", "section", "select", "span", "style",
            "summary", "table", "tbody", "td", "th", "thead", "title", "tr",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let found = tags(&p);
        assert!(
            found.is_subset(&allowed),
            "{:?}",
            found.difference(&allowed)
        );
        // The fixture's escape sequences are visible, never raw.
        assert!(!p.contains('\u{1b}'));
        assert!(p.contains("\\x1b]0;pwned\\x07"));
    }

    #[test]
    fn nothing_reaches_the_network() {
        let p = page();
        let outside_script = p.replace(SCRIPT, "");
        for needle in ["src=", "url(", "@import", "<link rel=\"stylesheet"] {
            assert!(!outside_script.contains(needle), "{needle}");
        }
        for (i, _) in p.match_indices("href=\"") {
            let v = &p[i + 6..];
            assert!(
                v.starts_with('#') || v.starts_with("data:,\""),
                "{}",
                &v[..30]
            );
        }
        assert!(!SCRIPT.contains("fetch(") && !SCRIPT.contains("XMLHttpRequest"));
        assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("eval("));
    }

    #[test]
    fn the_policy_hashes_exactly_our_blocks() {
        let p = page();
        let csp = content_security_policy();
        assert!(p.contains(&format!("content=\"{csp}\"")));
        for block in [STYLE, SCRIPT, EARLY_SCRIPT] {
            assert!(csp.contains(&csp_hash(block)));
        }
        assert!(p.contains(&format!("<style>{STYLE}</style>")));
        assert!(p.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(p.contains(&format!("<script>{EARLY_SCRIPT}</script>")));
        assert!(csp.starts_with("default-src 'none';"));
        // Known vectors.
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn verdict_names_every_reason() {
        let r = fixture::report();
        let reasons = incompleteness_reasons(&r);
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].starts_with("account 222222222222"));
        assert!(reasons[0].contains("partial"));
        assert!(reasons[0].contains("eu-west-1: ThrottlingException: Rate exceeded"));
        assert!(reasons[1].contains("333333333333"));
        assert!(reasons[1].contains("AssumeRole denied: AccessDenied"));
        let p = page();
        assert!(p.contains("Coverage INCOMPLETE: 2 reasons"));
        assert!(p.contains("eu-west-1: ThrottlingException: Rate exceeded"));

        let mut r = fixture::report();
        r.accounts.retain(|a| {
            matches!(
                a.coverage.status,
                AccountStatus::Complete | AccountStatus::Skipped
            )
        });
        r.run.complete = true;
        assert!(incompleteness_reasons(&r).is_empty());
        assert!(render(&r).contains("<h2>Coverage complete</h2>"));
        // Never green when the report says otherwise.
        r.run.complete = false;
        assert_eq!(incompleteness_reasons(&r).len(), 1);
        r.run.interrupted = true;
        assert!(incompleteness_reasons(&r)[0].contains("interrupted"));
    }

    #[test]
    fn long_lists_fold_and_big_tables_page() {
        let mut r = fixture::report();
        let template = r.accounts[2].clone();
        for i in 0..250 {
            let mut a = template.clone();
            a.account_id = format!("9{i:011}");
            r.accounts.push(a);
        }
        let p = render(&r);
        assert!(p.contains("<details class=\"more\"><summary>"));
        let last = format!("9{:011}", 249);
        assert!(p.contains(&last));
        // Rows past the first page are marked, so the script-less page and print show them.
        assert!(p.contains(&format!(
            "<tr id=\"a{PAGE_ROWS}\" data-status=\"failed\" data-flagged=\"0\" class=\"pg-off\">"
        )));
        assert!(!p.contains(&format!(
            "<tr id=\"a{}\" data-status=\"failed\" data-flagged=\"0\" class=\"pg-off\">",
            PAGE_ROWS - 1
        )));
    }

    #[test]
    fn timeline_counts_sessions_by_day_and_hour() {
        let r = fixture::report();
        let p = page();
        // Two sessions: 2025-02-19 20h (before the window: its own day row) and 2025-02-22 03h.
        assert!(
            p.contains("Wed 2025-02-19 20:00 UTC: 1 session\">1</td>"),
            "{p}"
        );
        assert!(p.contains("Sat 2025-02-22 03:00 UTC: 1 session\">1</td>"));
        assert!(p.contains("<tr data-h=\""));
        assert_eq!(r.sessions.len(), 2);
    }

    #[test]
    fn actors_are_who_really_acted() {
        let r = fixture::report();
        let mut e = r.events[2].clone();
        assert_eq!(actor(&e), "arn:aws:iam::222222222222:user/bob");
        e.principal_type = "AssumedRole".into();
        e.principal_arn =
            "arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com".into();
        e.session_issuer_arn = Some(
            "arn:aws:iam::1:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123".into(),
        );
        e.user_name = Some("alice@example.com".into());
        assert_eq!(actor(&e), "alice@example.com (Identity Center)");
        e.session_issuer_arn = Some("arn:aws:iam::1:role/Deploy".into());
        e.user_name = Some("any-name-the-caller-picks".into());
        assert_eq!(actor(&e), "arn:aws:iam::1:role/Deploy");
    }

    #[test]
    fn same_report_same_bytes() {
        assert_eq!(page(), page());
    }
}
