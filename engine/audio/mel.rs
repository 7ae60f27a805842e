//! Whisper's log-mel spectrogram, as openai/whisper `audio.py` computes it:
//! periodic Hann(`N_FFT`) frames every `HOP_LENGTH` samples over the audio reflect-padded by
//! `N_FFT / 2` on both sides (torch.stft `center=True`), the last frame dropped, power `|X|^2` on
//! `N_FREQS` bins, Slaney mel filters ([`super::filters`]), `log10(max(mel, 1e-10))`, floored at
//! (global max - 8), then `(x + 4) / 4`.
//!
//! The FFT, power and filterbank run in f64 (the reference runs in f32; f64 keeps our error well
//! below its own rounding), frames are spread over all cores with rayon.

use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::audio::filters::mel_filters;
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

/// Power floor before the log (openai clamps at 1e-10).
const LOG_FLOOR: f64 = 1e-10;
/// Dynamic range kept below the loudest value, in log10 units (80 dB).
const DYNAMIC_RANGE: f32 = 8.0;
/// Frames per rayon task: big enough to amortise the per-task FFT scratch.
const FRAMES_PER_TASK: usize = 64;

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
    log_mel(audio, n_mels, audio.len() + N_SAMPLES)
}

/// One Whisper window: the clip zero-padded (or truncated, as Hugging Face's feature extractor does)
/// to exactly `N_SAMPLES` → `[n_mels, N_FRAMES]`. For clips up to 30 s minus a frame this equals the
/// first `N_FRAMES` of [`log_mel_spectrogram`] (the frames past 30 s only hold padding).
pub fn log_mel_window(audio: &[f32], n_mels: usize) -> Result<Mel> {
    let clip = &audio[..audio.len().min(N_SAMPLES)];
    log_mel(clip, n_mels, N_SAMPLES)
}

/// Log-mel of `audio` zero-padded at the end to `padded_len` (>= audio.len(), > N_FFT / 2).
fn log_mel(audio: &[f32], n_mels: usize, padded_len: usize) -> Result<Mel> {
    let filters = mel_filters(n_mels)?;
    let signal = PaddedSignal { audio, len: padded_len };
    // A centred STFT gives 1 + len / HOP frames; openai drops the last one.
    let n_frames = padded_len / HOP_LENGTH;

    // Frame-major log10 mel energies, [n_frames, n_mels].
    let mut log_frames = vec![0.0f32; n_frames * n_mels];
    log_frames.par_chunks_mut(FRAMES_PER_TASK * n_mels).enumerate().for_each_init(
        FrameWorker::new,
        |worker, (task, chunk)| {
            for (i, out) in chunk.chunks_exact_mut(n_mels).enumerate() {
                worker.frame(&signal, task * FRAMES_PER_TASK + i);
                filters.apply(&worker.power, &mut worker.mel);
                for (o, &e) in out.iter_mut().zip(&worker.mel) {
                    *o = e.max(LOG_FLOOR).log10() as f32;
                }
            }
        },
    );

    let max = log_frames.par_iter().copied().reduce(|| f32::NEG_INFINITY, f32::max);
    let floor = max - DYNAMIC_RANGE;
    let mut data = vec![0.0f32; n_mels * n_frames];
    data.par_chunks_mut(n_frames.max(1)).enumerate().for_each(|(m, row)| {
        for (t, v) in row.iter_mut().enumerate() {
            *v = (log_frames[t * n_mels + m].max(floor) + 4.0) / 4.0;
        }
    });
    Ok(Mel { n_mels, n_frames, data })
}

/// The audio followed by zeros up to `len`, read with torch.stft's centre reflect padding.
struct PaddedSignal<'a> {
    audio: &'a [f32],
    len: usize,
}

impl PaddedSignal<'_> {
    /// Sample at position `i` of the reflect-padded signal, `i` in `-N_FFT/2 .. len + N_FFT/2`
    /// (as `i + N_FFT/2`): reflection excludes the edge sample, like numpy/torch "reflect".
    fn at(&self, i: isize) -> f32 {
        let len = self.len as isize;
        let j = if i < 0 {
            -i
        } else if i >= len {
            2 * (len - 1) - i
        } else {
            i
        };
        self.audio.get(j as usize).copied().unwrap_or(0.0)
    }
}

/// Per-thread FFT state.
struct FrameWorker {
    fft: Arc<dyn Fft<f64>>,
    buf: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    power: Vec<f64>,
    mel: Vec<f64>,
}

impl FrameWorker {
    fn new() -> Self {
        let fft = fft_plan();
        let scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
        FrameWorker {
            fft,
            buf: vec![Complex::default(); N_FFT],
            scratch,
            power: vec![0.0; N_FREQS],
            mel: vec![0.0; 128],
        }
    }

    /// Power spectrum of frame `t` (centred on sample `t * HOP_LENGTH`) into `self.power`.
    fn frame(&mut self, signal: &PaddedSignal, t: usize) {
        let window = hann_window();
        let start = (t * HOP_LENGTH) as isize - (N_FFT / 2) as isize;
        let inside = start >= 0 && start as usize + N_FFT <= signal.audio.len().min(signal.len);
        // Frames wholly in the zero padding (most of a window for a short clip) have zero power.
        let silent = start >= signal.audio.len() as isize && start + N_FFT as isize <= signal.len as isize;
        if silent {
            self.power.fill(0.0);
            return;
        }
        if inside {
            let s = start as usize;
            for ((b, &x), &w) in self.buf.iter_mut().zip(&signal.audio[s..s + N_FFT]).zip(window) {
                *b = Complex::new(x as f64 * w, 0.0);
            }
        } else {
            for (n, (b, &w)) in self.buf.iter_mut().zip(window).enumerate() {
                *b = Complex::new(signal.at(start + n as isize) as f64 * w, 0.0);
            }
        }
        self.fft.process_with_scratch(&mut self.buf, &mut self.scratch);
        for (p, x) in self.power.iter_mut().zip(&self.buf) {
            *p = x.norm_sqr();
        }
    }
}

fn fft_plan() -> Arc<dyn Fft<f64>> {
    static PLAN: OnceLock<Arc<dyn Fft<f64>>> = OnceLock::new();
    PLAN.get_or_init(|| FftPlanner::new().plan_fft_forward(N_FFT)).clone()
}

/// Periodic Hann window of length N_FFT (torch.hann_window's default): `0.5 - 0.5 cos(2 pi n / N)`.
fn hann_window() -> &'static [f64] {
    static WINDOW: OnceLock<Vec<f64>> = OnceLock::new();
    WINDOW.get_or_init(|| {
        (0..N_FFT).map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_whisper() {
        assert_eq!((N_SAMPLES, N_FRAMES, N_FREQS), (480_000, 3000, 201));
    }

    #[test]
    fn reflect_padding_matches_numpy() {
        let audio = [1.0, 2.0, 3.0];
        let s = PaddedSignal { audio: &audio, len: 5 }; // [1 2 3 0 0]
        let got: Vec<f32> = (-3..8).map(|i| s.at(i)).collect();
        // np.pad([1,2,3,0,0], 3, "reflect")
        assert_eq!(got, [0.0, 3.0, 2.0, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 3.0, 2.0]);
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
