//! SpeechBrain's log mel filterbank (`speechbrain.lobes.features.Fbank`, its `STFT`,
//! `spectral_magnitude` and `Filterbank`) and the sentence mean normalisation
//! (`InputNormalization(norm_type="sentence", std_norm=False)`), as the pretrained interface runs
//! them before the network (`EncoderClassifier.encode_batch`: `compute_features` →
//! `mean_var_norm(feats, wav_lens)`).
//!
//! 1. STFT (`torch.stft`, `center=True`, `pad_mode="constant"`): the signal zero-padded by
//!    `n_fft / 2` on both sides, frames of `n_fft` samples every `hop` samples (1 + ⌊N / hop⌋),
//!    a periodic Hamming window of `win_length` samples (`torch.hamming_window`,
//!    `0.54 − 0.46 cos(2πn / win)`) centred in the frame.
//! 2. Power spectrum `re² + im²` of the `n_fft / 2 + 1` bins (`spectral_magnitude(power=1)`).
//! 3. `Filterbank`: `n_mels + 2` points evenly spaced in mel (`2595 log₁₀(1 + f / 700)`) between
//!    `f_min` and `f_max`; filter `i` is a symmetric triangle centred on point `i + 1` whose
//!    half-width is the distance to point `i`, evaluated on `linspace(0, sample_rate // 2,
//!    bins)` and not area-normalised.
//! 4. `10 log₁₀(max(x, AMIN)) − 10 log₁₀(max(AMIN, REF_VALUE))`, floored at the item's maximum
//!    (over all its frames and bins) minus `TOP_DB`.
//! 5. Minus each bin's mean over the item's valid frames ([`super::lengths::norm_frames`]); the
//!    padding frames of a batch are shifted by the same mean.
//!
//! The window and the filters' centres and widths are SpeechBrain's float32 values (torch
//! computes them in float32: [`hamming_window`], [`mel_filters`]); a dB value can move by ~4e-4
//! when a strong harmonic sits on a filter's edge and these are exact instead. The rest (framing,
//! FFT, power, filter weights, dB) is computed in f64 and stored as f32. SpeechBrain's own
//! float32 output differs from the same code run in float64 by up to ~6e-4 dB in low bins (FFT
//! and matmul rounding, tests/reference/make_ecapa_reference.py); this port is within ~1e-4 dB of
//! the float64 run (tests/ecapa_reference.rs).

use std::f64::consts::PI;
use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::config::FbankConfig;
use crate::error::{Error, Result};

/// `Filterbank(amin=1e-10)`: powers are clamped here before the log.
pub const AMIN: f64 = 1e-10;
/// `Filterbank(ref_value=1.0)`: 0 dB.
pub const REF_VALUE: f64 = 1.0;
/// `Filterbank(top_db=80.0)`: the dynamic range kept below an item's loudest value.
pub const TOP_DB: f64 = 80.0;
/// `Filterbank.multiplier` for a power spectrogram (`power_spectrogram=2`): 10 log₁₀.
pub const DB_MULTIPLIER: f64 = 10.0;
/// `torch.hamming_window`'s coefficients, `ALPHA − BETA cos(2πn / N)`.
pub const HAMMING_ALPHA: f64 = 0.54;
pub const HAMMING_BETA: f64 = 0.46;
/// `Filterbank._to_mel`: `MEL_FACTOR log₁₀(1 + f / MEL_BREAK)`.
pub const MEL_FACTOR: f64 = 2595.0;
pub const MEL_BREAK: f64 = 700.0;

pub fn to_mel(hz: f64) -> f64 {
    MEL_FACTOR * (1.0 + hz / MEL_BREAK).log10()
}

pub fn to_hz(mel: f64) -> f64 {
    MEL_BREAK * (10f64.powf(mel / MEL_FACTOR) - 1.0)
}

/// `torch.linspace(start, end, steps)` in float32 (ATen's CPU kernel: a float32 step, the first
/// half counted up from `start`, the second half down from `end`).
pub fn linspace_f32(start: f64, end: f64, steps: usize) -> Vec<f32> {
    let (start, end) = (start as f32, end as f32);
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f32;
    let halfway = steps / 2;
    (0..steps)
        .map(|i| if i < halfway { start + step * i as f32 } else { end - step * (steps - i - 1) as f32 })
        .collect()
}

/// `torch.hamming_window(win)` (periodic, float32): `arange(win + 1) · (2π / win)`, `cos`,
/// `· −0.46`, `+ 0.54`, each op rounded to float32; the first `win` values.
pub fn hamming_window(win: usize) -> Vec<f32> {
    let scale = (2.0 * PI / win as f64) as f32;
    (0..win).map(|n| HAMMING_ALPHA as f32 + (n as f32 * scale).cos() * -(HAMMING_BETA as f32)).collect()
}

/// One triangular filter: its weights on the bins `start..start + weights.len()` (zero
/// elsewhere).
#[derive(Clone, Debug, PartialEq)]
pub struct MelFilter {
    pub start: usize,
    pub weights: Vec<f64>,
}

