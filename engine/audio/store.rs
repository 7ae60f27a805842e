//! A recording decoded once, read by time range by every stage. Short recordings stay in memory;
//! past [`AudioOptions::in_memory_seconds`] the samples go to an unnamed temporary file (gone
//! when the store is dropped, or the process dies), memory-mapped once decoding ends. A span is
//! copied out of the map and its pages released again (`MADV_DONTNEED`), so a 3-hour file costs
//! resident memory only for the spans being worked on, and any stage can read any span.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::audio::decode::{probe, stream_audio, DecodeReport};
use crate::audio::SAMPLE_RATE;
use crate::cancel::Cancel;
use crate::error::{Error, Result};

/// Recordings up to this long are kept in memory (one minute: 3.8 MB of f32); longer ones go to
/// a temporary file, so the store adds almost nothing to a long file's peak memory.
pub const IN_MEMORY_SECONDS: f64 = 60.0;
/// Samples handed to readers of the whole recording at a time (10 s).
pub const READ_BLOCK: usize = 10 * SAMPLE_RATE as usize;

/// Where and how a recording is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioOptions {
    /// Longer recordings are refused: before decoding when the header declares the length,
    /// else as soon as decoding passes it.
    pub max_seconds: Option<f64>,
    /// Longer recordings go to a temporary file.
    pub in_memory_seconds: f64,
    /// Where that file is made (default: the system's temporary directory).
    pub spill_dir: Option<PathBuf>,
}

impl Default for AudioOptions {
    fn default() -> Self {
        AudioOptions { max_seconds: None, in_memory_seconds: IN_MEMORY_SECONDS, spill_dir: None }
    }
}

enum Samples {
    Memory(Vec<f32>),
    /// f32 little-endian samples in an unnamed temporary file, mapped.
    Mapped(memmap2::Mmap),
}

/// One recording's 16 kHz mono samples.
pub struct Audio {
    /// The file it came from (errors name it).
    pub path: PathBuf,
    samples: Samples,
    len: usize,
    /// What decoding found besides the samples (truncation, skipped packets).
    pub report: DecodeReport,
}

impl std::fmt::Debug for Audio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.samples {
            Samples::Memory(_) => "memory",
            Samples::Mapped(_) => "file",
        };
        write!(f, "Audio({}, {} samples in {kind})", self.path.display(), self.len)
    }
}

/// Receives decoded samples: in memory until the limit, then in the temporary file.
struct Writer {
    memory: Vec<f32>,
    file: Option<BufWriter<File>>,
    len: usize,
    limit: usize,
    spill_dir: PathBuf,
}

impl Writer {
    fn push(&mut self, block: &[f32]) -> std::io::Result<()> {
        self.len += block.len();
        if self.file.is_none() && self.len > self.limit {
            let file = tempfile::tempfile_in(&self.spill_dir)?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            write_f32(&mut w, &self.memory)?;
            self.memory = Vec::new();
            self.file = Some(w);
        }
        match &mut self.file {
            Some(w) => write_f32(w, block),
            None => {
                self.memory.extend_from_slice(block);
                Ok(())
            }
        }
    }

    fn finish(self) -> std::io::Result<Samples> {
        match self.file {
            None => Ok(Samples::Memory(self.memory)),
            Some(w) => {
                let file = w.into_inner().map_err(|e| e.into_error())?;
                // SAFETY: the file is unnamed and private to this process: nothing else can
                // change it while it is mapped.
                let map = unsafe { memmap2::Mmap::map(&file)? };
                Ok(Samples::Mapped(map))
            }
        }
    }
}

fn write_f32(w: &mut impl Write, samples: &[f32]) -> std::io::Result<()> {
    for chunk in samples.chunks(8192) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
        w.write_all(&bytes)?;
    }
    Ok(())
}

impl Audio {
    /// Decode `path` once into a store. `progress` receives the seconds decoded so far; `cancel`
    /// is checked as packets arrive.
    pub fn decode(
        path: &Path,
        options: &AudioOptions,
        cancel: &Cancel,
        progress: &mut dyn FnMut(f64),
    ) -> Result<Audio> {
        // A header that declares a length over the limit is refused before any decoding.
        let info = probe(path)?;
        if let (Some(max), Some(declared)) = (options.max_seconds, info.duration()) {
            if declared > max {
                return Err(Error::audio(path, format!("audio of {declared:.0} s is longer than the {max} s allowed")));
            }
        }
        let mut writer = Writer {
            memory: Vec::new(),
            file: None,
            len: 0,
            limit: (options.in_memory_seconds.max(0.0) * SAMPLE_RATE as f64) as usize,
            spill_dir: options.spill_dir.clone().unwrap_or_else(std::env::temp_dir),
        };
        let max_samples = options.max_seconds.map(|m| (m * SAMPLE_RATE as f64) as usize);
        let mut reported = 0;
        let report = stream_audio(path, &mut |block| {
            cancel.check()?;
            writer
                .push(block)
                .map_err(|e| Error::Other(format!("{}: cannot keep the decoded audio: {e}", path.display())))?;
            if let (Some(max), Some(seconds)) = (max_samples, options.max_seconds) {
                if writer.len > max {
                    return Err(Error::audio(path, format!("audio longer than the {seconds} s allowed")));
                }
            }
            if writer.len >= reported + READ_BLOCK {
                reported = writer.len;
                progress(writer.len as f64 / SAMPLE_RATE as f64);
            }
            Ok(())
        })?;
        let len = writer.len;
        let samples = writer
            .finish()
            .map_err(|e| Error::Other(format!("{}: cannot keep the decoded audio: {e}", path.display())))?;
        progress(len as f64 / SAMPLE_RATE as f64);
        Ok(Audio { path: path.to_path_buf(), samples, len, report })
    }

