//! Logit filters, applied in this order before each token is chosen (openai/whisper
//! decoding.py `DecodingTask.__init__`: SuppressBlank, SuppressTokens, ApplyTimestampRules;
//! Scribe's batched chunks add NoEndBeforeSpeechEnds, which only ever masks end-of-text).
//! Each turns one hypothesis' tokens so far (prompt included) into what to mask in its logits
//! row ([`RowMask`]); the backend applies the masks where the logits are
//! ([`Backend::choose_tokens`](crate::backend::Backend::choose_tokens)), and `apply` does it on
//! a host row (the unit tests, and the reference).

use crate::backend::token_choice::{apply_mask, RowMask};
pub use crate::backend::token_choice::{log_softmax, logsumexp};
use crate::models::whisper::longform::covered_timestamp;

/// An open-ended range's end: "to the end of the row".
const ROW_END: u32 = u32::MAX;

/// decoding.py `SuppressBlank`: at the first sampled position, forbid a blank (`encode(" ")`)
/// and end-of-text, so a transcript never starts empty.
pub struct SuppressBlank {
    pub blank_and_eot: Vec<u32>,
    pub sample_begin: usize,
}

impl SuppressBlank {
    pub fn mask_into(&self, mask: &mut RowMask, tokens: &[u32]) {
        if tokens.len() == self.sample_begin {
            mask.ids.extend_from_slice(&self.blank_and_eot);
        }
    }

    pub fn apply(&self, logits: &mut [f32], tokens: &[u32]) {
        let mut m = RowMask::default();
        self.mask_into(&mut m, tokens);
        apply_mask(logits, &m);
    }
}

/// decoding.py `SuppressTokens`: forbid a fixed set at every step (`_get_suppress_tokens`:
/// the non-speech symbols for `-1`, plus the task/sot/prev/lm/no-speech specials).
pub struct SuppressTokens {
    pub tokens: Vec<u32>,
}

impl SuppressTokens {
    pub fn mask_into(&self, mask: &mut RowMask) {
        mask.ids.extend_from_slice(&self.tokens);
    }

    pub fn apply(&self, logits: &mut [f32]) {
        let mut m = RowMask::default();
        self.mask_into(&mut m);
        apply_mask(logits, &m);
    }
}

/// decoding.py `ApplyTimestampRules`: timestamps come in pairs (except before end-of-text),
/// never decrease, the first token is a timestamp no later than `max_initial_timestamp`, and a
/// timestamp is forced when their total probability beats every text token.
pub struct ApplyTimestampRules {
    pub eot: u32,
    pub no_timestamps: u32,
    pub timestamp_begin: u32,
    pub sample_begin: usize,
    /// decoding.py `max_initial_timestamp_index` = round(max_initial_timestamp / precision).
    pub max_initial_timestamp_index: Option<u32>,
}

impl ApplyTimestampRules {
    pub fn mask_into(&self, mask: &mut RowMask, tokens: &[u32]) {
        let tb = self.timestamp_begin;
        // "suppress <|notimestamps|> which is handled by without_timestamps"
        mask.ids.push(self.no_timestamps);

        // "timestamps have to appear in pairs, except directly before EOT"
        let sampled = &tokens[self.sample_begin.min(tokens.len())..];
        let is_ts = |t: u32| t >= tb;
        let last_was_timestamp = sampled.last().is_some_and(|&t| is_ts(t));
        let penultimate_was_timestamp = sampled.len() < 2 || is_ts(sampled[sampled.len() - 2]);
        if last_was_timestamp {
            if penultimate_was_timestamp {
                mask.ranges.push((tb, ROW_END)); // has to be non-timestamp
            } else {
                mask.ranges.push((0, self.eot)); // cannot be normal text tokens
            }
        }

        // "timestamps shouldn't decrease; forbid timestamp tokens smaller than the last;
        //  also force each segment to have a nonzero length, to prevent infinite looping"
        if let Some(&last_ts) = sampled.iter().rev().find(|&&t| is_ts(t)) {
            let timestamp_last = if last_was_timestamp && !penultimate_was_timestamp { last_ts } else { last_ts + 1 };
            mask.ranges.push((tb, timestamp_last));
        }

        if tokens.len() == self.sample_begin {
            // "suppress generating non-timestamp tokens at the beginning"
            mask.ranges.push((0, tb));
            // "apply the max_initial_timestamp option"
            if let Some(max_index) = self.max_initial_timestamp_index {
                let last_allowed = tb + max_index;
                mask.ranges.push((last_allowed + 1, ROW_END));
            }
        }

        // "if sum of probability over timestamps is above any other token, sample timestamp"
        mask.dominance_split = Some(tb);
    }

