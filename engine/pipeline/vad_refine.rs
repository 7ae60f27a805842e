//! Coarse-to-fine VAD (issue 17): WhisperX's speech regions from a part of its windows.
//!
//! WhisperX scores a 5 s window every 0.5 s and averages, Hamming-weighted, the ten windows over
//! each frame (`models::pyannote::sliding_window`); `Binarize` then only asks of each frame
//! whether its score is above the onset or below the offset, and, where a region grows past the
//! chunk size, which frame of its second half scores lowest (`speech_chunks`). Where the speech
//! probability is far from both thresholds, a few of the ten windows answer as all ten would:
//! 1. score every [`COARSE_EVERY`]-th window and the last one, and average what is scored;
//! 2. run `Binarize` on these averages, noting each frame whose answer rests on an average of
//!    some of its windows that lies within [`MARGIN`] of the threshold asked about, and each
//!    frame of a region to cut whose score could be the lowest one;
//! 3. score every window over the noted frames: their averages are then WhisperX's own;
//!    repeat from 2 until no answer rests on a partial average near a threshold.
//!
//! A frame no scored window covers is always noted. A frame whose windows are all scored has the
//! full VAD's score (the windows are added in the same order; a window's filter bank runs over
//! another stretch than in the full VAD's batches, which moves its scores by rounding, up to
//! 9e-4 with bf16 LSTMs: tests/vad_reference.rs). So the regions are the full VAD's wherever
//! every partial average a decision rests on lies less than [`MARGIN`] from the full one, and no
//! full score lies within that rounding of a threshold; `cargo bench --bench vad_refine`
//! measures the error on recordings and compares the regions. What it saves depends on the
//! audio: every speech edge needs all the windows of the 5 s before it, so dense speech needs
//! every window (and costs a little more than the full VAD's one pass); stretches of more than
//! about 10 s without speech are where windows are saved.

use std::ops::Range;

use rayon::prelude::*;

use crate::audio::Audio;
use crate::backend::Device;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::models::pyannote::receptive_field::FrameWindow;
use crate::models::pyannote::sliding_window::{score_windows, window_starts, window_step, Aggregator, STEP_RATIO};
use crate::models::pyannote::PyanNet;

use super::speech_chunks::{argmin_first, binarize_track, Region, ScoreTrack};

/// Every fifth window (2.5 s apart at pyannote's step) scored first: nearly every frame lies in
/// two of them (the rest in the middle of one), so the first averages see most frames'
/// neighbourhoods from both sides.
pub const COARSE_EVERY: usize = 5;
/// With another window step, the first pass keeps its windows at most this far apart (half a
/// window), as [`COARSE_EVERY`] does at 0.5 s.
pub const COARSE_SPACING_WINDOWS: f64 = 0.5;
/// How far a partial average may lie from the full one at a frame it decides (speech
/// probability). `cargo bench --bench vad_refine` prints the largest distance it measured at
/// frames left to partial averages: 0.079 with every fifth window first, on the benchmark files
/// and two_speakers.wav ×20 (2026-12-06), where 0.2 already kept every region; 0.3 leaves
/// nearly four times that error for other recordings, for 1–5 % more windows.
pub const MARGIN: f32 = 0.3;

/// The sliding windows of a recording and how their scores aggregate.
#[derive(Clone, Copy, Debug)]
pub struct Windows {
    /// Windows in the full VAD (`step` apart: 0.5 s at pyannote's step).
    pub count: usize,
    /// Frames a window scores.
    pub frames_per_window: usize,
    /// Window length and step, seconds.
    pub duration: f64,
    pub step: f64,
    /// The model's output frames.
    pub frames: FrameWindow,
    /// The recording's length when the last window is zero-padded past it (crops the grid).
    pub crop: Option<f64>,
}

/// `Binarize`'s thresholds and the longest region.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    pub onset: f32,
    pub offset: f32,
    pub max_duration: f64,
}

