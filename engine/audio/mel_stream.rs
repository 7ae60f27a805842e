//! Whisper's log-mel computed as the audio arrives: push 16 kHz samples in chunks of any size, then
//! [`MelStream::finish`] with the zero padding to append. The frames are bitwise those of the
//! whole-signal computation (each frame is computed from the same samples by the same code), and
//! only the samples that frames still to come need are kept (at most two batches of
//! `BATCH_FRAMES` hops, about 20 s).
//!
//! openai pads the signal with `N_FFT / 2` reflected samples at both ends (torch.stft
//! `center=True`): the start is reflected as soon as `N_FFT / 2 + 1` samples have arrived, the end
//! (of the zero-padded signal) at `finish`.

use crate::audio::filters::{mel_filters, MelFilters};
use crate::audio::log_mel_frames::LogMelFrames;
use crate::audio::mel::{HOP_LENGTH, N_FFT};
use crate::audio::mel_frame::{log_mel_frames, PaddedSignal};
use crate::Result;

/// Frames computed together (in parallel) once their samples have arrived: about 10 s of audio.
const BATCH_FRAMES: usize = 1024;

/// Incremental log-mel; see the module docs.
pub struct MelStream {
    filters: &'static MelFilters,
    /// Signal samples `buf_start ..` (everything frames from `frames.n_frames()` on may read).
    buf: Vec<f32>,
    buf_start: usize,
    frames: LogMelFrames,
    /// Frame-major scratch for one batch.
    batch: Vec<f32>,
}

impl MelStream {
    /// A stream producing `n_mels` (80 or 128) bins per frame.
    pub fn new(n_mels: usize) -> Result<Self> {
        Ok(MelStream {
            filters: mel_filters(n_mels)?,
            buf: Vec::with_capacity(BATCH_FRAMES * HOP_LENGTH + N_FFT),
            buf_start: 0,
            frames: LogMelFrames::new(n_mels),
            batch: Vec::new(),
        })
    }

    /// Samples pushed so far.
    pub fn n_samples(&self) -> usize {
        self.buf_start + self.buf.len()
    }

    /// Append the next samples of the signal.
    pub fn push(&mut self, mut samples: &[f32]) {
        while !samples.is_empty() {
            let take = samples.len().min(BATCH_FRAMES * HOP_LENGTH);
            self.buf.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            let ready = self.ready_frames();
            if ready - self.frames.n_frames() >= BATCH_FRAMES {
                let signal_len = self.n_samples();
                self.compute_frames(ready, signal_len);
            }
        }
    }

    /// Frames whose samples (reflection at the start included) have all arrived: frame `t` reads
    /// up to sample `t * HOP_LENGTH + N_FFT / 2 - 1`, and frame 0 reflects sample `N_FFT / 2`.
    fn ready_frames(&self) -> usize {
        match self.n_samples().checked_sub(N_FFT / 2 + 1) {
            Some(last_start) => last_start / HOP_LENGTH + 1,
            None => 0,
        }
    }

    /// Compute frames up to `end` (exclusive) over the signal zero-padded to `signal_len`, then drop
    /// the samples no later frame reads.
    fn compute_frames(&mut self, end: usize, signal_len: usize) {
        let n_mels = self.frames.n_mels();
        let signal = PaddedSignal { audio: &self.buf, offset: self.buf_start, len: signal_len };
        let mut first = self.frames.n_frames();
        while first < end {
            let count = (end - first).min(BATCH_FRAMES);
            self.batch.resize(count * n_mels, 0.0);
            log_mel_frames(&signal, self.filters, first, &mut self.batch);
            self.frames.extend(&self.batch);
            first += count;
        }
        // The next frame starts N_FFT / 2 before its centre (frames 0 and 1 reflect from sample 0).
        let keep_from = (first * HOP_LENGTH).saturating_sub(N_FFT / 2).max(self.buf_start);
        let drop = (keep_from - self.buf_start).min(self.buf.len());
        self.buf.drain(..drop);
        self.buf_start += drop;
    }

    /// End of stream: append `zero_padding` zeros (openai pads 30 s, [`crate::audio::mel::N_SAMPLES`],
    /// for slicing), reflect the end, and compute the remaining frames. A centred STFT of `len`
    /// samples has `1 + len / HOP_LENGTH` frames; openai drops the last, leaving `len / HOP_LENGTH`.
    pub fn finish(mut self, zero_padding: usize) -> LogMelFrames {
        let signal_len = self.n_samples() + zero_padding;
        self.compute_frames(signal_len / HOP_LENGTH, signal_len);
        self.frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_no_frame_needs_are_dropped() {
        let mut stream = MelStream::new(80).unwrap();
        let chunk = vec![0.1f32; 3 * BATCH_FRAMES * HOP_LENGTH + 77];
        stream.push(&chunk);
        assert!(stream.frames.n_frames() >= 2 * BATCH_FRAMES);
        assert!(stream.buf.len() <= BATCH_FRAMES * HOP_LENGTH + N_FFT, "{} samples held", stream.buf.len());
        assert_eq!(stream.n_samples(), chunk.len());
    }

    #[test]
    fn nothing_is_ready_before_the_start_can_be_reflected() {
        let mut stream = MelStream::new(80).unwrap();
        stream.push(&[0.5; N_FFT / 2]);
        assert_eq!(stream.ready_frames(), 0);
        stream.push(&[0.5]);
        assert_eq!(stream.ready_frames(), 1);
    }
}
