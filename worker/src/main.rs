//! RunPod serverless worker. The job loop, local API and storage come in the worker issue;
//! for now it only proves the engine links into a second binary.

fn main() {
    eprintln!(
        "scribe-worker {}: the RunPod job loop is not implemented yet; use `scribe transcribe`",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
