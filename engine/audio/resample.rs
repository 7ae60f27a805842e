//! Sample-rate conversion to Whisper's 16 kHz.
//!
//! We use rubato's synchronous FFT resampler (`FftFixedInOut`): for a fixed rational ratio it is an
//! exact overlap-add convolution with a windowed-sinc (Blackman-Harris) anti-aliasing filter, so it is
//! both high quality and cheap. Audio is pushed through in fixed chunks (about [`CHUNK_TARGET`] input
//! samples), so working memory is bounded whatever the file length, and [`StreamResampler`] can be fed
//! as samples are decoded.
//!
//! The filter is linear-phase and centred, which delays the output by exactly half an output chunk;
//! we drop that many leading samples and flush the tail with zeros, so sample `n` of the output is
//! the input at time `n / 16000` s (no leading delay) and the output has
//! `round(len * 16000 / from_rate)` samples.
//!
//! The FFT resampler's chunk is a whole number of the ratio's reduced numerator: 441 samples at
//! 44.1 kHz, but 383 987 at a prime rate such as 383 987 Hz. Rates whose chunk would pass
//! [`MAX_FFT_CHUNK`] (no real recording uses them; a crafted header can) go through rubato's
//! asynchronous windowed-sinc resampler instead, whose buffers depend on [`CHUNK_TARGET`] and the
//! filter length only. Either way the resampler's memory is bounded whatever the header says.

use rubato::{
    FftFixedInOut, Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType, WindowFunction,
};

use crate::audio::SAMPLE_RATE;
use crate::{Error, Result};

/// Wanted input chunk length. The filter is as long as the input chunk, so this also sets the
/// filter's sharpness: ~1000 taps at 44.1 kHz gives a transition band of a few tens of Hz.
const CHUNK_TARGET: usize = 1024;
/// Longest FFT input chunk; a rate needing more is resampled by the sinc interpolator.
pub const MAX_FFT_CHUNK: usize = 16_384;
/// The sinc interpolator's filter: taps, relative cut-off, and table oversampling (rubato's
/// recommended starting values for high quality).
const SINC_LEN: usize = 256;
const SINC_CUTOFF: f32 = 0.95;
const SINC_OVERSAMPLING: usize = 256;

/// Resample mono `samples` at `from_rate` Hz to 16 kHz. Identity (a copy) when `from_rate` is 16 kHz.
pub fn resample_to_16k(samples: &[f32], from_rate: u32) -> Result<Vec<f32>> {
    let mut resampler = StreamResampler::new(from_rate)?;
    let mut out = Vec::with_capacity(output_len(samples.len() as u64, from_rate) as usize + 1);
    resampler.push(samples, &mut out)?;
    resampler.finish(&mut out)?;
    Ok(out)
}

/// Number of 16 kHz samples for `n_in` samples at `from_rate`: `round(n_in * 16000 / from_rate)`.
pub fn output_len(n_in: u64, from_rate: u32) -> u64 {
    let num = n_in as u128 * SAMPLE_RATE as u128;
    let den = from_rate.max(1) as u128;
    ((num + den / 2) / den) as u64
}

/// Incremental mono resampler to 16 kHz: call [`push`](Self::push) with consecutive blocks of input,
/// then [`finish`](Self::finish) once; together they append exactly `output_len(total, from_rate)`
/// delay-compensated samples to `out`.
pub struct StreamResampler {
    from_rate: u32,
    /// `None` when `from_rate` is already 16 kHz.
    inner: Option<Chunked>,
    n_in: u64,
    n_out: u64,
}

/// The two resamplers: synchronous FFT for rates with a short reduced ratio, asynchronous sinc
/// for the rest.
enum Kernel {
    Fft(Box<FftFixedInOut<f32>>),
    Sinc(Box<SincFixedIn<f32>>),
}

/// A resampler fed fixed input chunks, with its chunk buffers.
struct Chunked {
    kernel: Kernel,
    chunk_in: usize,
    /// Input not yet processed (shorter than `chunk_in`).
    pending: Vec<f32>,
    chunk_out: Vec<f32>,
    /// Leading output samples still to drop (the filter delay).
    to_skip: usize,
    /// Zeros to put before the first output sample (the filter's lead).
    lead_in: usize,
}

impl StreamResampler {
    pub fn new(from_rate: u32) -> Result<Self> {
        if from_rate == 0 {
            return Err(Error::Other("resample: sample rate 0 Hz".into()));
        }
        let inner = if from_rate == SAMPLE_RATE { None } else { Some(Chunked::new(from_rate)?) };
        Ok(StreamResampler { from_rate, inner, n_in: 0, n_out: 0 })
    }

