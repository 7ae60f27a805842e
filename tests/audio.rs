//! engine/audio: decoding, resampling and Whisper's log-mel, against real recordings, hand-written
//! WAV files, WhisperX's shipped filterbank and an independent numpy reference.

use std::path::{Path, PathBuf};

use scribe::audio::filters::mel_filters;
use scribe::audio::mel::{log_mel_spectrogram, log_mel_window, N_FRAMES, N_FREQS, N_SAMPLES};
use scribe::audio::resample::{output_len, resample_to_16k};
use scribe::audio::{decode_bytes, load_audio, AudioFeatures, HopPeaks, MelStream};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn speech(name: &str) -> PathBuf {
    root().join("../shared/data/speech").join(name)
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

fn tmp_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

// ---------- hand-written WAV files ----------

/// Sample encodings of a canonical WAV `fmt ` chunk.
#[derive(Clone, Copy, Debug)]
enum Encoding {
    U8,
    I16,
    I24,
    I32,
    F32,
}

impl Encoding {
    fn bits(self) -> u16 {
        match self {
            Encoding::U8 => 8,
            Encoding::I16 => 16,
            Encoding::I24 => 24,
            Encoding::I32 | Encoding::F32 => 32,
        }
    }

    /// Encode `k / 128` (k in -128..=127), a value every encoding holds exactly.
    fn encode(self, k: i32, out: &mut Vec<u8>) {
        match self {
            Encoding::U8 => out.push((k + 128) as u8),
            Encoding::I16 => out.extend_from_slice(&((k << 8) as i16).to_le_bytes()),
            Encoding::I24 => out.extend_from_slice(&(k << 16).to_le_bytes()[..3]),
            Encoding::I32 => out.extend_from_slice(&(k << 24).to_le_bytes()),
            Encoding::F32 => out.extend_from_slice(&(k as f32 / 128.0).to_le_bytes()),
        }
    }
}

/// A WAV file with `frames[i][c]` = k (the sample value is k / 128), written field by field.
/// `declared_frames` lets a test announce more data than it writes (a truncated file).
fn wav(enc: Encoding, rate: u32, channels: u16, frames: &[Vec<i32>], declared_frames: Option<usize>) -> Vec<u8> {
    let mut data = Vec::new();
    for frame in frames {
        for &k in frame {
            enc.encode(k, &mut data);
        }
    }
    let block_align = channels * enc.bits() / 8;
    let data_len = declared_frames.map_or(data.len(), |n| n * block_align as usize) as u32;
    let format_tag: u16 = if matches!(enc, Encoding::F32) { 3 } else { 1 };
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&format_tag.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * block_align as u32).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&enc.bits().to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// A ramp over every 8-bit level, repeated: 1024 frames of k in -128..=127.
fn levels(n: usize) -> Vec<i32> {
    (0..n).map(|i| (i % 256) as i32 - 128).collect()
}

// ---------- decoding ----------

#[test]
fn jfk_flac_decodes_to_16k_mono_11s() {
    // jfk.flac is 44.1 kHz stereo 24-bit FLAC: 485 100 frames -> exactly 176 000 at 16 kHz.
    let audio = load_audio(&speech("jfk.flac")).unwrap();
    assert_eq!(audio.len(), 176_000);
    assert!(audio.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
    let level = rms(&audio);
    assert!(level > 0.01 && level < 0.5, "rms {level}");
}

#[test]
fn lj_wav_22k_is_resampled_to_16k() {
    // 168 861 frames at 22.05 kHz -> round(168861 * 16000 / 22050) = 122 530.
    let audio = load_audio(&speech("LJ050-0131.wav")).unwrap();
    assert_eq!(audio.len(), 122_530);
    assert_eq!(output_len(168_861, 22_050), 122_530);
    assert!(rms(&audio) > 0.01);
}

#[test]
fn wav_16k_is_read_exactly() {
    // two_speakers.wav is already 16 kHz mono int16: samples are k / 32768, untouched.
    let audio = load_audio(&speech("two_speakers.wav")).unwrap();
    assert_eq!(audio.len(), 480_000);
    assert!(audio.iter().all(|&v| (v * 32768.0).fract() == 0.0));
}

#[test]
fn every_pcm_encoding_decodes_to_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let ks = levels(1024);
    let expected: Vec<f32> = ks.iter().map(|&k| k as f32 / 128.0).collect();
    for enc in [Encoding::U8, Encoding::I16, Encoding::I24, Encoding::I32, Encoding::F32] {
        let frames: Vec<Vec<i32>> = ks.iter().map(|&k| vec![k]).collect();
        let path = tmp_file(&dir, &format!("{enc:?}.wav"), &wav(enc, 16_000, 1, &frames, None));
        let audio = load_audio(&path).unwrap_or_else(|e| panic!("{enc:?}: {e}"));
        assert_eq!(audio, expected, "{enc:?}");
    }
}

#[test]
fn channels_are_averaged_to_mono() {
    let dir = tempfile::tempdir().unwrap();
    let ks = levels(1024);
    for enc in [Encoding::I16, Encoding::I24, Encoding::F32] {
        // Stereo (k, -k) cancels; (k, 0) halves.
        let ks_sym: Vec<i32> = ks.iter().map(|&k| k.max(-127)).collect();
        let cancel: Vec<Vec<i32>> = ks_sym.iter().map(|&k| vec![k, -k]).collect();
        let path = tmp_file(&dir, "cancel.wav", &wav(enc, 16_000, 2, &cancel, None));
        assert!(load_audio(&path).unwrap().iter().all(|&v| v == 0.0), "{enc:?} cancel");
        let half: Vec<Vec<i32>> = ks.iter().map(|&k| vec![k, 0]).collect();
        let path = tmp_file(&dir, "half.wav", &wav(enc, 16_000, 2, &half, None));
        let audio = load_audio(&path).unwrap();
        for (&k, &v) in ks.iter().zip(&audio) {
            assert_eq!(v, k as f32 / 256.0, "{enc:?} k={k}");
        }
        // Six channels all carrying the same signal average back to it.
        let same: Vec<Vec<i32>> = ks.iter().map(|&k| vec![k; 6]).collect();
        let path = tmp_file(&dir, "six.wav", &wav(enc, 16_000, 6, &same, None));
        let audio = load_audio(&path).unwrap();
        assert_eq!(audio.len(), ks.len());
        for (&k, &v) in ks.iter().zip(&audio) {
            assert!((v - k as f32 / 128.0).abs() < 1e-6, "{enc:?} six channels k={k}: {v}");
        }
    }
}

#[test]
fn truncated_data_keeps_what_was_decoded() {
    // The header announces 8000 frames; only 5000 are there: accepted (with a warning).
    let dir = tempfile::tempdir().unwrap();
    let frames: Vec<Vec<i32>> = levels(5000).into_iter().map(|k| vec![k]).collect();
    let path = tmp_file(&dir, "short.wav", &wav(Encoding::I16, 16_000, 1, &frames, Some(8000)));
    let audio = load_audio(&path).unwrap();
    assert_eq!(audio.len(), 5000);
}

#[test]
fn truncated_flac_keeps_what_was_decoded() {
    // Half of jfk.flac (cut mid-frame): the complete frames before the cut decode, the rest is lost.
    let bytes = std::fs::read(speech("jfk.flac")).unwrap();
    let half = bytes[..bytes.len() / 2].to_vec();
    let audio = decode_bytes(half, Path::new("jfk-half.flac")).unwrap();
    eprintln!("half of jfk.flac: {} samples", audio.len());
    assert!(audio.len() > 40_000 && audio.len() < 150_000, "{} samples", audio.len());
    let full = load_audio(&speech("jfk.flac")).unwrap();
    // Same samples as the whole file, away from the resampler's flush at the cut.
    let n = audio.len() - 1000;
    assert!(max_abs_diff(&audio[..n], &full[..n]) < 1e-6);
}

/// Decode in-memory bytes, returning the samples and what the decoder reported.
fn decode_with_report(bytes: Vec<u8>, name: &str) -> scribe::Result<(Vec<f32>, scribe::audio::DecodeReport)> {
    let mut out = Vec::new();
    let report =
        scribe::audio::decode::stream_source(Box::new(std::io::Cursor::new(bytes)), Path::new(name), &mut |s| {
            out.extend_from_slice(s);
            Ok(())
        })?;
    Ok((out, report))
}

#[test]
fn truncated_files_say_so_in_the_report() {
    // WAV: the header announces 8000 frames, 5000 are there.
    let frames: Vec<Vec<i32>> = levels(5000).into_iter().map(|k| vec![k]).collect();
    let (audio, report) = decode_with_report(wav(Encoding::I16, 16_000, 1, &frames, Some(8000)), "short.wav").unwrap();
    assert_eq!(audio.len(), 5000);
    assert!(report.warnings.iter().any(|w| w.contains("truncated") && w.contains("0.5 s")), "{report:?}");
    // FLAC: STREAMINFO holds the total; half the file decodes with a warning.
    let flac = std::fs::read(speech("jfk.flac")).unwrap();
    let (_, report) = decode_with_report(flac[..flac.len() / 2].to_vec(), "jfk-half.flac").unwrap();
    assert!(report.warnings.iter().any(|w| w.contains("truncated")), "{report:?}");
    // MP3 (LAME's Info frame holds the frame count).
    let mp3 = std::fs::read(root().join("tests/data/formats/hello.mp3")).unwrap();
    let (_, report) = decode_with_report(mp3[..mp3.len() * 6 / 10].to_vec(), "hello-cut.mp3").unwrap();
    assert!(report.warnings.iter().any(|w| w.contains("truncated")), "{report:?}");
    // Whole files report nothing.
    for (bytes, name) in [(flac, "jfk.flac"), (mp3, "hello.mp3")] {
        let (_, report) = decode_with_report(bytes, name).unwrap();
        assert!(report.warnings.is_empty(), "{name}: {report:?}");
    }
}

#[test]
fn absurd_header_values_are_clear_errors_not_allocations() {
    let dir = tempfile::tempdir().unwrap();
    // 20 KB of samples under a header claiming 999 999 937 Hz: before the check, the resampler's
    // FFT chunk came from the rate (8 GB) and the process aborted.
    let frames: Vec<Vec<i32>> = levels(10_000).into_iter().map(|k| vec![k]).collect();
    for rate in [999_999_937u32, 100_000_007, 10_000_019, 384_001, 999, 1] {
        let path = tmp_file(&dir, &format!("rate{rate}.wav"), &wav(Encoding::I16, rate, 1, &frames, None));
        let msg = load_audio(&path).unwrap_err().to_string();
        assert!(msg.contains(&format!("sample rate {rate} Hz")) && msg.contains(&format!("rate{rate}.wav")), "{msg}");
        // The header alone tells: probe refuses it too.
        assert!(scribe::audio::probe(&path).is_err(), "{rate}");
    }
    // Channels: WAV's fmt chunk allows 65 535; no recording has more than 32.
    let mut many = wav(Encoding::I16, 16_000, 1, &frames, None);
    many[22..24].copy_from_slice(&1000u16.to_le_bytes());
    let path = tmp_file(&dir, "channels.wav", &many);
    let msg = load_audio(&path).unwrap_err().to_string();
    assert!(msg.contains("channels.wav"), "{msg}");
    // Bit depths a PCM header cannot hold.
    for bits in [0u16, 7, 128] {
        let mut odd = wav(Encoding::I16, 16_000, 1, &frames, None);
        odd[34..36].copy_from_slice(&bits.to_le_bytes());
        let path = tmp_file(&dir, &format!("bits{bits}.wav"), &odd);
        let msg = load_audio(&path).unwrap_err().to_string();
        assert!(msg.contains(&format!("bits{bits}.wav")), "{msg}");
    }
}

#[test]
fn rates_at_the_edges_decode_with_the_right_length() {
    // A prime rate (its reduced ratio is the rate itself: the sinc path) and the range's ends.
    let dir = tempfile::tempdir().unwrap();
    for rate in [383_987u32, 384_000, 1_000, 44_099] {
        let frames: Vec<Vec<i32>> = levels(rate as usize / 2).into_iter().map(|k| vec![k]).collect();
        let path = tmp_file(&dir, &format!("r{rate}.wav"), &wav(Encoding::I16, rate, 1, &frames, None));
        let audio = load_audio(&path).unwrap();
        assert_eq!(audio.len() as u64, output_len(rate as u64 / 2, rate), "{rate}");
    }
}

#[test]
fn probe_reads_the_declared_duration() {
    let dir = tempfile::tempdir().unwrap();
    // A header declaring ten hours at 16 kHz over a few samples.
    let frames: Vec<Vec<i32>> = levels(100).into_iter().map(|k| vec![k]).collect();
    let path = tmp_file(&dir, "long.wav", &wav(Encoding::I16, 16_000, 1, &frames, Some(36_000 * 16_000)));
    let info = scribe::audio::probe(&path).unwrap();
    assert_eq!(info.duration(), Some(36_000.0));
    let info = scribe::audio::probe(&speech("jfk.flac")).unwrap();
    assert_eq!((info.sample_rate, info.channels, info.frames), (Some(44_100), Some(2), Some(485_100)));
}

#[test]
fn wav_with_no_frames_is_empty_audio() {
    let dir = tempfile::tempdir().unwrap();
    let path = tmp_file(&dir, "empty.wav", &wav(Encoding::I16, 16_000, 1, &[], None));
    assert_eq!(load_audio(&path).unwrap(), Vec::<f32>::new());
}

fn assert_err_names(path: &Path, what: &str) {
    let err = load_audio(path).expect_err(what);
    let msg = err.to_string();
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(msg.contains(&*name), "{what}: error does not name the file: {msg}");
    eprintln!("{what}: {msg}");
}

#[test]
fn bad_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    assert_err_names(&tmp_file(&dir, "zero.wav", &[]), "zero-byte file");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    assert_err_names(&tmp_file(&dir, "noise.wav", &noise), "random bytes");
    assert_err_names(&tmp_file(&dir, "noise.bin", &noise), "random bytes, no extension hint");
    let good = wav(Encoding::I16, 16_000, 1, &[vec![1], vec![2]], None);
    assert_err_names(&tmp_file(&dir, "header.wav", &good[..20]), "truncated header");
    assert_err_names(&tmp_file(&dir, "notes.txt", b"just some text, not audio at all\n"), "text file");
    assert_err_names(&dir.path().join("missing.wav"), "nonexistent file");
    // A codec this build does not decode (format tag 0x55: MPEG layer 3 inside WAV).
    let mut mp3_in_wav = wav(Encoding::I16, 16_000, 1, &[vec![1], vec![2]], None);
    mp3_in_wav[20..22].copy_from_slice(&0x55u16.to_le_bytes());
    assert_err_names(&tmp_file(&dir, "mp3.wav", &mp3_in_wav), "unsupported codec");
    // A header announcing frames with no data at all.
    let hollow = wav(Encoding::I16, 16_000, 1, &[], Some(1000));
    assert_err_names(&tmp_file(&dir, "hollow.wav", &hollow), "header only");
}

