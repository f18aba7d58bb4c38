//! `report.json`: the whole `Report`, pretty-printed with 2-space indents.

use std::io;

use super::ReportWriter;
use crate::model::Report;

pub struct JsonReport;

impl ReportWriter for JsonReport {
    fn file_name(&self) -> &'static str {
        "report.json"
    }

    fn write(&self, report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, report)?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::REPORT_SCHEMA;
    use crate::report::fixture;

    fn render(report: &Report) -> String {
        let mut out = Vec::new();
        JsonReport.write(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn report_json_snapshot() {
        insta::assert_snapshot!("report_json", render(&fixture::report()));
    }

    #[test]
    fn round_trips_with_two_space_indent() {
        let report = fixture::report();
        let text = render(&report);
        assert!(text.starts_with("{\n  \"schema\": \"ssm-session-audit/report/v1\",\n"));
        assert!(text.ends_with("}\n"));
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
        assert_eq!(back.schema, REPORT_SCHEMA);
        // Same input, same bytes.
        assert_eq!(render(&report), text);
    }
}
