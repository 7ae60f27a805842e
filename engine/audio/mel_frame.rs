//! One log-mel frame, as openai/whisper `audio.py` computes it: a periodic Hann(`N_FFT`) window
//! centred on sample `t * HOP_LENGTH` of the reflect-padded signal (torch.stft `center=True`),
//! power `|X|^2` on `N_FREQS` bins, Slaney mel filters, `log10(max(mel, 1e-10))`.
//!
//! The FFT, power and filterbank run in f64 (the reference runs in f32; f64 keeps our error well
//! below its own rounding). Each frame depends only on its own samples, so frames computed in any
//! batches, on any threads, are bitwise the same.

use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::audio::filters::MelFilters;
use crate::audio::mel::{HOP_LENGTH, N_FFT, N_FREQS};

/// Power floor before the log (openai clamps at 1e-10).
const LOG_FLOOR: f64 = 1e-10;
/// Frames per rayon task: big enough to amortise the per-task FFT scratch.
const FRAMES_PER_TASK: usize = 64;
/// The most mel bins a filterbank has (large-v3).
const MAX_MELS: usize = 128;

/// A window onto the signal, zero-padded at the end to `len` samples and read with torch.stft's
/// centre reflect padding: `audio` holds samples `offset .. offset + audio.len()` of it (the ones
/// the frames still to compute need); samples past those up to `len` are the zero padding.
pub struct PaddedSignal<'a> {
    pub audio: &'a [f32],
    pub offset: usize,
    pub len: usize,
}

impl PaddedSignal<'_> {
    /// Samples of real audio (before the zero padding).
    fn audio_end(&self) -> usize {
        self.offset + self.audio.len()
    }

    /// Sample at position `i` of the reflect-padded signal, `i` in `-N_FFT/2 .. len + N_FFT/2`:
    /// reflection excludes the edge sample, like numpy/torch "reflect".
    pub fn at(&self, i: isize) -> f32 {
        let len = self.len as isize;
        let j = if i < 0 {
            -i
        } else if i >= len {
            2 * (len - 1) - i
        } else {
            i
        };
        let Some(k) = usize::try_from(j).ok().and_then(|j| j.checked_sub(self.offset)) else { return 0.0 };
        self.audio.get(k).copied().unwrap_or(0.0)
    }
}

/// log10 mel energies of frames `first .. first + out.len() / n_mels` of `signal` into `out`,
/// frame-major `[frames, n_mels]`, spread over all cores.
pub fn log_mel_frames(signal: &PaddedSignal, filters: &MelFilters, first: usize, out: &mut [f32]) {
    let n_mels = filters.n_mels;
    out.par_chunks_mut(FRAMES_PER_TASK * n_mels).enumerate().for_each_init(
        FrameWorker::new,
        |worker, (task, chunk)| {
            for (i, frame) in chunk.chunks_exact_mut(n_mels).enumerate() {
                worker.power_spectrum(signal, first + task * FRAMES_PER_TASK + i);
                filters.apply(&worker.power, &mut worker.mel[..n_mels]);
                for (o, &e) in frame.iter_mut().zip(&worker.mel) {
                    *o = e.max(LOG_FLOOR).log10() as f32;
                }
            }
        },
    );
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
            mel: vec![0.0; MAX_MELS],
        }
    }

    /// Power spectrum of frame `t` (centred on sample `t * HOP_LENGTH`) into `self.power`.
    fn power_spectrum(&mut self, signal: &PaddedSignal, t: usize) {
        let window = hann_window();
        let start = (t * HOP_LENGTH) as isize - (N_FFT / 2) as isize;
        let audio_end = signal.audio_end() as isize;
        let inside = start >= signal.offset as isize && start + N_FFT as isize <= audio_end.min(signal.len as isize);
        // Frames wholly in the zero padding (most of a window for a short clip) have zero power.
        let silent = start >= audio_end && start + N_FFT as isize <= signal.len as isize;
        if silent {
            self.power.fill(0.0);
            return;
        }
        if inside {
            let s = start as usize - signal.offset;
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
    fn reflect_padding_matches_numpy() {
        let audio = [1.0, 2.0, 3.0];
        let s = PaddedSignal { audio: &audio, offset: 0, len: 5 }; // [1 2 3 0 0]
        let got: Vec<f32> = (-3..8).map(|i| s.at(i)).collect();
        // np.pad([1,2,3,0,0], 3, "reflect")
        assert_eq!(got, [0.0, 3.0, 2.0, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 3.0, 2.0]);
    }

    #[test]
    fn an_offset_window_reads_the_same_samples() {
        let whole = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let full = PaddedSignal { audio: &whole, offset: 0, len: 8 };
        let tail = PaddedSignal { audio: &whole[2..], offset: 2, len: 8 };
        for i in 2..12 {
            assert_eq!(full.at(i), tail.at(i), "position {i}");
        }
    }
}
