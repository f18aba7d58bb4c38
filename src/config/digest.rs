//! The effective config's digest, so two reports can be compared.

use super::*;

/// SHA-256 (hex) of a canonical rendering of what decides a report's content:
/// the scan, accounts and rules settings, the source and the baseline. The
/// concrete window (recorded in the report's `run.window`, and different on
/// every `--since` run), the output folder, the formats and the config file's
/// path are left out, so two runs of the same config have the same digest.
pub fn config_digest(cfg: &Config) -> String {
    hex::encode(Sha256::digest(canonical_text(cfg).as_bytes()))
}

pub(super) fn canonical_text(cfg: &Config) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("ssm-session-audit/config/v1\n");
    let mut kv = |k: &str, v: String| {
        // Debug-quoting keeps separators inside values unambiguous.
        let _ = writeln!(s, "{k}={v:?}");
    };
    let list = |v: &[String]| v.join("\u{1f}");
    let sc = &cfg.scan;
    kv(
        "scan.regions",
        match &sc.regions {
            RegionSelection::All => "all".into(),
            RegionSelection::List(l) => list(l),
        },
    );
    kv("scan.event_names", list(&sc.event_names));
    kv(
        "scan.concurrency",
        sc.concurrency.map_or("auto".into(), |c| c.to_string()),
    );
    kv("scan.lookup_rate", format!("{:?}", sc.lookup_rate));
    kv("scan.call_timeout", sc.call_timeout.as_millis().to_string());
    kv(
        "scan.retry_deadline",
        sc.retry_deadline.as_millis().to_string(),
    );
    kv("scan.source", sc.source.describe());
    kv("scan.session_manager", sc.session_manager.to_string());
    let a = &cfg.accounts;
    kv("accounts.role_name", a.role_name.clone());
    // Only whether one is set: the digest is public, the id a secret (and an
    // unsalted hash of a short secret is the secret).
    kv(
        "accounts.external_id",
        if a.external_id.is_some() {
            "set"
        } else {
            "unset"
        }
        .to_string(),
    );
    kv("accounts.session_name", a.session_name.clone());
    kv(
        "accounts.session_duration",
        a.session_duration.as_secs().to_string(),
    );
    kv("accounts.include", list(&a.include));
    kv("accounts.exclude", list(&a.exclude));
    kv(
        "accounts.organizational_units",
        list(&a.organizational_units),
    );
    let r = &cfg.rules;
    let cidrs: Vec<String> = r.approved_cidrs.iter().map(|c| c.to_string()).collect();
    kv("rules.approved_cidrs", list(&cidrs));
    kv("rules.allowed_regions", list(&r.allowed_regions));
    kv("rules.trusted_accounts", list(&r.trusted_accounts));
    kv("rules.tunnel_documents", list(&r.tunnel_documents));
    kv("rules.denied_threshold", r.denied_threshold.to_string());
    kv(
        "rules.denied_window",
        r.denied_window.num_seconds().to_string(),
    );
    kv("rules.fanout_targets", r.fanout_targets.to_string());
    kv(
        "rules.fanout_window",
        r.fanout_window.num_seconds().to_string(),
    );
    kv("rules.max_session", r.max_session.num_seconds().to_string());
    kv("rules.require_reason", r.require_reason.to_string());
    let b = &r.business_hours;
    kv(
        "rules.business_hours.timezone",
        b.timezone.name().to_string(),
    );
    let days: Vec<String> = b.days.iter().map(|d| d.to_string()).collect();
    kv("rules.business_hours.days", list(&days));
    kv(
        "rules.business_hours.start",
        b.start.format("%H:%M").to_string(),
    );
    kv(
        "rules.business_hours.end",
        b.end.format("%H:%M").to_string(),
    );
    kv(
        "report.fail_on",
        cfg.report
            .fail_on
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "none".into()),
    );
    kv(
        "baseline",
        cfg.baseline
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    s
}
