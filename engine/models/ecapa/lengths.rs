//! SpeechBrain's relative lengths (`wav_lens`) and the frames they keep. A padded batch carries,
//! per item, its length relative to the longest (`len / max_len`, as `PaddedBatch` computes it:
//! a Python float division stored in a float32 tensor); each module turns that into a frame mask
//! of its own, with float32 arithmetic:
//! - `InputNormalization` (`make_padding_mask`): frame `i` is valid when `i < rel · T − 1e-6`;
//! - `SEBlock` and `AttentiveStatisticsPooling` (`length_to_mask(rel · T, max_len=T)`): when
//!   `i < rel · T`.
//!
//! The two agree except when `rel · T` rounds to within 1e-6 above an integer, which float32
//! rarely allows; both are reproduced.

/// `make_padding_mask`'s `eps`.
pub const PADDING_MASK_EPS: f32 = 1e-6;

/// `wav_lens` of items of these lengths padded to the longest.
pub fn relative_lengths(lengths: &[usize]) -> Vec<f32> {
    let max = lengths.iter().copied().max().unwrap_or(0).max(1);
    lengths.iter().map(|&n| (n as f64 / max as f64) as f32).collect()
}

/// How many of `frames` frames `i` satisfy `(i as f32) < limit`.
fn frames_below(limit: f32, frames: usize) -> usize {
    (0..frames).take_while(|&i| (i as f32) < limit).count()
}

/// Frames `InputNormalization` averages over (`make_padding_mask(x, lengths)`).
pub fn norm_frames(rel: f32, frames: usize) -> usize {
    frames_below(rel * frames as f32 - PADDING_MASK_EPS, frames)
}

/// Frames the SE blocks and the attentive pooling see (`length_to_mask(lengths * L, max_len=L)`).
pub fn mask_frames(rel: f32, frames: usize) -> usize {
    frames_below(rel * frames as f32, frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_lengths_and_frames() {
        let rel = relative_lengths(&[40000, 27200, 14500, 36001]);
        assert_eq!(rel[0], 1.0);
        assert_eq!(rel[1], 0.68);
        // 251 frames for the longest; the others keep about as many as they have alone.
        assert_eq!(mask_frames(rel[0], 251), 251);
        assert_eq!(norm_frames(rel[0], 251), 251);
        assert_eq!(mask_frames(rel[1], 251), 171); // 0.68 · 251 = 170.68; alone: 171 frames
        assert_eq!(mask_frames(rel[2], 251), 91); // 90.99; alone: 91 frames
        assert_eq!(mask_frames(rel[3], 251), 226); // 225.9; alone: 226 frames
                                                   // An exact product: 0.5 · 200 = 100 frames (0..99), with or without the epsilon.
        assert_eq!((mask_frames(0.5, 200), norm_frames(0.5, 200)), (100, 100));
        assert_eq!(relative_lengths(&[]), Vec::<f32>::new());
    }
}
