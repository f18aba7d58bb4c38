//! The last run in an output location, for `--since last`: its report.json,
//! trusted only when its `SHA256SUMS` lists it with a matching digest. A local
//! folder holds one run (the last one written there); S3 keeps every run, and
//! [`super::s3::S3Evidence::last_run`] finds the newest one written whole.

use std::io::{BufRead, Read};
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::write::{parse_sums, SUMS_FILE};
use super::ReportError;
use crate::chain::LastRun;
use crate::model::{RunInfo, REPORT_SCHEMA};

/// The `run` of a report.json, read as a stream (the events and sessions are
/// skipped, never held).
pub fn read_header(reader: impl BufRead) -> Result<RunInfo, String> {
    #[derive(Deserialize)]
    struct Header {
        schema: String,
        run: serde_json::Value,
    }
    let h: Header = serde_json::from_reader(reader)
        .map_err(|e| format!("its report.json cannot be read as a report ({e})"))?;
    if h.schema != REPORT_SCHEMA {
        return Err(format!(
            "its report.json is {:?}, not {REPORT_SCHEMA}",
            crate::report::escape_terminal(&h.schema)
        ));
    }
    serde_json::from_value(h.run)
        .map_err(|e| format!("its report.json has no readable `run` ({e})"))
}

/// The run a local folder holds, or `None` when it holds none (no report.json
/// and no `SHA256SUMS`).
pub fn last_run_in_dir(dir: &Path) -> Result<Option<LastRun>, ReportError> {
    let location = dir.display().to_string();
    let problem = |problem: String| ReportError::LastRun {
        location: location.clone(),
        problem,
    };
    let sums = match std::fs::read_to_string(dir.join(SUMS_FILE)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.join("report.json").exists() {
                return Err(problem("its report.json has no SHA256SUMS beside it: the run that wrote it did not finish".into()));
            }
            return Ok(None);
        }
        Err(e) => return Err(problem(format!("cannot read its SHA256SUMS ({e})"))),
    };
    let sums =
        parse_sums(&sums).ok_or_else(|| problem("its SHA256SUMS is not sha256sum text".into()))?;
    let Some((_, want)) = sums.iter().find(|(n, _)| n == "report.json") else {
        return Err(problem("its last run wrote no report.json (its --format had no json), and --since last reads where it ended from there".into()));
    };
    let file = std::fs::File::open(dir.join("report.json"))
        .map_err(|e| problem(format!("cannot open its report.json ({e})")))?;
    let mut hasher = Sha256::new();
    let mut reader = std::io::BufReader::new(file);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| problem(format!("cannot read its report.json ({e})")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    if hex::encode(hasher.finalize()) != *want {
        return Err(problem(
            "its report.json does not match its SHA256SUMS".into(),
        ));
    }
    let file = std::fs::File::open(dir.join("report.json"))
        .map_err(|e| problem(format!("cannot open its report.json ({e})")))?;
    let run = read_header(std::io::BufReader::new(file)).map_err(problem)?;
    Ok(Some(LastRun { location, run }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{fixture, write_report_dir, Format};

    #[test]
    fn a_folder_gives_back_the_run_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            last_run_in_dir(dir.path()).unwrap().is_none(),
            "an empty folder holds no run"
        );
        let report = fixture::report();
        write_report_dir(&report, dir.path(), &[Format::Json, Format::Csv]).unwrap();
        let last = last_run_in_dir(dir.path()).unwrap().unwrap();
        assert_eq!(last.run, report.run);
        assert_eq!(last.location, dir.path().display().to_string());
    }

    #[test]
    fn a_folder_that_is_not_whole_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        write_report_dir(&fixture::report(), dir.path(), &[Format::Json]).unwrap();
        let json = dir.path().join("report.json");
        let text = std::fs::read_to_string(&json)
            .unwrap()
            .replacen("0.1.0", "0.1.1", 1);
        std::fs::write(&json, text).unwrap();
        let e = last_run_in_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("does not match its SHA256SUMS"), "{e}");

        std::fs::remove_file(dir.path().join(SUMS_FILE)).unwrap();
        let e = last_run_in_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("did not finish"), "{e}");

        let csv_only = tempfile::tempdir().unwrap();
        write_report_dir(&fixture::report(), csv_only.path(), &[Format::Csv]).unwrap();
        let e = last_run_in_dir(csv_only.path()).unwrap_err().to_string();
        assert!(e.contains("no report.json"), "{e}");
    }

    #[test]
    fn a_header_of_another_schema_is_refused() {
        let e = read_header(&br#"{"schema":"other/v9","run":{}}"#[..]).unwrap_err();
        assert!(e.contains("other/v9"), "{e}");
        assert!(read_header(&b"not json"[..]).is_err());
    }
}
