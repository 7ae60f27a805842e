//! From per-frame speech scores to the ≤ `chunk_size` chunks WhisperX transcribes in batches
//! (whisperx 3.8.6 `vads/pyannote.py` `Binarize` with its min-cut, and `vads/vad.py`
//! `Vad.merge_chunks`). The scores are the VAD's frame-level speech probability (max over the
//! segmentation model's speaker tracks, overlap-added); each frame is stamped with its middle.

/// whisperx `--vad_onset` default: a region starts when the score rises above it.
pub const VAD_ONSET: f32 = 0.500;
/// whisperx `--vad_offset` default: a region ends when the score falls below it.
pub const VAD_OFFSET: f32 = 0.363;
/// whisperx `--chunk_size` default, seconds.
pub const CHUNK_SIZE: f64 = 30.0;
/// The shortest chunk accepted: whisperx's `--chunk_size` is a whole number of seconds, so 1 is
/// the least it takes. Each chunk is encoded as a whole 30 s window, so the encoder's work grows
/// as 30 / chunk_size; a 1e-9 s chunk made 170 chunks of a 2.9 s clip.
pub const MIN_CHUNK_SIZE: f64 = 1.0;
/// pyannote.core `Segment` precision: shorter segments are empty and never stored.
const SEGMENT_PRECISION: f64 = 1e-6;

/// A region of speech, seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Region {
    pub start: f64,
    pub end: f64,
}

/// A chunk to transcribe: its span and the speech regions it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    pub start: f64,
    pub end: f64,
    pub regions: Vec<Region>,
}

/// What [`binarize_track`]'s state machine asks of the scores. [`binarize`] answers from the
/// scores themselves; the coarse-to-fine VAD (`vad_refine`) answers from estimates and notes
/// which answers an estimate could have got wrong.
pub trait ScoreTrack {
    /// `scores[i] > threshold`.
    fn above(&mut self, i: usize, threshold: f32) -> bool;
    /// `scores[i] < threshold`.
    fn below(&mut self, i: usize, threshold: f32) -> bool;
    /// numpy.argmin over the scores of `frames`: the position in `frames` of the first minimum.
    fn argmin(&mut self, frames: &[usize]) -> usize;
}

/// The scores themselves.
struct Scores<'a>(&'a [f32]);

impl ScoreTrack for Scores<'_> {
    fn above(&mut self, i: usize, threshold: f32) -> bool {
        self.0[i] > threshold
    }
    fn below(&mut self, i: usize, threshold: f32) -> bool {
        self.0[i] < threshold
    }
    fn argmin(&mut self, frames: &[usize]) -> usize {
        argmin_first(frames.iter().map(|&f| self.0[f]))
    }
}

/// `Binarize.__call__` for one track: hysteresis thresholding (`onset`, `offset`) of `scores`
/// stamped at `times`, cutting a region that grows past `max_duration` at the lowest score of its
/// second half. Regions come out sorted, empty ones dropped (pyannote's `Annotation` ignores them).
pub fn binarize(scores: &[f32], times: &[f64], onset: f32, offset: f32, max_duration: f64) -> Vec<Region> {
    assert_eq!(scores.len(), times.len(), "one time per score");
    binarize_track(&mut Scores(scores), times, onset, offset, max_duration)
}

