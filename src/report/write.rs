//! Report files on disk. Each file is written under a temporary name in the
//! output folder, fsynced, and only renamed to its final name once every file
//! is written; `SHA256SUMS` comes last. A folder without `SHA256SUMS`, or whose
//! sums do not match, is visibly incomplete.

use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Format;
use super::{writers, ReportError, ReportWriter};
use crate::model::Report;

/// The checksum file, in `sha256sum` format.
pub const SUMS_FILE: &str = "SHA256SUMS";

/// Creates the output folder if it is missing and proves it writable, so a bad
/// `--output` stops the run before the scan starts, leaving nothing behind.
pub fn check_output_dir(dir: &Path) -> Result<(), ReportError> {
    if dir.exists() && !dir.is_dir() {
        return Err(ReportError::NotADirectory {
            dir: dir.to_path_buf(),
        });
    }
    fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let probe = dir.join(format!(".ssm-session-audit-probe-{}", std::process::id()));
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(b"probe\n").and_then(|()| f.sync_all()));
    let _ = fs::remove_file(&probe);
    result.map_err(|source| ReportError::NotWritable {
        dir: dir.to_path_buf(),
        source,
    })
}

/// Writes the files of `formats` and `SHA256SUMS` into `dir`; returns their
/// paths, `SHA256SUMS` last.
pub fn write_report_dir(
    report: &Report,
    dir: &Path,
    formats: &[Format],
) -> Result<Vec<PathBuf>, ReportError> {
    write_with(report, dir, &writers(formats))
}

/// A file written under its temporary name, not yet renamed.
struct Staged {
    name: &'static str,
    tmp: PathBuf,
    sha256: String,
}

/// [`write_report_dir`] with any set of writers.
pub fn write_with(
    report: &Report,
    dir: &Path,
    writers: &[Box<dyn ReportWriter>],
) -> Result<Vec<PathBuf>, ReportError> {
    fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;

    let mut staged: Vec<Staged> = Vec::new();
    for w in writers {
        // A second writer of the same name would make the sums ambiguous.
        if staged.iter().any(|s| s.name == w.file_name()) {
            continue;
        }
        match stage(dir, w.file_name(), |out| w.write(report, out)) {
            Ok(s) => staged.push(s),
            Err(e) => {
                remove_temps(&staged);
                return Err(e);
            }
        }
    }

    // From here the folder's files change: drop the old sums first, so a
    // crash in between never shows old sums beside new files as whole.
    let sums_path = dir.join(SUMS_FILE);
    if let Err(source) = fs::remove_file(&sums_path) {
        if source.kind() != io::ErrorKind::NotFound {
            remove_temps(&staged);
            return Err(ReportError::Remove {
                file: sums_path,
                source,
            });
        }
    }

    let mut written = Vec::new();
    for (i, s) in staged.iter().enumerate() {
        let to = dir.join(s.name);
        if let Err(source) = fs::rename(&s.tmp, &to) {
            remove_temps(&staged[i..]);
            return Err(ReportError::Rename {
                from: s.tmp.clone(),
                to,
                source,
            });
        }
        written.push(to);
    }
    sync_dir(dir);

    let sums = sums_text(staged.iter().map(|s| (s.name, s.sha256.as_str())));
    let s = stage(dir, SUMS_FILE, |out| out.write_all(sums.as_bytes()))?;
    fs::rename(&s.tmp, &sums_path).map_err(|source| {
        remove_temps(std::slice::from_ref(&s));
        ReportError::Rename {
            from: s.tmp.clone(),
            to: sums_path.clone(),
            source,
        }
    })?;
    sync_dir(dir);
    written.push(sums_path);
    Ok(written)
}