#[test]
fn corrupted_files_never_panic() {
    // Flip bytes all over the start of real files: decoding must return Ok or Err, never panic.
    let flac = std::fs::read(speech("jfk.flac")).unwrap();
    let wav_bytes = std::fs::read(speech("spk1_snt1.wav")).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (name, original) in [("jfk.flac", &flac[..flac.len().min(48_000)]), ("spk1_snt1.wav", &wav_bytes[..])] {
        for _ in 0..60 {
            let mut bytes = original.to_vec();
            // Mostly hit the headers, sometimes anywhere.
            let span = if next() % 2 == 0 { 256 } else { bytes.len() };
            for _ in 0..(1 + next() % 8) {
                let i = (next() as usize) % span;
                bytes[i] = next() as u8;
            }
            let cut = bytes.len() - (next() as usize % 1000);
            bytes.truncate(cut);
            let _ = decode_bytes(bytes, Path::new(name));
        }
    }
}

// ---------- resampling ----------

fn sine(freq: f64, rate: u32, n: usize, amp: f64) -> Vec<f32> {
    (0..n).map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as f32).collect()
}

/// Normalised cross-correlation of `a` and `b` shifted by `lag` over `range`.
fn xcorr(a: &[f32], b: &[f32], lag: isize, range: std::ops::Range<usize>) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for i in range {
        let (x, y) = (a[i] as f64, b[(i as isize + lag) as usize] as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt()
}

#[test]
fn resampled_sine_keeps_frequency_amplitude_and_phase() {
    for (freq, from) in [(1000.0, 44_100u32), (1000.0, 48_000), (440.0, 22_050), (3000.0, 8_000), (1000.0, 96_000)] {
        let n = from as usize * 2;
        let out = resample_to_16k(&sine(freq, from, n, 0.8), from).unwrap();
        assert_eq!(out.len() as u64, output_len(n as u64, from));
        let ideal = sine(freq, 16_000, out.len(), 0.8);
        // Skip the edges, where the filter sees the silence outside the clip.
        let mid = 2000..out.len() - 2000;
        let c0 = xcorr(&out, &ideal, 0, mid.clone());
        assert!(c0 > 0.9999, "{freq} Hz from {from}: correlation {c0}");
        let ratio = rms(&out[mid.clone()]) / rms(&ideal[mid.clone()]);
        assert!((ratio - 1.0).abs() < 0.002, "{freq} Hz from {from}: rms ratio {ratio}");
        // No delay: the cross-correlation of the output with the ideal 16 kHz sine peaks at lag 0,
        // and the sample-level error is tiny.
        let peak = (-3isize..=3)
            .max_by(|&a, &b| xcorr(&out, &ideal, a, mid.clone()).total_cmp(&xcorr(&out, &ideal, b, mid.clone())));
        assert_eq!(peak, Some(0), "{freq} Hz from {from}");
        let max_err = mid.map(|i| (out[i] - ideal[i]).abs()).fold(0.0f32, f32::max);
        eprintln!("{freq} Hz from {from} Hz: correlation {c0:.7}, rms ratio {ratio:.5}, max error {max_err:e}");
        assert!(max_err < 1e-4, "{freq} Hz from {from}: max error {max_err}");
    }
}

#[test]
fn passband_is_flat_and_alias_is_rejected() {
    let from = 44_100;
    let n = from as usize * 2;
    // 7 kHz (in Whisper's band) keeps its level; 10 kHz (above the new Nyquist) must not fold to 6 kHz.
    let pass = resample_to_16k(&sine(7000.0, from, n, 0.5), from).unwrap();
    let ratio = rms(&pass[2000..30_000]) / (0.5 / 2f64.sqrt());
    let alias = resample_to_16k(&sine(10_000.0, from, n, 0.5), from).unwrap();
    let leak = rms(&alias[2000..30_000]) / (0.5 / 2f64.sqrt());
    eprintln!("7 kHz level {ratio:.5}, 10 kHz leak {leak:e}");
    assert!((ratio - 1.0).abs() < 0.01, "7 kHz level {ratio}");
    assert!(leak < 1e-3, "10 kHz leaks {leak}");
}

#[test]
fn impulse_lands_at_the_right_time() {
    // A click at input sample 44100 (1.000 s) must peak at output sample 16000.
    let mut x = vec![0.0f32; 88_200];
    x[44_100] = 1.0;
    let y = resample_to_16k(&x, 44_100).unwrap();
    let peak = (0..y.len()).max_by(|&a, &b| y[a].total_cmp(&y[b])).unwrap();
    assert_eq!(peak, 16_000);
}

#[test]
fn wav_at_44k_stereo_is_resampled() {
    let dir = tempfile::tempdir().unwrap();
    let x = sine(1000.0, 44_100, 44_100, 0.5);
    // Write float stereo by hand from the sine (both channels equal).
    let mut bytes = wav(Encoding::F32, 44_100, 2, &[], Some(x.len()));
    for &v in &x {
        bytes.extend_from_slice(&v.to_le_bytes());
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let path = tmp_file(&dir, "stereo44k.wav", &bytes);
    let audio = load_audio(&path).unwrap();
    assert_eq!(audio.len(), 16_000);
    let ideal = sine(1000.0, 16_000, 16_000, 0.5);
    assert!(xcorr(&audio, &ideal, 0, 1000..15_000) > 0.9999);
}

// ---------- log-mel ----------

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn filterbank_matches_whisperx_mel_filters_npz() {
    // tests/data/mel_filters_{80,128}.f32: `mel_80` / `mel_128` from whisperx-3.8.6's
    // assets/mel_filters.npz, extracted by tests/reference/extract_mel_filters.py.
    for n in [80, 128] {
        let want = read_f32(&root().join(format!("tests/data/mel_filters_{n}.f32")));
        let got = mel_filters(n).unwrap().weights();
        assert_eq!(want.len(), n * N_FREQS);
        let err = max_abs_diff(got, &want);
        eprintln!("mel_{n}: max abs error {err:e}");
        assert!(err <= 1e-7, "mel_{n}: max abs error {err}");
    }
}

/// Compare our log-mel of `audio` with a numpy reference (tests/reference/make_mel_reference.py).
fn check_against_numpy(file: &str, audio: &[f32]) {
    let dir = root().join("tests/reference/data");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("mel_reference.json")).unwrap()).unwrap();
    let m = &meta[file];
    let (n_mels, stride, n_frames, kept) = (
        m["n_mels"].as_u64().unwrap() as usize,
        m["stride"].as_u64().unwrap() as usize,
        m["n_frames"].as_u64().unwrap() as usize,
        m["kept_frames"].as_u64().unwrap() as usize,
    );
    assert_eq!(audio.len() as u64, m["n_samples"].as_u64().unwrap());
    let want = read_f32(&dir.join(file));
    assert_eq!(want.len(), n_mels * kept);
    let mel = log_mel_spectrogram(audio, n_mels).unwrap();
    assert_eq!((mel.n_mels, mel.n_frames), (n_mels, n_frames));
    let got: Vec<f32> =
        (0..n_mels).flat_map(|b| mel.row(b).iter().step_by(stride).copied().collect::<Vec<_>>()).collect();
    let err = max_abs_diff(&got, &want);
    eprintln!("{file}: max abs error vs numpy {err:e} over {n_mels} x {kept} values");
    assert!(err <= 1e-4, "{file}: max abs error {err}");
}

