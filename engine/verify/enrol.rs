//! Voiceprints: each enrolled name's vector from the embeddings of its samples, as
//! ../shared/docs/diarization-behaviour.md §5 recommends ("enrolled vector = normalised mean of
//! the normalised embeddings of that name's samples"): every sample counts the same whatever
//! its length or loudness, and several samples of one name are combined.

use super::normalized;

/// One enrolled name.
#[derive(Clone, Debug, PartialEq)]
pub struct Voiceprint {
    pub name: String,
    /// Unit length.
    pub vector: Vec<f32>,
    /// How many samples it was made from.
    pub samples: usize,
}

/// The voiceprints of `(name, embedding)` pairs: one per distinct name, in the order names first
/// appear; embeddings of another length than the first are left out (they cannot come from the
/// same model).
pub fn enrol(embeddings: &[(String, Vec<f32>)]) -> Vec<Voiceprint> {
    let dim = embeddings.first().map_or(0, |(_, e)| e.len());
    let mut sums: Vec<(String, Vec<f64>, usize)> = Vec::new();
    for (name, embedding) in embeddings.iter().filter(|(_, e)| e.len() == dim) {
        let unit = normalized(embedding);
        let at = match sums.iter().position(|(n, _, _)| n == name) {
            Some(i) => i,
            None => {
                sums.push((name.clone(), vec![0.0; dim], 0));
                sums.len() - 1
            }
        };
        let (_, sum, count) = &mut sums[at];
        sum.iter_mut().zip(&unit).for_each(|(s, u)| *s += *u as f64);
        *count += 1;
    }
    sums.into_iter()
        .map(|(name, sum, samples)| {
            let mean: Vec<f32> = sum.iter().map(|s| (s / samples as f64) as f32).collect();
            Voiceprint { name, vector: normalized(&mean), samples }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_gives_its_own_direction() {
        let v = enrol(&[("alice".into(), vec![3.0, 4.0])]);
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].name.as_str(), v[0].samples), ("alice", 1));
        assert!((v[0].vector[0] - 0.6).abs() < 1e-6 && (v[0].vector[1] - 0.8).abs() < 1e-6);
    }

    /// Each sample is normalised before the mean: a loud sample (a long vector) does not
    /// outweigh a quiet one.
    #[test]
    fn samples_of_one_name_count_the_same_whatever_their_length() {
        let v = enrol(&[("bob".into(), vec![100.0, 0.0]), ("bob".into(), vec![0.0, 1.0])]);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].samples, 2);
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!((v[0].vector[0] - h).abs() < 1e-6 && (v[0].vector[1] - h).abs() < 1e-6, "{:?}", v[0].vector);
    }

    #[test]
    fn names_keep_the_order_they_first_appear_in_and_foreign_lengths_are_left_out() {
        let v = enrol(&[
            ("b".into(), vec![1.0, 0.0]),
            ("a".into(), vec![0.0, 1.0]),
            ("b".into(), vec![1.0, 0.0]),
            ("c".into(), vec![1.0, 0.0, 0.0]),
        ]);
        let names: Vec<_> = v.iter().map(|p| (p.name.as_str(), p.samples)).collect();
        assert_eq!(names, vec![("b", 2), ("a", 1)]);
    }
}
