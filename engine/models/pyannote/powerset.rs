//! pyannote's powerset encoding (pyannote.audio `utils/powerset.py`, class `Powerset`): a
//! segmentation model trained with `powerset_max_classes = m` over `n` speakers has one output
//! class per set of at most `m` speakers, and a frame's prediction is one of those sets
//! (segmentation-3.0: n = 3, m = 2, 7 classes ∅, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}).

use crate::error::{Error, Result};

/// The powerset of `classes` speakers with sets of at most `max_set_size` of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Powerset {
    pub classes: usize,
    pub max_set_size: usize,
    /// The speakers of each powerset class, in the model's output order.
    pub sets: Vec<Vec<usize>>,
}

impl Powerset {
    /// The sets in pyannote's order (`Powerset.build_mapping`: for each size 0..=m, the
    /// `itertools.combinations(range(n), size)`, i.e. lexicographic).
    pub fn new(classes: usize, max_set_size: usize) -> Result<Self> {
        if classes == 0 || max_set_size == 0 || max_set_size > classes {
            return Err(Error::Other(format!(
                "powerset of {classes} classes with sets of at most {max_set_size}: needs 1 ≤ max ≤ classes"
            )));
        }
        let mut sets = Vec::new();
        for size in 0..=max_set_size {
            combinations(classes, size, &mut Vec::new(), 0, &mut sets);
        }
        Ok(Powerset { classes, max_set_size, sets })
    }

    /// Number of powerset classes (`Powerset.num_powerset_classes`).
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// `Powerset.to_multilabel(powerset, soft=False)`: each frame's most likely set (torch's
    /// `argmax`: the first of equal maxima) as 0/1 per speaker. `scores` is `[frames, len()]`
    /// (log-probabilities or probabilities: only their order matters); the result
    /// `[frames, classes]`.
    pub fn to_multilabel_hard(&self, scores: &[f32]) -> Result<Vec<f32>> {
        let k = self.len();
        if !scores.len().is_multiple_of(k) {
            return Err(Error::Other(format!("powerset scores: {} values are not frames × {k}", scores.len())));
        }
        let mut out = vec![0.0f32; scores.len() / k * self.classes];
        for (row, frame) in scores.chunks_exact(k).zip(out.chunks_exact_mut(self.classes)) {
            let best = argmax_first(row);
            for &speaker in &self.sets[best] {
                frame[speaker] = 1.0;
            }
        }
        Ok(out)
    }

    /// `Powerset.to_multilabel(log_probs, soft=True)`: each speaker's probability of being
    /// active, the sum of `exp(log_prob)` over the sets that hold them. `log_probs` is
    /// `[frames, len()]`; the result `[frames, classes]`.
    pub fn to_multilabel_soft(&self, log_probs: &[f32]) -> Result<Vec<f32>> {
        let k = self.len();
        if !log_probs.len().is_multiple_of(k) {
            return Err(Error::Other(format!("powerset scores: {} values are not frames × {k}", log_probs.len())));
        }
        let mut out = vec![0.0f32; log_probs.len() / k * self.classes];
        for (row, frame) in log_probs.chunks_exact(k).zip(out.chunks_exact_mut(self.classes)) {
            for (set, &lp) in self.sets.iter().zip(row) {
                for &speaker in set {
                    frame[speaker] += lp.exp();
                }
            }
        }
        Ok(out)
    }
}

/// Number of powerset classes of `classes` speakers, sets of at most `max_set_size`.
pub fn num_powerset_classes(classes: usize, max_set_size: usize) -> usize {
    (0..=max_set_size.min(classes)).map(|k| binomial(classes, k)).sum()
}

fn binomial(n: usize, k: usize) -> usize {
    (0..k).fold(1, |acc, i| acc * (n - i) / (i + 1))
}

/// Appends every `size`-combination of `0..n` that extends `prefix` with items ≥ `from`.
fn combinations(n: usize, size: usize, prefix: &mut Vec<usize>, from: usize, out: &mut Vec<Vec<usize>>) {
    if prefix.len() == size {
        out.push(prefix.clone());
        return;
    }
    for i in from..n {
        prefix.push(i);
        combinations(n, size, prefix, i + 1, out);
        prefix.pop();
    }
}

/// Index of the largest value, the first one on ties (`torch.argmax`); NaN never wins.
fn argmax_first(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] || row[best].is_nan() && !v.is_nan() {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmentation_3_0_has_seven_classes_in_pyannotes_order() {
        // PA utils/powerset.py build_mapping: combinations by size, lexicographic.
        let p = Powerset::new(3, 2).unwrap();
        assert_eq!(p.sets, vec![vec![], vec![0], vec![1], vec![2], vec![0, 1], vec![0, 2], vec![1, 2]]);
        assert_eq!(num_powerset_classes(3, 2), 7);
        assert_eq!(num_powerset_classes(4, 3), 15);
        assert_eq!(Powerset::new(4, 3).unwrap().len(), 15);
    }

    #[test]
    fn hard_conversion_takes_the_first_of_equal_maxima() {
        let p = Powerset::new(3, 2).unwrap();
        // frame 0: {0,2} wins; frame 1: ∅ and {1} tie → ∅ (the first); frame 2: {1,2}.
        let scores = [
            -5.0, -4.0, -4.0, -4.0, -4.0, -0.1, -4.0, //
            -1.0, -3.0, -1.0, -3.0, -3.0, -3.0, -3.0, //
            -9.0, -9.0, -9.0, -9.0, -9.0, -9.0, -0.5,
        ];
        let hard = p.to_multilabel_hard(&scores).unwrap();
        assert_eq!(hard, vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn soft_conversion_sums_the_probabilities_of_the_sets_holding_a_speaker() {
        let p = Powerset::new(3, 2).unwrap();
        let probs = [0.1f32, 0.2, 0.05, 0.05, 0.3, 0.2, 0.1];
        let lp: Vec<f32> = probs.iter().map(|p| p.ln()).collect();
        let soft = p.to_multilabel_soft(&lp).unwrap();
        let want = [0.2 + 0.3 + 0.2, 0.05 + 0.3 + 0.1, 0.05 + 0.2 + 0.1];
        for (s, w) in soft.iter().zip(want) {
            assert!((s - w).abs() < 1e-6, "{soft:?}");
        }
    }

    #[test]
    fn bad_shapes_and_sizes_are_errors() {
        assert!(Powerset::new(3, 0).is_err());
        assert!(Powerset::new(2, 3).is_err());
        let p = Powerset::new(3, 2).unwrap();
        assert!(p.to_multilabel_hard(&[0.0; 8]).is_err());
        assert!(p.to_multilabel_soft(&[0.0; 6]).is_err());
    }
}
