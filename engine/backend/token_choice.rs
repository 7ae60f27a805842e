//! Choosing tokens from rows of logits where the logits live: masking, log-softmax, argmax,
//! top-k and sampling, so that per decoding step only the chosen ids and their log-probabilities
//! cross to the host ([`Backend::choose_tokens`](super::Backend::choose_tokens)). The host
//! functions here are the reference every backend's implementation is compared with, and what
//! the CPU backend runs.

use rayon::prelude::*;

/// What to set to −∞ in one row of logits before tokens are chosen from it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowMask {
    /// Ids to mask (ids beyond the row are ignored).
    pub ids: Vec<u32>,
    /// Half-open id ranges to mask (clamped to the row).
    pub ranges: Vec<(u32, u32)>,
    /// Applied after the masks above: when the total probability of the ids ≥ `split` beats the
    /// probability of every id below it, mask every id below it (openai/whisper decoding.py
    /// `ApplyTimestampRules`: "if sum of probability over timestamps is above any other token,
    /// sample timestamp", with `split = timestamp_begin`).
    pub dominance_split: Option<u32>,
}

/// Sampling from `softmax(masked logits / temperature)` with one uniform draw per row.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    /// One value in [0, 1) per row, drawn by the caller (so every backend samples the same way).
    pub uniforms: Vec<f64>,
}

/// What [`Backend::choose_tokens`](super::Backend::choose_tokens) returns for one row; every
/// log-probability is of the masked row (`log_softmax` after masking).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenChoice {
    /// The argmax of the masked logits (the first on ties) and its log-probability.
    pub best: (u32, f32),
    /// The `k` most probable ids, most probable first, ties by lower id (torch.topk).
    pub top: Vec<(u32, f32)>,
    /// The sampled id and its log-probability, when sampling was asked for.
    pub sampled: Option<(u32, f32)>,
}

/// The mask applied to a row in place.
pub fn apply_mask(row: &mut [f32], mask: &RowMask) {
    apply_mask_keeping_logprobs(row, mask);
}

/// [`apply_mask`], returning the masked row's log-softmax when the dominance test computed it
/// and left the row as it was (so that it need not be computed again).
fn apply_mask_keeping_logprobs(row: &mut [f32], mask: &RowMask) -> Option<Vec<f32>> {
    let n = row.len();
    for &t in &mask.ids {
        if let Some(v) = row.get_mut(t as usize) {
            *v = f32::NEG_INFINITY;
        }
    }
    for &(lo, hi) in &mask.ranges {
        let (lo, hi) = ((lo as usize).min(n), (hi as usize).min(n));
        if lo < hi {
            row[lo..hi].fill(f32::NEG_INFINITY);
        }
    }
    let split = (mask.dominance_split? as usize).min(n);
    let logprobs = log_softmax(row);
    let dominant_logprob = logsumexp(&logprobs[split..]);
    let max_below = super::cpu::softmax::max(&logprobs[..split]);
    if dominant_logprob > max_below {
        row[..split].fill(f32::NEG_INFINITY);
        return None;
    }
    Some(logprobs)
}

/// The reference: mask one row, then choose from it.
pub fn choose_on_host(row: &[f32], mask: &RowMask, k: usize, sampling: Option<(f32, f64)>) -> TokenChoice {
    let mut row = row.to_vec();
    let logprobs = apply_mask_keeping_logprobs(&mut row, mask).unwrap_or_else(|| log_softmax(&row));
    let best = argmax(&row);
    TokenChoice {
        best: (best, logprobs[best as usize]),
        top: topk(&logprobs, k),
        sampled: sampling.map(|(temperature, u)| {
            let id = sample(&row, temperature, u);
            (id, logprobs[id as usize])
        }),
    }
}

/// [`choose_on_host`] for every row of `rows` (row-major, `vocab` wide): row `r` with `masks[r]`
/// and, when sampling, the draw `uniforms[r]`. Rows are independent and run in parallel (a
/// batch of 8 windows × 5 beams is 40 rows of Whisper's 51 864 logits a step).
pub fn choose_rows_on_host(
    rows: &[f32],
    vocab: usize,
    masks: &[RowMask],
    k: usize,
    sampling: Option<&Sampling>,
) -> Vec<TokenChoice> {
    let one = |(r, (row, mask)): (usize, (&[f32], &RowMask))| {
        choose_on_host(row, mask, k, sampling.map(|s| (s.temperature, s.uniforms[r])))
    };
    if rows.len() / vocab.max(1) < 2 {
        return rows.chunks_exact(vocab.max(1)).zip(masks).enumerate().map(one).collect();
    }
    rows.par_chunks_exact(vocab).zip(masks.par_iter()).enumerate().map(one).collect()
}

