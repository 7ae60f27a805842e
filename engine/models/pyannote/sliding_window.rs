//! Per-frame speech scores of a whole recording, as WhisperX's VAD computes them
//! (pyannote.audio 4.0 `core/inference.py` `Inference.slide` and `Inference.aggregate`, with
//! `pipelines/voice_activity_detection.py`'s pre-aggregation hook):
//! 1. windows of `duration` (5 s) every `step` (10 % of it, 0.5 s); when the last full window
//!    does not end on the last sample, one more window, zero-padded, covers the rest;
//! 2. the model scores every frame of every window; the VAD keeps the maximum over the speaker
//!    tracks (speech = any speaker speaking);
//! 3. windows are overlap-added onto one frame grid with Hamming weights and averaged by the
//!    summed weights;
//! 4. the grid is cropped to the recording (frames that overlap it).

use crate::backend::Device;
use crate::error::Result;

use super::receptive_field::FrameWindow;
use super::sincnet::WindowSpan;
use super::PyanNet;

/// `Inference`'s default step: a tenth of the window (the checkpoint has no warm-up).
pub const STEP_RATIO: f64 = 0.1;
/// `Inference`'s default batch of windows.
pub const BATCH_SIZE: usize = 32;
/// `Inference.aggregate`'s floor on the summed weights.
pub const EPSILON: f64 = 1e-12;

/// Speech probability per frame; frame `i` covers `frames.start + i·frames.step` for
/// `frames.duration` seconds.
#[derive(Clone, Debug)]
pub struct SpeechScores {
    pub scores: Vec<f32>,
    pub frames: FrameWindow,
}

impl SpeechScores {
    /// Middle of every frame, the time WhisperX's `Binarize` gives it.
    pub fn times(&self) -> Vec<f64> {
        (0..self.scores.len()).map(|i| self.frames.middle(i)).collect()
    }
}

/// Where the windows of a recording of `num_samples` start (samples), and whether the last one
/// is a zero-padded remainder.
pub fn window_starts(num_samples: usize, window: usize, step: usize) -> (Vec<usize>, bool) {
    let full = if num_samples >= window { (num_samples - window) / step + 1 } else { 0 };
    let has_last = num_samples < window || !(num_samples - window).is_multiple_of(step);
    let mut starts: Vec<usize> = (0..full).map(|c| c * step).collect();
    if has_last {
        starts.push(full * step);
    }
    (starts, has_last)
}

/// `np.hamming(m)`.
pub fn hamming(m: usize) -> Vec<f64> {
    if m == 1 {
        return vec![1.0];
    }
    (0..m).map(|n| 0.54 - 0.46 * (2.0 * std::f64::consts::PI * n as f64 / (m - 1) as f64).cos()).collect()
}

/// Overlap-add of per-window frame scores, one window at a time (windows `window_step` seconds
/// apart, each `window_duration` long) onto the frame grid `frames`, Hamming-weighted and
/// averaged (`Inference.aggregate` with `hamming=True`, `warm_up=(0, 0)`, `missing=0`), or with
/// equal weights ([`Aggregator::uniform`]: `hamming=False`, as pyannote's `speaker_count`).
/// Holds only the grid, so a long recording's windows need not be kept.
pub struct Aggregator {
    grid: FrameWindow,
    hamming: bool,
    window_duration: f64,
    window_step: f64,
    weights: Vec<f64>,
    windows: usize,
    // pyannote accumulates in float32 arrays.
    sum: Vec<f32>,
    count: Vec<f32>,
    covered: Vec<bool>,
}

impl Aggregator {
    pub fn new(window_duration: f64, window_step: f64, frames: FrameWindow) -> Self {
        // The aggregation grid starts where the windows do (0), with the model's frame size and step.
        let grid = FrameWindow { start: 0.0, ..frames };
        Aggregator {
            grid,
            hamming: true,
            window_duration,
            window_step,
            weights: Vec::new(),
            windows: 0,
            sum: Vec::new(),
            count: Vec::new(),
            covered: Vec::new(),
        }
    }