/// `Filterbank`'s matrix, filter by filter (`_triangular_filters`). The points are computed as
/// `Filterbank.__init__` computes them in float32 (`linspace` of the mel range, `_to_hz`, their
/// differences); the weights from them in f64.
pub fn mel_filters(c: &FbankConfig) -> Vec<MelFilter> {
    let mel = linspace_f32(to_mel(c.f_min), to_mel(c.f_max), c.n_mels + 2);
    let hz: Vec<f32> = mel.iter().map(|&m| MEL_BREAK as f32 * (10f32.powf(m / MEL_FACTOR as f32) - 1.0)).collect();
    let freqs = linspace_f32(0.0, (c.sample_rate / 2) as f64, c.bins());
    (0..c.n_mels)
        .map(|i| {
            let (centre, band) = (hz[i + 1] as f64, (hz[i + 1] - hz[i]) as f64);
            let weight = |f: f32| {
                let slope = (f as f64 - centre) / band;
                (slope + 1.0).min(1.0 - slope).max(0.0)
            };
            let start = freqs.iter().position(|&f| weight(f) > 0.0).unwrap_or(0);
            let end = freqs.iter().rposition(|&f| weight(f) > 0.0).map_or(start, |e| e + 1);
            MelFilter { start, weights: freqs[start..end].iter().map(|&f| weight(f)).collect() }
        })
        .collect()
}

/// The front end for one configuration: window, filters and FFT plan made once.
pub struct Fbank {
    config: FbankConfig,
    /// The Hamming window zero-padded to `n_fft`, centred as `torch.stft` pads it.
    window: Vec<f64>,
    filters: Vec<MelFilter>,
    fft: Arc<dyn Fft<f64>>,
}

impl Fbank {
    pub fn new(config: &FbankConfig) -> Self {
        let (n_fft, win) = (config.n_fft, config.win_samples());
        let left = (n_fft - win) / 2;
        let mut window = vec![0.0; n_fft];
        for (w, h) in window[left..left + win].iter_mut().zip(hamming_window(win)) {
            *w = h as f64;
        }
        Fbank {
            config: config.clone(),
            window,
            filters: mel_filters(config),
            fft: FftPlanner::new().plan_fft_forward(n_fft),
        }
    }

    pub fn config(&self) -> &FbankConfig {
        &self.config
    }

