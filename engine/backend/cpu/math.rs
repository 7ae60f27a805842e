//! Vectorisable elementary functions. `f32::exp` and libm's erf are calls the compiler cannot
//! vectorise; softmax and GELU spend most of their time in them, so we use polynomial forms
//! written in plain arithmetic (accurate to a few ULP in f32).

const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// exp underflows to 0 below this and overflows above `EXP_MAX`.
const EXP_MIN: f32 = -87.336_55;
const EXP_MAX: f32 = 88.376_26;

/// 1.5 · 2^23: adding and subtracting it rounds an f32 of magnitude < 2^22 to the nearest integer.
const ROUND_MAGIC: f32 = 12_582_912.0;
/// 2^23: adding it to a small non-negative integer-valued f32 puts the integer in the low
/// mantissa bits.
const MANTISSA_MAGIC: f32 = 8_388_608.0;

/// `e^x` (Cephes expf: range reduction by ln 2, degree-6 polynomial). Max rel error ≈ 2e-7.
/// Float-only arithmetic and bit shifts (no float→int conversion, whose saturating semantics
/// cost scalar code), so slices of it vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(EXP_MIN, EXP_MAX);
    let n = (x * LOG2_E + ROUND_MAGIC) - ROUND_MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n through the exponent bits: n + 127 is in [1, 254] after the clamp; as the low
    // mantissa bits of (n + 127 + 2^23), shifted by 23 it becomes the exponent field.
    let biased = (n + 127.0 + MANTISSA_MAGIC).to_bits() << 23;
    y * f32::from_bits(biased)
}

/// 2^112: moves an f16 exponent (bias 15), shifted into f32 position, to f32's bias 127.
const F16_EXPONENT_REBIAS: f32 = 5.192_297e33;
/// f16 exponent and mantissa bits that mean infinity or NaN.
const F16_INF_NAN: u32 = 0x7c00;

/// The f32 with the value of the f16 `bits` (exact, subnormals included). Branch-free so that
/// slices of it vectorise: the exponent and mantissa are shifted into f32 position and the
/// exponent rebiased by one multiplication, which also normalises f16 subnormals.
#[inline(always)]
pub fn f16_to_f32(bits: u16) -> f32 {
    let h = bits as u32;
    let sign = (h & 0x8000) << 16;
    let magnitude = h & 0x7fff;
    let shifted = magnitude << 13;
    let finite = f32::from_bits(shifted) * F16_EXPONENT_REBIAS;
    let value = if magnitude >= F16_INF_NAN { f32::from_bits(shifted | 0x7f80_0000) } else { finite };
    f32::from_bits(value.to_bits() | sign)
}

/// `erf(x)` — Abramowitz & Stegun 7.1.26 refined: max abs error ≈ 1.5e-7.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_8;
    const A4: f32 = -1.453_152_1;
    const A5: f32 = 1.061_405_4;
    let s = x.signum();
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
    s * (1.0 - poly * exp(-a * a))
}

/// Exact (erf) GELU: `x · ½(1 + erf(x/√2))`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Logistic sigmoid.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh` through exp: `1 − 2/(e^{2x}+1)`.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_over_its_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let rel = ((exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "max rel error {worst}");
        assert_eq!(exp(-1000.0), exp(EXP_MIN));
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn erf_and_gelu_match_f64_reference() {
        // erf reference from the f64 series of libm-free form: use the identity with std's f64 functions
        // via numerical integration would be slow; compare against known values instead.
        let known = [
            (0.0, 0.0),
            (0.5, 0.520_499_877_8),
            (1.0, 0.842_700_792_9),
            (2.0, 0.995_322_265_0),
            (-1.5, -0.966_105_146_5),
            (4.0, 0.999_999_984_6),
        ];
        for (x, want) in known {
            let got = erf(x as f32) as f64;
            assert!((got - want).abs() < 3e-7, "erf({x}) = {got}, want {want}");
        }
        let g = gelu(1.0) as f64;
        assert!((g - 0.841_344_746_1).abs() < 3e-7, "gelu(1) = {g}");
    }

    #[test]
    fn f16_to_f32_is_exact_for_every_bit_pattern() {
        for bits in 0..=u16::MAX {
            let want = half::f16::from_bits(bits).to_f32();
            let got = f16_to_f32(bits);
            if want.is_nan() {
                assert!(got.is_nan(), "{bits:#06x}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{bits:#06x}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn sigmoid_and_tanh_match_std() {
        let mut x = -20.0f32;
        while x < 20.0 {
            assert!((sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs() < 1e-6, "sigmoid({x})");
            assert!((tanh(x) - x.tanh()).abs() < 1e-6, "tanh({x})");
            x += 0.01;
        }
    }
}
