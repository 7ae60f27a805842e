//! Word alignment by wav2vec2 CTC (WhisperX's `align`), its own module beside the models.
//!
//! [`align`] takes transcribed segments, the alignment model's [`Dictionary`], a source of
//! per-frame log-probabilities ([`EmissionSource`], the model) and a sentence splitter, and
//! returns WhisperX's aligned result: segments cut at sentences, with words (and characters).
//! Two modes ([`Mode`]):
//! - `WhisperxCompat` reproduces WhisperX 3.8.x `alignment.py` `align()` (3.8.3+ wildcard
//!   behaviour): [`text::prepare_compat`], [`compat`], [`words`];
//! - `CtcViterbi` (the default) keeps WhisperX's text, word and sentence rules but finds the path
//!   by true CTC Viterbi and gives every word times ([`text::prepare_strict`], [`viterbi`]).
//!
//! Files: [`ctc`] the token-to-frame searches, [`dictionary`] the model's characters, [`text`]
//! what is aligned, [`compat`] and [`viterbi`] one segment in each mode, [`words`] characters →
//! words → sentences.

pub mod compat;
pub mod ctc;
pub mod dictionary;
pub mod punkt;
pub mod text;
pub mod viterbi;
pub mod words;

use std::collections::VecDeque;

pub use ctc::Emissions;
pub use dictionary::Dictionary;
pub use words::Interpolate;

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::output::result::{Segment, Word};
use text::PreparedText;

/// Audio samples per second (WhisperX `SAMPLE_RATE`).
pub const SAMPLE_RATE: f64 = 16000.0;
/// The shortest input wav2vec2 takes: WhisperX pads a shorter segment with zeros to this many
/// samples (WX L253-258).
pub const MIN_SAMPLES: usize = 400;
/// Segments whose emissions are asked for in one call, so that the source can batch them.
pub const EMISSIONS_PER_REQUEST: usize = 16;

/// Samples `[start, end)` of the 16 kHz recording, as WhisperX cuts them (WX L248-252):
/// `start = int(t1 · 16000)`, `end = int(t2 · 16000)`. `end` may lie past the audio: the source
/// reads up to the audio's end (Python's slicing), then pads to at least [`MIN_SAMPLES`] with
/// zeros (for the torchaudio model, passing the true length as WhisperX passes `lengths`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SampleSpan {
    pub start: usize,
    pub end: usize,
}

impl SampleSpan {
    /// The samples of a segment `[t1, t2]` in seconds (Python's `int()` truncates toward zero;
    /// an end before the start is an empty span, as the slice would be).
    pub fn of_segment(t1: f64, t2: f64) -> Self {
        let at = |t: f64| (t * SAMPLE_RATE).trunc().max(0.0) as usize;
        let start = at(t1);
        SampleSpan { start, end: at(t2).max(start) }
    }
}

/// Log-probabilities (log_softmax in fp32) `[frames, classes]`, row-major, for one span.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedEmissions {
    pub data: Vec<f32>,
    pub frames: usize,
    pub classes: usize,
}

impl OwnedEmissions {
    pub fn view(&self) -> Result<Emissions<'_>> {
        Emissions::new(&self.data, self.frames, self.classes)
    }
}

/// The alignment model: emissions for each span (in order, one per span). It may batch them.
pub trait EmissionSource {
    fn emissions(&mut self, spans: &[SampleSpan]) -> Result<Vec<OwnedEmissions>>;
}

/// Sentence boundaries of a text as `(start, end)` character (Unicode scalar) offsets, end
/// exclusive, as NLTK punkt's `span_tokenize` returns them.
pub trait SentenceSplitter {
    fn spans(&self, text: &str) -> Vec<(usize, usize)>;
}