    /// [`Aggregator::new`] with every frame of a window weighted 1 (`hamming=False`).
    pub fn uniform(window_duration: f64, window_step: f64, frames: FrameWindow) -> Self {
        Aggregator { hamming: false, ..Self::new(window_duration, window_step, frames) }
    }

    /// Add the next window's frame scores.
    pub fn add(&mut self, scores: &[f32]) {
        self.add_at(self.windows, scores);
    }

    /// The grid frame where window `index` (the `index`-th of the sliding windows) starts.
    pub fn first_frame(&self, index: usize) -> usize {
        let grid = self.grid;
        grid.closest_frame(index as f64 * self.window_step + 0.5 * grid.duration).max(0) as usize
    }

    /// Add the frame scores of window `index`. Windows may come in any order and some not at
    /// all (the coarse-to-fine VAD); each window is added once, and the grid ends with the
    /// highest index added. Windows added in the order of their indices sum as [`Self::add`]
    /// does.
    pub fn add_at(&mut self, index: usize, scores: &[f32]) {
        if self.weights.len() != scores.len() {
            self.weights = if self.hamming { hamming(scores.len()) } else { vec![1.0; scores.len()] };
        }
        let start = self.first_frame(index);
        let end = start + scores.len();
        if self.sum.len() < end {
            self.sum.resize(end, 0.0);
            self.count.resize(end, 0.0);
            self.covered.resize(end, false);
        }
        for (f, (&s, &w)) in scores.iter().zip(&self.weights).enumerate() {
            let i = start + f;
            self.sum[i] = (self.sum[i] as f64 + s as f64 * w) as f32;
            self.count[i] = (self.count[i] as f64 + w) as f32;
            self.covered[i] = true;
        }
        self.windows = self.windows.max(index + 1);
    }

    /// The averaged scores on the grid, cropped to `crop_to` seconds when the last window was
    /// padded.
    pub fn finish(self, crop_to: Option<f64>) -> Vec<f32> {
        if self.windows == 0 {
            return Vec::new();
        }
        let grid = self.grid;
        let last_end = self.window_duration + (self.windows - 1) as f64 * self.window_step;
        let num_frames = (grid.closest_frame(last_end + 0.5 * grid.duration) + 1).max(0) as usize;
        let mut average: Vec<f32> = (0..num_frames)
            .map(|i| match self.covered.get(i) {
                Some(true) => (self.sum[i] as f64 / (self.count[i] as f64).max(EPSILON)) as f32,
                _ => 0.0,
            })
            .collect();
        if let Some(end) = crop_to {
            // SlidingWindow.crop(Segment(0, end), mode="loose"): frames starting at or before `end`.
            let last = ((end - grid.start) / grid.step).floor();
            let keep = if last < 0.0 { 0 } else { (last as usize + 1).min(average.len()) };
            average.truncate(keep);
        }
        average
    }
}

/// [`Aggregator`] over all windows' scores `chunk_scores[c][f]` at once.
pub fn aggregate(
    chunk_scores: &[Vec<f32>],
    window_duration: f64,
    window_step: f64,
    frames: FrameWindow,
    crop_to: Option<f64>,
) -> Vec<f32> {
    let mut aggregator = Aggregator::new(window_duration, window_step, frames);
    for scores in chunk_scores {
        aggregator.add(scores);
    }
    aggregator.finish(crop_to)
}

/// Speech scores of 16 kHz `audio` with the segmentation model, `batch_size` windows per forward.
pub fn speech_scores(
    model: &PyanNet,
    dev: &Device,
    audio: &[f32],
    batch_size: usize,
    progress: impl FnMut(usize, usize),
) -> Result<SpeechScores> {
    speech_scores_every(model, dev, audio, batch_size, None, progress)
}

