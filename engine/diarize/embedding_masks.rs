//! Which frames of each window an embedding of a (window, local speaker) pair is computed from,
//! as pyannote's speaker diarization pipeline chooses them (pyannote.audio 4.0
//! `pipelines/speaker_diarization.py` `SpeakerDiarization.get_embeddings`):
//! - every pair is embedded, inactive ones included (the clustering drops them later);
//! - with `exclude_overlap` (on in 3.1 and community-1), frames where two or more local
//!   speakers are active are left out of the speaker's mask, unless that leaves no more than
//!   `min_num_frames` frames, in which case the whole mask is used;
//! - `min_num_frames = ceil(frames · min_num_samples / (duration · sample_rate))`, where
//!   `min_num_samples` is the fewest samples the embedding model accepts.

use crate::models::pyannote::local_speakers::LocalSpeakers;

/// The embedding pipeline's `embedding_exclude_overlap` in 3.1 and community-1.
pub const EXCLUDE_OVERLAP: bool = true;

/// Frames an embedding needs at least, for a model that needs `min_num_samples` samples, in
/// windows of `frames_per_chunk` frames over `window_samples` samples.
pub fn min_num_frames(frames_per_chunk: usize, min_num_samples: usize, window_samples: usize) -> usize {
    (frames_per_chunk * min_num_samples).div_ceil(window_samples.max(1))
}

/// The mask of every (window, local speaker) pair, `[chunks · speakers][frames_per_chunk]` as
/// 0.0/1.0, in pyannote's order (window-major, then local speaker).
pub fn embedding_masks(local: &LocalSpeakers, exclude_overlap: bool, min_num_frames: usize) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(local.chunks * local.speakers);
    for c in 0..local.chunks {
        let chunk = local.chunk(c);
        let frames: Vec<&[u8]> = chunk.chunks_exact(local.speakers).collect();
        for s in 0..local.speakers {
            let mask: Vec<f32> = frames.iter().map(|f| f[s] as f32).collect();
            if !exclude_overlap {
                out.push(mask);
                continue;
            }
            // Frames with fewer than two active speakers.
            let clean: Vec<f32> = frames
                .iter()
                .zip(&mask)
                .map(|(f, &m)| if f.iter().map(|&a| a as usize).sum::<usize>() < 2 { m } else { 0.0 })
                .collect();
            let clean_frames = clean.iter().filter(|&&m| m > 0.0).count();
            // `np.sum(clean_mask) > min_num_frames`; pyannote's default (no exclusion) is −1.
            out.push(if clean_frames > min_num_frames { clean } else { mask });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::pyannote::receptive_field::FrameWindow;

    fn local(binarized: Vec<u8>, frames: usize) -> LocalSpeakers {
        LocalSpeakers {
            chunk_duration: 10.0,
            chunk_step: 1.0,
            chunks: binarized.len() / (frames * 3),
            frames_per_chunk: frames,
            speakers: 3,
            binarized,
            frames: FrameWindow { start: 0.0, duration: 0.06, step: 0.017 },
        }
    }

    #[test]
    fn min_num_frames_is_rounded_up() {
        // 589 frames over 160,000 samples; a model needing 640 samples needs ceil(2.356) = 3.
        assert_eq!(min_num_frames(589, 640, 160_000), 3);
        assert_eq!(min_num_frames(589, 0, 160_000), 0);
        assert_eq!(min_num_frames(100, 1600, 160_000), 1);
    }

    #[test]
    fn overlapping_frames_are_left_out_when_enough_remain() {
        // Frames (speakers 0,1,2): [1,0,0] [1,1,0] [1,0,0] [0,1,0].
        let l = local(vec![1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 0], 4);
        let m = embedding_masks(&l, true, 1);
        assert_eq!(m[0], vec![1.0, 0.0, 1.0, 0.0], "speaker 0 keeps its 2 clean frames");
        // Speaker 1 has one clean frame, not more than min_num_frames = 1: the whole mask.
        assert_eq!(m[1], vec![0.0, 1.0, 0.0, 1.0]);
        assert_eq!(m[2], vec![0.0; 4], "inactive pairs are embedded too, with an empty mask");
    }

    #[test]
    fn without_exclusion_the_mask_is_the_speakers_activity() {
        let l = local(vec![1, 1, 0, 1, 1, 0], 2);
        let m = embedding_masks(&l, false, 0);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0], vec![1.0, 1.0]);
        assert_eq!(m[1], vec![1.0, 1.0]);
    }

    #[test]
    fn pairs_come_window_by_window_then_speaker_by_speaker() {
        let l = local(vec![1, 0, 0, /* window 1 */ 0, 0, 1], 1);
        let m = embedding_masks(&l, true, 0);
        assert_eq!(m, vec![vec![1.0], vec![0.0], vec![0.0], vec![0.0], vec![0.0], vec![1.0]]);
    }
}
