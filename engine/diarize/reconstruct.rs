//! From clustered local speakers to the diarization, as pyannote's speaker diarization pipeline
//! ends (pyannote.audio 4.0 `pipelines/speaker_diarization.py` `SpeakerDiarization.apply`,
//! `reconstruct`; `pipelines/utils/diarization.py` `to_diarization`, `to_annotation`;
//! `utils/signal.py` `Binarize`):
//! 1. a local speaker never active in its window goes to no cluster (−2);
//! 2. per window, a cluster's activity at a frame is the largest of its local speakers' (absent
//!    clusters count as missing, not as 0);
//! 3. the windows are overlap-added as a **sum** onto the count's frame grid (missing → 0);
//! 4. at each frame the `count[t]` most active clusters are on; clusters are padded when the
//!    count exceeds them. Ties go to the lower cluster here; pyannote's `np.argsort(-activity)`
//!    leaves them to numpy's sort, whose order for equal values depends on the machine (on
//!    AVX-512 it put the higher cluster first in one case seen), so tied frames may differ;
//! 5. turns per cluster by hysteresis at 0.5 on the frames' middles (a turn runs from the first
//!    active frame's middle to the first inactive one's, or to the last frame's middle), gaps
//!    shorter than `min_duration_off` filled (`Annotation.support(collar)`);
//! 6. labels: the clusters that have turns, in order, become SPEAKER_00, SPEAKER_01, …
//!
//! The exclusive diarization is the same with the count capped at 1; the pipeline caps the
//! regular one at `max_speakers`.

use crate::models::pyannote::local_speakers::LocalSpeakers;
use crate::models::pyannote::receptive_field::FrameWindow;

/// The cluster of a local speaker that belongs to none (`hard_clusters` value −2).
pub const NO_CLUSTER: i32 = -2;
/// `Binarize(onset=0.5, offset=0.5)` in `to_annotation`.
pub const ONSET: f32 = 0.5;
pub const OFFSET: f32 = 0.5;
/// pyannote.core's `SEGMENT_PRECISION`: a gap shorter than this is no gap.
const SEGMENT_PRECISION: f64 = 1e-6;

/// Which clusters are on at each frame of `frames` (`[num_frames, clusters]`, 0 or 1).
#[derive(Clone, Debug, PartialEq)]
pub struct DiscreteDiarization {
    pub frames: FrameWindow,
    pub num_frames: usize,
    pub clusters: usize,
    pub on: Vec<u8>,
    /// The summed activity each choice was made on (`[num_frames, clusters]`, padding 0).
    pub activity: Vec<f32>,
}

/// One speaker turn: `cluster` speaks from `start` to `end` seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Turn {
    pub start: f64,
    pub end: f64,
    pub cluster: usize,
}

/// Step 1: local speakers never active in their window leave their cluster.
pub fn drop_inactive(local: &LocalSpeakers, hard_clusters: &mut [i32]) {
    for c in 0..local.chunks {
        let chunk = local.chunk(c);
        for s in 0..local.speakers {
            if chunk.iter().skip(s).step_by(local.speakers).all(|&a| a == 0) {
                hard_clusters[c * local.speakers + s] = NO_CLUSTER;
            }
        }
    }
}

