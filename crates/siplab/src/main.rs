//! The `siplab` executable: CLI, supervisor, workers, timer and ctl processes.

fn main() {
    eprintln!("siplab: the proxy is not built yet (it arrives with the process-model issue)");
    std::process::exit(2);
}
