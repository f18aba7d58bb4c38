//! The end-to-end tests, one binary (`autotests = false`): linking one test
//! binary instead of twelve is most of the edit-build-test loop on two cores.
//! Each module drives the real binary or the real AWS SDK against the simulated
//! organization (or moto, for the `#[ignore]`d groups that `.ci/run` runs) over
//! loopback HTTP.

#[allow(dead_code)]
mod common;

mod athena;
mod cli;
mod config_errors;
mod evidence;
mod faults;
mod hostile;
mod interrupt;
mod moto;
mod regions;
mod rules;
mod scan;
mod secrets;
mod security_hub;
mod simulator;
mod since_last;
mod ssm;
mod templates;
mod trail;
mod trail_integrity;
mod trail_scan;
