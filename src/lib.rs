//! ssm-session-audit: organization-wide Session Manager activity from CloudTrail.
//!
//! The library holds the whole pipeline; the binary (`src/main.rs`) only parses the
//! command line, builds a [`config::Config`], runs it and maps the result to an exit code.

pub mod call;
pub mod chain;
pub mod config;
pub mod event;
pub mod failpoint;
pub mod ids;
pub mod model;
pub mod org;
pub mod progress;
pub mod regions;
pub mod report;
pub mod rules;
pub mod scan;
pub mod session;
pub mod source;
pub mod ssm;
pub mod templates;

/// The trail-file source, where it always was for callers of the library.
pub use source::trail;
