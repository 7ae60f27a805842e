//! The loudest sample of every mel hop (`HOP_LENGTH` samples, 10 ms): what a caller needs to ask
//! "is this span of frames digital silence?" without keeping the samples (one f32 per 160).

use crate::audio::mel::HOP_LENGTH;

/// Peak `|sample|` per hop, filled as samples stream in. A NaN sample counts as infinitely loud,
/// so no comparison can take a span holding one for silence.
#[derive(Debug, Clone, Default)]
pub struct HopPeaks {
    /// Peaks of the complete hops, then of the partial last one (if any samples are in it).
    peaks: Vec<f32>,
    /// Samples in the last hop (0 when it is complete).
    in_last: usize,
}

impl HopPeaks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append the next samples of the signal.
    pub fn push(&mut self, mut samples: &[f32]) {
        while !samples.is_empty() {
            // The rest of the current hop.
            let take = (HOP_LENGTH - self.in_last).min(samples.len());
            let peak =
                samples[..take].iter().fold(0.0f32, |p, &s| p.max(if s.is_nan() { f32::INFINITY } else { s.abs() }));
            match self.peaks.last_mut() {
                Some(last) if self.in_last > 0 => *last = last.max(peak),
                _ => self.peaks.push(peak),
            }
            self.in_last = (self.in_last + take) % HOP_LENGTH;
            samples = &samples[take..];
        }
    }

    /// True when every sample under mel frames `[first, first + frames)` (frame `t` starting at
    /// sample `t * HOP_LENGTH`; none past the end of the signal) has `|x| < peak`.
    pub fn all_below(&self, first: usize, frames: usize, peak: f32) -> bool {
        let start = first.min(self.peaks.len());
        let end = first.saturating_add(frames).min(self.peaks.len());
        self.peaks[start..end].iter().all(|&p| p < peak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: every sample in the span is below `peak`.
    fn brute_force(x: &[f32], first: usize, frames: usize, peak: f32) -> bool {
        let start = (first * HOP_LENGTH).min(x.len());
        let end = ((first + frames) * HOP_LENGTH).min(x.len());
        x[start..end].iter().all(|s| s.abs() < peak)
    }

    #[test]
    fn agrees_with_checking_every_sample_whatever_the_chunking() {
        let mut x = vec![0.0f32; 10 * HOP_LENGTH + 37];
        x[3 * HOP_LENGTH + 5] = -0.5; // frame 3
        x[7 * HOP_LENGTH] = f32::NAN; // frame 7
        x[10 * HOP_LENGTH + 36] = 0.25; // the partial last frame
        for chunk in [1, 7, HOP_LENGTH, 1000] {
            let mut peaks = HopPeaks::new();
            for piece in x.chunks(chunk) {
                peaks.push(piece);
            }
            for first in 0..13 {
                for frames in 0..13 {
                    assert_eq!(
                        peaks.all_below(first, frames, 1e-4),
                        brute_force(&x, first, frames, 1e-4),
                        "chunks of {chunk}, frames {first}..+{frames}"
                    );
                }
            }
        }
    }
}
