//! ssm-session-audit: organization-wide Session Manager activity from CloudTrail.
//!
//! The library holds the whole pipeline; the binary (`src/main.rs`) only parses the
//! command line, builds a [`config::Config`], runs it and maps the result to an exit code.

pub mod config;
pub mod credentials;
pub mod event;
pub mod lookup;
pub mod model;
pub mod org;
pub mod report;
pub mod retry;
pub mod rules;
pub mod scan;
pub mod securityhub;
pub mod session;
pub mod simulator;
pub mod templates;
pub mod trail;