/// What the refinement did.
#[derive(Clone, Debug, PartialEq)]
pub struct Refined {
    /// Scores on the frame grid: the full VAD's wherever `exact`, partial averages elsewhere.
    pub scores: Vec<f32>,
    pub exact: Vec<bool>,
    /// The regions `Binarize` finds in `scores`.
    pub regions: Vec<Region>,
    /// Windows scored, of [`Windows::count`].
    pub windows_scored: usize,
    /// Passes of `Binarize` (the last one noted nothing).
    pub rounds: usize,
}

/// `score(indices, gap)`: the frame scores of the windows `indices` (sorted, distinct, those
/// `gap` apart sharing work), one row a window.
pub type ScoreWindows<'a> = dyn FnMut(&[usize], usize) -> Result<Vec<Vec<f32>>> + 'a;

/// Coarse-to-fine scores of `windows`, scored by `score`.
pub fn refine(
    windows: &Windows,
    thresholds: &Thresholds,
    margin: f32,
    coarse_every: usize,
    score: &mut ScoreWindows,
) -> Result<Refined> {
    let n = windows.count;
    let mut known: Vec<Option<Vec<f32>>> = vec![None; n];
    let coarse_every = coarse_every.max(1);
    let coarse: Vec<usize> = (0..n).step_by(coarse_every).collect();
    store(&mut known, &coarse, score(&coarse, coarse_every)?);
    if let Some(last) = n.checked_sub(1).filter(|l| known[*l].is_none()) {
        store(&mut known, &[last], score(&[last], 1)?);
    }
    let mut rounds = 0;
    loop {
        rounds += 1;
        let (scores, exact, seen, first_frames) = aggregate(windows, &known);
        let times: Vec<f64> = (0..scores.len()).map(|i| windows.frames.middle(i)).collect();
        let mut check =
            Checked { scores: &scores, exact: &exact, seen: &seen, margin, noted: vec![false; scores.len()] };
        let regions = binarize_track(&mut check, &times, thresholds.onset, thresholds.offset, thresholds.max_duration);
        let wanted = windows_over(&check.noted, &first_frames, windows.frames_per_window, &known);
        if wanted.is_empty() {
            let windows_scored = known.iter().filter(|k| k.is_some()).count();
            return Ok(Refined { scores, exact, regions, windows_scored, rounds });
        }
        store(&mut known, &wanted, score(&wanted, 1)?);
    }
}

fn store(known: &mut [Option<Vec<f32>>], indices: &[usize], scores: Vec<Vec<f32>>) {
    assert_eq!(indices.len(), scores.len(), "one score row per window");
    for (&c, s) in indices.iter().zip(scores) {
        known[c] = Some(s);
    }
}

/// The scored windows averaged onto the grid in the order of their indices, whether each frame
/// has all its windows, whether it has any, and where each window starts on the grid.
fn aggregate(windows: &Windows, known: &[Option<Vec<f32>>]) -> (Vec<f32>, Vec<bool>, Vec<bool>, Vec<usize>) {
    let mut aggregator = Aggregator::new(windows.duration, windows.step, windows.frames);
    let first_frames: Vec<usize> = (0..windows.count).map(|c| aggregator.first_frame(c)).collect();
    for (c, s) in known.iter().enumerate() {
        if let Some(s) = s {
            aggregator.add_at(c, s);
        }
    }
    let scores = aggregator.finish(windows.crop);
    // Windows not scored and scored, counted over each frame by difference arrays.
    let n = scores.len();
    let (mut missing, mut scored) = (vec![0i64; n + 1], vec![0i64; n + 1]);
    for (c, s) in known.iter().enumerate() {
        let Range { start, end } = frame_range(first_frames[c], windows.frames_per_window, n);
        let counts = if s.is_none() { &mut missing } else { &mut scored };
        counts[start] += 1;
        counts[end] -= 1;
    }
    let (mut open_missing, mut open_scored) = (0, 0);
    let (mut exact, mut seen) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        open_missing += missing[i];
        open_scored += scored[i];
        exact.push(open_missing == 0);
        seen.push(open_scored > 0);
    }
    (scores, exact, seen, first_frames)
}