/// [`binarize`] of the track whose frame `i` is stamped at `times[i]`.
pub fn binarize_track(
    track: &mut impl ScoreTrack,
    times: &[f64],
    onset: f32,
    offset: f32,
    max_duration: f64,
) -> Vec<Region> {
    let mut out = Vec::new();
    let Some(&t0) = times.first() else { return out };
    let mut push = |start: f64, end: f64| {
        if end - start > SEGMENT_PRECISION {
            out.push(Region { start, end });
        }
    };
    // "initial state"
    let mut start = t0;
    let mut is_active = track.above(0, onset);
    // The frames of `curr_scores` / `curr_timestamps`. Not always consecutive: the frame that
    // ends a region stays in them until the next region is cut or ends, as in pyannote.
    let mut curr = vec![0usize];
    let mut t = t0;
    for (i, &ti) in times.iter().enumerate().skip(1) {
        t = ti;
        if is_active {
            if t - start > max_duration {
                // "divide segment" at the lowest score after the middle of the region so far
                let search_after = curr.len() / 2;
                let min_idx = search_after + track.argmin(&curr[search_after..]);
                push(start, times[curr[min_idx]]);
                start = times[curr[min_idx]];
                curr.drain(..=min_idx);
            } else if track.below(i, offset) {
                // "switching from active to inactive"
                push(start, t);
                start = t;
                is_active = false;
                curr.clear();
            }
            curr.push(i);
        } else if track.above(i, onset) {
            // "switching from inactive to active"
            start = t;
            is_active = true;
        }
    }
    // "if active at the end, add final region"
    if is_active {
        push(start, t);
    }
    // Annotation.get_timeline(): sorted, duplicates once.
    out.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.end.total_cmp(&b.end)));
    out.dedup();
    out
}

/// numpy.argmin: the first index of the minimum (NaN wins, as numpy's).
pub fn argmin_first(x: impl IntoIterator<Item = f32>) -> usize {
    let mut best = 0;
    let mut best_value = f32::INFINITY;
    for (i, v) in x.into_iter().enumerate() {
        if i == 0 || v.is_nan() || v < best_value {
            best = i;
            best_value = v;
        }
        if best_value.is_nan() {
            break;
        }
    }
    best
}

/// `Vad.merge_chunks`: walk the regions in order and start a new chunk when adding the next
/// region would make it longer than `chunk_size` (and the current chunk is not empty).
pub fn merge_chunks(regions: &[Region], chunk_size: f64) -> Vec<Chunk> {
    let Some(first) = regions.first() else { return Vec::new() };
    let mut chunks = Vec::new();
    let (mut curr_start, mut curr_end) = (first.start, 0.0);
    let mut held = Vec::new();
    for r in regions {
        if r.end - curr_start > chunk_size && curr_end - curr_start > 0.0 {
            chunks.push(Chunk { start: curr_start, end: curr_end, regions: std::mem::take(&mut held) });
            curr_start = r.start;
        }
        curr_end = r.end;
        held.push(*r);
    }
    // "add final"
    chunks.push(Chunk { start: curr_start, end: curr_end, regions: held });
    chunks
}

