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

use rubato::{FftFixedInOut, Resampler};

use crate::audio::SAMPLE_RATE;
use crate::{Error, Result};

/// Wanted input chunk length. The filter is as long as the input chunk, so this also sets the
/// filter's sharpness: ~1000 taps at 44.1 kHz gives a transition band of a few tens of Hz.
const CHUNK_TARGET: usize = 1024;

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
    inner: Option<Fft>,
    n_in: u64,
    n_out: u64,
}

/// The FFT resampler with its chunk buffers.
struct Fft {
    resampler: FftFixedInOut<f32>,
    chunk_in: usize,
    /// Input not yet processed (shorter than `chunk_in`).
    pending: Vec<f32>,
    chunk_out: Vec<f32>,
    /// Leading output samples still to drop (the filter delay).
    to_skip: usize,
}

impl StreamResampler {
    pub fn new(from_rate: u32) -> Result<Self> {
        if from_rate == 0 {
            return Err(Error::Other("resample: sample rate 0 Hz".into()));
        }
        let inner = if from_rate == SAMPLE_RATE { None } else { Some(Fft::new(from_rate)?) };
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

impl Fft {
    fn new(from_rate: u32) -> Result<Self> {
        let (from, to) = (from_rate as usize, SAMPLE_RATE as usize);
        let g = gcd(from, to);
        let (unit_in, unit_out) = (from / g, to / g);
        // Chunks are whole multiples of the ratio's reduced fraction. Keep both chunk lengths even, so
        // the filter's centre (input sample chunk_in / 2) maps to a whole output sample chunk_out / 2.
        let mut units = CHUNK_TARGET.div_ceil(unit_in).max(1);
        if (units * unit_in) % 2 == 1 || (units * unit_out) % 2 == 1 {
            units += 1;
        }
        let chunk_in = units * unit_in;
        let resampler = FftFixedInOut::<f32>::new(from, to, chunk_in, 1)
            .map_err(|e| Error::Other(format!("resample {from_rate} Hz -> 16 kHz: {e}")))?;
        let chunk_in = resampler.input_frames_next();
        let chunk_out = resampler.output_frames_next();
        let to_skip = resampler.output_delay();
        Ok(Fft { resampler, chunk_in, pending: Vec::with_capacity(chunk_in), chunk_out: vec![0.0; chunk_out], to_skip })
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
        let (_, n) = self
            .resampler
            .process_into_buffer(&[&self.pending], &mut [&mut self.chunk_out], None)
            .map_err(|e| Error::Other(format!("resample: {e}")))?;
        self.pending.clear();
        let skip = self.to_skip.min(n);
        self.to_skip -= skip;
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
    fn zero_rate_is_an_error() {
        assert!(resample_to_16k(&[0.0; 10], 0).is_err());
    }
}