    /// A store over samples already decoded (16 kHz mono).
    pub fn from_samples(path: impl Into<PathBuf>, samples: Vec<f32>) -> Audio {
        let len = samples.len();
        Audio { path: path.into(), samples: Samples::Memory(samples), len, report: DecodeReport::default() }
    }

    /// Samples in the recording.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Length, seconds.
    pub fn duration(&self) -> f64 {
        self.len as f64 / SAMPLE_RATE as f64
    }

    /// Whether the samples are in a temporary file rather than in memory.
    pub fn is_on_disk(&self) -> bool {
        matches!(self.samples, Samples::Mapped(_))
    }

    /// Samples `[start, end)`, clamped to the recording.
    pub fn span(&self, start: usize, end: usize) -> Vec<f32> {
        let end = end.min(self.len);
        let start = start.min(end);
        match &self.samples {
            Samples::Memory(v) => v[start..end].to_vec(),
            Samples::Mapped(map) => {
                let bytes = &map[start * 4..end * 4];
                let out = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                // The pages are clean copies of the file: dropping them only means reading the
                // file again if this span is asked for again.
                let page = page_size();
                let from = (start * 4) / page * page;
                let to = (end * 4).div_ceil(page) * page;
                // SAFETY: a read-only shared file mapping; DONTNEED drops resident pages and
                // later reads fault them back in from the file unchanged.
                let _ = unsafe {
                    map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to.min(map.len()) - from)
                };
                out
            }
        }
    }

    /// Samples `[start, end)` in blocks of at most [`READ_BLOCK`], each handed to `f`, with a
    /// cancellation check before each.
    pub fn for_each_block(
        &self,
        start: usize,
        end: usize,
        cancel: &Cancel,
        f: &mut dyn FnMut(&[f32]) -> Result<()>,
    ) -> Result<()> {
        let end = end.min(self.len);
        let mut at = start.min(end);
        while at < end {
            cancel.check()?;
            let next = (at + READ_BLOCK).min(end);
            f(&self.span(at, next))?;
            at = next;
        }
        Ok(())
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
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
        for v in [16u32, 0x0001_0001, 16_000, 32_000, 0x0010_0002] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&data.to_le_bytes());
        for s in samples {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn memory_and_file_stores_hold_the_same_samples() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ramp.wav");
        let pcm: Vec<i16> = (0..100_000).map(|i| ((i % 2000) as i16 - 1000) * 16).collect();
        wav(&path, &pcm);
        let whole = crate::audio::load_audio(&path).unwrap();
        let memory = Audio::decode(&path, &AudioOptions::default(), &Cancel::new(), &mut |_| {}).unwrap();
        let spill = AudioOptions { in_memory_seconds: 1.0, spill_dir: Some(dir.path().into()), ..Default::default() };
        let file = Audio::decode(&path, &spill, &Cancel::new(), &mut |_| {}).unwrap();
        assert!(!memory.is_on_disk() && file.is_on_disk());
        // The spilled file is unnamed: nothing is left in the directory but the WAV.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        for (s, e) in [(0, 10), (5, 40_000), (99_990, 200_000), (60_000, 30_000)] {
            let end = e.min(whole.len());
            let want = whole[s.min(end)..end].to_vec();
            assert_eq!(memory.span(s, e), want, "{s}..{e}");
            assert_eq!(file.span(s, e), want, "{s}..{e}");
        }
        let mut blocks = Vec::new();
        file.for_each_block(0, file.len(), &Cancel::new(), &mut |b| {
            blocks.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(blocks, whole);
    }

    #[test]
    fn decoding_stops_when_cancelled_or_too_long() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.wav");
        wav(&path, &vec![100i16; 16_000 * 3]);
        let cancel = Cancel::new();
        cancel.cancel();
        let e = Audio::decode(&path, &AudioOptions::default(), &cancel, &mut |_| {}).unwrap_err();
        assert!(matches!(e, Error::Cancelled), "{e}");
        let short = AudioOptions { max_seconds: Some(2.0), ..Default::default() };
        let e = Audio::decode(&path, &short, &Cancel::new(), &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains("long.wav") && e.contains("longer than the 2 s"), "{e}");
    }
}