/// Speech chunks of a score track: [`binarize`] with `max_duration = chunk_size`, then
/// [`merge_chunks`] (whisperx `Pyannote.merge_chunks`).
pub fn speech_chunks(scores: &[f32], times: &[f64], onset: f32, offset: f32, chunk_size: f64) -> Vec<Chunk> {
    merge_chunks(&binarize(scores, times, onset, offset, chunk_size), chunk_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames every 0.1 s, stamped at 0.05, 0.15, ...
    fn times(n: usize) -> Vec<f64> {
        (0..n).map(|i| 0.05 + 0.1 * i as f64).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn hysteresis_starts_above_onset_and_ends_below_offset() {
        // Binarize: "switching from inactive to active" when y > onset; "from active to
        // inactive" when y < offset; scores between the two keep the current state.
        let s = [0.1, 0.6, 0.45, 0.4, 0.3, 0.45, 0.55, 0.2];
        let r = binarize(&s, &times(8), VAD_ONSET, VAD_OFFSET, f64::INFINITY);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(close(r[0].start, 0.15) && close(r[0].end, 0.45), "{r:?}"); // 0.45 stays active, 0.3 ends
        assert!(close(r[1].start, 0.65) && close(r[1].end, 0.75), "{r:?}"); // 0.45 is not above onset
    }

    #[test]
    fn the_first_frame_can_open_a_region_and_the_last_closes_it() {
        // Binarize: "initial state" is_active = scores[0] > onset; "if active at the end, add
        // final region" up to the last frame's time.
        let s = [0.9, 0.9, 0.9];
        assert_eq!(binarize(&s, &times(3), 0.5, 0.363, f64::INFINITY), vec![Region { start: 0.05, end: 0.25 }]);
        // A single active frame is an empty segment, which pyannote never stores.
        assert!(binarize(&[0.9], &times(1), 0.5, 0.363, f64::INFINITY).is_empty());
    }

    #[test]
    fn a_long_region_is_cut_at_the_lowest_score_of_its_second_half() {
        // Binarize: "if curr_duration > self.max_duration: divide segment" at
        // search_after + argmin(curr_scores[search_after:]), search_after = len // 2.
        let mut s = vec![0.9f32; 12];
        s[2] = 0.4; // in the first half: ignored
        s[7] = 0.5; // the minimum of the second half
        let r = binarize(&s, &times(12), 0.5, 0.363, 0.95);
        // At t = 1.05 (frame 10) the region [0.05, ..] is 1.0 s long: 10 scores held, search
        // from index 5, minimum at frame 7 (t = 0.75): cut there; the rest continues from 0.75.
        assert!(close(r[0].start, 0.05) && close(r[0].end, 0.75), "{r:?}");
        assert!(close(r[1].start, 0.75) && close(r[1].end, 1.15), "{r:?}");
    }

    #[test]
    fn merging_keeps_chunks_within_the_chunk_size() {
        // Vad.merge_chunks: new chunk when seg.end - curr_start > chunk_size and the current
        // chunk is not empty; a chunk spans [first start, last end].
        let regions = [
            Region { start: 1.0, end: 5.0 },
            Region { start: 6.0, end: 20.0 },
            Region { start: 22.0, end: 31.5 },
            Region { start: 33.0, end: 40.0 },
        ];
        let chunks = merge_chunks(&regions, 30.0);
        assert_eq!(chunks.len(), 2);
        assert_eq!((chunks[0].start, chunks[0].end, chunks[0].regions.len()), (1.0, 20.0, 2));
        assert_eq!((chunks[1].start, chunks[1].end, chunks[1].regions.len()), (22.0, 40.0, 2));
        assert!(merge_chunks(&[], 30.0).is_empty());
        // A single region longer than the chunk size still forms its own chunk.
        let long = [Region { start: 0.0, end: 45.0 }];
        assert_eq!(merge_chunks(&long, 30.0).len(), 1);
    }

    #[test]
    fn no_thresholds_make_more_than_two_chunks_per_chunk_size_of_audio() {
        // Whatever onset and offset do to the regions (offset above onset cuts at every dip),
        // merge_chunks starts a chunk only when the next region ends more than chunk_size after
        // the current chunk's start, so every two chunks advance at least chunk_size: the work
        // is bounded by the audio's length and MIN_CHUNK_SIZE, not by the thresholds.
        let n = 6000; // 10 minutes at 0.1 s
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let scores: Vec<f32> = (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % 1000) as f32 / 1000.0
            })
            .collect();
        let t = times(n);
        let span = t[n - 1] - t[0];
        for (onset, offset) in [(1e-9, 1e-9), (0.5, 0.999_999), (1e-9, 0.999_999), (0.999_999, 1e-9), (0.5, 0.363)] {
            for chunk_size in [MIN_CHUNK_SIZE, 5.0, CHUNK_SIZE] {
                let chunks = speech_chunks(&scores, &t, onset, offset, chunk_size);
                let bound = (2.0 * span / chunk_size).ceil() as usize + 2;
                assert!(chunks.len() <= bound, "onset {onset} offset {offset} size {chunk_size}: {}", chunks.len());
            }
        }
    }

    #[test]
    fn speech_chunks_never_exceed_the_chunk_size_and_cover_all_speech() {
        // 100 s of speech with short dips: binarize cuts at max_duration, merge keeps ≤ 30 s.
        let n = 1000;
        let s: Vec<f32> = (0..n).map(|i| if i % 97 == 0 { 0.2 } else { 0.8 }).collect();
        let t = times(n);
        let chunks = speech_chunks(&s, &t, VAD_ONSET, VAD_OFFSET, CHUNK_SIZE);
        for c in &chunks {
            assert!(c.end - c.start <= CHUNK_SIZE + 1e-9, "{c:?}");
        }
        let speech: f64 = chunks.iter().flat_map(|c| &c.regions).map(|r| r.end - r.start).sum();
        assert!(speech > 0.95 * (t[n - 1] - t[0]), "{speech}");
    }
}
