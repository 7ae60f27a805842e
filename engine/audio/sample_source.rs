//! Spans of a recording's 16 kHz samples, as the batched transcription asks for them: from a
//! slice, or from the [`Audio`](crate::audio::store::Audio) store the pipeline decodes once.

use crate::Result;

/// Samples of one recording, read forward.
pub trait SampleSource {
    /// Samples in the recording.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples `[start, end)`, `end` clamped to the recording. `start` is never before the last
    /// [`SampleSource::release_before`] point.
    fn samples(&mut self, start: usize, end: usize) -> Result<Vec<f32>>;

    /// No sample before `start` will be asked for again.
    fn release_before(&mut self, start: usize);
}

impl SampleSource for &[f32] {
    fn len(&self) -> usize {
        <[f32]>::len(self)
    }

    fn samples(&mut self, start: usize, end: usize) -> Result<Vec<f32>> {
        let end = end.min(<[f32]>::len(self));
        Ok(self[start.min(end)..end].to_vec())
    }

    fn release_before(&mut self, _start: usize) {}
}

impl SampleSource for &crate::audio::store::Audio {
    fn len(&self) -> usize {
        crate::audio::store::Audio::len(self)
    }

    fn samples(&mut self, start: usize, end: usize) -> Result<Vec<f32>> {
        Ok(self.span(start, end))
    }

    fn release_before(&mut self, _start: usize) {}
}