    /// Resample `input` (the next samples of the stream), appending what is ready to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<()> {
        self.n_in += input.len() as u64;
        let before = out.len();
        match &mut self.inner {
            None => out.extend_from_slice(input),
            Some(fft) => fft.push(input, out)?,
        }
        self.n_out += (out.len() - before) as u64;
        Ok(())
    }

    /// Flush the filter tail and trim, so that this stream appended exactly
    /// `round(total_in * 16000 / from_rate)` samples to `out`.
    pub fn finish(mut self, out: &mut Vec<f32>) -> Result<()> {
        let want = output_len(self.n_in, self.from_rate);
        if let Some(fft) = &mut self.inner {
            // Zero input flushes what the filter still holds; one chunk at a time until enough.
            while self.n_out < want {
                let before = out.len();
                let zeros = vec![0.0; fft.chunk_in - fft.pending.len()];
                fft.push(&zeros, out)?;
                self.n_out += (out.len() - before) as u64;
            }
        }
        // n_out >= want here (identity: n_out == n_in == want).
        let extra = (self.n_out - want) as usize;
        out.truncate(out.len() - extra);
        Ok(())
    }
}

/// The FFT resampler's input chunk for `from_rate`: a whole multiple of the ratio's reduced
/// numerator near [`CHUNK_TARGET`], with both chunk lengths even, so the filter's centre (input
/// sample chunk_in / 2) maps to a whole output sample chunk_out / 2.
pub fn fft_chunk(from_rate: u32) -> usize {
    let (from, to) = (from_rate.max(1) as usize, SAMPLE_RATE as usize);
    let g = gcd(from, to);
    let (unit_in, unit_out) = (from / g, to / g);
    let mut units = CHUNK_TARGET.div_ceil(unit_in).max(1);
    if (units * unit_in) % 2 == 1 || (units * unit_out) % 2 == 1 {
        units += 1;
    }
    units * unit_in
}

impl Chunked {
    fn new(from_rate: u32) -> Result<Self> {
        let fail = |e: &dyn std::fmt::Display| Error::Other(format!("resample {from_rate} Hz -> 16 kHz: {e}"));
        let chunk_in = fft_chunk(from_rate);
        let kernel = if chunk_in <= MAX_FFT_CHUNK {
            let fft = FftFixedInOut::<f32>::new(from_rate as usize, SAMPLE_RATE as usize, chunk_in, 1)
                .map_err(|e| fail(&e))?;
            Kernel::Fft(Box::new(fft))
        } else {
            let parameters = SincInterpolationParameters {
                sinc_len: SINC_LEN,
                f_cutoff: SINC_CUTOFF,
                oversampling_factor: SINC_OVERSAMPLING,
                interpolation: SincInterpolationType::Cubic,
                window: WindowFunction::BlackmanHarris2,
            };
            let ratio = SAMPLE_RATE as f64 / from_rate as f64;
            let sinc = SincFixedIn::<f32>::new(ratio, 1.0, parameters, CHUNK_TARGET, 1).map_err(|e| fail(&e))?;
            Kernel::Sinc(Box::new(sinc))
        };
        // The FFT filter is centred on its chunk: its delay is half an output chunk. The sinc
        // interpolator starts half a filter early (rubato's `last_index = -sinc_len / 2`), so its
        // output sample k is the input at time (k + 1) / 16 kHz: one zero in front aligns it (its
        // `output_delay()` describes another convention; the tests measure both with an impulse).
        let (chunk_in, chunk_out, to_skip, lead_in) = match &kernel {
            Kernel::Fft(r) => (r.input_frames_next(), r.output_frames_max(), r.output_delay(), 0),
            Kernel::Sinc(r) => (r.input_frames_next(), r.output_frames_max(), 0, 1),
        };
        let chunk_out = vec![0.0; chunk_out];
        Ok(Chunked { kernel, chunk_in, pending: Vec::with_capacity(chunk_in), chunk_out, to_skip, lead_in })
    }

