//! The log-mel of a whole file, kept compactly: log10 mel energies frame by frame (`n_mels` f32 per
//! 10 ms), in fixed-size blocks so that growing it never copies what is already there, with the
//! running maximum. openai's (max - 8) floor and `(x + 4) / 4` scaling are applied when a window is
//! read, with the maximum over the whole input, as openai's `log_mel_spectrogram` applies them.

use rayon::prelude::*;

use crate::audio::mel::{Mel, N_FRAMES};

/// Dynamic range kept below the loudest value, in log10 units (80 dB).
const DYNAMIC_RANGE: f32 = 8.0;
/// Frames per storage block: one Whisper window, so a window read spans at most two blocks.
const FRAMES_PER_BLOCK: usize = N_FRAMES;

/// Unscaled log10 mel frames of one signal; made by [`super::MelStream::finish`].
#[derive(Debug, Clone)]
pub struct LogMelFrames {
    n_mels: usize,
    n_frames: usize,
    /// Frame-major `[FRAMES_PER_BLOCK, n_mels]` blocks; the last one may be partly filled.
    blocks: Vec<Vec<f32>>,
    max: f32,
}

impl LogMelFrames {
    pub(crate) fn new(n_mels: usize) -> Self {
        LogMelFrames { n_mels, n_frames: 0, blocks: Vec::new(), max: f32::NEG_INFINITY }
    }

    /// Append frame-major log10 frames (`n_mels` values each; `frames.len()` a multiple of it).
    pub(crate) fn extend(&mut self, mut frames: &[f32]) {
        let n_mels = self.n_mels;
        self.n_frames += frames.len() / n_mels;
        self.max = frames.iter().copied().fold(self.max, f32::max);
        while !frames.is_empty() {
            let block_len = FRAMES_PER_BLOCK * n_mels;
            if self.blocks.last().is_none_or(|b| b.len() == block_len) {
                self.blocks.push(Vec::with_capacity(block_len));
            }
            let Some(block) = self.blocks.last_mut() else { break };
            let take = (block_len - block.len()).min(frames.len());
            block.extend_from_slice(&frames[..take]);
            frames = &frames[take..];
        }
    }

    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    pub fn n_frames(&self) -> usize {
        self.n_frames
    }

    /// The largest log10 energy of all frames (the reference of the (max - 8) floor).
    pub fn max(&self) -> f32 {
        self.max
    }

    /// Unscaled log10 energies of frame `t` (`n_mels` values).
    fn frame(&self, t: usize) -> &[f32] {
        let block = &self.blocks[t / FRAMES_PER_BLOCK];
        let i = t % FRAMES_PER_BLOCK * self.n_mels;
        &block[i..i + self.n_mels]
    }

    /// openai's scaling of a log10 energy: floored at (max - 8), then `(x + 4) / 4`.
    fn scaler(&self) -> impl Fn(f32) -> f32 {
        let floor = self.max - DYNAMIC_RANGE;
        move |v| (v.max(floor) + 4.0) / 4.0
    }

    /// transcribe.py's `pad_or_trim(mel[:, seek:seek + size], N_FRAMES)`: `[n_mels, N_FRAMES]`
    /// scaled frames, zeros past `size` (and past the last frame).
    pub fn window(&self, seek: usize, size: usize) -> Vec<f32> {
        let size = size.min(N_FRAMES).min(self.n_frames.saturating_sub(seek));
        let scale = self.scaler();
        let mut out = vec![0.0f32; self.n_mels * N_FRAMES];
        for i in 0..size {
            for (m, &v) in self.frame(seek + i).iter().enumerate() {
                out[m * N_FRAMES + i] = scale(v);
            }
        }
        out
    }

    /// All frames, scaled, as a row-major `[n_mels, n_frames]` [`Mel`].
    pub fn to_mel(&self) -> Mel {
        let (n_mels, n_frames) = (self.n_mels, self.n_frames);
        let scale = self.scaler();
        let mut data = vec![0.0f32; n_mels * n_frames];
        data.par_chunks_mut(n_frames.max(1)).enumerate().for_each(|(m, row)| {
            for (t, v) in row.iter_mut().enumerate() {
                *v = scale(self.frame(t)[m]);
            }
        });
        Mel { n_mels, n_frames, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n_frames: usize, n_mels: usize) -> Vec<f32> {
        (0..n_frames * n_mels).map(|i| -((i % 97) as f32) / 7.0).collect()
    }

    #[test]
    fn frames_across_blocks_read_back_in_order() {
        let n_mels = 3;
        let all = frames(2 * FRAMES_PER_BLOCK + 5, n_mels);
        let mut store = LogMelFrames::new(n_mels);
        for piece in all.chunks(1234 * n_mels) {
            store.extend(piece);
        }
        assert_eq!(store.n_frames(), 2 * FRAMES_PER_BLOCK + 5);
        assert_eq!(store.blocks.len(), 3);
        for t in [0, 1, FRAMES_PER_BLOCK - 1, FRAMES_PER_BLOCK, 2 * FRAMES_PER_BLOCK + 4] {
            assert_eq!(store.frame(t), &all[t * n_mels..(t + 1) * n_mels], "frame {t}");
        }
        assert_eq!(store.max(), 0.0);
    }

    #[test]
    fn a_window_is_the_scaled_slice_of_the_whole_mel_padded_with_zeros() {
        let n_mels = 2;
        let mut store = LogMelFrames::new(n_mels);
        store.extend(&frames(FRAMES_PER_BLOCK + 100, n_mels));
        let mel = store.to_mel();
        let (seek, size) = (FRAMES_PER_BLOCK - 7, 50);
        let window = store.window(seek, size);
        for m in 0..n_mels {
            assert_eq!(&window[m * N_FRAMES..m * N_FRAMES + size], &mel.row(m)[seek..seek + size]);
            assert!(window[m * N_FRAMES + size..(m + 1) * N_FRAMES].iter().all(|&v| v == 0.0));
        }
        // Reading past the last frame gives pad_or_trim's zeros, not a panic.
        let past = store.window(store.n_frames() - 10, N_FRAMES);
        assert!(past[10..N_FRAMES].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn values_are_floored_eight_below_the_maximum_then_scaled() {
        let mut store = LogMelFrames::new(1);
        store.extend(&[2.0, -5.0, -6.0, -20.0]);
        let mel = store.to_mel();
        assert_eq!(mel.data, [(2.0 + 4.0) / 4.0, (-5.0 + 4.0) / 4.0, (-6.0 + 4.0) / 4.0, (-6.0 + 4.0) / 4.0]);
    }
}
