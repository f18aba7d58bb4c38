//! Where a run's files go, one type for both places: a local folder
//! ([`super::write`]) or an S3 prefix ([`super::s3`]). The binary opens it
//! before the scan (which proves it writable), asks it for the last run
//! (`--since last`), and writes the run into it.

use chrono::{DateTime, Utc};

use super::s3::S3Evidence;
use super::{writers, Format, OutputLocation, ReportConfig, ReportError};
use crate::call::ClientSettings;
use crate::chain::LastRun;
use crate::model::Report;

pub enum Evidence {
    Dir(std::path::PathBuf),
    S3(Box<S3Evidence>),
}

/// What a write left: where, and how many files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The folder, or `s3://bucket/prefix/RUN/`.
    pub location: String,
    pub files: usize,
    /// A local report.html, to open in a browser.
    pub page: Option<std::path::PathBuf>,
}

impl Evidence {
    /// Opens the output location and proves it writable, before any scanning.
    /// `run_start` names an S3 run's folder.
    pub async fn open(
        cfg: &ReportConfig,
        clients: &ClientSettings,
        run_start: DateTime<Utc>,
    ) -> Result<Evidence, ReportError> {
        match &cfg.output {
            OutputLocation::Dir(dir) => {
                super::check_output_dir(dir)?;
                Ok(Evidence::Dir(dir.clone()))
            }
            OutputLocation::S3 { bucket, prefix } => Ok(Evidence::S3(Box::new(
                S3Evidence::open(
                    clients.s3(),
                    bucket,
                    prefix,
                    cfg.object_lock_days,
                    run_start,
                )
                .await?,
            ))),
        }
    }

    /// The last run written whole in this location, if any.
    pub async fn last_run(&self) -> Result<Option<LastRun>, ReportError> {
        match self {
            Evidence::Dir(dir) => super::last::last_run_in_dir(dir),
            Evidence::S3(s3) => s3.last_run().await,
        }
    }

    pub async fn write(&self, report: &Report, formats: &[Format]) -> Result<Written, ReportError> {
        match self {
            Evidence::Dir(dir) => {
                let files = super::write_report_dir(report, dir, formats)?;
                Ok(Written {
                    location: dir.display().to_string(),
                    files: files.len(),
                    page: files.iter().find(|p| p.ends_with("report.html")).cloned(),
                })
            }
            Evidence::S3(s3) => {
                let keys = s3.write_run(report, &writers(formats)).await?;
                Ok(Written {
                    location: s3.location(),
                    // latest.json is a pointer, not a file of the run.
                    files: keys.len().saturating_sub(1),
                    page: None,
                })
            }
        }
    }
}