/// log-softmax of one row in f32 (as `F.log_softmax(logits.float())`); an all −∞ row stays −∞.
pub fn log_softmax(x: &[f32]) -> Vec<f32> {
    let lse = logsumexp(x);
    x.iter().map(|&v| v - lse).collect()
}

/// `torch.logsumexp` of a row: max + ln Σ exp(x − max), −∞ for an empty or all −∞ row.
pub fn logsumexp(x: &[f32]) -> f32 {
    super::cpu::softmax::logsumexp(x)
}

/// First index of the maximum (torch.argmax); NaN never wins (a row of NaN only gives 0). The
/// max is found first (vectorised), then its first position: what a scan keeping the first
/// strictly greater entry returns (−0 and +0 compare equal either way).
pub fn argmax(row: &[f32]) -> u32 {
    let max = super::cpu::softmax::max(row);
    row.iter().position(|&v| v == max).unwrap_or(0) as u32
}

/// Entries per block [`topk`] tests against its k-th best at once.
const TOPK_BLOCK: usize = 64;

/// The k largest entries, largest first (torch.topk; ties by lower index first). A block of
/// entries whose max does not beat the k-th best so far is passed over: none of them would be
/// taken, as an entry is taken only when it beats the k-th best (NaN never does).
pub fn topk(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    for (b, block) in row.chunks(TOPK_BLOCK).enumerate() {
        if best.len() == k && super::cpu::softmax::max(block) <= best[k - 1].1 {
            continue;
        }
        for (j, &v) in block.iter().enumerate() {
            if best.len() < k || v > best[best.len() - 1].1 {
                let pos = best.iter().position(|&(_, b)| v > b).unwrap_or(best.len());
                best.insert(pos, ((b * TOPK_BLOCK + j) as u32, v));
                best.truncate(k);
            }
        }
    }
    best
}

