//! WhisperX's result schema: `{segments: [{start, end, text, words: [{word, start, end, score,
//! speaker?}], speaker?}], word_segments: [...], language}`.

use serde::{Deserialize, Serialize};

/// One word with its time span (seconds) and confidence. Words whose time could not be found
/// (numbers without an alignment, for example) keep `start`/`end` as `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub word: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    /// Probability of the word (DTW timing) or alignment score (wav2vec2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    /// The segment's text as decoded (leading space kept, as Whisper emits it).
    pub text: String,
    #[serde(default)]
    pub words: Vec<Word>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// Decoding diagnostics (openai transcribe.py's segment fields); not written by WhisperX.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_logprob: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_speech_prob: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Tokens of the segment as decoded (timestamp tokens included, as openai reports them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<u32>,
    /// Per-character alignment (WhisperX `return_char_alignments`): every character of the
    /// segment's text, spaces included, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chars: Option<Vec<CharAlignment>>,
}

/// One character as WhisperX's `return_char_alignments` emits it: a character that was not
/// aligned (a space without a `|` in the dictionary, leading whitespace) has no times or score.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CharAlignment {
    pub char: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub segments: Vec<Segment>,
    /// Every word of every segment, in order (WhisperX `word_segments`).
    #[serde(default)]
    pub word_segments: Vec<Word>,
    pub language: String,
    /// The diarization's speaker turns (`--diarize`), overlapping where speech overlaps: what the
    /// RTTM writer writes. Not in WhisperX's JSON.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speaker_turns: Vec<crate::diarize::assign::SpeakerTurn>,
    /// `--speaker_embeddings`: each speaker's centroid embedding (WhisperX's
    /// `speaker_embeddings`, written to the JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_embeddings: Option<std::collections::BTreeMap<String, Vec<f32>>>,
    /// Speaker verification: each diarized speaker, the name it took (or none) and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speakers: Option<Vec<SpeakerIdentity>>,
}

/// One row of the `speakers` table: a diarized speaker matched against the enrolled voices.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpeakerIdentity {
    /// The diarization's label (`SPEAKER_00`).
    pub label: String,
    /// The enrolled name it took; None: it kept its label.
    pub name: Option<String>,
    /// The best-scoring enrolled name and its cosine similarity.
    pub best: Option<String>,
    pub score: Option<f64>,
    /// The second best and its score.
    pub runner_up: Option<String>,
    pub runner_up_score: Option<f64>,
    /// `named`, `below_threshold`, `ambiguous` (the best led the runner-up by too little) or
    /// `no_voiceprints` (nothing enrolled).
    pub decision: String,
    /// A named speaker's stretches that, embedded alone, did not sound like its name
    /// (`verify::turn_check`): they keep the label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unconfirmed: Vec<UnconfirmedStretch>,
}

/// A stretch of a named speaker's speech that keeps its `SPEAKER_xx` label.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UnconfirmedStretch {
    pub start: f64,
    pub end: f64,
    /// Its cosine score for the speaker's name.
    pub score: f64,
    /// The best other enrolled name and its score.
    pub best_other: Option<String>,
    pub best_other_score: Option<f64>,
    /// `below_turn_threshold` or `closer_to_another`.
    pub decision: String,
}

impl Transcript {
    /// Rebuild `word_segments` from the segments' words.
    pub fn collect_word_segments(&mut self) {
        self.word_segments = self.segments.iter().flat_map(|s| s.words.iter().cloned()).collect();
    }

    /// All segment texts joined, trimmed.
    pub fn text(&self) -> String {
        self.segments.iter().map(|s| s.text.as_str()).collect::<String>().trim().to_string()
    }
}
