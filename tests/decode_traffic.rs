//! A decoding step sends only token ids and their log-probabilities to the host: decoding runs
//! on a backend that counts every byte downloaded, while token choice happens "on the device"
//! (the wrapped CPU backend, uncounted, as a GPU chooses in place). Greedy, sampling and beam
//! search, with timestamp rules, must download nothing. The GPU version of this count is in
//! tests/cuda_whisper.rs.

mod common;

#[path = "common/counting.rs"]
mod counting;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::{model_dir, speech};
use counting::Counting;
use scribe::audio::{load_audio, log_mel_window};
use scribe::models::whisper::decoding::{DecodingOptions, DecodingTask};
use scribe::models::whisper::Whisper;

#[test]
fn decoding_downloads_no_logits() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let backend = Arc::new(Counting::new(80));
    let model = Whisper::load(&dir, Counting::cpu(&backend)).unwrap();
    let audio = load_audio(&speech("jfk.flac")).unwrap();
    let mel = log_mel_window(&audio[..audio.len().min(480_000)], model.config.num_mel_bins).unwrap();
    let features = model.encode(&mel.data, 1).unwrap();
    let runs = [
        ("greedy with timestamps", DecodingOptions { without_timestamps: false, ..Default::default() }),
        ("sampling", DecodingOptions { temperature: 0.6, best_of: Some(2), seed: 7, ..Default::default() }),
        ("beam 5", DecodingOptions { beam_size: Some(5), without_timestamps: false, ..Default::default() }),
    ];
    for (name, options) in runs {
        let before = backend.downloaded.load(Ordering::Relaxed);
        let result = DecodingTask::new(&model, options).unwrap().run(&features).unwrap();
        let bytes = backend.downloaded.load(Ordering::Relaxed) - before;
        eprintln!("{name}: {:?}, {bytes} bytes downloaded", result.text);
        assert!(result.tokens.len() > 5, "{name}: {:?}", result.text);
        assert!(result.no_speech_prob.is_finite(), "{name}");
        assert_eq!(bytes, 0, "{name}: decoding downloaded {bytes} bytes besides the chosen tokens");
    }
    // The count is live: a download is seen.
    let before = backend.downloaded.load(Ordering::Relaxed);
    model.device.download(&features).unwrap();
    assert_eq!(backend.downloaded.load(Ordering::Relaxed) - before, features.numel() * 4);
}