    /// The log mel filterbank of `samples`: row-major `[frames, n_mels]` and the frame count.
    /// Fails on an empty input or one holding a NaN or infinity.
    pub fn compute(&self, samples: &[f32]) -> Result<(Vec<f32>, usize)> {
        if samples.is_empty() {
            return Err(Error::Other("ECAPA fbank: no samples".into()));
        }
        if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
            return Err(Error::Other(format!("ECAPA fbank: sample {i} is {}", samples[i])));
        }
        let c = &self.config;
        let (n, n_fft, hop) = (samples.len() as isize, c.n_fft, c.hop_samples());
        let frames = c.frames(samples.len());
        let mut buf = vec![Complex::new(0.0f64, 0.0); n_fft];
        let mut scratch = vec![Complex::new(0.0f64, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = vec![0.0f64; c.bins()];
        let mut db = Vec::with_capacity(frames * c.n_mels);
        let floor = DB_MULTIPLIER * AMIN.max(REF_VALUE).log10();
        let mut max = f64::NEG_INFINITY;
        for f in 0..frames {
            let start = (f * hop) as isize - (n_fft / 2) as isize;
            for (j, (b, w)) in buf.iter_mut().zip(&self.window).enumerate() {
                let t = start + j as isize;
                let x = if (0..n).contains(&t) { samples[t as usize] as f64 } else { 0.0 };
                *b = Complex::new(x * w, 0.0);
            }
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            for (p, x) in power.iter_mut().zip(&buf) {
                *p = x.norm_sqr();
            }
            for filter in &self.filters {
                let bins = &power[filter.start..filter.start + filter.weights.len()];
                let energy: f64 = bins.iter().zip(&filter.weights).map(|(p, w)| p * w).sum();
                let v = DB_MULTIPLIER * energy.max(AMIN).log10() - floor;
                max = max.max(v);
                db.push(v);
            }
        }
        let lowest = max - TOP_DB;
        Ok((db.into_iter().map(|v| v.max(lowest) as f32).collect(), frames))
    }
}

/// `InputNormalization(norm_type="sentence", std_norm=False)` on one item `[frames, dim]`: each
/// column's mean over the first `valid` frames subtracted from every frame.
pub fn subtract_sentence_mean(feats: &mut [f32], dim: usize, valid: usize) {
    let mut mean = vec![0.0f64; dim];
    for row in feats.chunks_exact(dim).take(valid) {
        mean.iter_mut().zip(row).for_each(|(m, &x)| *m += x as f64);
    }
    mean.iter_mut().for_each(|m| *m /= valid as f64);
    for row in feats.chunks_exact_mut(dim) {
        row.iter_mut().zip(&mean).for_each(|(x, m)| *x = (*x as f64 - m) as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_float32_window_and_points_are_torchs() {
        // torch.hamming_window(400) (torch 2.8, float32).
        let w = hamming_window(400);
        let want = [(0, 8.000001311e-02), (1, 8.005675673e-02), (57, 2.523884177e-01), (100, 5.400000215e-01)];
        for (i, v) in want.into_iter().chain([(199, 9.999432564e-01), (200, 1.0), (399, 8.005675673e-02)]) {
            assert_eq!(w[i], v as f32, "window[{i}]");
        }
        // torch.linspace(0, 2595·log10(1 + 8000/700), 82), and Filterbank(n_mels=80)'s f_central
        // and band.
        let mel = linspace_f32(0.0, to_mel(8000.0), 82);
        for (i, v) in [
            (1, 3.506201172e+01),
            (40, 1.402480469e+03),
            (41, 1.437542480e+03),
            (80, 2.804960938e+03),
            (81, 2.840022949e+03),
        ] {
            assert_eq!(mel[i], v as f32, "mel[{i}]");
        }
        let c = FbankConfig { n_mels: 80, ..FbankConfig::default() };
        let filters = mel_filters(&c);
        // Bin k is at 40·k Hz: the weight at a bin inside filter i gives back its centre and width.
        // (Filter 37's centre is one float32 ulp above torch's: its vectorised `10 ** x` rounds
        // that point up, a correctly rounded power does not.)
        for (i, centre, band) in [(0, 2.212008286e+01, 2.212008286e+01), (79, 7.733500977e+03, 2.583374023e+02)] {
            let (centre, band) = (centre as f32 as f64, band as f32 as f64);
            let f = &filters[i];
            let k = f.start;
            let slope = (40.0 * k as f64 - centre) / band;
            assert!((f.weights[0] - (slope + 1.0).min(1.0 - slope)).abs() < 1e-12, "filter {i}");
        }
    }

    #[test]
    fn the_mel_scale_round_trips_and_the_filters_are_speechbrains() {
        for hz in [0.0, 700.0, 4000.0, 8000.0] {
            assert!((to_hz(to_mel(hz)) - hz).abs() < 1e-9);
        }
        let c = FbankConfig { n_mels: 80, ..FbankConfig::default() };
        let filters = mel_filters(&c);
        assert_eq!(filters.len(), 80);
        // The first filter: centre 2595·log10(1 + 8000/700)/81 mel, half-width = the centre (the
        // left point is 0 Hz); bins are every 40 Hz, so bin 0 (0 Hz) weighs 0 (the points are
        // float32, exact only to ~1e-5 relative this close to 0 Hz).
        let centre = to_hz(to_mel(8000.0) / 81.0);
        assert!((centre - 22.12).abs() < 0.01, "{centre}");
        assert_eq!(filters[0].start, 1);
        assert!(
            (filters[0].weights[0] - (1.0 - (40.0 - centre) / centre)).abs() < 1e-4,
            "float32 points: {}",
            filters[0].weights[0]
        );
        // Symmetric triangles: the last filter ends where the points do (8000 Hz) but its right
        // half-width is its left one, so it ends before 8000 Hz.
        let last = filters.last().unwrap();
        assert!(last.start + last.weights.len() < 201);
        assert!(filters.iter().all(|f| f.weights.iter().all(|&w| w > 0.0 && w <= 1.0)));
    }

    #[test]
    fn frames_are_centred_and_silence_sits_at_the_amin_floor() {
        let fbank = Fbank::new(&FbankConfig { n_mels: 80, ..FbankConfig::default() });
        let (x, frames) = fbank.compute(&[0.0; 1000]).unwrap();
        assert_eq!((frames, x.len()), (7, 7 * 80));
        // All zero: every value is 10·log10(1e-10) = −100 dB (the top_db floor is below it).
        assert!(x.iter().all(|&v| v == -100.0));
        // One sample of a tone: the loudest value, and nothing below it by more than 80 dB.
        let tone: Vec<f32> = (0..1600).map(|i| (i as f32 * 0.3).sin() * 0.5).collect();
        let (x, frames) = fbank.compute(&tone).unwrap();
        assert_eq!(frames, 11);
        let max = x.iter().cloned().fold(f32::MIN, f32::max);
        let min = x.iter().cloned().fold(f32::MAX, f32::min);
        assert!((max - min - 80.0).abs() < 1e-3, "{max} {min}");
        assert!(fbank.compute(&[]).is_err());
        assert!(fbank.compute(&[0.0, f32::NAN]).unwrap_err().to_string().contains("sample 1"));
    }

    #[test]
    fn the_sentence_mean_uses_the_valid_frames_and_shifts_them_all() {
        let mut x = vec![1.0, 10.0, 3.0, 20.0, 100.0, -5.0];
        subtract_sentence_mean(&mut x, 2, 2);
        assert_eq!(x, vec![-1.0, -5.0, 1.0, 5.0, 98.0, -20.0]);
    }
}