/// [`speech_scores`] with windows `step` seconds apart instead of pyannote's tenth of a window
/// (None). Larger steps overlap fewer windows per frame: the scores are no longer WhisperX's,
/// but the cost falls in proportion (2.5 s: 5× fewer windows). `progress(done, total)` counts
/// windows.
pub fn speech_scores_every(
    model: &PyanNet,
    dev: &Device,
    audio: &[f32],
    batch_size: usize,
    step: Option<f64>,
    mut progress: impl FnMut(usize, usize),
) -> Result<SpeechScores> {
    let mut scorer = SpeechScorer::new(model, dev, batch_size, step)?;
    let total = window_starts(audio.len(), scorer.window, scorer.step).0.len();
    // Pushed in pieces, as a decoder hands them on, so this path is the streaming one.
    for piece in audio.chunks(scorer.step * batch_size.max(1)) {
        scorer.push(piece)?;
        if scorer.windows_done() > 0 {
            progress(scorer.windows_done(), total);
        }
    }
    let scores = scorer.finish()?;
    progress(total, total);
    Ok(scores)
}

/// Windows `gap` apart in a batch share one filter bank pass when at most this many gaps lie
/// between them: a window's worth of samples (ten 0.5 s steps) filtered twice costs more than
/// the few windows between them filtered and pooled for nothing.
pub const SPAN_MAX_GAPS: usize = 8;

/// Per-frame speech scores (the maximum over the speaker tracks, as the VAD's pre-aggregation
/// hook keeps) of the sliding windows `indices` (sorted, distinct) of a recording, window `c`
/// starting at sample `c · step`; `span(start, end)` reads the recording's samples
/// `[start, end)` (fewer at its end: the rest is zeros). Windows go `batch_size` to a forward;
/// in a batch, indices that are multiples of `gap` apart, at most [`SPAN_MAX_GAPS`] gaps, share
/// one filter bank over their stretch.
pub fn score_windows(
    model: &PyanNet,
    dev: &Device,
    step: usize,
    indices: &[usize],
    gap: usize,
    batch_size: usize,
    span: &mut dyn FnMut(usize, usize) -> Vec<f32>,
) -> Result<Vec<Vec<f32>>> {
    let window = model.config.window_samples();
    let gap = gap.max(1);
    let mut out = Vec::with_capacity(indices.len());
    for batch in indices.chunks(batch_size.max(1)) {
        // (first index, last index, places kept) of each span.
        let mut groups: Vec<(usize, usize, Vec<usize>)> = Vec::new();
        for &c in batch {
            match groups.last_mut() {
                Some((first, last, keep)) if (c - *last).is_multiple_of(gap) && c - *last <= SPAN_MAX_GAPS * gap => {
                    keep.push((c - *first) / gap);
                    *last = c;
                }
                _ => groups.push((c, c, vec![0])),
            }
        }
        let stretches: Vec<Vec<f32>> =
            groups.iter().map(|(first, last, _)| span(first * step, last * step + window)).collect();
        let spans: Vec<WindowSpan> = groups
            .into_iter()
            .zip(&stretches)
            .map(|((first, last, keep), stretch)| WindowSpan { stretch, count: (last - first) / gap + 1, keep })
            .collect();
        let probs = model.forward_window_spans(dev, &spans, gap * step)?;
        let speech = dev.download(&dev.reduce(&probs, crate::backend::Reduce::Max)?)?;
        let per_window = speech.len() / batch.len();
        out.extend(speech.chunks(per_window.max(1)).map(<[f32]>::to_vec));
    }
    Ok(out)
}

/// The windows' step of `model` in seconds and in samples: `step` seconds (None: pyannote's
/// tenth of a window), refused unless more than 0 and at most the window.
pub fn window_step(model: &PyanNet, step: Option<f64>) -> Result<(f64, usize)> {
    let cfg = &model.config;
    let seconds = step.unwrap_or(STEP_RATIO * cfg.duration);
    if !(seconds > 0.0 && seconds <= cfg.duration) {
        return Err(crate::error::Error::Other(format!(
            "VAD window step {seconds} s: expected more than 0 and at most the {} s window",
            cfg.duration
        )));
    }
    Ok((seconds, ((seconds * cfg.sample_rate as f64).round() as usize).max(1)))
}