/// Steps 2–4: `hard_clusters` is `[chunks, local speakers]` (cluster or [`NO_CLUSTER`]),
/// `count` the speakers per frame of the recording's grid (`LocalSpeakers::speaker_count`,
/// capped as the caller wants).
pub fn reconstruct(local: &LocalSpeakers, hard_clusters: &[i32], count: &[u8]) -> DiscreteDiarization {
    let grid = FrameWindow { start: 0.0, ..local.frames };
    let clusters = hard_clusters.iter().copied().max().map_or(0, |m| (m + 1).max(0) as usize);
    // Sum over windows of each cluster's activity (its local speakers' maximum).
    let last_end = local.chunk_duration + local.chunks.saturating_sub(1) as f64 * local.chunk_step;
    let aggregated_frames =
        if local.chunks == 0 { 0 } else { (grid.closest_frame(last_end + 0.5 * grid.duration) + 1).max(0) as usize };
    let mut activity = vec![0.0f32; aggregated_frames * clusters];
    for c in 0..local.chunks {
        let chunk = local.chunk(c);
        let labels = &hard_clusters[c * local.speakers..(c + 1) * local.speakers];
        // Where this window's first frame lands on the grid (`Inference.aggregate`).
        let first = grid.closest_frame(c as f64 * local.chunk_step + 0.5 * grid.duration).max(0) as usize;
        for (f, frame) in chunk.chunks_exact(local.speakers).enumerate() {
            let Some(row) = activity.get_mut((first + f) * clusters..(first + f + 1) * clusters) else { break };
            for (k, total) in row.iter_mut().enumerate() {
                let max = labels.iter().zip(frame).filter(|(&l, _)| l == k as i32).map(|(_, &a)| a).max();
                if let Some(a) = max {
                    *total += a as f32;
                }
            }
        }
    }
    let max_count = count.iter().copied().max().unwrap_or(0) as usize;
    let width = clusters.max(max_count);
    let num_frames = aggregated_frames.min(count.len());
    let mut on = vec![0u8; num_frames * width];
    let mut padded = vec![0.0f32; num_frames * width];
    let mut order: Vec<usize> = Vec::with_capacity(width);
    for t in 0..num_frames {
        let value = |k: usize| if k < clusters { activity[t * clusters + k] } else { 0.0 };
        order.clear();
        order.extend(0..width);
        order.sort_by(|&a, &b| value(b).total_cmp(&value(a)));
        for &k in order.iter().take(count[t] as usize) {
            on[t * width + k] = 1;
        }
        for (k, v) in padded[t * width..(t + 1) * width].iter_mut().enumerate() {
            *v = value(k);
        }
    }
    DiscreteDiarization { frames: local.frames, num_frames, clusters: width, on, activity: padded }
}

/// Step 5: the turns of every cluster, in time order (then cluster order).
pub fn turns(d: &DiscreteDiarization, min_duration_off: f64) -> Vec<Turn> {
    let mut out = Vec::new();
    if d.num_frames == 0 {
        return out;
    }
    let middle = |i: usize| d.frames.middle(i);
    for k in 0..d.clusters {
        let score = |i: usize| d.on[i * d.clusters + k] as f32;
        let mut regions: Vec<(f64, f64)> = Vec::new();
        let mut start = middle(0);
        let mut active = score(0) > ONSET;
        for i in 1..d.num_frames {
            if active && score(i) < OFFSET {
                regions.push((start, middle(i)));
                active = false;
            } else if !active && score(i) > ONSET {
                start = middle(i);
                active = true;
            }
        }
        if active {
            regions.push((start, middle(d.num_frames - 1)));
        }
        if min_duration_off > 0.0 {
            regions = fill_gaps(&regions, min_duration_off);
        }
        out.extend(regions.into_iter().map(|(start, end)| Turn { start, end, cluster: k }));
    }
    out.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.end.total_cmp(&b.end)).then(a.cluster.cmp(&b.cluster)));
    out
}