/// NLTK punkt's `span_tokenize`, as WhisperX splits sentences (WX L202).
impl SentenceSplitter for punkt::Punkt {
    fn spans(&self, text: &str) -> Vec<(usize, usize)> {
        self.span_tokenize(text)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// WhisperX 3.8.x `align()`, result for result.
    WhisperxCompat,
    /// True CTC Viterbi with speech regions; every word timed.
    #[default]
    CtcViterbi,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlignConfig {
    pub mode: Mode,
    pub interpolate: Interpolate,
    pub return_char_alignments: bool,
    /// The transcript's language (`ja` and `zh` have no spaces: every character is a word).
    pub language: String,
    /// The recording's length (WhisperX `MAX_DURATION`: samples / 16000).
    pub audio_seconds: f64,
    /// Speech regions in seconds (from the VAD); used by `CtcViterbi` only.
    pub speech: Option<Vec<(f64, f64)>>,
}

/// WhisperX's aligned result: `{segments, word_segments}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Aligned {
    pub segments: Vec<Segment>,
    /// Every word of every segment, in order.
    pub word_segments: Vec<Word>,
}

/// Align `segments` (WhisperX `align()`, WX L159-424): each segment's text against its audio,
/// giving sentences with words. Emissions are asked for [`EMISSIONS_PER_REQUEST`] segments at
/// a time; `cancel` is checked before each segment; `progress(done, total)` after each.
///
/// A segment is not aligned and comes out as it went in, with no words, when no character of
/// it is aligned (WX L236-239) or it starts at or past the end of the audio (L241-244), or, in
/// `WhisperxCompat` mode, when the trellis cannot hold its text (L294-297). In `CtcViterbi`
/// mode only a segment without any non-space character is left so; the others get words
/// (interpolated when they cannot be aligned, see [`viterbi`]).
pub fn align(
    segments: &[Segment],
    dict: &Dictionary,
    source: &mut dyn EmissionSource,
    splitter: &dyn SentenceSplitter,
    cfg: &AlignConfig,
    cancel: &Cancel,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Aligned> {
    let prepare = match cfg.mode {
        Mode::WhisperxCompat => text::prepare_compat,
        Mode::CtcViterbi => text::prepare_strict,
    };
    let prepared: Vec<PreparedText> = segments.iter().map(|s| prepare(&s.text, dict, &cfg.language)).collect();
    let needs_audio: Vec<bool> =
        segments.iter().zip(&prepared).map(|(s, p)| !p.tokens.is_empty() && s.start < cfg.audio_seconds).collect();
    let mut pending: VecDeque<(usize, OwnedEmissions)> = VecDeque::new();
    let mut out = Aligned::default();
    for (i, segment) in segments.iter().enumerate() {
        cancel.check()?;
        let emissions = if needs_audio[i] {
            if pending.front().map(|p| p.0) != Some(i) {
                let group: Vec<usize> =
                    (i..segments.len()).filter(|&j| needs_audio[j]).take(EMISSIONS_PER_REQUEST).collect();
                pending.extend(group.iter().copied().zip(request(source, segments, &group, dict)?));
            }
            pending.pop_front().map(|p| p.1)
        } else {
            None
        };
        let aligned = align_one(segment, &prepared[i], emissions.as_ref(), dict, splitter, cfg)?;
        out.word_segments.extend(aligned.iter().flat_map(|s| s.words.iter().cloned()));
        out.segments.extend(aligned);
        progress(i + 1, segments.len());
    }
    Ok(out)
}

/// Emissions for the segments `group`, checked against the dictionary.
fn request(
    source: &mut dyn EmissionSource,
    segments: &[Segment],
    group: &[usize],
    dict: &Dictionary,
) -> Result<Vec<OwnedEmissions>> {
    let spans: Vec<SampleSpan> =
        group.iter().map(|&j| SampleSpan::of_segment(segments[j].start, segments[j].end)).collect();
    let got = source.emissions(&spans)?;
    if got.len() != spans.len() {
        return Err(Error::Other(format!("alignment model: {} emissions for {} segments", got.len(), spans.len())));
    }
    // A Hugging Face vocabulary may list added tokens (`<s>`, `</s>`) past the model's classes:
    // only the blank and the characters of the text need a column (checked in `align_one`).
    for e in &got {
        e.view()?;
        if e.classes <= dict.blank() {
            return Err(Error::Other(format!(
                "alignment model: {} classes, but the blank is class {}",
                e.classes,
                dict.blank()
            )));
        }
    }
    Ok(got)
}

/// The segment as WhisperX returns one it could not align (WX L221-233): its own times and text,
/// no words, `chars` empty when asked for.
fn unaligned(segment: &Segment, cfg: &AlignConfig) -> Segment {
    Segment {
        start: segment.start,
        end: segment.end,
        text: segment.text.clone(),
        avg_logprob: segment.avg_logprob,
        chars: cfg.return_char_alignments.then(Vec::new),
        ..Default::default()
    }
}

fn align_one(
    segment: &Segment,
    prepared: &PreparedText,
    emissions: Option<&OwnedEmissions>,
    dict: &Dictionary,
    splitter: &dyn SentenceSplitter,
    cfg: &AlignConfig,
) -> Result<Vec<Segment>> {
    let em = emissions.map(OwnedEmissions::view).transpose()?;
    if let Some(em) = &em {
        if let Some(bad) = prepared.tokens.iter().find(|t| matches!(t, text::Token::Class(c) if *c >= em.classes)) {
            return Err(Error::Other(format!(
                "alignment model: {} classes, but the dictionary gives a character of {:?} {bad:?}",
                em.classes, segment.text
            )));
        }
    }
    let times = match cfg.mode {
        Mode::WhisperxCompat => {
            match em.and_then(|em| compat::align_segment(prepared, &em, dict, segment.start, segment.end)) {
                Some(times) => times,
                None => return Ok(vec![unaligned(segment, cfg)]),
            }
        }
        Mode::CtcViterbi => {
            if prepared.chars.iter().all(|&c| text::py_isspace(c)) {
                return Ok(vec![unaligned(segment, cfg)]);
            }
            let window = viterbi::Window {
                first_sample: SampleSpan::of_segment(segment.start, segment.end).start,
                t1: segment.start,
                t2: segment.end,
                audio_seconds: cfg.audio_seconds,
                speech: cfg.speech.as_deref(),
            };
            viterbi::align_segment(prepared, em.as_ref(), dict, &window, &cfg.language).0
        }
    };
    // WX L202: sentences of the raw text.
    let sentences = splitter.spans(&segment.text);
    let assembly = words::Assembly {
        language: &cfg.language,
        interpolate: cfg.interpolate,
        return_chars: cfg.return_char_alignments,
        avg_logprob: segment.avg_logprob,
    };
    Ok(words::assemble(&prepared.chars, &times, &sentences, &assembly))
}

#[cfg(test)]
mod tests;
