//! The `siplab` executable: CLI, supervisor, workers, timer and ctl processes.

mod app;
mod cli;
mod ctl;
mod log;
mod net;
mod supervisor;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if cli.version {
        println!("siplab {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    eprintln!("siplab: the proxy is not built yet (it arrives with the process-model issue)");
    std::process::exit(2);
}