/// Speech scores computed as samples arrive: windows are scored a batch at a time as soon as
/// the audio they cover is in, and their scores are added to the grid, so only the samples of
/// the next batch of windows and the grid are held, whatever the recording's length. The
/// windows, their batches and the result are those of scoring the whole recording at once.
pub struct SpeechScorer<'m> {
    model: &'m PyanNet,
    dev: &'m Device,
    window: usize,
    step: usize,
    batch_size: usize,
    /// Samples from `buffer_start` on.
    buffer: Vec<f32>,
    buffer_start: usize,
    received: usize,
    /// Windows scored so far; the next one starts at `scored · step`.
    scored: usize,
    aggregator: Aggregator,
}

impl<'m> SpeechScorer<'m> {
    /// Windows every `step` seconds (None: pyannote's tenth of a window), `batch_size` per
    /// forward.
    pub fn new(model: &'m PyanNet, dev: &'m Device, batch_size: usize, step: Option<f64>) -> Result<Self> {
        let cfg = &model.config;
        let (step_seconds, step) = window_step(model, step)?;
        Ok(SpeechScorer {
            model,
            dev,
            window: cfg.window_samples(),
            step,
            batch_size: batch_size.max(1),
            buffer: Vec::new(),
            buffer_start: 0,
            received: 0,
            scored: 0,
            aggregator: Aggregator::new(cfg.duration, step_seconds, model.frames()),
        })
    }

    /// Windows scored so far.
    pub fn windows_done(&self) -> usize {
        self.scored
    }

    /// Samples held now: the windows not yet scored.
    pub fn held_samples(&self) -> usize {
        self.buffer.len()
    }

    /// Samples received so far.
    pub fn samples(&self) -> usize {
        self.received
    }

    /// Seconds of audio received so far.
    pub fn seconds(&self) -> f64 {
        self.received as f64 / self.model.config.sample_rate as f64
    }

    /// The next samples of the recording.
    pub fn push(&mut self, samples: &[f32]) -> Result<()> {
        self.buffer.extend_from_slice(samples);
        self.received += samples.len();
        loop {
            let full = if self.received >= self.window { (self.received - self.window) / self.step + 1 } else { 0 };
            if full < self.scored + self.batch_size {
                return Ok(());
            }
            let starts: Vec<usize> = (self.scored..self.scored + self.batch_size).map(|c| c * self.step).collect();
            self.score(&starts)?;
        }
    }

    /// Score the windows left (the last one zero-padded when the recording does not end on a
    /// window) and return the aggregated scores.
    pub fn finish(mut self) -> Result<SpeechScores> {
        let frames = self.model.frames();
        if self.received == 0 {
            return Ok(SpeechScores { scores: Vec::new(), frames });
        }
        let (starts, has_last) = window_starts(self.received, self.window, self.step);
        let left = starts[self.scored..].to_vec();
        for group in left.chunks(self.batch_size) {
            self.score(group)?;
        }
        let crop = has_last.then(|| self.received as f64 / self.model.config.sample_rate as f64);
        let scores = self.aggregator.finish(crop);
        Ok(SpeechScores { scores, frames: FrameWindow { start: 0.0, ..frames } })
    }

