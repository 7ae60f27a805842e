//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

mod ci;
pub use ci::cannot_run;

/// The repository root; `SCRIBE_TEST_ROOT` overrides it where test binaries run away from their
/// build tree (the GPU pack, whose run.sh points it at the pack's models/).
pub fn root() -> PathBuf {
    std::env::var_os("SCRIBE_TEST_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The environment every `scribe transcribe` a test starts gets unless it says otherwise:
/// alignment models only from local files (the hub and torch.hub offline, an empty TORCH_HOME),
/// so no test reaches the network for the default English model.
pub const OFFLINE_ALIGNMENT: [(&str, &str); 2] =
    [("HF_HUB_OFFLINE", "1"), ("TORCH_HOME", "/nonexistent/scribe-tests/torch-home")];

/// `../shared/data/speech/NAME`, as CI lays it out beside the clone (`SCRIBE_SPEECH_DIR`
/// overrides the directory).
pub fn speech(name: &str) -> PathBuf {
    match std::env::var_os("SCRIBE_SPEECH_DIR") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => root().join("../shared/data/speech").join(name),
    }
}

/// `models/NAME`, or None (with a note; a failure under CI) when `models/fetch NAME` has not run.
pub fn model_dir(name: &str) -> Option<PathBuf> {
    let dir = root().join("models").join(name);
    if dir.join(".complete").is_file() {
        Some(dir)
    } else {
        cannot_run(&format!("run models/fetch {name}"));
        None
    }
}

/// Whether this CPU computes bf16 products (AVX-512 BF16), what the bf16 defaults need. CI's
/// CPUs do: there a CPU without them fails the test rather than leave the bf16 path untested.
pub fn bf16_products() -> bool {
    let yes = scribe::backend::cpu::bf16::bf16_available();
    assert!(yes || std::env::var_os("CI").is_none(), "CI's CPUs have AVX-512 BF16; this one does not");
    yes
}

/// Lowercase words with punctuation removed (enough for English reference sentences).
pub fn normalize(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect::<String>())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate of `hyp` against `reference` (Levenshtein distance over words / reference length).
pub fn wer(reference: &str, hyp: &str) -> f64 {
    let (r, h) = (normalize(reference), normalize(hyp));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut cur = vec![i; h.len() + 1];
        for j in 1..=h.len() {
            let sub = prev[j - 1] + usize::from(r[i - 1] != h[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[h.len()] as f64 / r.len().max(1) as f64
}

/// The manifest's reference text for a recording.
pub fn reference_text(file: &str) -> Option<String> {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(speech("manifest.json")).ok()?).ok()?;
    manifest.as_array()?.iter().find(|e| e["file"] == file)?["text"].as_str().map(str::to_owned)
}

/// The first CUDA GPU as a device; where there is none, `cannot_run` (a failure under CI=true)
/// and None.
#[cfg(feature = "cuda-backend")]
pub fn cuda_device() -> Option<scribe::backend::Device> {
    match scribe::backend::cuda::CudaBackend::new(0) {
        Ok(b) => Some(scribe::backend::Device::new(std::sync::Arc::new(b))),
        Err(reason) => {
            cannot_run(&format!("no CUDA device ({reason})"));
            None
        }
    }
}
