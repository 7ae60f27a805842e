//! Decode an audio file to 16 kHz mono f32 in [-1, 1], the input every model here expects.
//! Containers: WAV (8/16/24/32-bit integer or 32/64-bit float PCM), FLAC, MP3, MP4/M4A (AAC),
//! Ogg (Vorbis), Matroska/WebM (Vorbis, FLAC, AAC, PCM), and video files with such an audio
//! track (the first decodable audio track is used), and Opus in Ogg and WebM (a pure-Rust
//! decoder registered beside symphonia's, see [`super::opus`]).
//!
//! Decoding is symphonia's; channels are averaged to mono and the result is streamed through
//! [`StreamResampler`] as packets arrive, so the file's native-rate audio is never held whole.
//! [`stream_audio`] / [`stream_source`] hand the 16 kHz samples on packet by packet, so a caller
//! that only needs features (the log-mel) never holds the 16 kHz audio whole either.
//!
//! Damaged input policy: a file that yields no audio at all (empty, not audio, unsupported codec,
//! header only) is an error naming the file and what failed. A stream that ends early or has a bad
//! tail *after* valid frames is accepted, and the damage is listed in the [`DecodeReport`] (a
//! truncated download should still transcribe what it holds, and the user should be told).
//! Symphonia can panic on some malformed input; a panic is caught and reported as an error.
//!
//! Header values are untrusted: a sample rate outside [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`]
//! or more than [`MAX_CHANNELS`] channels is refused before anything is allocated for it, and
//! [`probe`] reads the declared duration so callers can refuse long files before decoding them.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use symphonia::core::audio::{AudioBufferRef, SampleBuffer};
use symphonia::core::codecs::{CodecType, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::audio::resample::StreamResampler;
use crate::{Error, Result};

/// Receives consecutive blocks of 16 kHz mono samples; an error it returns (a cancelled run, a
/// file over the length limit) stops decoding and is returned as it is.
pub type Sink<'a> = &'a mut dyn FnMut(&[f32]) -> Result<()>;

/// Lowest and highest sample rates accepted: from narrow-band telephone audio (8 kHz, with room
/// below) to high-resolution studio masters (384 kHz). A header outside says something no
/// recording is (a 20 KB WAV claiming 999 999 937 Hz).
pub const MIN_SAMPLE_RATE: u32 = 1_000;
pub const MAX_SAMPLE_RATE: u32 = 384_000;
/// Most channels accepted (WAV's channel mask, which symphonia maps, holds 32).
pub const MAX_CHANNELS: usize = 32;
/// Widest sample accepted, bits (64-bit float PCM).
pub const MAX_BITS_PER_SAMPLE: u32 = 64;

/// What decoding found beside the samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecodeReport {
    /// Frames decoded, at the file's own rate.
    pub frames: u64,
    /// The file's sample rate (None: no frame was decoded).
    pub sample_rate: Option<u32>,
    /// Damage the audio survived (a truncated stream, skipped packets), in words for the user.
    pub warnings: Vec<String>,
}

/// What a file's header declares, read without decoding it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AudioInfo {
    pub sample_rate: Option<u32>,
    pub channels: Option<usize>,
    /// Frames the header announces (None: the container does not say, e.g. a plain MP3 stream).
    pub frames: Option<u64>,
}

impl AudioInfo {
    /// Declared duration, seconds, when the header gives frames and rate.
    pub fn duration(&self) -> Option<f64> {
        Some(self.frames? as f64 / self.sample_rate.filter(|&r| r > 0)? as f64)
    }
}

/// A sample rate and channel count a recording can have, or what is wrong with them.
pub fn check_format(sample_rate: u32, channels: usize) -> std::result::Result<(), String> {
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(format!(
            "sample rate {sample_rate} Hz is outside what recordings use ({MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz): \
             a damaged or crafted header"
        ));
    }
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(format!("{channels} channels (1 to {MAX_CHANNELS} are accepted): a damaged or crafted header"));
    }
    Ok(())
}

/// Load `path` as 16 kHz mono f32 samples in [-1, 1].
pub fn load_audio(path: &Path) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    stream_audio(path, &mut |samples| {
        out.extend_from_slice(samples);
        Ok(())
    })?;
    Ok(out)
}

fn open_file(path: &Path) -> Result<std::fs::File> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Err(Error::audio(path, "empty file (0 bytes), no audio to decode"));
    }
    Ok(file)
}

/// Decode `path`, handing its 16 kHz mono samples to `sink` in order, a packet's worth at a time,
/// so the whole file is never held.
pub fn stream_audio(path: &Path, sink: Sink<'_>) -> Result<DecodeReport> {
    stream_source(Box::new(open_file(path)?), path, sink)
}

/// Read `path`'s header: rate, channels and declared length, checked as decoding checks them.
pub fn probe(path: &Path) -> Result<AudioInfo> {
    let source: Box<dyn MediaSource> = Box::new(open_file(path)?);
    caught(path, || {
        let (_, _, info) = open_track(source, path)?;
        Ok(info)
    })
}

