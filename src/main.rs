//! The binary: parse the command line, build a Config, run, map the result to an exit code.

mod cli;
mod demo;
mod run;
mod terminal;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    std::process::exit(run::main(cli));
}