fn frame_range(first: usize, len: usize, frames: usize) -> Range<usize> {
    first.min(frames)..(first + len).min(frames)
}

/// The windows not yet scored that cover a noted frame, in order.
fn windows_over(noted: &[bool], first_frames: &[usize], per_window: usize, known: &[Option<Vec<f32>>]) -> Vec<usize> {
    let mut before = vec![0usize; noted.len() + 1];
    for (i, &n) in noted.iter().enumerate() {
        before[i + 1] = before[i] + n as usize;
    }
    (0..first_frames.len())
        .filter(|&c| known[c].is_none())
        .filter(|&c| {
            let r = frame_range(first_frames[c], per_window, noted.len());
            before[r.end] > before[r.start]
        })
        .collect()
}

/// `Binarize`'s questions answered from partial averages, noting the frames where an answer
/// could differ from the full VAD's.
struct Checked<'a> {
    scores: &'a [f32],
    exact: &'a [bool],
    /// Whether any scored window covers the frame (its score is 0 otherwise: no estimate).
    seen: &'a [bool],
    margin: f32,
    noted: Vec<bool>,
}

impl Checked<'_> {
    /// How far frame `i`'s score may lie from the full VAD's.
    fn slack(&self, i: usize) -> f32 {
        match (self.exact[i], self.seen[i]) {
            (true, _) => 0.0,
            (false, true) => self.margin,
            (false, false) => f32::INFINITY,
        }
    }

    fn compare(&mut self, i: usize, threshold: f32) {
        if (self.scores[i] - threshold).abs() < self.slack(i) {
            self.noted[i] = true;
        }
    }
}

impl ScoreTrack for Checked<'_> {
    fn above(&mut self, i: usize, threshold: f32) -> bool {
        self.compare(i, threshold);
        self.scores[i] > threshold
    }

    fn below(&mut self, i: usize, threshold: f32) -> bool {
        self.compare(i, threshold);
        self.scores[i] < threshold
    }

    fn argmin(&mut self, frames: &[usize]) -> usize {
        // The minimum is at most the smallest upper bound of the frames' scores; any frame
        // whose lower bound is at or under it could be the minimum.
        let lowest_max = frames.iter().map(|&f| self.scores[f] + self.slack(f)).fold(f32::INFINITY, f32::min);
        for &f in frames {
            if !self.exact[f] && self.scores[f] - self.slack(f) <= lowest_max {
                self.noted[f] = true;
            }
        }
        argmin_first(frames.iter().map(|&f| self.scores[f]))
    }
}