    pub fn apply(&self, logits: &mut [f32], tokens: &[u32]) {
        let mut m = RowMask::default();
        self.mask_into(&mut m, tokens);
        apply_mask(logits, &m);
    }
}

/// Scribe's batched decoding (no reference: WhisperX decodes its chunks without timestamps): a
/// window may not end (`<|endoftext|>` masked) until its tokens cover it to timestamp index
/// `until` ([`covered_timestamp`], where the segment split will end its last segment), the first
/// index after which less than `batched::MIN_UNTRANSCRIBED_SPEECH` of its speech is left.
/// Whisper ends a window early when it takes the speech near the window's end for a sentence
/// cut by it (a double timestamp, then end of text); without this rule that speech is decoded
/// again in a window of its own.
pub struct NoEndBeforeSpeechEnds {
    pub eot: u32,
    pub timestamp_begin: u32,
    pub sample_begin: usize,
    pub until: u32,
}

impl NoEndBeforeSpeechEnds {
    pub fn mask_into(&self, mask: &mut RowMask, tokens: &[u32]) {
        let sampled = &tokens[self.sample_begin.min(tokens.len())..];
        if covered_timestamp(sampled, self.timestamp_begin).is_some_and(|c| c < self.until) {
            mask.ids.push(self.eot);
        }
    }

    pub fn apply(&self, logits: &mut [f32], tokens: &[u32]) {
        let mut m = RowMask::default();
        self.mask_into(&mut m, tokens);
        apply_mask(logits, &m);
    }
}

/// Set the listed ids to −∞ (ids beyond the row are ignored).
pub fn mask(logits: &mut [f32], ids: &[u32]) {
    apply_mask(logits, &RowMask { ids: ids.to_vec(), ..Default::default() });
}

#[cfg(test)]
mod tests {
    use super::*;

    // A toy vocabulary: text 0..5, eot 5, no_timestamps 6, timestamps 7..12.
    const EOT: u32 = 5;
    const NO_TS: u32 = 6;
    const TB: u32 = 7;
    const V: usize = 12;

    fn rules(sample_begin: usize, max_initial: Option<u32>) -> ApplyTimestampRules {
        ApplyTimestampRules {
            eot: EOT,
            no_timestamps: NO_TS,
            timestamp_begin: TB,
            sample_begin,
            max_initial_timestamp_index: max_initial,
        }
    }

