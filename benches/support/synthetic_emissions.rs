//! Synthetic wav2vec2 emissions for timing the aligner without the model: a transcript read at
//! a natural rate, each character's class peaking over the frames where it is "spoken", blanks
//! between characters and a pause after each sentence, seeded noise on every class. The trellis
//! costs what it costs on real emissions of the same size (frames × characters × classes).

use scribe::align::{EmissionSource, OwnedEmissions, SampleSpan};

/// wav2vec2's frame rate (20 ms hop).
pub const FRAMES_PER_SECOND: usize = 50;
/// Characters per second of speech (about 150 words a minute).
pub const CHARS_PER_SECOND: f64 = 15.0;
/// A sentence's trailing pause, in frames.
const PAUSE_FRAMES: usize = 25;
/// The target class's logit above the noise (a confident model).
const PEAK: f32 = 6.0;

/// The English base-960h labels (torchaudio's bundle order: blank first, `|` for spaces).
pub use scribe::align::dictionary::TORCHAUDIO_BASE_960H_LABELS as LABELS;

/// Sentences read in turn to make a transcript (the shared recordings' texts).
const SENTENCES: [&str; 4] = [
    "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
    "Unless a system is established for the frequent formal review of activities thereunder.",
    "In this regard the commission believes that the responsibilities of the secret service are great.",
    "Hello, and welcome. This recording was made to test the speech recognition engine.",
];

/// A transcript that takes `seconds` to read at [`CHARS_PER_SECOND`] with the pauses.
pub fn transcript(seconds: f64) -> String {
    let mut text = String::new();
    let mut spoken = 0.0;
    for s in SENTENCES.iter().cycle() {
        // As `spoken` reads it: every character and the space before the sentence, a pause after
        // every full stop.
        let stops = s.matches('.').count() as f64;
        let cost = (s.len() + 1) as f64 / CHARS_PER_SECOND + stops * PAUSE_FRAMES as f64 / FRAMES_PER_SECOND as f64;
        if spoken + cost > seconds {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(s);
        spoken += cost;
    }
    text
}

/// Log-softmax emissions `[frames, 29]` for `text` spoken from frame 0, `frames` long, and the
/// true start of each word (seconds), in order.
pub fn spoken(text: &str, frames: usize) -> (OwnedEmissions, Vec<f64>) {
    let classes = LABELS.len();
    let class_of = |c: char| {
        let up = c.to_ascii_uppercase().to_string();
        let label = if c == ' ' { "|" } else { up.as_str() };
        LABELS.iter().position(|l| *l == label)
    };
    // The class spoken at each frame (0: blank).
    let per_char = FRAMES_PER_SECOND as f64 / CHARS_PER_SECOND;
    let mut target = vec![0usize; frames];
    let mut starts = Vec::new();
    let mut at = 0.0f64;
    let mut in_word = false;
    for c in text.chars() {
        let first = at as usize;
        if c != ' ' && !in_word {
            starts.push(first as f64 / FRAMES_PER_SECOND as f64);
        }
        in_word = c != ' ';
        at += per_char;
        if let Some(k) = class_of(c) {
            // The class on the first half of its frames, blank on the rest.
            let last = (first + (per_char / 2.0).ceil() as usize).min(frames);
            target[first.min(frames)..last].iter_mut().for_each(|t| *t = k);
        }
        if c == '.' {
            at += PAUSE_FRAMES as f64;
        }
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut data = Vec::with_capacity(frames * classes);
    for &t in &target {
        let logits: Vec<f32> = (0..classes).map(|c| noise() + if c == t { PEAK } else { 0.0 }).collect();
        let max = logits.iter().cloned().fold(f32::MIN, f32::max);
        let log_sum = logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln() + max;
        data.extend(logits.iter().map(|l| l - log_sum));
    }
    (OwnedEmissions { data, frames, classes }, starts)
}

/// An emission source that hands out one prepared matrix for every span (the segment asked for
/// is the one it was made for).
pub struct Prepared(pub OwnedEmissions);

impl EmissionSource for Prepared {
    fn emissions(&mut self, spans: &[SampleSpan]) -> scribe::Result<Vec<OwnedEmissions>> {
        Ok(spans.iter().map(|_| self.0.clone()).collect())
    }
}
