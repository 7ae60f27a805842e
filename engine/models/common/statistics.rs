//! Host-side statistics of a signal, as the reference normalisations compute them.

/// The mean and the biased variance (`Σ (x − mean)² / n`, as `nn.InstanceNorm1d` and
/// transformers' `zero_mean_unit_var_norm`) of `x`, in f64; `(0, 0)` for no values.
pub fn mean_and_variance(x: &[f32]) -> (f64, f64) {
    let n = x.len().max(1) as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn biased_variance_and_an_empty_signal() {
        assert_eq!(mean_and_variance(&[1.0, 3.0]), (2.0, 1.0));
        assert_eq!(mean_and_variance(&[]), (0.0, 0.0));
    }
}
