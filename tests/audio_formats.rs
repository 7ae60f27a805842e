//! Every container and codec users upload decodes to the same speech: the fixtures in
//! tests/data/formats (samples/hello.wav re-encoded by make_fixtures.sh: MP3, M4A/AAC, Ogg Vorbis,
//! WebM Vorbis, MKV FLAC, an MP4 video with an AAC track, Ogg Opus and WebM Opus) match the
//! WAV's length and loudness envelope and transcribe to the same words; damaged Opus is an error
//! or a warning, never a crash; and the damaged corpus (tests/data/formats/corpus,
//! make_corpus.py) never panics the decoder.

mod common;

use std::path::{Path, PathBuf};

use common::{model_dir, root, wer};
use scribe::audio::decode::decode_bytes;
use scribe::audio::load_audio;
use scribe::models::whisper::transcribe::{transcribe, TranscribeOptions};
use scribe::models::whisper::Whisper;

const FIXTURES: [&str; 6] = ["hello.mp3", "hello.m4a", "hello.ogg", "hello.webm", "hello.mkv", "hello-video.mp4"];
/// Opus in Ogg and in WebM: what browsers and phone apps record.
const OPUS_FIXTURES: [&str; 2] = ["hello.opus", "hello-opus.webm"];

/// Every fixture.
fn decodable() -> Vec<&'static str> {
    FIXTURES.iter().chain(&OPUS_FIXTURES).copied().collect()
}
/// samples/README.md: what espeak-ng was asked to say.
const SPOKEN: &str = "Hello, and welcome. This recording was made to test the speech recognition engine.";
/// Samples per envelope frame (20 ms at 16 kHz).
const FRAME: usize = 320;

fn formats() -> PathBuf {
    root().join("tests/data/formats")
}

/// RMS of each 20 ms frame.
fn envelope(x: &[f32]) -> Vec<f64> {
    x.chunks(FRAME).map(|c| (c.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / c.len() as f64).sqrt()).collect()
}

/// Best normalised correlation of two envelopes over lags of ±10 frames (codec delay and padding).
fn best_correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    (-10isize..=10)
        .map(|lag| {
            let pairs: Vec<(f64, f64)> = (0..n)
                .filter_map(|i| {
                    let j = i as isize + lag;
                    (j >= 0 && (j as usize) < b.len()).then(|| (a[i], b[j as usize]))
                })
                .collect();
            let (ma, mb) = (
                pairs.iter().map(|p| p.0).sum::<f64>() / pairs.len() as f64,
                pairs.iter().map(|p| p.1).sum::<f64>() / pairs.len() as f64,
            );
            let cov: f64 = pairs.iter().map(|p| (p.0 - ma) * (p.1 - mb)).sum();
            let va: f64 = pairs.iter().map(|p| (p.0 - ma).powi(2)).sum();
            let vb: f64 = pairs.iter().map(|p| (p.1 - mb).powi(2)).sum();
            cov / (va * vb).sqrt()
        })
        .fold(f64::MIN, f64::max)
}

#[test]
fn every_container_decodes_to_the_same_speech() {
    let reference = load_audio(&root().join("samples/hello.wav")).unwrap();
    let want = envelope(&reference);
    for name in decodable() {
        let audio = load_audio(&formats().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let seconds = audio.len() as f64 / 16_000.0;
        let ref_seconds = reference.len() as f64 / 16_000.0;
        // Lossy codecs pad to whole frames (and AAC adds priming): up to ~0.1 s longer.
        assert!((seconds - ref_seconds).abs() < 0.15, "{name}: {seconds:.3} s vs {ref_seconds:.3} s");
        // Stereo fixtures carry the mono signal at full level on both channels; their average
        // must keep the WAV's loudness.
        let (got_rms, want_rms) = (envelope(&audio).iter().sum::<f64>(), want.iter().sum::<f64>());
        assert!((got_rms / want_rms - 1.0).abs() < 0.2, "{name}: loudness {got_rms:.1} vs {want_rms:.1}");
        let c = best_correlation(&want, &envelope(&audio));
        eprintln!("{name}: {seconds:.3} s, envelope correlation {c:.4}");
        assert!(c > 0.95, "{name}: envelope correlation {c}");
    }
}

#[test]
fn every_container_transcribes_to_the_same_words() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let model = Whisper::load(&dir, scribe::backend::Device::cpu()).unwrap();
    let options = TranscribeOptions::default();
    for name in std::iter::once("../../../samples/hello.wav").chain(decodable()) {
        let audio = load_audio(&formats().join(name)).unwrap();
        let t = transcribe(&model, &audio, &options, &mut |_, _| {}).unwrap();
        let text: String = t.segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
        let e = wer(SPOKEN, &text);
        eprintln!("{name}: {text:?} (WER {:.1} %)", 100.0 * e);
        assert!(e <= 0.15, "{name}: {text:?}");
    }
}

#[test]
fn damaged_opus_is_an_error_or_a_shorter_stream_never_a_crash() {
    for name in OPUS_FIXTURES {
        let bytes = std::fs::read(formats().join(name)).unwrap();
        let whole = decode_bytes(bytes.clone(), Path::new(name)).unwrap().len();
        // Cut short, and with bytes flipped all over its packets.
        let half = decode_bytes(bytes[..bytes.len() / 2].to_vec(), Path::new(name));
        assert!(half.as_ref().is_ok_and(|a| a.len() < whole) || half.is_err(), "{name}");
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..40 {
            let mut damaged = bytes.clone();
            for _ in 0..16 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = 200 + (seed as usize) % (damaged.len() - 200);
                damaged[i] = (seed >> 32) as u8;
            }
            // A panic inside a demuxer or the decoder is caught and reported naming the file
            // (symphonia's Matroska reader does panic on some damaged WebM).
            if let Err(e) = decode_bytes(damaged, Path::new(name)) {
                assert!(e.to_string().contains(name), "{e}");
            }
        }
    }
}

#[test]
fn the_damaged_corpus_never_panics_the_decoder() {
    let dir = formats().join("corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 60, "{} corpus files", files.len());
    let (mut ok, mut errors, mut crashes) = (0, 0, 0);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let name = Path::new(path.file_name().unwrap());
        // A panic inside symphonia is caught by decode_bytes and reported as an error naming the
        // file (some malformed Matroska headers do panic there); a panic escaping here fails.
        match decode_bytes(bytes, name) {
            Ok(_) => ok += 1,
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(&*name.to_string_lossy()), "{}: {msg}", path.display());
                crashes += usize::from(msg.contains("decoder crashed"));
                errors += 1;
            }
        }
    }
    eprintln!("corpus: {ok} decoded, {errors} clear errors ({crashes} of them caught decoder panics)");
}