    fn allowed(l: &[f32]) -> Vec<usize> {
        l.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, _)| i).collect()
    }

    #[test]
    fn suppress_blank_applies_only_at_sample_begin() {
        // decoding.py SuppressBlank.apply: `if tokens.shape[1] == self.sample_begin`
        let f = SuppressBlank { blank_and_eot: vec![1, EOT], sample_begin: 2 };
        let mut l = vec![0.0; V];
        f.apply(&mut l, &[9, 9]);
        assert!(l[1].is_infinite() && l[EOT as usize].is_infinite());
        let mut l = vec![0.0; V];
        f.apply(&mut l, &[9, 9, 3]);
        assert_eq!(allowed(&l).len(), V);
    }

    #[test]
    fn suppress_tokens_masks_every_step() {
        // decoding.py SuppressTokens.apply: `logits[:, self.suppress_tokens] = -np.inf`
        let f = SuppressTokens { tokens: vec![0, 2, 999] };
        let mut l = vec![1.0; V];
        f.apply(&mut l);
        assert_eq!(allowed(&l), (0..V).filter(|&i| i != 0 && i != 2).collect::<Vec<_>>());
    }

    #[test]
    fn first_token_must_be_an_early_timestamp() {
        // ApplyTimestampRules: "suppress generating non-timestamp tokens at the beginning" and
        // "apply the max_initial_timestamp option"
        let mut l = vec![0.0; V];
        rules(1, Some(2)).apply(&mut l, &[100]);
        assert_eq!(allowed(&l), vec![7, 8, 9]);
    }

    #[test]
    fn no_timestamps_token_is_always_suppressed() {
        // ApplyTimestampRules: "suppress <|notimestamps|> which is handled by without_timestamps"
        let mut l = vec![0.0; V];
        rules(0, None).apply(&mut l, &[7, 1]);
        assert!(l[NO_TS as usize].is_infinite());
    }

    #[test]
    fn a_lone_timestamp_is_followed_by_a_timestamp_or_eot() {
        // "timestamps have to appear in pairs, except directly before EOT" (last ts, penultimate text)
        let mut l = vec![0.0; V];
        l[EOT as usize] = 10.0; // keep the timestamp-mass rule out of this test
        rules(0, None).apply(&mut l, &[7, 1, 9]);
        // text forbidden; eot allowed; timestamps >= the last one (9) allowed
        assert_eq!(allowed(&l), vec![5, 9, 10, 11]);
    }

    #[test]
    fn a_timestamp_pair_is_followed_by_text() {
        // "if penultimate_was_timestamp: has to be non-timestamp"
        let mut l = vec![0.0; V];
        rules(0, None).apply(&mut l, &[7, 1, 9, 9]);
        assert_eq!(allowed(&l), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn timestamps_never_decrease_and_segments_have_length() {
        // "forbid timestamp tokens smaller than the last; force each segment to have nonzero length"
        let mut l = vec![10.0; V];
        // Timestamps unlikely, so the timestamp-mass rule stays out of this test.
        l[TB as usize..].fill(0.0);
        rules(0, None).apply(&mut l, &[7, 1, 9, 9, 2]);
        // after text, the next timestamp must exceed 9
        assert_eq!(allowed(&l), vec![0, 1, 2, 3, 4, 5, 10, 11]);
    }

    #[test]
    fn probable_timestamps_win_over_text() {
        // "if sum of probability over timestamps is above any other token, sample timestamp"
        let mut l = vec![0.0; V];
        l[0] = 1.0; // best text token
                    // Each less likely than text token 0, but together more likely.
        l[TB as usize..].fill(0.5);
        rules(0, None).apply(&mut l, &[7, 1]);
        assert!(allowed(&l).iter().all(|&i| i >= TB as usize));
        let mut l = vec![-10.0; V];
        l[0] = 5.0;
        rules(0, None).apply(&mut l, &[7, 1]);
        assert!(l[0].is_finite());
    }

    #[test]
    fn logsumexp_handles_all_masked_rows() {
        assert_eq!(logsumexp(&[f32::NEG_INFINITY; 3]), f32::NEG_INFINITY);
        assert!((logsumexp(&[0.0, 0.0]) - 2f32.ln()).abs() < 1e-6);
    }
    #[test]
    fn a_window_cannot_end_before_its_tokens_cover_it_to_the_speech_end() {
        // Timestamp index 3 (token TB + 3) is the first with less than a second of speech left.
        let f = NoEndBeforeSpeechEnds { eot: EOT, timestamp_begin: TB, sample_begin: 1, until: 3 };
        let ends = |tokens: &[u32]| {
            let mut l = vec![0.0; V];
            f.apply(&mut l, tokens);
            l[EOT as usize].is_finite()
        };
        // Covered to 2: a segment closed at 2, or a pair at 2 with text after it (unfinished,
        // so the split ignores it, even after a later opening timestamp).
        assert!(!ends(&[9, TB, 1, TB + 2]));
        assert!(!ends(&[9, TB, 1, TB + 2, TB + 2]));
        assert!(!ends(&[9, TB, 1, TB + 2, TB + 4, 1]));
        assert!(!ends(&[9, TB + 1, 1]));
        // Covered to 3 or beyond.
        assert!(ends(&[9, TB, 1, TB + 3]));
        assert!(ends(&[9, TB, 1, TB + 4, TB + 4]));
        assert!(ends(&[9, TB, 1, TB + 3, TB + 4, 1]));
        // Only <|0.00|>: the split covers the window whole, so nothing is left to decode.
        assert!(ends(&[9, TB, 1]));
        // Tokens before sample_begin do not count; only EOT is ever masked.
        assert!(!ends(&[TB + 4, TB + 1, 1]));
        let mut l = vec![0.0; V];
        f.apply(&mut l, &[9, TB + 1, 1]);
        assert_eq!(allowed(&l).len(), V - 1);
    }
}