/// `Timeline.support(collar)` of one cluster's regions (in time order): regions closer than
/// `collar` are joined.
fn fill_gaps(regions: &[(f64, f64)], collar: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for &(s, e) in regions {
        match out.last_mut() {
            Some(last) if s - last.1 <= SEGMENT_PRECISION || s - last.1 < collar => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Step 6: pyannote's labels for the clusters that have turns: the i-th such cluster (in
/// cluster order) is `SPEAKER_{i:02}`; None for clusters without turns.
pub fn speaker_labels(turns: &[Turn], clusters: usize) -> Vec<Option<String>> {
    let mut has = vec![false; clusters];
    for t in turns {
        has[t.cluster] = true;
    }
    let mut next = 0;
    has.iter()
        .map(|&h| {
            h.then(|| {
                next += 1;
                format!("SPEAKER_{:02}", next - 1)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> FrameWindow {
        FrameWindow { start: 0.0, duration: 0.1, step: 0.1 }
    }

    fn discrete(columns: &[&[u8]]) -> DiscreteDiarization {
        let num_frames = columns[0].len();
        let clusters = columns.len();
        let on: Vec<u8> = (0..num_frames).flat_map(|t| columns.iter().map(move |c| c[t])).collect();
        let activity = on.iter().map(|&o| o as f32).collect();
        DiscreteDiarization { frames: frames(), num_frames, clusters, on, activity }
    }

    #[test]
    fn a_turn_runs_from_the_first_active_middle_to_the_first_inactive_middle() {
        // Binarize: start = middle of the switching-on frame, end = middle of the switching-off one.
        let d = discrete(&[&[0, 1, 1, 0, 0, 1]]);
        let t = turns(&d, 0.0);
        assert_eq!(t.len(), 2);
        assert!((t[0].start - 0.15).abs() < 1e-12 && (t[0].end - 0.35).abs() < 1e-12, "{t:?}");
        // Active at the end: the last frame's middle closes it (a zero-length turn here).
        assert!((t[1].start - 0.55).abs() < 1e-12 && (t[1].end - 0.55).abs() < 1e-12, "{t:?}");
    }

    #[test]
    fn active_from_the_first_frame_starts_at_its_middle() {
        let t = turns(&discrete(&[&[1, 1, 0]]), 0.0);
        assert!((t[0].start - 0.05).abs() < 1e-12 && (t[0].end - 0.25).abs() < 1e-12, "{t:?}");
    }

    #[test]
    fn gaps_shorter_than_min_duration_off_are_filled_per_cluster() {
        let d = discrete(&[&[1, 0, 1, 0, 0, 0, 1], &[0, 1, 0, 0, 0, 0, 0]]);
        let t = turns(&d, 0.15);
        let zero: Vec<_> = t.iter().filter(|t| t.cluster == 0).collect();
        // 0.05–0.15 and 0.25–0.35 joined (gap 0.1 < 0.15); the 0.3 gap to 0.65 stays.
        assert_eq!(zero.len(), 2, "{t:?}");
        assert!((zero[0].end - 0.35).abs() < 1e-12);
    }

    #[test]
    fn the_most_active_clusters_win_and_ties_go_to_the_lower_cluster() {
        let local = LocalSpeakers {
            chunk_duration: 0.3,
            chunk_step: 0.1,
            chunks: 1,
            frames_per_chunk: 3,
            speakers: 3,
            // frame 0: speakers 0 and 2; frame 1: all three; frame 2: none.
            binarized: vec![1, 0, 1, 1, 1, 1, 0, 0, 0],
            frames: frames(),
        };
        // Local speakers 0 and 1 in cluster 1, speaker 2 in cluster 0.
        let d = reconstruct(&local, &[1, 1, 0], &[1, 1, 2]);
        assert_eq!(d.clusters, 2);
        // Frame 0: both clusters have 1 → the tie goes to cluster 0. Frame 1: same.
        assert_eq!(&d.on[0..2], &[1, 0]);
        assert_eq!(&d.on[2..4], &[1, 0]);
        // Frame 2: nobody active, count 2: both on (all zero, padded order).
        assert_eq!(&d.on[4..6], &[1, 1]);
    }

    #[test]
    fn inactive_local_speakers_leave_their_cluster() {
        let local = LocalSpeakers {
            chunk_duration: 0.2,
            chunk_step: 0.1,
            chunks: 1,
            frames_per_chunk: 2,
            speakers: 3,
            binarized: vec![1, 0, 0, 1, 0, 1],
            frames: frames(),
        };
        let mut hard = vec![0, 1, 2];
        drop_inactive(&local, &mut hard);
        assert_eq!(hard, vec![0, NO_CLUSTER, 2]);
    }

    #[test]
    fn labels_number_only_the_clusters_that_speak() {
        let t = [Turn { start: 0.0, end: 1.0, cluster: 2 }, Turn { start: 1.0, end: 2.0, cluster: 0 }];
        assert_eq!(speaker_labels(&t, 3), vec![Some("SPEAKER_00".into()), None, Some("SPEAKER_01".into())]);
    }
}