/// The VAD's speech regions of `audio`, coarse to fine: windows `step` seconds apart (None:
/// pyannote's), `batch_size` per forward. `progress(seconds)` reports how far the first,
/// coarse pass has read.
#[allow(clippy::too_many_arguments)]
pub fn speech_regions(
    model: &PyanNet,
    dev: &Device,
    audio: &Audio,
    step: Option<f64>,
    batch_size: usize,
    thresholds: &Thresholds,
    cancel: &Cancel,
    progress: &mut dyn FnMut(f64),
) -> Result<Refined> {
    let cfg = &model.config;
    let frames = FrameWindow { start: 0.0, ..model.frames() };
    let (step_seconds, hop) = window_step(model, step)?;
    let window = cfg.window_samples();
    if audio.is_empty() {
        return Ok(Refined {
            scores: Vec::new(),
            exact: Vec::new(),
            regions: Vec::new(),
            windows_scored: 0,
            rounds: 0,
        });
    }
    let (starts, has_last) = window_starts(audio.len(), window, hop);
    let windows = Windows {
        count: starts.len(),
        frames_per_window: model.num_frames(window),
        duration: cfg.duration,
        step: step_seconds,
        frames,
        crop: has_last.then(|| audio.duration()),
    };
    let sample_rate = cfg.sample_rate as f64;
    let mut score = |indices: &[usize], gap: usize| -> Result<Vec<Vec<f32>>> {
        cancel.check()?;
        let mut out = Vec::with_capacity(indices.len());
        let batch_size = batch_size.max(1);
        let run = |batch: &[usize]| -> Result<Vec<Vec<f32>>> {
            cancel.check()?;
            score_windows(model, dev, hop, batch, gap, batch_size, &mut |start, end| audio.span(start, end))
        };
        let in_flight = if dev.runs_stages_alongside() { BATCHES_IN_FLIGHT } else { 1 };
        for batch in indices.chunks(batch_size * in_flight) {
            // Batches at once: the thread pool fills the cores one batch's small ops and
            // uneven splits leave idle with the others' work. Each batch's ops compute what
            // they compute alone (the same bits).
            let scored: Vec<Result<Vec<Vec<f32>>>> = if in_flight > 1 {
                batch.par_chunks(batch_size).map(run).collect()
            } else {
                batch.chunks(batch_size).map(run).collect()
            };
            for s in scored {
                out.extend(s?);
            }
            if gap > 1 {
                let last = *batch.last().expect("a batch holds windows");
                progress(((last * hop + window) as f64 / sample_rate).min(audio.duration()));
            }
            cancel.check()?;
        }
        Ok(out)
    };
    refine(&windows, thresholds, MARGIN, coarse_every(step_seconds, cfg.duration), &mut score)
}

/// Batches of windows scored at once where the device takes ops from two threads
/// ([`Device::runs_stages_alongside`]): on two cores the VAD kept them busy 82 % of its time
/// one batch at a time (process CPU time sampled every 0.2 s, the noisy benchmark file); two
/// at a time, the long file's `voice_activity` stage 1.91–2.48 → 1.80–2.19 s (four
/// alternating pairs, a Zen 4 shared with other work), the same regions and JSON.
const BATCHES_IN_FLIGHT: usize = 2;

