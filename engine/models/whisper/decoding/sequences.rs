//! Token selection (openai/whisper decoding.py `GreedyDecoder`, `BeamSearchDecoder`) and
//! final ranking (`MaximumLikelihoodRanker`). They see only what the backend chose from each
//! masked logits row ([`TokenChoice`]: argmax, top-k, a sample, with log-probabilities); the
//! caller runs the model and reorders its KV cache by the returned source rows.

use std::collections::HashMap;

use super::rng::Rng;
use crate::backend::{Sampling, TokenChoice};

/// decoding.py `GreedyDecoder`: argmax at temperature 0, else sampling from softmax(logits/T).
pub struct GreedyDecoder {
    pub temperature: f32,
    pub eot: u32,
    rng: Rng,
}

impl GreedyDecoder {
    pub fn new(temperature: f32, eot: u32, seed: u64) -> Self {
        GreedyDecoder { temperature, eot, rng: Rng::new(seed) }
    }

    /// The uniform draws for one step's sampling (one per row, drawn in row order), or None at
    /// temperature 0 (argmax).
    pub fn sampling(&mut self, rows: usize) -> Option<Sampling> {
        (self.temperature != 0.0).then(|| Sampling {
            temperature: self.temperature,
            uniforms: (0..rows).map(|_| self.rng.next_f64()).collect(),
        })
    }

    /// Append one token to every sequence: the argmax at temperature 0, else the sample
    /// (`Categorical(logits=logits / self.temperature).sample()`); `sum_logprobs` gains the
    /// chosen token's log-prob unless the sequence had already ended. Returns true when all
    /// sequences have ended.
    pub fn update(&mut self, tokens: &mut [Vec<u32>], choices: &[TokenChoice], sum_logprobs: &mut [f32]) -> bool {
        for ((seq, choice), sum) in tokens.iter_mut().zip(choices).zip(sum_logprobs.iter_mut()) {
            let (next, logprob) = match choice.sampled {
                Some(s) if self.temperature != 0.0 => s,
                _ => choice.best,
            };
            let ended = seq.last() == Some(&self.eot);
            if !ended {
                *sum += logprob;
            }
            seq.push(if ended { self.eot } else { next });
        }
        tokens.iter().all(|s| s.last() == Some(&self.eot))
    }

    /// "make sure each sequence has at least one EOT token at the end"
    pub fn finalize(&self, tokens: Vec<Vec<u32>>, sum_logprobs: &[f32]) -> Vec<(Vec<u32>, f32)> {
        tokens
            .into_iter()
            .zip(sum_logprobs)
            .map(|(mut t, &s)| {
                t.push(self.eot);
                (t, s)
            })
            .collect()
    }
}

/// decoding.py `BeamSearchDecoder` for one audio (the beams of one window).
pub struct BeamSearchDecoder {
    pub beam_size: usize,
    pub eot: u32,
    /// round(beam_size · patience): finished candidates to collect before stopping.
    pub max_candidates: usize,
    /// Finished sequences with their scores, in insertion order.
    finished: Vec<(Vec<u32>, f32)>,
}

impl BeamSearchDecoder {
    pub fn new(beam_size: usize, eot: u32, patience: Option<f32>) -> Self {
        let patience = patience.unwrap_or(1.0);
        BeamSearchDecoder {
            beam_size,
            eot,
            max_candidates: (beam_size as f32 * patience).round() as usize,
            finished: Vec::new(),
        }
    }

    /// One step. `tokens`/`logits`/`sum_logprobs` have `beam_size` rows. Returns the new
    /// sequences, their sources (rows whose KV cache each continues) and whether decoding is done.
    /// Ids the backend must rank per beam: `beam_size + 1`, so one may end and still leave
    /// `beam_size` to continue.
    pub fn top_k(&self) -> usize {
        self.beam_size + 1
    }

