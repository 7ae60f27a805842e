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

/// Overlap-add of per-window frame scores `chunk_scores[c][f]` (windows `window_step` seconds
/// apart, each `window_duration` long) onto the frame grid `frames`, Hamming-weighted and
/// averaged; then cropped to `duration` seconds when the last window was padded
/// (`Inference.aggregate` with `hamming=True`, `warm_up=(0, 0)`, `missing=0`).
pub fn aggregate(
    chunk_scores: &[Vec<f32>],
    window_duration: f64,
    window_step: f64,
    frames: FrameWindow,
    crop_to: Option<f64>,
) -> Vec<f32> {
    let Some(per_chunk) = chunk_scores.first().map(Vec::len) else { return Vec::new() };
    // The aggregation grid starts where the windows do (0), with the model's frame size and step.
    let grid = FrameWindow { start: 0.0, ..frames };
    let last_end = window_duration + (chunk_scores.len() - 1) as f64 * window_step;
    let num_frames = (grid.closest_frame(last_end + 0.5 * grid.duration) + 1).max(0) as usize;
    let weights = hamming(per_chunk);
    // pyannote accumulates in float32 arrays.
    let mut sum = vec![0.0f32; num_frames];
    let mut count = vec![0.0f32; num_frames];
    let mut covered = vec![false; num_frames];
    for (c, scores) in chunk_scores.iter().enumerate() {
        let start = grid.closest_frame(c as f64 * window_step + 0.5 * grid.duration).max(0) as usize;
        for (f, (&s, &w)) in scores.iter().zip(&weights).enumerate() {
            let Some(i) = (start + f < num_frames).then_some(start + f) else { break };
            sum[i] = (sum[i] as f64 + s as f64 * w) as f32;
            count[i] = (count[i] as f64 + w) as f32;
            covered[i] = true;
        }
    }
    let mut average: Vec<f32> = sum
        .iter()
        .zip(&count)
        .zip(&covered)
        .map(|((&s, &n), &seen)| if seen { (s as f64 / (n as f64).max(EPSILON)) as f32 } else { 0.0 })
        .collect();
    if let Some(end) = crop_to {
        // SlidingWindow.crop(Segment(0, end), mode="loose"): frames starting at or before `end`.
        let last = ((end - grid.start) / grid.step).floor();
        let keep = if last < 0.0 { 0 } else { (last as usize + 1).min(average.len()) };
        average.truncate(keep);
    }
    average
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
/// but the cost falls in proportion (2.5 s: 5× fewer windows).
pub fn speech_scores_every(
    model: &PyanNet,
    dev: &Device,
    audio: &[f32],
    batch_size: usize,
    step: Option<f64>,
    mut progress: impl FnMut(usize, usize),
) -> Result<SpeechScores> {
    let frames = model.frames();
    if audio.is_empty() {
        return Ok(SpeechScores { scores: Vec::new(), frames });
    }
    let cfg = &model.config;
    let window = cfg.window_samples();
    let step_seconds = step.unwrap_or(STEP_RATIO * cfg.duration);
    if !(step_seconds > 0.0 && step_seconds <= cfg.duration) {
        return Err(crate::error::Error::Other(format!(
            "VAD window step {step_seconds} s: expected more than 0 and at most the {} s window",
            cfg.duration
        )));
    }
    let step = (step_seconds * cfg.sample_rate as f64).round() as usize;
    let (starts, has_last) = window_starts(audio.len(), window, step.max(1));
    let frames_per_window = model.num_frames(window);
    let mut chunk_scores: Vec<Vec<f32>> = Vec::with_capacity(starts.len());
    let mut batch = Vec::new();
    for group in starts.chunks(batch_size.max(1)) {
        batch.clear();
        for &s in group {
            let end = (s + window).min(audio.len());
            batch.extend_from_slice(&audio[s..end]);
            batch.resize(batch.len() + window - (end - s), 0.0);
        }
        let x = dev.upload(&batch, &[group.len(), 1, window])?;
        // The pre-aggregation hook: max over the speaker tracks, on the device.
        let probs = model.forward(dev, &x)?;
        let speech = dev.download(&dev.reduce(&probs, crate::backend::Reduce::Max)?)?;
        chunk_scores.extend(speech.chunks(frames_per_window).map(<[f32]>::to_vec));
        progress(chunk_scores.len(), starts.len());
    }
    let crop = has_last.then(|| audio.len() as f64 / cfg.sample_rate as f64);
    let scores = aggregate(&chunk_scores, cfg.duration, step_seconds, frames, crop);
    Ok(SpeechScores { scores, frames: FrameWindow { start: 0.0, ..frames } })
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