    /// One forward over the windows starting at `starts` (consecutive, `step` apart, the next
    /// to score; the last ones zero-padded past the samples received).
    fn score(&mut self, starts: &[usize]) -> Result<()> {
        let (Some(&first), Some(&last)) = (starts.first(), starts.last()) else {
            return Ok(());
        };
        let end = (last + self.window).min(self.received);
        let stretch = &self.buffer[first - self.buffer_start..end - self.buffer_start];
        // The pre-aggregation hook: max over the speaker tracks, on the device.
        let probs = self.model.forward_windows(self.dev, stretch, starts.len(), self.step)?;
        let speech = self.dev.download(&self.dev.reduce(&probs, crate::backend::Reduce::Max)?)?;
        let per_window = speech.len() / starts.len().max(1);
        for scores in speech.chunks(per_window.max(1)) {
            self.aggregator.add(scores);
        }
        self.scored += starts.len();
        // Samples before the next window are no longer needed.
        let keep_from = (self.scored * self.step).min(self.received);
        self.buffer.drain(..keep_from - self.buffer_start);
        self.buffer_start = keep_from;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vad_frames() -> FrameWindow {
        FrameWindow { start: 0.0, duration: 991.0 / 16000.0, step: 270.0 / 16000.0 }
    }

    #[test]
    fn windows_every_step_plus_a_padded_remainder() {
        // 12 s at 16 kHz: full windows at 0, 0.5, …, 7 s (15), and 12 − 5 − 7 = 0 left: none more.
        assert_eq!(window_starts(192_000, 80_000, 8_000), ((0..15).map(|c| c * 8_000).collect(), false));
        // 12.1 s: one more window at 7.5 s, padded.
        let (starts, last) = window_starts(193_600, 80_000, 8_000);
        assert_eq!((starts.len(), *starts.last().unwrap(), last), (16, 120_000, true));
        // Shorter than a window: one padded window.
        assert_eq!(window_starts(30_000, 80_000, 8_000), (vec![0], true));
    }

    #[test]
    fn hamming_matches_numpy() {
        let w = hamming(5);
        let expect = [0.08, 0.54, 1.0, 0.54, 0.08];
        for (a, b) in w.iter().zip(expect) {
            assert!((a - b).abs() < 1e-12, "{w:?}");
        }
    }

    #[test]
    fn a_constant_score_survives_the_weighted_average() {
        let chunks = vec![vec![0.25f32; 293]; 4];
        let avg = aggregate(&chunks, 5.0, 0.5, vad_frames(), None);
        // Grid: closest_frame(5 + 3·0.5 + dur/2) + 1 = rint(6.5 / 0.016875) + 1 = 386, of which
        // the last window (from frame rint(1.5 / 0.016875) = 89) covers up to 89 + 293 = 382;
        // frames no window covers are "missing", 0.
        assert_eq!(avg.len(), 386);
        assert!(avg[..382].iter().all(|&v| (v - 0.25).abs() < 1e-6), "{avg:?}");
        assert_eq!(&avg[382..], &[0.0; 4]);
    }

    #[test]
    fn later_windows_land_where_closest_frame_puts_them_and_weights_favour_centres() {
        // Window 0 says 0, window 1 says 1: frames only window 1 covers are 1, frames only
        // window 0 covers are 0, and between them the Hamming weights blend the two.
        let chunks = vec![vec![0.0f32; 293], vec![1.0f32; 293]];
        let avg = aggregate(&chunks, 5.0, 0.5, vad_frames(), None);
        // Window 1 starts at frame rint(0.5 / 0.016875) = 30.
        assert!(avg[..30].iter().all(|&v| v == 0.0));
        assert!(avg[293..30 + 293].iter().all(|&v| (v - 1.0).abs() < 1e-6));
        // At frame 30 window 1 has its edge weight 0.08 against window 0's weight there.
        let h = hamming(293);
        let expect = h[0] / (h[0] + h[30]);
        assert!((avg[30] as f64 - expect).abs() < 1e-6, "{} vs {expect}", avg[30]);
        // Near window 0's end, window 1 (at its own frame 260) outweighs it.
        let expect = h[260] / (h[260] + h[290]);
        assert!((avg[290] as f64 - expect).abs() < 1e-6 && avg[290] > 0.5, "{} vs {expect}", avg[290]);
    }

    #[test]
    fn the_padded_tail_is_cropped_to_the_recording() {
        let chunks = vec![vec![0.5f32; 293]];
        // 3 s of audio: frames starting at or before 3 s, floor(3 / 0.016875) + 1 = 178.
        let avg = aggregate(&chunks, 5.0, 0.5, vad_frames(), Some(3.0));
        assert_eq!(avg.len(), 178);
    }
}
