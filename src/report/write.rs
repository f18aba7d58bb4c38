//! Report files on disk. A run's files are written into a staging folder inside
//! the output folder (`.ssm-session-audit-staging-<pid>/`), each fsynced and
//! hashed on the way; only when every one is written does the commit move them
//! in: the old `SHA256SUMS` goes first, then the new files are renamed in, the
//! previous run's files that this run does not write are removed (only names
//! this tool writes: those its `SHA256SUMS` listed, or any format's), and the
//! new `SHA256SUMS` comes last. A folder without `SHA256SUMS`, or whose sums do
//! not match, is visibly incomplete; a folder with them holds exactly one run.
//!
//! A second SIGINT/SIGTERM quits at once: [`abandon_staging`] waits for a commit
//! in progress (a few renames) and removes every staging folder, so a killed
//! run leaves no half-written file behind. The S3 writer stages the same way in
//! a temporary folder ([`stage_files`]).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::Format;
use super::{writers, ReportError, ReportWriter};
use crate::model::Report;

/// The checksum file, in `sha256sum` format.
pub const SUMS_FILE: &str = "SHA256SUMS";

/// Staging folders of this process are named this, then the pid.
const STAGING_PREFIX: &str = ".ssm-session-audit-staging-";

/// Staging folders in use, for [`abandon_staging`].
static STAGING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Held while a folder's files change (the commit), so a quitting process
/// never leaves it half-renamed.
static COMMIT: Mutex<()> = Mutex::new(());

/// For the second signal, just before the process exits: waits for a commit
/// in progress, then removes every staging folder and keeps both locks, so no
/// file is staged or renamed after it.
pub fn abandon_staging() {
    std::mem::forget(COMMIT.lock().unwrap_or_else(|e| e.into_inner()));
    let staging = STAGING.lock().unwrap_or_else(|e| e.into_inner());
    for dir in staging.iter() {
        // A writer may still add a file while the folder goes: try again.
        for _ in 0..50 {
            match fs::remove_dir_all(dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => continue,
                _ => break,
            }
        }
    }
    std::mem::forget(staging);
}

/// A staging folder: registered (for [`abandon_staging`]) before it exists,
/// removed with everything in it when dropped.
pub(crate) struct Staging {
    dir: PathBuf,
}

impl Staging {
    pub(crate) fn create(dir: PathBuf) -> io::Result<Staging> {
        let mut list = STAGING.lock().unwrap_or_else(|e| e.into_inner());
        // Created under the lock: abandon_staging either sees it or runs first.
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        list.push(dir.clone());
        Ok(Staging { dir })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let mut list = STAGING.lock().unwrap_or_else(|e| e.into_inner());
        let _ = fs::remove_dir_all(&self.dir);
        list.retain(|d| d != &self.dir);
    }
}

fn staging_name() -> String {
    format!("{STAGING_PREFIX}{}", std::process::id())
}

/// Removes staging folders that runs killed outright (SIGKILL, power loss)
/// left in `dir`: those named `<prefix><pid>…` of processes that no longer exist.
pub(crate) fn remove_stale_staging(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        let alive = pid.parse::<u32>().map_or(true, |pid| {
            pid == std::process::id()
                || !cfg!(target_os = "linux")
                || Path::new("/proc").join(pid.to_string()).exists()
        });
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

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
    })?;
    remove_stale_staging(dir, STAGING_PREFIX);
    Ok(())
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

/// A file written under its staging name, not yet moved.
pub(crate) struct Staged {
    pub(crate) name: &'static str,
    pub(crate) tmp: PathBuf,
    pub(crate) sha256: String,
    pub(crate) size: u64,
}

/// Writes every writer's file into `staging` (each once), hashed and synced.
pub(crate) fn stage_files(
    report: &Report,
    staging: &Path,
    writers: &[Box<dyn ReportWriter>],
) -> Result<Vec<Staged>, ReportError> {
    let mut staged: Vec<Staged> = Vec::new();
    for w in writers {
        // A second writer of the same name would make the sums ambiguous.
        if staged.iter().any(|s| s.name == w.file_name()) {
            continue;
        }
        let started = std::time::Instant::now();
        staged.push(stage(staging, w.file_name(), |out| w.write(report, out))?);
        tracing::debug!(
            file = w.file_name(),
            ms = started.elapsed().as_millis() as u64,
            "report file written"
        );
    }
    Ok(staged)
}

