//! tiktoken's byte-pair encoding, which openai/whisper's tokenizer.py uses to encode prompts.
//!
//! `tokenizer.json` (the Hugging Face form the CT2 and HF checkpoints ship) holds the same
//! vocabulary, but its merge list does not reproduce tiktoken for every string: for the
//! multilingual vocabulary `"quoted" text` encodes to `… " text` (one token) in tiktoken and to
//! `… " " "text"` through the merge list. tiktoken merges by rank, where a token's rank is its
//! id: repeatedly join the adjacent pair whose concatenation is the lowest-ranked token. We do
//! exactly that, over the vocabulary of `tokenizer.json`.

use std::collections::HashMap;

use fancy_regex::Regex;

use crate::error::{Error, Result};

/// The pre-tokenizer of whisper/tokenizer.py `get_encoding` (GPT-2's pattern).
pub const PAT_STR: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

pub struct TiktokenBpe {
    /// Byte string → rank (= token id), ordinary tokens only.
    ranks: HashMap<Vec<u8>, u32>,
    pattern: Regex,
}

impl TiktokenBpe {
    /// Ranks from `(bytes, id)` pairs: the vocabulary's ordinary (non-special) tokens.
    pub fn new(tokens: impl IntoIterator<Item = (Vec<u8>, u32)>) -> Result<Self> {
        let ranks: HashMap<Vec<u8>, u32> = tokens.into_iter().collect();
        if let Some(b) = (0u8..=255).find(|b| !ranks.contains_key(&vec![*b])) {
            return Err(Error::Tokenizer(format!("the vocabulary has no token for byte {b:#04x}")));
        }
        let pattern = Regex::new(PAT_STR).map_err(|e| Error::Tokenizer(format!("pre-tokenizer pattern: {e}")))?;
        Ok(TiktokenBpe { ranks, pattern })
    }

    /// tiktoken `Encoding.encode_ordinary`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for piece in self.pattern.find_iter(text) {
            let piece = piece.map_err(|e| Error::Tokenizer(format!("pre-tokenizing {text:?}: {e}")))?;
            let bytes = piece.as_str().as_bytes();
            match self.ranks.get(bytes) {
                Some(&id) => ids.push(id),
                None => ids.extend(self.merge(bytes).into_iter().map(|part| self.ranks[part])),
            }
        }
        Ok(ids)
    }

    /// tiktoken `_byte_pair_merge`: start from single bytes and keep joining the adjacent pair
    /// whose concatenation has the lowest rank (the leftmost on ties) until no pair is a token.
    fn merge<'a>(&self, piece: &'a [u8]) -> Vec<&'a [u8]> {
        // Boundaries of the current parts: part i is piece[bounds[i]..bounds[i + 1]].
        let mut bounds: Vec<usize> = (0..=piece.len()).collect();
        let rank_of = |bounds: &[usize], i: usize| -> Option<u32> {
            (i + 2 < bounds.len()).then(|| self.ranks.get(&piece[bounds[i]..bounds[i + 2]]).copied()).flatten()
        };
        let mut pair_ranks: Vec<Option<u32>> = (0..bounds.len() - 1).map(|i| rank_of(&bounds, i)).collect();
        loop {
            let best =
                pair_ranks.iter().enumerate().filter_map(|(i, r)| r.map(|r| (r, i))).min_by_key(|&(r, i)| (r, i));
            let Some((_, i)) = best else { break };
            bounds.remove(i + 1);
            pair_ranks.remove(i + 1);
            pair_ranks[i] = rank_of(&bounds, i);
            if i > 0 {
                pair_ranks[i - 1] = rank_of(&bounds, i - 1);
            }
        }
        bounds.windows(2).map(|w| &piece[w[0]..w[1]]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes, then "ab" (rank 256), "bc" (257), "abc" (258), "cd" (259).
    fn toy() -> TiktokenBpe {
        let mut tokens: Vec<(Vec<u8>, u32)> = (0u8..=255).map(|b| (vec![b], b as u32)).collect();
        for (i, t) in ["ab", "bc", "abc", "cd"].iter().enumerate() {
            tokens.push((t.as_bytes().to_vec(), 256 + i as u32));
        }
        TiktokenBpe::new(tokens).unwrap()
    }

    #[test]
    fn merges_lowest_rank_first() {
        // "abcd": ab (256) beats bc (257) and cd (259); then ab+c = abc (258); abc+d is no token.
        assert_eq!(toy().encode("abcd").unwrap(), vec![258, b'd' as u32]);
        // "bcd": bc (257) beats cd (259).
        assert_eq!(toy().encode("bcd").unwrap(), vec![257, b'd' as u32]);
    }

    #[test]
    fn pieces_follow_the_gpt2_pattern() {
        // " ab" is one piece (space joins letters) with no token of its own: bytes then merges.
        assert_eq!(toy().encode(" ab").unwrap(), vec![b' ' as u32, 256]);
        // Two spaces before a word: the first is its own piece (`\s+(?!\S)`).
        assert_eq!(toy().encode("  c").unwrap(), vec![b' ' as u32, b' ' as u32, b'c' as u32]);
        // Contractions split off.
        assert_eq!(toy().encode("a's").unwrap(), vec![b'a' as u32, b'\'' as u32, b's' as u32]);
    }

    #[test]
    fn a_vocabulary_without_every_byte_is_refused() {
        let tokens: Vec<(Vec<u8>, u32)> = (0u8..255).map(|b| (vec![b], b as u32)).collect();
        assert!(TiktokenBpe::new(tokens).is_err());
    }
}
