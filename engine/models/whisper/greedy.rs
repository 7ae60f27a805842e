//! Greedy decoding of one 30 s window without timestamps — the baseline the reference tests
//! pin down. The full policy (beam search, temperature fallback, timestamp rules) builds on
//! the same logit filters.

use crate::backend::{Device, Tensor};
use crate::error::Result;

use super::decoder::Decoder;

/// openai/whisper decoding.py: `sample_len = n_text_ctx // 2` (224 new tokens for 448).
pub fn sample_len(n_text_ctx: usize) -> usize {
    n_text_ctx / 2
}

/// Which tokens may not be produced. Mirrors openai/whisper decoding.py:
/// `SuppressTokens` (every step) and `SuppressBlank` (the first sampled step only).
#[derive(Clone, Debug, Default)]
pub struct LogitFilter {
    pub suppress: Vec<u32>,
    pub suppress_at_begin: Vec<u32>,
}

impl LogitFilter {
    /// Set suppressed logits of one row to −∞. `first_step`: no token sampled yet.
    pub fn apply(&self, logits: &mut [f32], first_step: bool) {
        let begin: &[u32] = if first_step { &self.suppress_at_begin } else { &[] };
        for &t in self.suppress.iter().chain(begin) {
            if let Some(l) = logits.get_mut(t as usize) {
                *l = f32::NEG_INFINITY;
            }
        }
    }
}

/// The first index of the maximum (as torch.argmax).
pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Decode greedily after `prompt` until `eot` or `max_new` tokens; returns the new tokens
/// (without the end-of-text token).
pub fn greedy_decode(
    dev: &Device,
    decoder: &Decoder,
    audio_features: &Tensor,
    prompt: &[u32],
    eot: u32,
    filter: &LogitFilter,
    max_new: usize,
) -> Result<Vec<u32>> {
    let mut state = decoder.start(dev, audio_features)?;
    let mut out = Vec::new();
    let mut next = prompt.to_vec();
    // Leave room in the context for every token we may add.
    let max_new = max_new.min(decoder.n_ctx().saturating_sub(prompt.len()));
    while out.len() < max_new {
        let logits = decoder.forward(dev, &[next], &mut state, true)?;
        let mut row = dev.download(&logits)?;
        filter.apply(&mut row, out.is_empty());
        let tok = argmax(&row);
        if tok == eot {
            break;
        }
        out.push(tok);
        next = vec![tok];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppress_blank_only_on_first_step() {
        // decoding.py SuppressBlank: `if tokens.shape[1] == self.sample_begin`.
        let f = LogitFilter { suppress: vec![1], suppress_at_begin: vec![2] };
        let mut first = vec![0.0, 5.0, 4.0, 3.0];
        f.apply(&mut first, true);
        assert_eq!(argmax(&first), 3);
        let mut later = vec![0.0, 5.0, 4.0, 3.0];
        f.apply(&mut later, false);
        assert_eq!(argmax(&later), 2);
    }

    #[test]
    fn suppress_tokens_every_step_and_ignores_out_of_range_ids() {
        // decoding.py SuppressTokens: `logits[:, self.suppress_tokens] = -np.inf`.
        let f = LogitFilter { suppress: vec![0, 99], suppress_at_begin: vec![] };
        let mut row = vec![9.0, 1.0, 2.0];
        f.apply(&mut row, false);
        assert_eq!(row[0], f32::NEG_INFINITY);
        assert_eq!(argmax(&row), 2);
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(sample_len(448), 224);
    }
}
