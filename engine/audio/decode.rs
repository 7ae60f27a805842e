//! Decode an audio file to 16 kHz mono f32 in [-1, 1], the input every model here expects.
//! Containers: WAV (8/16/24/32-bit integer or 32/64-bit float PCM), FLAC, MP3, MP4/M4A (AAC),
//! Ogg (Vorbis), Matroska/WebM (Vorbis, FLAC, AAC, PCM), and video files with such an audio
//! track (the first decodable audio track is used); Opus (Ogg, WebM) with the `opus` feature
//! (libopus), refused by name without it.
//!
//! Decoding is symphonia's; channels are averaged to mono and the result is streamed through
//! [`StreamResampler`] as packets arrive, so the file's native-rate audio is never held whole.
//! [`stream_audio`] / [`stream_source`] hand the 16 kHz samples on packet by packet, so a caller
//! that only needs features (the log-mel) never holds the 16 kHz audio whole either.
//!
//! Damaged input policy: a file that yields no audio at all (empty, not audio, unsupported codec,
//! header only) is an error naming the file and what failed. A stream that ends early or has a bad
//! tail *after* valid frames is accepted with a `tracing::warn!` (a truncated download should still
//! transcribe what it holds). Symphonia can panic on some malformed input; a panic is caught and
//! reported as an error.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use symphonia::core::audio::{AudioBufferRef, SampleBuffer};
use symphonia::core::codecs::{CodecType, DecoderOptions, CODEC_TYPE_NULL, CODEC_TYPE_OPUS};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::audio::resample::StreamResampler;
use crate::{Error, Result};

/// Receives consecutive blocks of 16 kHz mono samples.
pub type Sink<'a> = &'a mut dyn FnMut(&[f32]);

/// Load `path` as 16 kHz mono f32 samples in [-1, 1].
pub fn load_audio(path: &Path) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    stream_audio(path, &mut |samples| out.extend_from_slice(samples))?;
    Ok(out)
}

/// Decode `path`, handing its 16 kHz mono samples to `sink` in order, a packet's worth at a time,
/// so the whole file is never held.
pub fn stream_audio(path: &Path, sink: Sink<'_>) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Err(Error::audio(path, "empty file (0 bytes), no audio to decode"));
    }
    stream_source(Box::new(file), path, sink)
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
    stream_source(source, name, &mut |samples| out.extend_from_slice(samples))?;
    Ok(out)
}

/// [`decode_source`], handing the samples to `sink` as they are decoded instead of collecting them.
pub fn stream_source(source: Box<dyn MediaSource>, name: &Path, sink: Sink<'_>) -> Result<()> {
    match catch_unwind(AssertUnwindSafe(|| decode_inner(source, name, sink))) {
        Ok(result) => result,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::audio(name, format!("decoder crashed on malformed input: {msg}")))
        }
    }
}

fn decode_inner(source: Box<dyn MediaSource>, name: &Path, sink: Sink<'_>) -> Result<()> {
    let fail = |what: String| Error::audio(name, what);

    let mut hint = Hint::new();
    if let Some(ext) = name.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let stream = MediaSourceStream::new(source, Default::default());
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &FormatOptions::default(), &MetadataOptions::default())
        .map_err(|e| fail(probe_failure(&e)))?;
    let mut format = probed.format;

    // The first track a decoder exists for (a video file's picture track has none).
    let codecs = codec_registry();
    let known = |c: CodecType| c != CODEC_TYPE_NULL;
    let track =
        match format
            .tracks()
            .iter()
            .find(|t| known(t.codec_params.codec) && codecs.get_codec(t.codec_params.codec).is_some())
        {
            Some(t) => t,
            None => return Err(fail(match format.tracks().iter().map(|t| t.codec_params.codec).find(|&c| known(c)) {
                Some(CODEC_TYPE_OPUS) => {
                    "unsupported codec: this build decodes no Opus (build with --features opus, which needs libopus)"
                        .into()
                }
                Some(other) => format!("unsupported codec (symphonia codec id {other})"),
                None => "no audio track".into(),
            })),
        };
    let track_id = track.id;
    let expected_frames = track.codec_params.n_frames;
    let mut decoder = codecs
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| fail(format!("unsupported codec: {e}")))?;

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
                tracing::warn!("{}: stopped reading after {} frames: {e}", name.display(), stream.frames);
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
                sink(&out);
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
            (0, _) => Ok(()),
            (n, _) => Err(fail(format!("no decodable audio ({n} corrupt packets)"))),
        };
    };
    resampler.finish(&mut out)?;
    sink(&out);

    if bad_packets > 0 {
        tracing::warn!("{}: skipped {bad_packets} corrupt packets", name.display());
    }
    if let Some(n) = expected_frames {
        if stream.frames < n {
            tracing::warn!(
                "{}: truncated: decoded {} of {n} frames announced by the header",
                name.display(),
                stream.frames
            );
        }
    }
    Ok(())
}

/// symphonia's codecs, plus Opus through libopus when the `opus` feature is on.
fn codec_registry() -> &'static symphonia::core::codecs::CodecRegistry {
    static REGISTRY: std::sync::OnceLock<symphonia::core::codecs::CodecRegistry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = symphonia::core::codecs::CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        #[cfg(feature = "opus")]
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
        if channels == 0 || spec.rate == 0 {
            return Err(format!("invalid stream: {channels} channels at {} Hz", spec.rate));
        }
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
