//! Whisper's mel filterbank, computed instead of shipped: triangular filters on the Slaney mel scale
//! with Slaney area normalisation, i.e. what `librosa.filters.mel(sr=16000, n_fft=400, n_mels=n,
//! htk=False, norm="slaney")` returns and what openai/whisper stores in `assets/mel_filters.npz`.
//! The test suite checks both banks (80 and 128 mels) against that file.

use std::sync::OnceLock;

use crate::audio::mel::{N_FFT, N_FREQS};
use crate::audio::SAMPLE_RATE;
use crate::{Error, Result};

/// Slaney mel scale: linear below 1 kHz with 3 mels per 200 Hz, logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
/// 27 mel steps per factor 6.4 in frequency above 1 kHz.
fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// A mel filterbank, row-major `[n_mels, N_FREQS]`, with each row's non-zero bin range so that
/// applying it costs ~2 multiplies per bin instead of `n_mels`.
pub struct MelFilters {
    pub n_mels: usize,
    weights: Vec<f32>,
    /// Per mel band: the half-open range of FFT bins where its weight is non-zero.
    bands: Vec<(usize, usize)>,
}

impl MelFilters {
    fn new(n_mels: usize) -> Self {
        let weights = slaney_mel_filters(SAMPLE_RATE, N_FFT, n_mels);
        let n_freqs = N_FFT / 2 + 1;
        let bands = weights
            .chunks_exact(n_freqs)
            .map(|row| {
                let start = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let end = row.iter().rposition(|&w| w != 0.0).map_or(start, |i| i + 1);
                (start, end)
            })
            .collect();
        MelFilters { n_mels, weights, bands }
    }

    /// The dense weights, row-major `[n_mels, N_FREQS]`.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// Mel energies of one power spectrum (`N_FREQS` bins) into `out` (`n_mels` values), in f64.
    pub fn apply(&self, power: &[f64], out: &mut [f64]) {
        for (m, (o, &(start, end))) in out.iter_mut().zip(&self.bands).enumerate() {
            let row = &self.weights[m * N_FREQS + start..m * N_FREQS + end];
            *o = row.iter().zip(&power[start..end]).map(|(&w, &p)| w as f64 * p).sum();
        }
    }
}

/// The filterbank for `n_mels` (80, or 128 for large-v3), computed once per process.
pub fn mel_filters(n_mels: usize) -> Result<&'static MelFilters> {
    static MEL_80: OnceLock<MelFilters> = OnceLock::new();
    static MEL_128: OnceLock<MelFilters> = OnceLock::new();
    match n_mels {
        80 => Ok(MEL_80.get_or_init(|| MelFilters::new(80))),
        128 => Ok(MEL_128.get_or_init(|| MelFilters::new(128))),
        n => Err(Error::Other(format!("log-mel: Whisper uses 80 or 128 mel bins, not {n}"))),
    }
}

/// Slaney-normalised triangular mel filters from 0 Hz to `sample_rate / 2`, row-major
/// `[n_mels, n_fft / 2 + 1]`.
///
/// Computed in f64 and stored as f32 like the reference, which rounds the triangle to f32 before
/// scaling it by the area normalisation `2 / (f[m + 2] - f[m])` and rounds again.
pub fn slaney_mel_filters(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_freqs = n_fft / 2 + 1;
    let bin_hz = |k: usize| k as f64 * sample_rate as f64 / n_fft as f64;
    // n_mels + 2 band edges equally spaced in mel between 0 Hz and Nyquist.
    let (mel_lo, mel_hi) = (hz_to_mel(0.0), hz_to_mel(sample_rate as f64 / 2.0));
    let step = (mel_hi - mel_lo) / (n_mels + 1) as f64;
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| if i == n_mels + 1 { mel_hi } else { mel_lo + i as f64 * step })
        .map(mel_to_hz)
        .collect();

    let mut weights = vec![0.0f32; n_mels * n_freqs];
    for m in 0..n_mels {
        let (lo, centre, hi) = (edges[m], edges[m + 1], edges[m + 2]);
        let norm = 2.0 / (hi - lo);
        for k in 0..n_freqs {
            let f = bin_hz(k);
            let rising = (f - lo) / (centre - lo);
            let falling = (hi - f) / (hi - centre);
            let tri = rising.min(falling).max(0.0) as f32;
            weights[m * n_freqs + k] = (tri as f64 * norm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_scale_round_trips_and_is_continuous() {
        for hz in [0.0, 100.0, 999.0, 1000.0, 1001.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9, "{hz}");
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    }

    #[test]
    fn every_band_is_nonempty_and_bands_are_ordered() {
        for n in [80, 128] {
            let f = mel_filters(n).unwrap();
            assert_eq!(f.weights().len(), n * N_FREQS);
            let mut prev = 0;
            for &(s, e) in &f.bands {
                assert!(e > s, "empty band in {n}");
                assert!(s >= prev);
                prev = s;
            }
        }
        assert!(mel_filters(40).is_err());
    }
}