/// `Categorical(logits=row / temperature).sample()` by inverse CDF with the uniform draw `u`:
/// the first id whose cumulative weight exceeds `u` times the total (the argmax if rounding
/// leaves none).
pub fn sample(row: &[f32], temperature: f32, u: f64) -> u32 {
    let scaled: Vec<f32> = row.iter().map(|&l| l / temperature).collect();
    let max = scaled.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = scaled.iter().map(|&l| ((l - max) as f64).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut target = u * total;
    for (i, &w) in weights.iter().enumerate() {
        if target < w {
            return i as u32;
        }
        target -= w;
    }
    argmax(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_ranges_and_ids_and_ignore_what_is_beyond_the_row() {
        let mut row = vec![0.0; 8];
        apply_mask(&mut row, &RowMask { ids: vec![1, 99], ranges: vec![(5, 100), (3, 3)], dominance_split: None });
        let finite: Vec<usize> = (0..8).filter(|&i| row[i].is_finite()).collect();
        assert_eq!(finite, vec![0, 2, 3, 4]);
    }

    #[test]
    fn dominance_masks_below_the_split_only_when_the_mass_above_wins() {
        // Each id above the split is less likely than id 0, but together they are more likely.
        let mut row = vec![1.0, -5.0, 0.5, 0.5, 0.5];
        apply_mask(&mut row, &RowMask { dominance_split: Some(2), ..Default::default() });
        assert!(row[0].is_infinite() && row[1].is_infinite() && row[2].is_finite());
        let mut row = vec![5.0, -5.0, 0.5, 0.5, 0.5];
        apply_mask(&mut row, &RowMask { dominance_split: Some(2), ..Default::default() });
        assert!(row[0].is_finite());
    }

    #[test]
    fn choices_are_of_the_masked_row() {
        let row = [2.0, 3.0, 1.0, 3.0];
        let c = choose_on_host(&row, &RowMask { ids: vec![1], ..Default::default() }, 2, Some((1.0, 0.0)));
        assert_eq!(c.best.0, 3, "id 1 is masked; 3 is the maximum left");
        let lse = (2f32.exp() + 1f32.exp() + 3f32.exp()).ln();
        assert!((c.best.1 - (3.0 - lse)).abs() < 1e-6);
        assert_eq!(c.top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![3, 0]);
        assert_eq!(c.sampled.map(|s| s.0), Some(0), "u = 0 takes the first id with weight");
        assert!(choose_on_host(&row, &RowMask::default(), 0, None).top.is_empty());
    }

    #[test]
    fn argmax_takes_the_first_maximum_and_never_a_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 2.0, 5.0, f32::NAN]), 2, "a NaN in front does not win");
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
    }

    #[test]
    fn topk_orders_and_breaks_ties_by_index() {
        assert_eq!(topk(&[1.0, 3.0, 3.0, 2.0], 3), vec![(1, 3.0), (2, 3.0), (3, 2.0)]);
    }

    /// Rows of every kind the fast paths must treat as a plain scan does: lengths around the
    /// block sizes, ties, ±0, −∞ (masked) runs, NaN and rising values (each block beats the last).
    fn awkward_rows() -> Vec<Vec<f32>> {
        let mut rows = Vec::new();
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for len in [1, 5, 15, 16, 17, 63, 64, 65, 127, 200, 1000] {
            for kind in 0..6 {
                let row: Vec<f32> = (0..len)
                    .map(|i| {
                        let r = next();
                        match kind {
                            0 => (r % 1000) as f32 / 100.0 - 5.0,
                            1 => (r % 4) as f32,
                            2 => [0.0, -0.0, f32::NEG_INFINITY][r as usize % 3],
                            3 if r % 7 == 0 => f32::NAN,
                            3 => (r % 50) as f32,
                            4 => i as f32 * 0.01,
                            _ if i % 64 < 60 => f32::NEG_INFINITY,
                            _ => (r % 9) as f32,
                        }
                    })
                    .collect();
                rows.push(row);
            }
        }
        rows.push(vec![f32::NAN; 70]);
        rows
    }

    #[test]
    fn argmax_and_topk_are_the_plain_scans() {
        // What the scans were before the vectorised max and the skipped blocks.
        let scan_argmax = |row: &[f32]| {
            let mut best = row.iter().position(|v| !v.is_nan()).unwrap_or(0);
            for (i, &v) in row.iter().enumerate().skip(best + 1) {
                if v > row[best] {
                    best = i;
                }
            }
            best as u32
        };
        let scan_topk = |row: &[f32], k: usize| {
            let mut best: Vec<(u32, f32)> = Vec::new();
            for (i, &v) in row.iter().enumerate() {
                if k > 0 && (best.len() < k || v > best[best.len() - 1].1) {
                    let pos = best.iter().position(|&(_, b)| v > b).unwrap_or(best.len());
                    best.insert(pos, (i as u32, v));
                    best.truncate(k);
                }
            }
            best
        };
        for row in awkward_rows() {
            assert_eq!(argmax(&row), scan_argmax(&row), "{row:?}");
            for k in [0, 1, 2, 6, 20] {
                let (fast, plain) = (topk(&row, k), scan_topk(&row, k));
                let bits = |t: &[(u32, f32)]| t.iter().map(|&(i, v)| (i, v.to_bits())).collect::<Vec<_>>();
                assert_eq!(bits(&fast), bits(&plain), "k {k}: {row:?}");
            }
        }
    }

    #[test]
    fn the_dominance_tests_log_softmax_is_the_one_chosen_from() {
        // Timestamps (ids ≥ 3) not dominant: the row is kept and its log-softmax reused.
        let row = [4.0, 1.0, 0.5, 0.1, 0.2];
        let mask = RowMask { ids: vec![1], dominance_split: Some(3), ..Default::default() };
        let mut masked = row.to_vec();
        let kept = apply_mask_keeping_logprobs(&mut masked, &mask).expect("not dominant");
        assert_eq!(kept, log_softmax(&masked));
        let c = choose_on_host(&row, &mask, 2, None);
        assert_eq!(c.best, (0, kept[0]));
        // Dominant: the text ids are masked and the log-softmax is of the new row.
        let row = [1.0, 0.0, 0.0, 0.9, 0.9];
        let c = choose_on_host(&row, &RowMask { dominance_split: Some(3), ..Default::default() }, 2, None);
        let lse = (0.9f32.exp() * 2.0).ln();
        assert_eq!(c.best.0, 3);
        assert!((c.best.1 - (0.9 - lse)).abs() < 1e-6, "{c:?}");
    }

    #[test]
    fn sampling_inverts_the_cumulative_distribution() {
        let row = [0.2f32.ln(), 0.8f32.ln()];
        assert_eq!(sample(&row, 1.0, 0.1), 0);
        assert_eq!(sample(&row, 1.0, 0.3), 1);
        assert_eq!(sample(&row, 1.0, 0.999), 1);
    }
}
