//! Spans of a recording's 16 kHz samples, asked for in increasing order: from memory, or from a
//! second decoding pass that holds only the samples still to be asked for. The batched pipeline
//! reads its chunks so, and a 3-hour file is never held whole.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};

use crate::audio::decode::stream_audio;
use crate::{Error, Result};

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

/// Blocks of decoded samples in flight between the decoding thread and the reader: each is a
/// packet's worth (tens of ms), so this bounds the read-ahead to a few seconds.
const BLOCKS_IN_FLIGHT: usize = 64;

/// A file decoded again on a thread of its own, its samples handed over as they are asked for.
/// Only the samples from the last release point to the furthest one asked for are held.
pub struct DecodedFile {
    path: PathBuf,
    len: usize,
    blocks: Receiver<Result<Vec<f32>>>,
    /// Samples from `buffer_start` on.
    buffer: Vec<f32>,
    buffer_start: usize,
    received: usize,
    ended: bool,
}

impl DecodedFile {
    /// Decode `path` again; `len` is its length in samples from the first pass.
    pub fn open(path: &Path, len: usize) -> Result<Self> {
        let (sender, blocks) = sync_channel(BLOCKS_IN_FLIGHT);
        let owned = path.to_path_buf();
        std::thread::Builder::new()
            .name("decode".into())
            .spawn(move || {
                // Once the reader is gone the rest is decoded without being sent (the decoder
                // has no way to stop early); it only happens when a transcription ends early.
                let mut reader_gone = false;
                let result = stream_audio(&owned, &mut |samples| {
                    if !reader_gone && sender.send(Ok(samples.to_vec())).is_err() {
                        reader_gone = true;
                    }
                });
                if let Err(e) = result {
                    let _ = sender.send(Err(e));
                }
            })
            .map_err(|e| Error::Other(format!("{}: cannot start a decoding thread: {e}", path.display())))?;
        Ok(DecodedFile {
            path: path.to_path_buf(),
            len,
            blocks,
            buffer: Vec::new(),
            buffer_start: 0,
            received: 0,
            ended: false,
        })
    }
}

impl SampleSource for DecodedFile {
    fn len(&self) -> usize {
        self.len
    }

    fn samples(&mut self, start: usize, end: usize) -> Result<Vec<f32>> {
        let end = end.min(self.len);
        if start < self.buffer_start {
            return Err(Error::Other(format!(
                "{}: samples from {start} asked for after they were released (from {})",
                self.path.display(),
                self.buffer_start
            )));
        }
        while self.received < end && !self.ended {
            match self.blocks.recv() {
                Ok(Ok(block)) => {
                    self.received += block.len();
                    self.buffer.extend_from_slice(&block);
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => self.ended = true,
            }
        }
        if self.received < end {
            return Err(Error::audio(
                &self.path,
                format!("the second decoding pass ended at sample {} of {}", self.received, self.len),
            ));
        }
        let start = start.min(end);
        Ok(self.buffer[start - self.buffer_start..end - self.buffer_start].to_vec())
    }

    fn release_before(&mut self, start: usize) {
        let upto = start.clamp(self.buffer_start, self.received);
        self.buffer.drain(..upto - self.buffer_start);
        self.buffer_start = upto;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(path: &Path, samples: &[i16]) {
        let mut bytes = Vec::new();
        let data = (samples.len() * 2) as u32;
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(36 + data).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&16_000u32.to_le_bytes());
        bytes.extend_from_slice(&32_000u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&16u16.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&data.to_le_bytes());
        for s in samples {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_second_pass_hands_out_the_same_samples_and_holds_only_what_is_still_needed() {
        let dir = std::env::temp_dir().join(format!("scribe-sample-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ramp.wav");
        let pcm: Vec<i16> = (0..100_000).map(|i| ((i % 2000) as i16 - 1000) * 16).collect();
        wav(&path, &pcm);
        let whole = crate::audio::load_audio(&path).unwrap();
        let mut file = DecodedFile::open(&path, whole.len()).unwrap();
        let mut memory: &[f32] = &whole;
        for (s, e) in [(0, 10), (5, 40_000), (30_000, 60_000), (60_000, 200_000)] {
            assert_eq!(file.samples(s, e).unwrap(), memory.samples(s, e).unwrap(), "{s}..{e}");
            file.release_before(s);
            memory.release_before(s);
            assert!(file.buffer.len() <= whole.len() - s, "held {} samples from {s}", file.buffer.len());
        }
        file.release_before(90_000);
        assert!(file.samples(80_000, 90_000).is_err(), "released samples are an error, not wrong audio");
        // Asking for more than the first pass found is an error naming the file.
        let mut short = DecodedFile::open(&path, whole.len() + 10).unwrap();
        let e = short.samples(0, whole.len() + 10).unwrap_err().to_string();
        assert!(e.contains("ramp.wav") && e.contains("second decoding pass"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
