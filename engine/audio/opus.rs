//! Opus audio (in Ogg and WebM/Matroska) for symphonia: a [`Decoder`] over the pure-Rust
//! `opus-decoder` crate (RFC 8251 conformant, no unsafe code, no system library), registered
//! beside symphonia's own codecs. Opus decodes at 48 kHz here; the stream's pre-skip (the
//! encoder's look-ahead, `delay` in the codec parameters) is dropped from the start.

use symphonia::core::audio::{AsAudioBufferRef, AudioBuffer, AudioBufferRef, Channels, Signal, SignalSpec};
use symphonia::core::codecs::{
    CodecDescriptor, CodecParameters, Decoder, DecoderOptions, FinalizeResult, CODEC_TYPE_OPUS,
};
use symphonia::core::errors::{decode_error, unsupported_error, Result};
use symphonia::core::formats::Packet;
use symphonia::core::support_codec;

/// Opus's only decoding rate.
pub const OPUS_RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms at 48 kHz, per channel.
const MAX_FRAME: usize = 5760;

pub struct OpusDecoder {
    decoder: opus_decoder::OpusDecoder,
    params: CodecParameters,
    channels: usize,
    buf: AudioBuffer<f32>,
    interleaved: Vec<f32>,
    /// Samples per channel still to drop from the start (the pre-skip).
    skip: usize,
}

impl Decoder for OpusDecoder {
    fn try_new(params: &CodecParameters, _options: &DecoderOptions) -> Result<Self> {
        // Ogg's mapping fills channels and delay; Matroska's leaves them in the OpusHead
        // (RFC 7845 §5.1: "OpusHead", version, channel count, pre-skip u16 LE, ...).
        let head = params.extra_data.as_deref().filter(|h| h.len() >= 12 && h.starts_with(b"OpusHead"));
        let channels = match (params.channels, head) {
            (Some(layout), _) => layout.count(),
            (None, Some(h)) => h[9] as usize,
            (None, None) => return unsupported_error("opus: channel count missing"),
        };
        let layout = if channels == 1 { Channels::FRONT_LEFT } else { Channels::FRONT_LEFT | Channels::FRONT_RIGHT };
        let pre_skip = params.delay.or(head.map(|h| u32::from(u16::from_le_bytes([h[10], h[11]])))).unwrap_or(0);
        if !(1..=2).contains(&channels) {
            return unsupported_error("opus: only mono and stereo streams are decoded");
        }
        let decoder = opus_decoder::OpusDecoder::new(OPUS_RATE, channels)
            .map_err(|_| symphonia::core::errors::Error::Unsupported("opus: the decoder refused the stream"))?;
        Ok(OpusDecoder {
            decoder,
            params: params.clone(),
            channels,
            buf: AudioBuffer::new(MAX_FRAME as u64, SignalSpec::new(OPUS_RATE, layout)),
            interleaved: vec![0.0; MAX_FRAME * channels],
            skip: pre_skip as usize,
        })
    }

    fn supported_codecs() -> &'static [CodecDescriptor] {
        &[support_codec!(CODEC_TYPE_OPUS, "opus", "Opus")]
    }

    fn reset(&mut self) {
        self.decoder.reset();
    }

    fn codec_params(&self) -> &CodecParameters {
        &self.params
    }

    fn decode(&mut self, packet: &Packet) -> Result<AudioBufferRef<'_>> {
        self.buf.clear();
        // An empty packet asks the decoder to conceal a lost one; a file has none to conceal.
        if packet.data.is_empty() {
            return decode_error("opus: empty packet");
        }
        let frames = match self.decoder.decode_float(&packet.data, &mut self.interleaved, false) {
            Ok(n) => n,
            Err(_) => return decode_error("opus: corrupt packet"),
        };
        let skip = self.skip.min(frames);
        self.skip -= skip;
        let kept = frames - skip;
        self.buf.render_reserved(Some(kept));
        for c in 0..self.channels {
            let plane = self.buf.chan_mut(c);
            for (i, v) in plane.iter_mut().enumerate() {
                *v = self.interleaved[(skip + i) * self.channels + c];
            }
        }
        Ok(self.buf.as_audio_buffer_ref())
    }

    fn finalize(&mut self) -> FinalizeResult {
        FinalizeResult::default()
    }

    fn last_decoded(&self) -> AudioBufferRef<'_> {
        self.buf.as_audio_buffer_ref()
    }
}
