//! Whisper's log-mel spectrogram, as openai/whisper `audio.py` computes it:
//! periodic Hann(`N_FFT`) frames every `HOP_LENGTH` samples over the audio reflect-padded by
//! `N_FFT / 2` on both sides (torch.stft `center=True`), the last frame dropped, power `|X|^2` on
//! `N_FREQS` bins, Slaney mel filters ([`super::filters`]), `log10(max(mel, 1e-10))`, floored at
//! (global max - 8), then `(x + 4) / 4`.
//!
//! Frames are computed by [`super::mel_frame`], as the audio streams in by [`super::MelStream`],
//! and kept unscaled in [`super::LogMelFrames`]; the functions here are the whole-signal entry points.

use crate::audio::mel_stream::MelStream;
use crate::audio::SAMPLE_RATE;
use crate::Result;

/// STFT window and FFT length (25 ms).
pub const N_FFT: usize = 400;
/// STFT hop (10 ms): one mel frame per 160 samples.
pub const HOP_LENGTH: usize = 160;
/// Whisper's context: 30 s of audio per window.
pub const CHUNK_LENGTH: usize = 30;
/// Samples in one 30 s window (480 000).
pub const N_SAMPLES: usize = CHUNK_LENGTH * SAMPLE_RATE as usize;
/// Mel frames in one 30 s window (3000).
pub const N_FRAMES: usize = N_SAMPLES / HOP_LENGTH;
/// Frequency bins of the one-sided spectrum (201).
pub const N_FREQS: usize = N_FFT / 2 + 1;

/// A log-mel spectrogram, row-major `[n_mels, n_frames]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mel {
    pub n_mels: usize,
    pub n_frames: usize,
    pub data: Vec<f32>,
}

impl Mel {
    /// Mel band `m` across all frames.
    pub fn row(&self, m: usize) -> &[f32] {
        &self.data[m * self.n_frames..(m + 1) * self.n_frames]
    }
}

/// openai's `log_mel_spectrogram(audio, n_mels, padding=N_SAMPLES)`: the audio followed by 30 s of
/// zeros, `(len + N_SAMPLES) / HOP_LENGTH` frames; the (max - 8) floor uses the max over all of
/// them. openai's transcribe() then slides `N_FRAMES` windows over this.
pub fn log_mel_spectrogram(audio: &[f32], n_mels: usize) -> Result<Mel> {
    let mut stream = MelStream::new(n_mels)?;
    stream.push(audio);
    Ok(stream.finish(N_SAMPLES).to_mel())
}

/// One Whisper window: the clip zero-padded (or truncated, as Hugging Face's feature extractor does)
/// to exactly `N_SAMPLES` → `[n_mels, N_FRAMES]`. For clips up to 30 s minus a frame this equals the
/// first `N_FRAMES` of [`log_mel_spectrogram`] (the frames past 30 s only hold padding).
pub fn log_mel_window(audio: &[f32], n_mels: usize) -> Result<Mel> {
    let clip = &audio[..audio.len().min(N_SAMPLES)];
    let mut stream = MelStream::new(n_mels)?;
    stream.push(clip);
    Ok(stream.finish(N_SAMPLES - clip.len()).to_mel())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::filters::mel_filters;

    #[test]
    fn constants_match_whisper() {
        assert_eq!((N_SAMPLES, N_FRAMES, N_FREQS), (480_000, 3000, 201));
    }

    #[test]
    fn silence_is_constant() {
        let mel = log_mel_window(&[], 80).unwrap();
        assert_eq!((mel.n_mels, mel.n_frames), (80, N_FRAMES));
        assert!(mel.data.iter().all(|&v| v == (-10.0 + 4.0) / 4.0));
    }

    #[test]
    fn sine_peaks_in_the_right_band() {
        // 1 kHz: the band whose triangle peaks nearest 1 kHz should be the loudest.
        let x: Vec<f32> =
            (0..16_000).map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin() * 0.5).collect();
        let mel = log_mel_window(&x, 80).unwrap();
        let t = 50;
        let loudest = (0..80).max_by(|&a, &b| mel.row(a)[t].total_cmp(&mel.row(b)[t])).unwrap();
        let weights = mel_filters(80).unwrap().weights();
        let bin_1k = 1000 * N_FFT / SAMPLE_RATE as usize; // bin 25
        let best_band =
            (0..80).max_by(|&a, &b| weights[a * N_FREQS + bin_1k].total_cmp(&weights[b * N_FREQS + bin_1k])).unwrap();
        assert_eq!(loudest, best_band);
    }
}