/// The names a run of this tool may have written into a folder: what the
/// folder's `SHA256SUMS` lists (plain names only), and every format's files.
fn tool_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = writers(&Format::ALL)
        .iter()
        .map(|w| w.file_name().to_string())
        .collect();
    if let Ok(sums) = fs::read_to_string(dir.join(SUMS_FILE)) {
        for line in sums.lines() {
            if let Some((_, name)) = line.split_once("  ") {
                let plain = !name.is_empty()
                    && !name.starts_with('.')
                    && !name.contains(['/', '\\'])
                    && name != SUMS_FILE;
                if plain && !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
        }
    }
    names
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
    let staging_dir = dir.join(staging_name());
    let staging =
        Staging::create(staging_dir.clone()).map_err(|source| ReportError::CreateDir {
            dir: staging_dir,
            source,
        })?;
    let staged = stage_files(report, staging.path(), writers)?;
    let sums = sums_text(staged.iter().map(|s| (s.name, s.sha256.as_str())));
    let sums_staged = stage(staging.path(), SUMS_FILE, |out| {
        out.write_all(sums.as_bytes())
    })?;

    // From here the folder's files change.
    let _commit = COMMIT.lock().unwrap_or_else(|e| e.into_inner());
    let previous = tool_files(dir);
    // The old sums go first, so a crash in between never shows old sums
    // beside new files as whole.
    let sums_path = dir.join(SUMS_FILE);
    if let Err(source) = fs::remove_file(&sums_path) {
        if source.kind() != io::ErrorKind::NotFound {
            return Err(ReportError::Remove {
                file: sums_path,
                source,
            });
        }
    }
    let mut written = Vec::new();
    for s in &staged {
        let to = dir.join(s.name);
        fs::rename(&s.tmp, &to).map_err(|source| ReportError::Rename {
            from: s.tmp.clone(),
            to: to.clone(),
            source,
        })?;
        written.push(to);
    }
    // One run per folder: the last run's files this one did not write go.
    for name in previous {
        if staged.iter().any(|s| s.name == name) {
            continue;
        }
        let path = dir.join(&name);
        if let Err(source) = fs::remove_file(&path) {
            if source.kind() != io::ErrorKind::NotFound {
                return Err(ReportError::Remove { file: path, source });
            }
        }
    }
    sync_dir(dir);
    fs::rename(&sums_staged.tmp, &sums_path).map_err(|source| ReportError::Rename {
        from: sums_staged.tmp.clone(),
        to: sums_path.clone(),
        source,
    })?;
    sync_dir(dir);
    written.push(sums_path);
    Ok(written)
}

/// `sha256sum` format: `<hex>  <name>` per line, sorted by name.
pub(crate) fn sums_text<'a>(files: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut files: Vec<_> = files.collect();
    files.sort();
    files
        .into_iter()
        .map(|(name, hex)| format!("{hex}  {name}\n"))
        .collect()
}

/// Parses `sha256sum` text into (name, hex) pairs; `None` when a line is not
/// `<64 hex>  <name>`.
pub(crate) fn parse_sums(text: &str) -> Option<Vec<(String, String)>> {
    text.lines()
        .map(|line| {
            let (hex, name) = line.split_once("  ")?;
            let ok =
                hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && !name.is_empty();
            ok.then(|| (name.to_string(), hex.to_ascii_lowercase()))
        })
        .collect()
}

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Writes one file under its staging name, hashing it on the way.
fn stage(
    dir: &Path,
    name: &'static str,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<Staged, ReportError> {
    let tmp = temp_path(dir, name);
    let result = (|| {
        let mut file = super::direct::FileSink::create(&tmp)?;
        // The writer fills blocks; a second thread hashes and writes them
        // while the next one is filled (a large report.json took 390 ms
        // one after the other, most of it neither hashing nor writing).
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
            let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
            let writer = scope.spawn(move || {
                let (mut hasher, mut size) = (Sha256::new(), 0u64);
                for mut block in rx {
                    hasher.update(&block);
                    size += block.len() as u64;
                    file.write_all(&block)?;
                    block.clear();
                    let _ = back_tx.send(block);
                }
                file.finish()?.sync_all()?;
                Ok::<_, io::Error>((hex::encode(hasher.finalize()), size))
            });
            let mut out = BlockSender {
                block: Vec::with_capacity(BLOCK),
                spare: back_rx,
                tx: Some(tx),
            };
            let filled = fill(&mut out).and_then(|()| out.finish());
            // A writer that failed has dropped its receiver: its error is the one to tell.
            drop(out);
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the report's writer thread panicked")));
            filled.and(written)
        })
    })();
    match result {
        Ok((sha256, size)) => Ok(Staged {
            name,
            tmp,
            sha256,
            size,
        }),
        Err(source) => {
            let _ = fs::remove_file(&tmp);
            Err(ReportError::Write {
                file: dir.join(name),
                source,
            })
        }
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

/// How much the writer fills before the block goes to be hashed and written.
const BLOCK: usize = 1 << 20;

/// The filling side of [`stage`]: blocks of [`BLOCK`] bytes to the thread that
/// hashes and writes them, the emptied blocks back for reuse.
struct BlockSender {
    block: Vec<u8>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
}

impl BlockSender {
    fn send(&mut self) -> io::Result<()> {
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BLOCK));
        let full = std::mem::replace(&mut self.block, next);
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| io::Error::other("written after the end"))?;
        tx.send(full)
            .map_err(|_| io::Error::other("the report's writer stopped"))
    }

    /// Sends what is left and ends the stream.
    fn finish(&mut self) -> io::Result<()> {
        if !self.block.is_empty() {
            self.send()?;
        }
        self.tx = None;
        Ok(())
    }
}

