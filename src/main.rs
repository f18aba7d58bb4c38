//! The binary: parse the command line, build a Config, run, map the result to an exit code.

mod cli;
mod demo;
mod run;
mod terminal;

use clap::Parser;

/// Per-thread free lists instead of glibc's arenas: a scan allocates and frees
/// a few buffers per AWS call on every worker thread (BENCHMARKS.md, issue 16).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = cli::Cli::parse();
    quiet_panics();
    // A crash outside an account's task (those are caught where they run, and
    // make their account failed) leaves no report: it is never a success.
    let code = std::panic::catch_unwind(|| run::main(cli)).unwrap_or(run::exit::INCOMPLETE);
    std::process::exit(code);
}

/// A panic is a bug: one line that says so and where, not a backtrace for the
/// user (unless RUST_BACKTRACE asks for one).
fn quiet_panics() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "ssm-session-audit: internal error (a bug, please report it): {}{at}",
            ssm_session_audit::report::sanitize_terminal(&what)
        );
    }));
}