#[test]
fn log_mel_matches_numpy_two_speakers() {
    let audio = load_audio(&speech("two_speakers.wav")).unwrap();
    check_against_numpy("two_speakers_mel80_stride20.f32", &audio);
    check_against_numpy("two_speakers_mel128_stride60.f32", &audio);
}

#[test]
fn log_mel_matches_numpy_jfk() {
    let audio = load_audio(&speech("jfk.flac")).unwrap();
    check_against_numpy("jfk_mel80_stride16.f32", &audio);
}

/// Writes the 16 kHz jfk samples the numpy jfk reference is computed from (see make_mel_reference.py).
#[test]
#[ignore]
fn dump_jfk_16k() {
    let audio = load_audio(&speech("jfk.flac")).unwrap();
    let bytes: Vec<u8> = audio.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::create_dir_all(root().join(".cache")).unwrap();
    std::fs::write(root().join(".cache/jfk_16k.f32"), bytes).unwrap();
}

#[test]
fn window_shapes_are_n_mels_by_3000() {
    let audio = load_audio(&speech("jfk.flac")).unwrap();
    for n in [80, 128] {
        let mel = log_mel_window(&audio, n).unwrap();
        assert_eq!((mel.n_mels, mel.n_frames, mel.data.len()), (n, N_FRAMES, n * N_FRAMES));
        assert!(mel.data.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn window_equals_first_3000_frames_of_the_padded_spectrogram() {
    // For a clip under 30 s, HF's pad-to-480000 and openai's pad-by-480000-then-slice agree.
    let audio = load_audio(&speech("jfk.flac")).unwrap();
    let full = log_mel_spectrogram(&audio, 80).unwrap();
    assert_eq!(full.n_frames, (audio.len() + N_SAMPLES) / 160);
    let window = log_mel_window(&audio, 80).unwrap();
    for m in 0..80 {
        assert_eq!(&full.row(m)[..N_FRAMES], window.row(m), "mel band {m}");
    }
}

#[test]
fn empty_and_tiny_audio_give_valid_mels() {
    for n in [0usize, 1, 100, 399] {
        let audio = sine(440.0, 16_000, n, 0.5);
        let window = log_mel_window(&audio, 80).unwrap();
        assert_eq!((window.n_mels, window.n_frames), (80, N_FRAMES));
        assert!(window.data.iter().all(|v| v.is_finite()));
        let full = log_mel_spectrogram(&audio, 128).unwrap();
        assert_eq!(full.n_frames, (n + N_SAMPLES) / 160);
        assert!(full.data.iter().all(|v| v.is_finite()));
    }
}

/// The mel of `audio` pushed into a [`MelStream`] in chunks of `chunk` samples.
fn streamed_mel(audio: &[f32], n_mels: usize, chunk: usize) -> scribe::audio::Mel {
    let mut stream = MelStream::new(n_mels).unwrap();
    for piece in audio.chunks(chunk) {
        stream.push(piece);
    }
    stream.finish(N_SAMPLES).to_mel()
}

#[test]
fn streamed_mel_equals_the_whole_signal_mel_bitwise_for_any_chunk_size() {
    let jfk = load_audio(&speech("jfk.flac")).unwrap();
    // Lengths around the reflection edge (N_FFT / 2), a hop, a batch of frames, and a real clip.
    let clips: Vec<Vec<f32>> =
        [0usize, 1, 200, 201, 401, 163_840, 170_000].iter().map(|&n| jfk[..n].to_vec()).chain([jfk.clone()]).collect();
    for audio in &clips {
        for n_mels in [80, 128] {
            let whole = log_mel_spectrogram(audio, n_mels).unwrap();
            for chunk in [1usize, 159, 160, 161, 1152, 44_100, 200_000] {
                if chunk == 1 && audio.len() > 20_000 {
                    continue; // one sample at a time is slow; short clips cover it
                }
                let got = streamed_mel(audio, n_mels, chunk);
                assert_eq!((got.n_mels, got.n_frames), (whole.n_mels, whole.n_frames));
                let same = got.data.iter().zip(&whole.data).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{} samples, {n_mels} mels, chunks of {chunk}: not bitwise equal", audio.len());
            }
        }
    }
}

#[test]
fn features_streamed_from_a_file_equal_those_of_its_decoded_samples() {
    for (file, n_mels) in [("jfk.flac", 80), ("two_speakers.wav", 128)] {
        let audio = load_audio(&speech(file)).unwrap();
        let streamed = AudioFeatures::from_file(&speech(file), n_mels).unwrap();
        let whole = log_mel_spectrogram(&audio, n_mels).unwrap();
        assert_eq!(streamed.n_samples, audio.len(), "{file}");
        assert_eq!(streamed.mel.to_mel(), whole, "{file}");
        let mut peaks = HopPeaks::new();
        peaks.push(&audio);
        for first in (0..whole.n_frames).step_by(97) {
            for frames in [1, 50, 3000] {
                assert_eq!(streamed.peaks.all_below(first, frames, 0.01), peaks.all_below(first, frames, 0.01));
            }
        }
    }
}

#[test]
fn features_of_a_bad_file_are_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tmp_file(&dir, "empty.wav", &[]);
    let junk = tmp_file(&dir, "junk.wav", b"this is not audio at all");
    for path in [empty, junk, dir.path().join("missing.wav")] {
        let err = AudioFeatures::from_file(&path, 80).unwrap_err().to_string();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(err.contains(name), "{err}");
    }
}
