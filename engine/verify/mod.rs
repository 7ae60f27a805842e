//! Speaker verification: enrolled voices (speaker samples) name the diarized speakers.
//!
//! - [`voice`]: the utterance-level embedding a model must give;
//! - [`enrol`]: each name's voiceprint from its samples' embeddings;
//! - [`naming`]: which diarized speaker takes which name, and why (scores, runner-up);
//! - [`turn_check`]: a named speaker's own stretches, each checked against its name.
//!
//! The pipeline's stage 6 (`pipeline::speaker_names`) reads the samples, keeps their speech and
//! runs these with the model that diarized.

pub mod enrol;
pub mod naming;
pub mod turn_check;
pub mod voice;

/// `v` scaled to unit length (a zero vector stays zero).
pub fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return vec![0.0; v.len()];
    }
    v.iter().map(|x| (*x as f64 / norm) as f32).collect()
}

/// Cosine similarity of `a` and `b` (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let norms = norm(a) * norm(b);
    if norms == 0.0 || !norms.is_finite() {
        return 0.0;
    }
    dot / norms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_ignores_length_and_zero_vectors_score_zero() {
        assert!((cosine(&[1.0, 0.0], &[3.0, 0.0]) - 1.0).abs() < 1e-12);
        assert!(cosine(&[1.0, 0.0], &[0.0, 2.0]).abs() < 1e-12);
        assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }
}