impl Write for BlockSender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.block.extend_from_slice(buf);
        if self.block.len() >= BLOCK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
                .set(self.dir.join(staging_name()).join("report.json").exists());
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
        let watcher = Watcher {
            dir: dir.path().to_path_buf(),
            saw_temp: Cell::new(false),
        };
        let report = fixture::report();
        let staging = Staging::create(dir.path().join(staging_name())).unwrap();
        let s = stage(staging.path(), "report.json", |out| {
            watcher.write(&report, out)
        })
        .unwrap();
        assert!(
            watcher.saw_temp.get(),
            "the writer writes to the staged file"
        );
        assert_eq!(s.tmp, staging.path().join("report.json"));
        assert!(s.tmp.exists() && !dir.path().join("report.json").exists());
        drop(staging);
        assert!(names_in(dir.path()).is_empty(), "the staging folder goes");
    }

    #[test]
    fn a_rerun_with_fewer_formats_leaves_no_file_of_the_last_run() {
        let dir = tempfile::tempdir().unwrap();
        write_report_dir(&fixture::report(), dir.path(), &[Format::Json, Format::Csv]).unwrap();
        // The user's own files, and one an older version listed in its sums.
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        fs::write(dir.path().join("events.csv.bak"), "mine too").unwrap();
        fs::write(dir.path().join("report.html"), "<html>").unwrap();
        let mut sums = fs::read_to_string(dir.path().join(SUMS_FILE)).unwrap();
        sums.push_str(&format!("{}  report.html\n", "0".repeat(64)));
        sums.push_str(&format!("{}  ../outside.txt\n", "0".repeat(64)));
        fs::write(dir.path().join(SUMS_FILE), sums).unwrap();

        write_report_dir(&fixture::report(), dir.path(), &[Format::Json]).unwrap();
        assert_eq!(
            names_in(dir.path()),
            ["SHA256SUMS", "events.csv.bak", "notes.txt", "report.json"]
        );
        let sums = fs::read_to_string(dir.path().join(SUMS_FILE)).unwrap();
        assert_eq!(sums.lines().count(), 1, "{sums}");

        write_report_dir(&fixture::report(), dir.path(), &[Format::Csv]).unwrap();
        assert_eq!(
            names_in(dir.path()),
            [
                "SHA256SUMS",
                "accounts.csv",
                "events.csv",
                "events.csv.bak",
                "findings.csv",
                "notes.txt",
                "sessions.csv"
            ]
        );
    }

    #[test]
    fn a_killed_runs_staging_folder_is_removed_by_the_next_check() {
        let dir = tempfile::tempdir().unwrap();
        // No process has pid 4294967295 (above Linux's pid_max).
        let stale = dir.path().join(format!("{STAGING_PREFIX}4294967295"));
        fs::create_dir_all(&stale).unwrap();
        fs::write(stale.join("report.json"), "{").unwrap();
        let other = dir.path().join(format!("{STAGING_PREFIX}not-a-pid"));
        fs::create_dir_all(&other).unwrap();
        check_output_dir(dir.path()).unwrap();
        if cfg!(target_os = "linux") {
            assert!(!stale.exists());
        }
        assert!(other.exists(), "only what this tool names by pid goes");
    }

    #[test]
    fn sums_parse_back() {
        let text = sums_text(
            [
                ("b.csv", "ab".repeat(32).as_str()),
                ("a.json", "CD".repeat(32).as_str()),
            ]
            .into_iter(),
        );
        let parsed = parse_sums(&text).unwrap();
        assert_eq!(parsed[0], ("a.json".to_string(), "cd".repeat(32)));
        assert_eq!(parsed.len(), 2);
        assert!(parse_sums("xyz  a.json\n").is_none());
        assert!(parse_sums(&format!("{}  \n", "0".repeat(64))).is_none());
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