    fn push(&mut self, mut input: &[f32], out: &mut Vec<f32>) -> Result<()> {
        while !input.is_empty() {
            let take = (self.chunk_in - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() == self.chunk_in {
                self.process_pending(out)?;
            }
        }
        Ok(())
    }

    fn process_pending(&mut self, out: &mut Vec<f32>) -> Result<()> {
        let (input, output) = (&[&self.pending], &mut [&mut self.chunk_out]);
        let (_, n) = match &mut self.kernel {
            Kernel::Fft(r) => r.process_into_buffer(input, output, None),
            Kernel::Sinc(r) => r.process_into_buffer(input, output, None),
        }
        .map_err(|e| Error::Other(format!("resample: {e}")))?;
        self.pending.clear();
        let skip = self.to_skip.min(n);
        self.to_skip -= skip;
        out.extend(std::iter::repeat_n(0.0, std::mem::take(&mut self.lead_in)));
        out.extend_from_slice(&self.chunk_out[skip..n]);
        Ok(())
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_at_16k() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.01).sin()).collect();
        assert_eq!(resample_to_16k(&x, 16_000).unwrap(), x);
    }

    #[test]
    fn output_lengths_round() {
        for &(n, rate) in &[
            (0usize, 44_100u32),
            (1, 44_100),
            (485_100, 44_100),
            (168_861, 22_050),
            (12_345, 8_000),
            (999, 48_000),
            (7, 11_025),
        ] {
            let x = vec![0.25f32; n];
            let y = resample_to_16k(&x, rate).unwrap();
            assert_eq!(y.len() as u64, output_len(n as u64, rate), "n={n} rate={rate}");
        }
        assert_eq!(output_len(168_861, 22_050), 122_530);
    }

    #[test]
    fn chunked_push_equals_one_shot() {
        let x: Vec<f32> = (0..20_000).map(|i| ((i as f32) * 0.037).sin() * 0.5).collect();
        let whole = resample_to_16k(&x, 22_050).unwrap();
        let mut r = StreamResampler::new(22_050).unwrap();
        let mut out = Vec::new();
        for block in x.chunks(777) {
            r.push(block, &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        assert_eq!(out, whole);
    }

    #[test]
    fn dc_is_preserved() {
        let x = vec![0.5f32; 48_000];
        let y = resample_to_16k(&x, 48_000).unwrap();
        // Away from the edges (where the zero signal outside the clip leaks in) DC stays 0.5.
        for &v in &y[2000..y.len() - 2000] {
            assert!((v - 0.5).abs() < 1e-3, "{v}");
        }
    }

    #[test]
    fn fft_chunks_of_real_rates_are_short_and_odd_rates_take_the_sinc_path() {
        for rate in [
            8_000, 11_025, 22_050, 24_000, 32_000, 37_800, 44_100, 48_000, 88_200, 96_000, 176_400, 192_000, 352_800,
            384_000,
        ] {
            assert!(fft_chunk(rate) <= 2 * CHUNK_TARGET, "{rate} Hz: {}", fft_chunk(rate));
        }
        // A prime rate's reduced ratio is the rate itself.
        assert_eq!(fft_chunk(383_987), 383_987 * 2);
        let r = StreamResampler::new(383_987).unwrap();
        let inner = r.inner.as_ref().unwrap();
        assert!(matches!(inner.kernel, Kernel::Sinc(_)));
        assert!(
            inner.chunk_in <= CHUNK_TARGET && inner.chunk_out.len() <= CHUNK_TARGET,
            "{} {}",
            inner.chunk_in,
            inner.chunk_out.len()
        );
        // Even an absurd rate builds bounded buffers (the decoder refuses it before this).
        let r = StreamResampler::new(999_999_937).unwrap();
        assert!(r.inner.as_ref().unwrap().chunk_in <= CHUNK_TARGET);
    }

    #[test]
    fn the_sinc_path_keeps_length_frequency_and_timing() {
        let rate = 44_099;
        let n = rate as usize * 2;
        // 440 Hz for two seconds.
        let x: Vec<f32> =
            (0..n).map(|i| (2.0 * std::f64::consts::PI * 440.0 * i as f64 / rate as f64).sin() as f32 * 0.5).collect();
        let y = resample_to_16k(&x, rate).unwrap();
        assert_eq!(y.len() as u64, output_len(n as u64, rate));
        // Amplitude and phase against 440 Hz at 16 kHz, away from the edges: the sinc path is
        // within half an output sample (31 µs) of the right time.
        let (mut ss, mut sc) = (0.0, 0.0);
        let range = 2000..y.len() - 2000;
        for i in range.clone() {
            let w = 2.0 * std::f64::consts::PI * 440.0 * i as f64 / 16_000.0;
            ss += y[i] as f64 * w.sin();
            sc += y[i] as f64 * w.cos();
        }
        let amplitude = 2.0 * (ss * ss + sc * sc).sqrt() / range.len() as f64;
        let lag = sc.atan2(ss) / (2.0 * std::f64::consts::PI * 440.0) * 16_000.0;
        assert!((amplitude - 0.5).abs() < 0.005 && lag.abs() < 0.5, "amplitude {amplitude}, lag {lag} samples");
    }

    #[test]
    fn an_impulse_lands_on_its_time_on_both_paths() {
        // Half a second in: output sample 8000, whichever resampler the rate takes.
        for rate in [44_099u32, 383_987, 100_003, 44_100, 7_919, 1_009] {
            let mut impulse = vec![0.0f32; rate as usize];
            let at = rate as usize / 2;
            impulse[at] = 1.0;
            let y = resample_to_16k(&impulse, rate).unwrap();
            let peak = (0..y.len()).max_by(|&a, &b| y[a].abs().total_cmp(&y[b].abs())).unwrap();
            let exact = at as f64 * SAMPLE_RATE as f64 / rate as f64;
            assert!((peak as f64 - exact).abs() <= 0.5, "{rate} Hz: {peak} for {exact}");
        }
    }

    #[test]
    fn zero_rate_is_an_error() {
        assert!(resample_to_16k(&[0.0; 10], 0).is_err());
    }
}