    /// One step from each beam's top [`BeamSearchDecoder::top_k`] (id, log-prob) pairs.
    pub fn update(
        &mut self,
        tokens: &[Vec<u32>],
        top: &[Vec<(u32, f32)>],
        sum_logprobs: &mut [f32],
    ) -> (Vec<Vec<u32>>, Vec<usize>, bool) {
        // "STEP 1: calculate the cumulative log probabilities for possible candidates"
        // Candidates keep insertion order (beam row, then top-k rank) so ties sort as Python's
        // stable `sorted` does.
        let mut candidates: Vec<(Vec<u32>, f32, usize)> = Vec::new();
        let mut index: HashMap<Vec<u32>, usize> = HashMap::new();
        for (row, (prefix, ranked)) in tokens.iter().zip(top).enumerate() {
            for &(token, logprob) in ranked {
                let mut seq = prefix.clone();
                seq.push(token);
                let score = sum_logprobs[row] + logprob;
                match index.get(&seq) {
                    // a dict assignment keeps the first insertion position, updates the value
                    Some(&i) => candidates[i] = (seq, score, row),
                    None => {
                        index.insert(seq.clone(), candidates.len());
                        candidates.push((seq, score, row));
                    }
                }
            }
        }
        // "STEP 2: rank the candidates and keep the top beam_size sequences for each audio"
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| candidates[b].1.partial_cmp(&candidates[a].1).unwrap_or(std::cmp::Ordering::Equal));
        let (mut next, mut sources, mut newly_finished) = (Vec::new(), Vec::new(), Vec::new());
        for i in order {
            let (seq, score, row) = &candidates[i];
            if seq.last() == Some(&self.eot) {
                newly_finished.push((seq.clone(), *score));
            } else {
                sum_logprobs[next.len()] = *score;
                next.push(seq.clone());
                sources.push(*row);
                if next.len() == self.beam_size {
                    break;
                }
            }
        }
        // "add newly finished sequences to self.finished_sequences"
        for (seq, score) in newly_finished {
            if self.finished.len() >= self.max_candidates {
                break; // "the candidate list is full"
            }
            if let Some(f) = self.finished.iter_mut().find(|(s, _)| *s == seq) {
                f.1 = score;
            } else {
                self.finished.push((seq, score));
            }
        }
        let completed = self.finished.len() >= self.max_candidates;
        (next, sources, completed)
    }

    /// "collect all finished sequences, including patience, and add unfinished ones if not enough"
    pub fn finalize(mut self, preceding: &[Vec<u32>], sum_logprobs: &[f32]) -> Vec<(Vec<u32>, f32)> {
        if self.finished.len() < self.beam_size {
            // np.argsort(sum_logprobs)[::-1]: highest first; argsort is not stable for ties in
            // numpy's default quicksort, but equal float sums do not occur in practice.
            let mut order: Vec<usize> = (0..sum_logprobs.len()).collect();
            order.sort_by(|&a, &b| sum_logprobs[b].partial_cmp(&sum_logprobs[a]).unwrap_or(std::cmp::Ordering::Equal));
            for j in order {
                let mut seq = preceding[j].clone();
                seq.push(self.eot);
                if let Some(f) = self.finished.iter_mut().find(|(s, _)| *s == seq) {
                    f.1 = sum_logprobs[j];
                } else {
                    self.finished.push((seq, sum_logprobs[j]));
                }
                if self.finished.len() >= self.beam_size {
                    break;
                }
            }
        }
        self.finished
    }
}