/// `sha256sum` format: `<hex>  <name>` per line, sorted by name.
fn sums_text<'a>(files: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut files: Vec<_> = files.collect();
    files.sort();
    files
        .into_iter()
        .map(|(name, hex)| format!("{hex}  {name}\n"))
        .collect()
}

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes one file under its temporary name, hashing it on the way.
fn stage(
    dir: &Path,
    name: &'static str,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<Staged, ReportError> {
    let tmp = temp_path(dir, name);
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let mut out = HashingWriter {
            inner: BufWriter::new(file),
            hasher: Sha256::new(),
        };
        fill(&mut out)?;
        out.inner.flush()?;
        let file = out.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok::<_, io::Error>(hex::encode(out.hasher.finalize()))
    })();
    match result {
        Ok(sha256) => Ok(Staged { name, tmp, sha256 }),
        Err(source) => {
            let _ = fs::remove_file(&tmp);
            Err(ReportError::Write {
                file: dir.join(name),
                source,
            })
        }
    }
}

fn remove_temps(staged: &[Staged]) {
    for s in staged {
        let _ = fs::remove_file(&s.tmp);
    }
}

/// Makes the renames durable. Best effort: some file systems refuse to sync
/// a folder, and the files themselves are already synced.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Hashes exactly the bytes that reach the file.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use std::cell::Cell;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_every_file_and_matching_sums_last() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let paths =
            write_report_dir(&fixture::report(), &out, &[Format::Json, Format::Csv]).unwrap();
        let names: Vec<&str> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "report.json",
                "events.csv",
                "sessions.csv",
                "accounts.csv",
                "findings.csv",
                "SHA256SUMS"
            ]
        );
        assert_eq!(
            names_in(&out),
            [
                "SHA256SUMS",
                "accounts.csv",
                "events.csv",
                "findings.csv",
                "report.json",
                "sessions.csv"
            ],
            "no temporary file is left"
        );

        let sums = fs::read_to_string(out.join(SUMS_FILE)).unwrap();
        let mut listed = Vec::new();
        for line in sums.lines() {
            let (hex, name) = line.split_once("  ").unwrap();
            let bytes = fs::read(out.join(name)).unwrap();
            assert_eq!(hex, hex::encode(Sha256::digest(&bytes)), "{name}");
            listed.push(name.to_string());
        }
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(listed, sorted, "sorted by name");
        assert_eq!(listed.len(), 5, "every file but SHA256SUMS itself");

        // The files hold what the writers write.
        let mut json = Vec::new();
        crate::report::JsonReport
            .write(&fixture::report(), &mut json)
            .unwrap();
        assert_eq!(fs::read(out.join("report.json")).unwrap(), json);
    }

    /// Checks, while it writes, that its final name does not exist yet.
    struct Watcher {
        dir: PathBuf,
        saw_temp: Cell<bool>,
    }

    impl ReportWriter for Watcher {
        fn file_name(&self) -> &'static str {
            "report.json"
        }
        fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
            assert!(
                !self.dir.join("report.json").exists(),
                "final name exists early"
            );
            assert!(!self.dir.join(SUMS_FILE).exists(), "old sums still present");
            self.saw_temp
                .set(temp_path(&self.dir, "report.json").exists());
            crate::report::JsonReport.write(report, out)
        }
    }

    struct Failing;

    impl ReportWriter for Failing {
        fn file_name(&self) -> &'static str {
            "events.csv"
        }
        fn write(&self, _: &Report, out: &mut dyn Write) -> io::Result<()> {
            out.write_all(b"half a row")?;
            Err(io::Error::other("disk full"))
        }
    }

    #[test]
    fn no_final_name_until_the_rename() {
        let dir = tempfile::tempdir().unwrap();
        let watcher = Watcher {
            dir: dir.path().to_path_buf(),
            saw_temp: Cell::new(false),
        };
        let ws: Vec<Box<dyn ReportWriter>> = vec![Box::new(watcher)];
        write_with(&fixture::report(), dir.path(), &ws).unwrap();
        assert!(dir.path().join("report.json").exists());
        assert!(dir.path().join(SUMS_FILE).exists());
    }

    #[test]
    fn writes_under_a_temporary_name() {
        let dir = tempfile::tempdir().unwrap();
        let watcher = Box::new(Watcher {
            dir: dir.path().to_path_buf(),
            saw_temp: Cell::new(false),
        });
        let report = fixture::report();
        let s = stage(dir.path(), "report.json", |out| watcher.write(&report, out)).unwrap();
        assert!(
            watcher.saw_temp.get(),
            "the writer writes to the temporary file"
        );
        assert_eq!(s.tmp, temp_path(dir.path(), "report.json"));
        assert!(s.tmp.exists() && !dir.path().join("report.json").exists());
    }

    #[test]
    fn a_failure_leaves_no_report_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let ws: Vec<Box<dyn ReportWriter>> =
            vec![Box::new(crate::report::JsonReport), Box::new(Failing)];
        let err = write_with(&fixture::report(), dir.path(), &ws).unwrap_err();
        assert!(matches!(&err, ReportError::Write { file, .. } if file.ends_with("events.csv")));
        assert!(err.to_string().contains("events.csv"), "{err}");
        assert!(
            names_in(dir.path()).is_empty(),
            "{:?}",
            names_in(dir.path())
        );
    }

    #[test]
    fn a_failure_keeps_a_previous_complete_report_intact() {
        let dir = tempfile::tempdir().unwrap();
        write_report_dir(&fixture::report(), dir.path(), &[Format::Json]).unwrap();
        let before = fs::read(dir.path().join(SUMS_FILE)).unwrap();
        let ws: Vec<Box<dyn ReportWriter>> =
            vec![Box::new(crate::report::JsonReport), Box::new(Failing)];
        let mut changed = fixture::report();
        changed.run.tool_version = "9.9.9".into();
        write_with(&changed, dir.path(), &ws).unwrap_err();
        assert_eq!(fs::read(dir.path().join(SUMS_FILE)).unwrap(), before);
        assert_eq!(names_in(dir.path()), ["SHA256SUMS", "report.json"]);
    }

    #[test]
    fn rewriting_replaces_files_and_sums() {
        let dir = tempfile::tempdir().unwrap();
        write_report_dir(&fixture::report(), dir.path(), &[Format::Json]).unwrap();
        let first = fs::read_to_string(dir.path().join(SUMS_FILE)).unwrap();
        let mut changed = fixture::report();
        changed.run.tool_version = "9.9.9".into();
        write_report_dir(&changed, dir.path(), &[Format::Json]).unwrap();
        let second = fs::read_to_string(dir.path().join(SUMS_FILE)).unwrap();
        assert_ne!(first, second);
        let json = fs::read(dir.path().join("report.json")).unwrap();
        assert!(second.starts_with(&hex::encode(Sha256::digest(&json))));
    }

    #[test]
    fn check_output_dir_creates_and_probes() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/reports");
        check_output_dir(&nested).unwrap();
        assert!(nested.is_dir());
        assert!(names_in(&nested).is_empty(), "the probe is removed");
    }

    #[test]
    fn check_output_dir_refuses_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("report.txt");
        fs::write(&file, "x").unwrap();
        assert!(matches!(
            check_output_dir(&file),
            Err(ReportError::NotADirectory { .. })
        ));
        let under = file.join("sub");
        let err = check_output_dir(&under).unwrap_err();
        assert!(matches!(err, ReportError::CreateDir { .. }), "{err:?}");
        assert!(err.to_string().contains("sub"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn check_output_dir_refuses_an_unwritable_folder() {
        // procfs refuses new files even to root, unlike a chmod'ed folder.
        let err = check_output_dir(Path::new("/proc/self")).unwrap_err();
        assert!(matches!(err, ReportError::NotWritable { .. }), "{err:?}");
        assert!(err.to_string().contains("/proc/self"));
    }
}