/// Decode an in-memory file (e.g. an upload). `name` is only used for the format hint (its
/// extension) and in error messages.
pub fn decode_bytes(bytes: Vec<u8>, name: &Path) -> Result<Vec<f32>> {
    if bytes.is_empty() {
        return Err(Error::audio(name, "empty input (0 bytes), no audio to decode"));
    }
    decode_source(Box::new(Cursor::new(bytes)), name)
}

/// Decode any seekable source (file, cursor). `name` names it in errors and gives the format hint.
pub fn decode_source(source: Box<dyn MediaSource>, name: &Path) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    stream_source(source, name, &mut |samples| {
        out.extend_from_slice(samples);
        Ok(())
    })?;
    Ok(out)
}

/// [`decode_source`], handing the samples to `sink` as they are decoded instead of collecting them.
pub fn stream_source(source: Box<dyn MediaSource>, name: &Path, sink: Sink<'_>) -> Result<DecodeReport> {
    caught(name, || decode_inner(source, name, sink))
}

/// `f`, with a panic inside symphonia reported as an error naming the file.
fn caught<T>(name: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => Err(Error::audio(
            name,
            format!("decoder crashed on malformed input: {}", crate::error::panic_message(&*panic)),
        )),
    }
}

/// The container opened and its first decodable audio track, with the header's values checked.
fn open_track(
    source: Box<dyn MediaSource>,
    name: &Path,
) -> Result<(Box<dyn symphonia::core::formats::FormatReader>, u32, AudioInfo)> {
    let fail = |what: String| Error::audio(name, what);

    let mut hint = Hint::new();
    if let Some(ext) = name.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let stream = MediaSourceStream::new(source, Default::default());
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &FormatOptions::default(), &MetadataOptions::default())
        .map_err(|e| fail(probe_failure(&e)))?;
    let format = probed.format;

    // The first track a decoder exists for (a video file's picture track has none).
    let codecs = codec_registry();
    let known = |c: CodecType| c != CODEC_TYPE_NULL;
    let track = match format
        .tracks()
        .iter()
        .find(|t| known(t.codec_params.codec) && codecs.get_codec(t.codec_params.codec).is_some())
    {
        Some(t) => t,
        None => {
            return Err(fail(match format.tracks().iter().map(|t| t.codec_params.codec).find(|&c| known(c)) {
                Some(other) => format!("unsupported codec (symphonia codec id {other})"),
                None => "no audio track".into(),
            }))
        }
    };
    let params = &track.codec_params;
    let info = AudioInfo {
        sample_rate: params.sample_rate,
        channels: params.channels.map(|c| c.count()),
        frames: params.n_frames,
    };
    if let Some(rate) = info.sample_rate {
        check_format(rate, info.channels.unwrap_or(1)).map_err(fail)?;
    } else if let Some(channels) = info.channels {
        check_format(MIN_SAMPLE_RATE, channels).map_err(fail)?;
    }
    if let Some(bits) = params.bits_per_sample.filter(|&b| b == 0 || b > MAX_BITS_PER_SAMPLE) {
        return Err(fail(format!("{bits} bits per sample (1 to {MAX_BITS_PER_SAMPLE} are accepted)")));
    }
    let id = track.id;
    Ok((format, id, info))
}

fn decode_inner(source: Box<dyn MediaSource>, name: &Path, sink: Sink<'_>) -> Result<DecodeReport> {
    let fail = |what: String| Error::audio(name, what);
    let (mut format, track_id, info) = open_track(source, name)?;
    let track = format.tracks().iter().find(|t| t.id == track_id).ok_or_else(|| fail("no audio track".into()))?;
    let expected_frames = info.frames;
    let mut decoder = codec_registry()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| fail(format!("unsupported codec: {e}")))?;
    let mut report = DecodeReport::default();

    let mut stream = MonoStream::default();
    // One packet's resampled samples, handed to `sink` and cleared.
    let mut out = Vec::new();
    let mut bad_packets = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            // Symphonia reports the normal end of a stream as an unexpected EOF.
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) if stream.frames > 0 => {
                report
                    .warnings
                    .push(format!("the stream is damaged: reading stopped after {} frames ({e})", stream.frames));
                break;
            }
            Err(e) => return Err(fail(format!("cannot read the stream: {e}"))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                stream.push(buf, &mut out).map_err(fail)?;
                sink(&out)?;
                out.clear();
            }
            // A corrupt packet: skip it, as symphonia advises, and say so below.
            Err(SymphoniaError::DecodeError(e)) => {
                bad_packets += 1;
                tracing::debug!("{}: skipping undecodable packet: {e}", name.display());
            }
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(fail(format!("decoding failed: {e}"))),
        }
    }

    let Some(resampler) = stream.resampler else {
        return match (bad_packets, expected_frames) {
            (0, Some(n)) if n > 0 => {
                Err(fail(format!("truncated: header announces {n} frames but none could be read")))
            }
            // A well-formed file holding zero frames: empty audio, not an error.
            (0, _) => Ok(report),
            (n, _) => Err(fail(format!("no decodable audio ({n} corrupt packets)"))),
        };
    };
    resampler.finish(&mut out)?;
    sink(&out)?;

    if bad_packets > 0 {
        report.warnings.push(format!("{bad_packets} damaged packets were skipped"));
    }
    if let Some(n) = expected_frames {
        if stream.frames < n {
            let rate = stream.rate.max(1) as f64;
            report.warnings.push(format!(
                "truncated: the header announces {:.1} s ({n} frames) but only {:.1} s ({} frames) could be decoded",
                n as f64 / rate,
                stream.frames as f64 / rate,
                stream.frames
            ));
        }
    }
    for w in &report.warnings {
        tracing::warn!("{}: {w}", name.display());
    }
    report.frames = stream.frames;
    report.sample_rate = Some(stream.rate);
    Ok(report)
}