/// decoding.py `MaximumLikelihoodRanker`: the highest `sum_logprob / penalty`, where penalty is
/// the length, or ((5 + length) / 6)^length_penalty (Google NMT) when a length penalty is set.
pub fn rank(lengths: &[usize], sum_logprobs: &[f32], length_penalty: Option<f32>) -> usize {
    let score = |i: usize| {
        let len = lengths[i] as f64;
        let penalty = match length_penalty {
            None => len,
            Some(alpha) => ((5.0 + len) / 6.0).powf(alpha as f64),
        };
        sum_logprobs[i] as f64 / penalty
    };
    // np.argmax: the first maximum
    (0..lengths.len()).fold(0, |best, i| if score(i) > score(best) { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EOT: u32 = 3;

    fn lg(p: &[f32]) -> Vec<f32> {
        p.iter().map(|x| x.ln()).collect()
    }

    use crate::backend::token_choice::{choose_on_host, topk};
    use crate::backend::RowMask;

    /// What a backend returns for unmasked rows.
    fn choose(rows: &[Vec<f32>], k: usize, sampling: Option<&Sampling>) -> Vec<TokenChoice> {
        rows.iter()
            .enumerate()
            .map(|(r, row)| {
                choose_on_host(row, &RowMask::default(), k, sampling.map(|s| (s.temperature, s.uniforms[r])))
            })
            .collect()
    }

    fn greedy_step(d: &mut GreedyDecoder, tokens: &mut [Vec<u32>], rows: &[Vec<f32>], sums: &mut [f32]) -> bool {
        let sampling = d.sampling(rows.len());
        d.update(tokens, &choose(rows, 0, sampling.as_ref()), sums)
    }

    fn beam_top(rows: &[Vec<f32>], k: usize) -> Vec<Vec<(u32, f32)>> {
        choose(rows, k, None).into_iter().map(|c| c.top).collect()
    }

    #[test]
    fn greedy_takes_argmax_and_pads_finished_sequences_with_eot() {
        // decoding.py GreedyDecoder.update: `next_tokens[tokens[:, -1] == self.eot] = self.eot`
        // and `sum_logprobs += current_logprobs * (tokens[:, -1] != self.eot)`
        let mut d = GreedyDecoder::new(0.0, EOT, 0);
        let mut tokens = vec![vec![9], vec![9, EOT]];
        let mut sums = vec![0.0, -1.0];
        let logits = vec![lg(&[0.1, 0.7, 0.1, 0.1]), lg(&[0.1, 0.7, 0.1, 0.1])];
        let done = greedy_step(&mut d, &mut tokens, &logits, &mut sums);
        assert_eq!(tokens, vec![vec![9, 1], vec![9, EOT, EOT]]);
        assert!((sums[0] - 0.7f32.ln()).abs() < 1e-6);
        assert_eq!(sums[1], -1.0);
        assert!(!done);
        // GreedyDecoder.finalize: "make sure each sequence has at least one EOT token at the end"
        let f = d.finalize(tokens, &sums);
        assert_eq!(f[0].0, vec![9, 1, EOT]);
    }

    #[test]
    fn sampling_follows_the_temperature_scaled_distribution() {
        // GreedyDecoder: `Categorical(logits=logits / self.temperature).sample()`
        let mut d = GreedyDecoder::new(1.0, EOT, 42);
        let logits = vec![lg(&[0.2, 0.8, 1e-9, 1e-9])];
        let mut ones = 0;
        for _ in 0..2000 {
            let mut t = vec![vec![]];
            greedy_step(&mut d, &mut t, &logits, &mut [0.0]);
            ones += usize::from(t[0][0] == 1);
        }
        assert!((1500..1700).contains(&ones), "{ones}");
    }

    #[test]
    fn beam_keeps_best_unfinished_and_collects_finished() {
        // BeamSearchDecoder.update STEP 1/2: top beam_size+1 per beam, ranked; eot goes to finished.
        let mut b = BeamSearchDecoder::new(2, EOT, None);
        let tokens = vec![vec![7], vec![8]];
        let mut sums = vec![0.0, -1.0];
        let logits = vec![lg(&[0.5, 0.1, 0.1, 0.3]), lg(&[0.25, 0.25, 0.25, 0.25])];
        let (next, src, done) = b.update(&tokens, &beam_top(&logits, b.top_k()), &mut sums);
        assert_eq!(next, vec![vec![7, 0], vec![7, 1]]);
        assert_eq!(src, vec![0, 0]);
        assert!(!done);
        assert_eq!(b.finished.len(), 1); // [7, EOT] ranks between [7,0] and [7,1]
        assert_eq!(b.finished[0].0, vec![7, EOT]);
    }

    #[test]
    fn patience_raises_the_number_of_finished_candidates() {
        // BeamSearchDecoder.__init__: `self.max_candidates = round(beam_size * self.patience)`
        assert_eq!(BeamSearchDecoder::new(5, EOT, Some(2.0)).max_candidates, 10);
        assert_eq!(BeamSearchDecoder::new(5, EOT, None).max_candidates, 5);
    }

    #[test]
    fn beam_finalize_fills_with_unfinished_when_too_few_finished() {
        // BeamSearchDecoder.finalize: "add unfinished ones if not enough"
        let b = BeamSearchDecoder::new(2, EOT, None);
        let out = b.finalize(&[vec![1], vec![2]], &[-2.0, -1.0]);
        assert_eq!(out, vec![(vec![2, EOT], -1.0), (vec![1, EOT], -2.0)]);
    }

    #[test]
    fn ranker_divides_by_length_or_nmt_penalty() {
        // MaximumLikelihoodRanker.rank: penalty = length, or ((5 + length) / 6) ** length_penalty
        assert_eq!(rank(&[2, 10], &[-1.0, -4.0], None), 1); // -0.5 vs -0.4
        assert_eq!(rank(&[2, 10], &[-1.0, -4.0], Some(0.0)), 0); // raw sums
    }

    #[test]
    fn topk_orders_and_breaks_ties_by_index() {
        assert_eq!(topk(&[1.0, 3.0, 3.0, 2.0], 3), vec![(1, 3.0), (2, 3.0), (3, 2.0)]);
    }
}