/// The first pass's spacing in windows: [`COARSE_EVERY`] at pyannote's step, else as many as
/// keep the first pass's windows at most [`COARSE_SPACING_WINDOWS`] of a window apart (every
/// window from a step of half a window on).
pub fn coarse_every(step: f64, duration: f64) -> usize {
    if (step - STEP_RATIO * duration).abs() < 1e-9 {
        return COARSE_EVERY;
    }
    ((COARSE_SPACING_WINDOWS * duration / step + 1e-9).floor() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::pyannote::sliding_window::hamming;
    use crate::pipeline::speech_chunks::binarize;

    const FRAMES_PER_WINDOW: usize = 293;

    fn windows(seconds: f64) -> Windows {
        let count = ((seconds - 5.0) / 0.5).floor() as usize + 1;
        Windows {
            count,
            frames_per_window: FRAMES_PER_WINDOW,
            duration: 5.0,
            step: 0.5,
            frames: FrameWindow { start: 0.0, duration: 991.0 / 16000.0, step: 270.0 / 16000.0 },
            crop: None,
        }
    }

    const THRESHOLDS: Thresholds = Thresholds { onset: 0.5, offset: 0.363, max_duration: 30.0 };

    /// Speech from 10 to 20 s and from 21 to 70 s with a dip to 0.42 around 50 s (the lowest
    /// point of the long region's second half), silence elsewhere; ramps of 0.3 s.
    fn truth(t: f64) -> f32 {
        let ramp = |edge: f64| ((t - edge) / 0.3 + 0.5).clamp(0.0, 1.0) as f32;
        let on = |a: f64, b: f64| ramp(a).min(1.0 - ramp(b));
        let speech = on(10.0, 20.0).max(on(21.0, 70.0));
        let dip = if (t - 50.0).abs() < 0.4 { 0.5 } else { 0.0 };
        0.02 + 0.93 * speech - dip * speech
    }

    /// Window `c`'s frame scores: the truth, with an error that grows towards the window's
    /// edges (as a model's does) and differs from window to window, at most `wobble`.
    fn window_scores(w: &Windows, c: usize, wobble: f32) -> Vec<f32> {
        let h = hamming(w.frames_per_window);
        let aggregator = Aggregator::new(w.duration, w.step, w.frames);
        let first = aggregator.first_frame(c);
        (0..w.frames_per_window)
            .map(|f| {
                let t = w.frames.middle(first + f);
                let e = wobble * ((c as f32 * 1.7).sin()) * (1.0 - h[f] as f32);
                (truth(t) + e).clamp(0.0, 1.0)
            })
            .collect()
    }

    fn scorer(
        w: Windows,
        wobble: f32,
        log: &mut Vec<(Vec<usize>, usize)>,
    ) -> impl FnMut(&[usize], usize) -> Result<Vec<Vec<f32>>> + '_ {
        move |indices: &[usize], gap: usize| {
            log.push((indices.to_vec(), gap));
            Ok(indices.iter().map(|&c| window_scores(&w, c, wobble)).collect())
        }
    }

    fn full(w: &Windows, wobble: f32) -> Vec<f32> {
        let mut aggregator = Aggregator::new(w.duration, w.step, w.frames);
        for c in 0..w.count {
            aggregator.add(&window_scores(w, c, wobble));
        }
        aggregator.finish(w.crop)
    }

    #[test]
    fn the_regions_are_the_full_vads_from_fewer_windows() {
        let w = windows(90.0);
        let full_scores = full(&w, 0.1);
        let times: Vec<f64> = (0..full_scores.len()).map(|i| w.frames.middle(i)).collect();
        let expect = binarize(&full_scores, &times, 0.5, 0.363, 30.0);
        // The long region is cut at the dip: three regions.
        assert_eq!(expect.len(), 3, "{expect:?}");
        let mut log = Vec::new();
        let refined = refine(&w, &THRESHOLDS, MARGIN, COARSE_EVERY, &mut scorer(w, 0.1, &mut log)).unwrap();
        assert_eq!(refined.regions, expect);
        assert!(refined.windows_scored < w.count * 2 / 3, "{} of {}", refined.windows_scored, w.count);
        // Exact frames carry the full VAD's score, bit for bit.
        assert_eq!(refined.scores.len(), full_scores.len());
        for (i, (&a, &b)) in refined.scores.iter().zip(&full_scores).enumerate() {
            if refined.exact[i] {
                assert_eq!(a, b, "frame {i}");
            }
        }
        // The first pass is every fifth window, sharing work 5 apart; later passes 1 apart.
        assert_eq!(log[0], ((0..w.count).step_by(COARSE_EVERY).collect(), COARSE_EVERY));
        assert!(log[1..].iter().all(|(_, gap)| *gap == 1));
        // No window is scored twice.
        let mut all: Vec<usize> = log.iter().flat_map(|(i, _)| i.clone()).collect();
        all.sort_unstable();
        let scored = all.len();
        all.dedup();
        assert_eq!((all.len(), scored), (refined.windows_scored, refined.windows_scored));
    }

    #[test]
    fn every_frame_a_threshold_decision_near_the_threshold_rests_on_is_exact() {
        // Binarize: "y > onset" / "y < offset" at each frame; near the ramps the partial
        // averages are within MARGIN of a threshold, so those frames get all their windows.
        let w = windows(90.0);
        let refined = refine(&w, &THRESHOLDS, MARGIN, COARSE_EVERY, &mut scorer(w, 0.1, &mut Vec::new())).unwrap();
        for r in &refined.regions {
            for t in [r.start, r.end] {
                let i = w.frames.closest_frame(t) as usize;
                assert!(refined.exact[i], "region edge {t} (frame {i}) is not exact");
            }
        }
        // Deep in the silence before 10 s nothing was refined.
        let i = w.frames.closest_frame(3.0) as usize;
        assert!(!refined.exact[i]);
    }

    #[test]
    fn the_cut_of_a_long_region_is_found_among_exact_scores() {
        // Binarize's "divide segment": argmin over the second half; every frame whose partial
        // average could be the minimum gets its windows, so the cut is the full VAD's.
        let w = windows(90.0);
        let refined = refine(&w, &THRESHOLDS, MARGIN, COARSE_EVERY, &mut scorer(w, 0.1, &mut Vec::new())).unwrap();
        let cut = refined.regions[1].end;
        assert!((cut - 50.0).abs() < 0.5, "{:?}", refined.regions);
        assert!(refined.exact[w.frames.closest_frame(cut) as usize]);
    }

    #[test]
    fn errors_larger_than_the_margin_can_move_the_regions_and_the_bench_measures_them() {
        // The guarantee holds only while partial averages stay within MARGIN of the full ones:
        // with a tiny margin the coarse pass decides nearly everything, and a large per-window error moves
        // the region edges. This pins that the margin is what buys exactness.
        let w = windows(90.0);
        let full_scores = full(&w, 0.45);
        let times: Vec<f64> = (0..full_scores.len()).map(|i| w.frames.middle(i)).collect();
        let expect = binarize(&full_scores, &times, 0.5, 0.363, 30.0);
        let loose = refine(&w, &THRESHOLDS, 1e-6, COARSE_EVERY, &mut scorer(w, 0.45, &mut Vec::new())).unwrap();
        assert_ne!(loose.regions, expect);
        let wide = refine(&w, &THRESHOLDS, 1.0, COARSE_EVERY, &mut scorer(w, 0.45, &mut Vec::new())).unwrap();
        assert_eq!(wide.regions, expect);
        assert!(loose.windows_scored < wide.windows_scored);
    }

    #[test]
    fn scoring_every_window_first_is_the_full_vad_in_one_round() {
        let w = windows(40.0);
        let refined = refine(&w, &THRESHOLDS, MARGIN, 1, &mut scorer(w, 0.1, &mut Vec::new())).unwrap();
        assert_eq!((refined.rounds, refined.windows_scored), (1, w.count));
        assert!(refined.exact.iter().all(|&e| e));
        assert_eq!(refined.scores, full(&w, 0.1));
    }

    #[test]
    fn a_frame_no_scored_window_covers_is_always_refined() {
        // First-pass windows 10 s apart leave 5 s gaps: their frames have no estimate (0), which
        // must not pass for silence inside the speech from 10 to 20 s.
        let w = windows(90.0);
        let full_scores = full(&w, 0.1);
        let times: Vec<f64> = (0..full_scores.len()).map(|i| w.frames.middle(i)).collect();
        let expect = binarize(&full_scores, &times, 0.5, 0.363, 30.0);
        let refined = refine(&w, &THRESHOLDS, MARGIN, 20, &mut scorer(w, 0.1, &mut Vec::new())).unwrap();
        assert_eq!(refined.regions, expect);
    }

    #[test]
    fn the_first_pass_keeps_its_windows_half_a_window_apart_at_any_step() {
        assert_eq!(coarse_every(0.5, 5.0), COARSE_EVERY);
        assert_eq!(coarse_every(0.25, 5.0), 10);
        assert_eq!(coarse_every(1.0, 5.0), 2);
        assert_eq!(coarse_every(2.5, 5.0), 1);
        assert_eq!(coarse_every(5.0, 5.0), 1);
    }

    #[test]
    fn the_last_window_is_always_scored() {
        // 12 windows: the coarse pass takes 0, 5, 10 and then the last, 11 (the grid ends
        // with it, and a padded last window is cropped as the full VAD's is).
        let mut w = windows(10.5);
        w.crop = Some(10.4);
        let mut log = Vec::new();
        let refined = refine(&w, &THRESHOLDS, MARGIN, COARSE_EVERY, &mut scorer(w, 0.0, &mut log)).unwrap();
        assert_eq!(w.count, 12);
        assert_eq!(log[1], (vec![11], 1));
        assert_eq!(refined.scores.len(), full(&w, 0.0).len());
    }
}