/// symphonia's codecs, plus Opus.
fn codec_registry() -> &'static symphonia::core::codecs::CodecRegistry {
    static REGISTRY: std::sync::OnceLock<symphonia::core::codecs::CodecRegistry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = symphonia::core::codecs::CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_all::<crate::audio::opus::OpusDecoder>();
        registry
    })
}

/// What went wrong while identifying the container, in words.
fn probe_failure(e: &SymphoniaError) -> String {
    match e {
        // No reader recognised the first bytes at all.
        SymphoniaError::Unsupported(what) if what.contains("no suitable format reader") => {
            "not a recognised audio file (WAV, FLAC, MP3, MP4/M4A, Ogg, WebM/MKV expected)".into()
        }
        SymphoniaError::Unsupported(_) => format!("unsupported audio format or codec: {e}"),
        SymphoniaError::IoError(_) => format!("file ends inside its header (truncated?): {e}"),
        _ => format!("malformed header: {e}"),
    }
}

/// Down-mixes decoded buffers to mono and feeds the resampler, created at the first buffer's rate.
#[derive(Default)]
struct MonoStream {
    resampler: Option<StreamResampler>,
    rate: u32,
    channels: usize,
    frames: u64,
    interleaved: Option<SampleBuffer<f32>>,
    mono: Vec<f32>,
}

impl MonoStream {
    fn push(&mut self, buf: AudioBufferRef<'_>, out: &mut Vec<f32>) -> std::result::Result<(), String> {
        let spec = *buf.spec();
        let channels = spec.channels.count();
        check_format(spec.rate, channels)?;
        if self.resampler.is_none() {
            self.resampler = Some(StreamResampler::new(spec.rate).map_err(|e| e.to_string())?);
            (self.rate, self.channels) = (spec.rate, channels);
        } else if (spec.rate, channels) != (self.rate, self.channels) {
            return Err(format!(
                "stream changes format mid-way ({} Hz x{} -> {} Hz x{}), unsupported",
                self.rate, self.channels, spec.rate, channels
            ));
        }
        let frames = buf.frames();
        if frames == 0 {
            return Ok(());
        }
        // Integer PCM is scaled by symphonia to [-1, 1) (e.g. i16 / 32768, u8 (x - 128) / 128).
        let capacity_ok = self.interleaved.as_ref().is_some_and(|s| s.capacity() >= frames * channels);
        if !capacity_ok {
            self.interleaved = Some(SampleBuffer::new(buf.capacity().max(frames) as u64, spec));
        }
        let Some(interleaved) = self.interleaved.as_mut() else { return Ok(()) };
        interleaved.copy_interleaved_ref(buf);
        let samples = interleaved.samples();
        self.mono.clear();
        if channels == 1 {
            self.mono.extend_from_slice(samples);
        } else {
            let scale = 1.0 / channels as f32;
            self.mono.extend(samples.chunks_exact(channels).map(|f| f.iter().sum::<f32>() * scale));
        }
        self.frames += self.mono.len() as u64;
        if let Some(r) = self.resampler.as_mut() {
            r.push(&self.mono, out).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};

    /// A source that panics when read, standing in for a decoder bug on malformed input.
    struct Exploding;

    impl Read for Exploding {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            panic!("boom")
        }
    }
    impl Seek for Exploding {
        fn seek(&mut self, _: SeekFrom) -> std::io::Result<u64> {
            Ok(0)
        }
    }
    impl MediaSource for Exploding {
        fn is_seekable(&self) -> bool {
            false
        }
        fn byte_len(&self) -> Option<u64> {
            None
        }
    }

    #[test]
    fn a_panic_while_decoding_is_an_error_naming_the_file() {
        let err = decode_source(Box::new(Exploding), Path::new("bad.flac")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bad.flac") && msg.contains("boom"), "{msg}");
    }
}
