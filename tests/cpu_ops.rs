//! Every op of the `Backend` trait on the CPU backend, checked against a naive f64 reference
//! written here in plain loops, at the portable SIMD level and at the best level this CPU has.
//!
//! Tolerance: `|got − ref| ≤ ATOL + RTOL·|ref|`, skipping references that are NaN; an infinite
//! reference must be matched exactly. Shapes deliberately include sizes that do not divide
//! 8/16/32/64. Weights are scaled by `1/√fan_in` as real checkpoints are, so long dot
//! products stay O(1) and the tolerance measures the kernel, not f32 cancellation.
//!
//! Run with `cargo test --test cpu_ops -- --nocapture` to see the max errors per op family.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use scribe::backend::cpu::{CpuBackend, SimdLevel};
use scribe::backend::{Activation, BinaryOp, Conv1dParams, Conv2dParams, Device, Padding, Reduce, Tensor};

const ATOL: f64 = 1e-5;
const RTOL: f64 = 1e-4;

// ---- helpers ---------------------------------------------------------------------------------

/// xorshift64* — small, deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform() * scale).collect()
    }
}

/// The backends every comparison runs on: the portable path and the best level this CPU has
/// (plus AVX2 when the best is AVX-512, so the middle dispatch path is covered too).
fn devices() -> Vec<(String, Device)> {
    let mut v = Vec::new();
    let mut levels = vec![SimdLevel::Portable, SimdLevel::Avx2.min(SimdLevel::detect()), SimdLevel::detect()];
    levels.dedup();
    for level in levels {
        let be = CpuBackend::with_simd(level);
        let label = format!("cpu/{:?}", be.simd());
        v.push((label, Device::new(Arc::new(be))));
    }
    v
}

fn up(dev: &Device, v: &[f32], shape: &[usize]) -> Tensor {
    dev.upload(v, shape).expect("upload")
}

fn down(dev: &Device, t: &Tensor) -> Vec<f32> {
    dev.download(t).expect("download")
}

/// Max errors of one op family across all its comparisons.
struct Stats {
    family: String,
    max_abs: f64,
    max_rel: f64,
    values: usize,
    cases: usize,
}

impl Stats {
    fn new(family: impl Into<String>) -> Self {
        Stats { family: family.into(), max_abs: 0.0, max_rel: 0.0, values: 0, cases: 0 }
    }

    /// Compare `got` (backend) with `want` (f64 reference); panic with details on failure.
    fn check(&mut self, op: &str, dev: &str, shape: &str, got: &[f32], want: &[f64]) {
        self.check_tol(op, dev, shape, got, want, ATOL, RTOL)
    }

    #[allow(clippy::too_many_arguments)]
    fn check_tol(&mut self, op: &str, dev: &str, shape: &str, got: &[f32], want: &[f64], atol: f64, rtol: f64) {
        assert_eq!(got.len(), want.len(), "{op} [{dev}] {shape}: {} values, reference has {}", got.len(), want.len());
        let (mut max_abs, mut max_rel) = (0.0f64, 0.0f64);
        let mut first_bad: Option<(usize, f32, f64)> = None;
        let mut bad = 0usize;
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            if w.is_nan() {
                continue;
            }
            let g64 = g as f64;
            let ok = if w.is_infinite() {
                g64 == w
            } else if !g64.is_finite() {
                false
            } else {
                let err = (g64 - w).abs();
                max_abs = max_abs.max(err);
                if w.abs() > 1e-3 {
                    max_rel = max_rel.max(err / w.abs());
                }
                err <= atol + rtol * w.abs()
            };
            if !ok {
                bad += 1;
                first_bad.get_or_insert((i, g, w));
            }
        }
        if let Some((i, g, w)) = first_bad {
            panic!(
                "{op} [{dev}] {shape}: {bad} of {} values out of tolerance (atol {atol:e}, rtol {rtol:e}); \
                 first at [{i}]: got {g}, want {w}; max abs err {max_abs:e}, max rel err {max_rel:e}",
                got.len()
            );
        }
        self.max_abs = self.max_abs.max(max_abs);
        self.max_rel = self.max_rel.max(max_rel);
        self.values += got.len();
        self.cases += 1;
    }

    /// Exact comparison (layout ops: the values are copied, not computed).
    fn exact(&mut self, op: &str, dev: &str, shape: &str, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{op} [{dev}] {shape}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(g.to_bits() == w.to_bits(), "{op} [{dev}] {shape}: [{i}] got {g}, want {w}");
        }
        self.values += got.len();
        self.cases += 1;
    }

    fn report(&self) {
        println!(
            "{:<26} {:>4} cases {:>9} values  max abs err {:.3e}  max rel err (|ref|>1e-3) {:.3e}",
            self.family, self.cases, self.values, self.max_abs, self.max_rel
        );
    }
}

/// The op must return `Err` — not `Ok`, and not panic.
fn expect_err<T>(what: &str, dev: &str, f: impl FnOnce() -> scribe::Result<T>) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(_)) => panic!("{what} [{dev}]: expected a shape error, got Ok"),
        Ok(Err(_)) => {}
        Err(_) => panic!("{what} [{dev}]: panicked instead of returning Err"),
    }
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Multi-index of flat position `i` in `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

fn erf64(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 3.0 {
        // Maclaurin series: erf x = 2/√π Σ (−1)ⁿ x^{2n+1} / (n! (2n+1)).
        let mut term = a;
        let mut sum = a;
        let x2 = a * a;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let t = term / (2.0 * n + 1.0);
            sum += t;
            if t.abs() <= 1e-17 * sum.abs() || n > 200.0 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // Continued fraction for erfc: e^{−x²}/√π · 1/(x + ½/(x + 1/(x + 3/2/(x + ...)))).
        let mut t = a;
        for n in (1..=80).rev() {
            t = a + (n as f64 / 2.0) / t;
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * t)
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

fn sigmoid64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

// ---- linear algebra --------------------------------------------------------------------------

fn ref_linear(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, b: Option<&[f32]>) -> Vec<f64> {
    let mut out = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = b.map_or(0.0, |b| b[j] as f64);
            for p in 0..k {
                s += x[i * k + p] as f64 * w[j * k + p] as f64;
            }
            out[i * n + j] = s;
        }
    }
    out
}

#[test]
fn half_precision_weights() {
    // A weight uploaded as f16 behaves as the f32 tensor of the same values in linear (both the
    // skinny path, ≤ 64 rows in passes of 8, and the GEMM path), embedding and download; other
    // ops refuse it.
    let mut st = Stats::new("linear (f16 weight)");
    let mut rng = Rng::new(41);
    for &(m, k, n) in
        &[(1, 1, 1), (5, 384, 517), (8, 33, 65), (9, 17, 300), (40, 64, 129), (64, 31, 70), (65, 16, 33), (3, 15, 7)]
    {
        let x = rng.vec(m * k, 1.0);
        let w16: Vec<half::f16> =
            rng.vec(n * k, 1.0 / (k as f32).sqrt()).iter().map(|&v| half::f16::from_f32(v)).collect();
        let w: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
        let b = rng.vec(n, 1.0);
        for (label, dev) in devices() {
            let (xt, wt, bt) = (up(&dev, &x, &[m, k]), dev.upload_f16(&w16, &[n, k]).unwrap(), up(&dev, &b, &[n]));
            assert_eq!(down(&dev, &wt), w, "{label}: download of an f16 weight");
            for bias in [false, true] {
                let y = dev.linear(&xt, &wt, bias.then_some(&bt)).unwrap();
                let want = ref_linear(&x, m, k, &w, n, bias.then_some(&b[..]));
                st.check(
                    "linear",
                    &label,
                    &format!("x [{m}, {k}] w f16 [{n}, {k}] bias {bias}"),
                    &down(&dev, &y),
                    &want,
                );
            }
            let ids = [0u32, (n - 1) as u32, (n / 2) as u32];
            let e = dev.embedding(&ids, &wt).unwrap();
            let want: Vec<f32> = ids.iter().flat_map(|&i| w[i as usize * k..(i as usize + 1) * k].to_vec()).collect();
            assert_eq!(down(&dev, &e), want, "{label}: embedding from an f16 table");
            expect_err("f16 weight in an activation", &label, || dev.activation(&wt, Activation::Relu));
            expect_err("f16 weight shape", &label, || dev.upload_f16(&w16, &[n + 1, k]));
        }
    }
    st.report();
}

#[test]
fn panel_weights() {
    // A weight packed by `pack_for_few_rows` (column panels where the CPU has AVX-512, or AVX2
    // with F16C) keeps its
    // dtype and values: linear computes each output as fused multiply-adds in order of k then
    // the bias, bit for bit (the panel kernel up to `PANEL_MAX_ROWS` rows, the GEMM above), and
    // download, embedding, quantize_int8 and round_bfloat16 see the weight's own values. Below
    // AVX2 (with F16C) the weight is returned unchanged.
    use scribe::backend::cpu::panels::{reference_product, PANEL_MAX_ROWS};
    let mut st = Stats::new("linear (panel weight)");
    let mut rng = Rng::new(47);
    let avx512 = SimdLevel::detect() == SimdLevel::Avx512;
    assert!(avx512 || std::env::var_os("CI").is_none(), "CI's CPUs have AVX-512; this one does not");
    for &(m, k, n) in &[
        (1, 1, 1),
        (5, 384, 517),
        (8, 33, 65),
        (17, 17, 300),
        (35, 64, 129),
        (64, 31, 70),
        (3, 15, 7),
        (PANEL_MAX_ROWS + 3, 16, 33),
    ] {
        let x = rng.vec(m * k, 1.0);
        let w16: Vec<half::f16> =
            rng.vec(n * k, 1.0 / (k as f32).sqrt()).iter().map(|&v| half::f16::from_f32(v)).collect();
        let w: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
        let b = rng.vec(n, 1.0);
        for (label, dev) in devices() {
            let (xt, bt) = (up(&dev, &x, &[m, k]), up(&dev, &b, &[n]));
            for (dtype, plain) in
                [("float16", dev.upload_f16(&w16, &[n, k]).unwrap()), ("float32", up(&dev, &w, &[n, k]))]
            {
                let wt = dev.pack_for_few_rows(&plain).unwrap();
                let shape = format!("x [{m}, {k}] w {dtype} panels [{n}, {k}]");
                assert_eq!((wt.dtype(), wt.shape()), (dtype, &[n, k][..]), "{label}: {shape}");
                let packed = !Arc::ptr_eq(wt.storage(), plain.storage());
                let kernel = label.ends_with("Avx512")
                    || (label.ends_with("Avx2") && scribe::backend::cpu::panels::kernel_available(SimdLevel::Avx2));
                assert_eq!(packed, kernel, "{label}: packed only where a panel kernel runs (AVX-512, AVX2 with F16C)");
                for bias in [false, true] {
                    let got = down(&dev, &dev.linear(&xt, &wt, bias.then_some(&bt)).unwrap());
                    let want = ref_linear(&x, m, k, &w, n, bias.then_some(&b[..]));
                    st.check("linear", &label, &format!("{shape} bias {bias}"), &got, &want);
                    let bits = if packed && m <= PANEL_MAX_ROWS {
                        reference_product(&x, m, k, &w, n, bias.then_some(&b[..]))
                    } else {
                        down(&dev, &dev.linear(&xt, &plain, bias.then_some(&bt)).unwrap())
                    };
                    assert_eq!(got, bits, "{label}: {shape} bias {bias}, bit for bit");
                }
                assert_eq!(down(&dev, &wt), w, "{label}: download of {shape}");
                let ids = [0u32, (n - 1) as u32, (n / 2) as u32, (n / 2) as u32];
                let want: Vec<f32> =
                    ids.iter().flat_map(|&i| w[i as usize * k..(i as usize + 1) * k].to_vec()).collect();
                assert_eq!(down(&dev, &dev.embedding(&ids, &wt).unwrap()), want, "{label}: embedding from {shape}");
                for (op, from_packed, from_plain) in [
                    ("quantize_int8", dev.quantize_int8(&wt).unwrap(), dev.quantize_int8(&plain).unwrap()),
                    ("round_bfloat16", dev.round_bfloat16(&wt).unwrap(), dev.round_bfloat16(&plain).unwrap()),
                ] {
                    assert_eq!(from_packed.dtype(), from_plain.dtype(), "{label}: {op} of {shape}");
                    assert_eq!(down(&dev, &from_packed), down(&dev, &from_plain), "{label}: {op} of {shape}");
                }
                if packed {
                    expect_err("panel weight in an activation", &label, || dev.activation(&wt, Activation::Relu));
                }
                expect_err("panel weight K mismatch", &label, || {
                    dev.linear(&up(&dev, &vec![0.0; m * (k + 1)], &[m, k + 1]), &wt, None)
                });
                expect_err("pack_for_few_rows of a rank-3 tensor", &label, || {
                    dev.pack_for_few_rows(&up(&dev, &w, &[n, k, 1]))
                });
            }
        }
    }
    // Edge cases, on the best level: a weight with no inputs or no outputs.
    let dev = Device::new(Arc::new(CpuBackend::with_simd(SimdLevel::detect())));
    let empty = dev.pack_for_few_rows(&up(&dev, &[], &[3, 0])).unwrap();
    let bias = up(&dev, &[1.0, -2.0, 0.5], &[3]);
    let y = dev.linear(&up(&dev, &[], &[2, 0]), &empty, Some(&bias)).unwrap();
    assert_eq!(down(&dev, &y), [1.0, -2.0, 0.5, 1.0, -2.0, 0.5], "rows of width 0: the bias");
    assert_eq!(down(&dev, &dev.embedding(&[2], &empty).unwrap()), Vec::<f32>::new());
    let none = dev.pack_for_few_rows(&up(&dev, &[], &[0, 4])).unwrap();
    assert_eq!(dev.linear(&up(&dev, &[1.0; 8], &[2, 4]), &none, None).unwrap().shape(), &[2, 0]);
    st.report();
}

/// Symmetric int8 quantisation of `values` with one scale (±127, ties to even; values whose
/// `127 / max` overflows quantise to zeros): the integers and the scale that restores them.
fn quantize(values: &[f32]) -> (Vec<i64>, f32) {
    let amax = values.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let (inverse, scale) = if (127.0 / amax).is_finite() { (127.0 / amax, amax / 127.0) } else { (0.0, 0.0) };
    (values.iter().map(|&v| (v * inverse).round_ties_even().clamp(-127.0, 127.0) as i64).collect(), scale)
}

/// The int8 algorithm of `compute_type=int8` written out in f64: the weight quantised per
/// output channel, each input row per block of `ACTIVATION_GROUP` values (symmetric, ±127, ties
/// to even), integer dot products per block, scaled back.
fn ref_linear_int8(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, b: Option<&[f32]>) -> Vec<f64> {
    use scribe::backend::cpu::int8::ACTIVATION_GROUP;
    let ws: Vec<(Vec<i64>, f32)> = w.chunks_exact(k).map(quantize).collect();
    let mut out = vec![0.0f64; m * n];
    for (i, row) in x.chunks_exact(k).enumerate() {
        let blocks: Vec<(Vec<i64>, f32)> = row.chunks(ACTIVATION_GROUP).map(quantize).collect();
        for (j, (qw, sw)) in ws.iter().enumerate() {
            let mut s = 0.0f64;
            for (bi, (qx, sx)) in blocks.iter().enumerate() {
                let dot: i64 = qx.iter().zip(&qw[bi * ACTIVATION_GROUP..]).map(|(a, b)| a * b).sum();
                s += dot as f64 * *sx as f64;
            }
            out[i * n + j] = s * *sw as f64 + b.map_or(0.0, |b| b[j] as f64);
        }
    }
    out
}

#[test]
fn int8_weights() {
    // A weight quantised by `quantize_int8` computes CTranslate2's int8 algorithm exactly (the
    // GEMM path and the skinny decoder steps alike), stays close to the f32 product, and
    // downloads and embeds as its dequantised values. Where the backend has no int8 products
    // (no VNNI, or a SIMD level below AVX-512) the weight is returned unchanged.
    let mut exact = Stats::new("linear (int8 weight)");
    let mut vs_float = Stats::new("int8 vs f32 linear");
    let mut rng = Rng::new(43);
    let vnni = scribe::backend::cpu::int8::vnni_available();
    assert!(vnni || std::env::var_os("CI").is_none(), "CI's CPUs have AVX-512 VNNI; this one does not");
    for &(m, k, n) in &[
        (1, 1, 1),
        (5, 384, 517),
        (8, 33, 65),
        (9, 17, 300),
        (40, 64, 129),
        (64, 31, 70),
        (65, 16, 33),
        (3, 15, 7),
        (150, 384, 1536),
        (70, 1536, 40),
    ] {
        let x = rng.vec(m * k, 1.0);
        let w = rng.vec(n * k, 1.0 / (k as f32).sqrt());
        let b = rng.vec(n, 1.0);
        for (label, dev) in devices() {
            let (xt, bt) = (up(&dev, &x, &[m, k]), up(&dev, &b, &[n]));
            let wt = dev.quantize_int8(&up(&dev, &w, &[n, k])).unwrap();
            let quantized = vnni && label.ends_with("Avx512");
            assert_eq!(wt.dtype(), if quantized { "int8" } else { "float32" }, "{label}: dtype after quantize_int8");
            if !quantized {
                continue;
            }
            for bias in [false, true] {
                let got = down(&dev, &dev.linear(&xt, &wt, bias.then_some(&bt)).unwrap());
                let shape = format!("x [{m}, {k}] w int8 [{n}, {k}] bias {bias}");
                exact.check("linear", &label, &shape, &got, &ref_linear_int8(&x, m, k, &w, n, bias.then_some(&b[..])));
                // Quantisation error: |Δx| ≤ 1/254 of the row's range, |Δw| as much of the channel's.
                let float = ref_linear(&x, m, k, &w, n, bias.then_some(&b[..]));
                vs_float.check_tol("linear", &label, &shape, &got, &float, 0.03, 0.0);
            }
            // Download and embedding see the dequantised values, q · scale.
            let deq: Vec<f32> = w
                .chunks_exact(k)
                .flat_map(|row| {
                    let (q, scale) = quantize(row);
                    q.into_iter().map(move |v| v as f32 * scale)
                })
                .collect();
            assert_eq!(down(&dev, &wt), deq, "{label}: download of an int8 weight");
            let ids = [0u32, (n - 1) as u32, (n / 2) as u32];
            let want: Vec<f32> = ids.iter().flat_map(|&i| deq[i as usize * k..(i as usize + 1) * k].to_vec()).collect();
            assert_eq!(down(&dev, &dev.embedding(&ids, &wt).unwrap()), want, "{label}: embedding from an int8 table");
            expect_err("int8 weight in an activation", &label, || dev.activation(&wt, Activation::Relu));
            expect_err("int8 weight K mismatch", &label, || {
                dev.linear(&up(&dev, &vec![0.0; m * (k + 1)], &[m, k + 1]), &wt, None)
            });
        }
        for (label, dev) in devices() {
            expect_err("quantize_int8 of a rank-3 tensor", &label, || dev.quantize_int8(&up(&dev, &w, &[n, k, 1])));
        }
    }
    // Edge cases, on the best level: a weight with no inputs or no outputs, and values so small
    // that 127 / max overflows (they quantise to zeros instead of to ±127).
    let dev = Device::new(Arc::new(CpuBackend::with_simd(SimdLevel::detect())));
    let empty = dev.quantize_int8(&up(&dev, &[], &[3, 0])).unwrap();
    assert_eq!(down(&dev, &empty), Vec::<f32>::new());
    assert_eq!(down(&dev, &dev.embedding(&[2], &empty).unwrap()), Vec::<f32>::new());
    let none = dev.quantize_int8(&up(&dev, &[], &[0, 4])).unwrap();
    assert_eq!(dev.linear(&up(&dev, &[1.0; 8], &[2, 4]), &none, None).unwrap().shape(), &[2, 0]);
    let tiny = dev.quantize_int8(&up(&dev, &[1e-38, -2e-38, 0.5, 1.0], &[2, 2])).unwrap();
    assert_eq!(down(&dev, &tiny)[..2], [0.0, 0.0], "a channel below 127 / f32::MAX quantises to zeros");
    let y = down(&dev, &dev.linear(&up(&dev, &[1e-38, 1.0, 3.0, 4.0], &[2, 2]), &tiny, None).unwrap());
    assert!(y.iter().all(|v| v.is_finite()), "{y:?}");
    exact.report();
    vs_float.report();
}

#[test]
fn linear() {
    let mut st = Stats::new("linear");
    let mut rng = Rng::new(1);
    // (leading dims, K, N)
    let cases: &[(&[usize], usize, usize)] = &[
        (&[1], 1, 1),
        (&[3], 7, 17),
        (&[2, 5], 33, 65),
        (&[7, 3], 129, 33),
        (&[17, 1], 1, 9),
        (&[1], 65, 5187),
        (&[2, 1, 150], 64, 3),
        (&[1500], 17, 7),
        (&[0, 4], 5, 6),
        // batched decoder steps (chunks × beams): skinny passes of 8 rows, a ragged last one
        (&[7, 5], 384, 777),
        (&[8, 8], 65, 300),
        (&[65], 33, 40),
    ];
    for &(lead, k, n) in cases {
        let m = numel(lead);
        let mut xs = lead.to_vec();
        xs.push(k);
        let x = rng.vec(m * k, 1.0);
        let w = rng.vec(n * k, 1.0 / (k as f32).sqrt());
        let b = rng.vec(n, 1.0);
        for (label, dev) in devices() {
            let (xt, wt, bt) = (up(&dev, &x, &xs), up(&dev, &w, &[n, k]), up(&dev, &b, &[n]));
            for bias in [false, true] {
                let y = dev.linear(&xt, &wt, bias.then_some(&bt)).unwrap();
                let mut ys = lead.to_vec();
                ys.push(n);
                assert_eq!(y.shape(), &ys[..]);
                let want = ref_linear(&x, m, k, &w, n, bias.then_some(&b[..]));
                st.check("linear", &label, &format!("x {xs:?} w [{n}, {k}] bias {bias}"), &down(&dev, &y), &want);
            }
        }
    }
    for (label, dev) in devices() {
        let x = up(&dev, &[0.0; 12], &[3, 4]);
        let w = up(&dev, &[0.0; 20], &[5, 4]);
        expect_err("linear K mismatch", &label, || dev.linear(&x, &up(&dev, &[0.0; 15], &[5, 3]), None));
        expect_err("linear rank-3 weight", &label, || dev.linear(&x, &up(&dev, &[0.0; 20], &[1, 5, 4]), None));
        expect_err("linear rank-1 weight", &label, || dev.linear(&x, &up(&dev, &[0.0; 4], &[4]), None));
        expect_err("linear bias length", &label, || dev.linear(&x, &w, Some(&up(&dev, &[0.0; 4], &[4]))));
        expect_err("linear rank-0 input", &label, || {
            dev.linear(&up(&dev, &[1.0], &[]), &up(&dev, &[1.0; 5], &[5, 1]), None)
        });
    }
    st.report();
}

#[test]
fn matmul() {
    let mut st = Stats::new("matmul");
    let mut rng = Rng::new(2);
    // (B, M, K, N)
    let cases = [
        (1, 1, 1, 1),
        (2, 3, 7, 17),
        (3, 17, 33, 65),
        (1, 129, 65, 33),
        (4, 1, 64, 1500),
        (2, 65, 129, 7),
        (1, 33, 1, 17),
        (2, 0, 5, 3),
    ];
    for &(b, m, k, n) in &cases {
        let a = rng.vec(b * m * k, 1.0);
        let bm = rng.vec(b * k * n, 1.0 / (k as f32).sqrt());
        for (label, dev) in devices() {
            let at = up(&dev, &a, &[b, m, k]);
            for tb in [false, true] {
                // With transpose_b, the same values are read as [B, N, K].
                let bshape = if tb { [b, n, k] } else { [b, k, n] };
                let bt = up(&dev, &bm, &bshape);
                let y = dev.matmul(&at, &bt, tb).unwrap();
                assert_eq!(y.shape(), &[b, m, n]);
                let mut want = vec![0.0f64; b * m * n];
                for bi in 0..b {
                    for i in 0..m {
                        for j in 0..n {
                            let mut s = 0.0;
                            for p in 0..k {
                                let bv = if tb { bm[(bi * n + j) * k + p] } else { bm[(bi * k + p) * n + j] };
                                s += a[(bi * m + i) * k + p] as f64 * bv as f64;
                            }
                            want[(bi * m + i) * n + j] = s;
                        }
                    }
                }
                st.check(
                    "matmul",
                    &label,
                    &format!("[{b},{m},{k}]x[{k},{n}] transpose_b {tb}"),
                    &down(&dev, &y),
                    &want,
                );
            }
        }
    }
    for (label, dev) in devices() {
        let a = up(&dev, &[0.0; 24], &[2, 3, 4]);
        expect_err("matmul batch mismatch", &label, || dev.matmul(&a, &up(&dev, &[0.0; 12], &[1, 4, 3]), false));
        expect_err("matmul K mismatch", &label, || dev.matmul(&a, &up(&dev, &[0.0; 30], &[2, 5, 3]), false));
        expect_err("matmul K mismatch (transpose_b)", &label, || {
            dev.matmul(&a, &up(&dev, &[0.0; 24], &[2, 4, 3]), true)
        });
        expect_err("matmul rank-2", &label, || {
            dev.matmul(&up(&dev, &[0.0; 12], &[3, 4]), &up(&dev, &[0.0; 8], &[4, 2]), false)
        });
    }
    st.report();
}

#[allow(clippy::too_many_arguments)]
fn ref_conv1d(
    x: &[f32],
    b: usize,
    cin: usize,
    t: usize,
    w: &[f32],
    cout: usize,
    k: usize,
    bias: Option<&[f32]>,
    p: Conv1dParams,
) -> (usize, Vec<f64>) {
    let span = p.dilation * (k - 1) + 1;
    let t_out = if t + 2 * p.padding < span { 0 } else { (t + 2 * p.padding - span) / p.stride + 1 };
    let (cgi, cgo) = (cin / p.groups, cout / p.groups);
    let mut out = vec![0.0f64; b * cout * t_out];
    for bi in 0..b {
        for co in 0..cout {
            let g = co / cgo;
            for to in 0..t_out {
                let mut s = bias.map_or(0.0, |bb| bb[co] as f64);
                for ci in 0..cgi {
                    for kk in 0..k {
                        let ti = (to * p.stride + kk * p.dilation) as isize - p.padding as isize;
                        if ti >= 0 && (ti as usize) < t {
                            let xv = x[(bi * cin + g * cgi + ci) * t + ti as usize] as f64;
                            s += xv * w[(co * cgi + ci) * k + kk] as f64;
                        }
                    }
                }
                out[(bi * cout + co) * t_out + to] = s;
            }
        }
    }
    (t_out, out)
}

/// A convolution's weight `[C_out, …]` rounded to bf16 as a model does it: viewed as the matrix
/// `[C_out, C_in / groups · kernel]`, rounded, viewed back.
fn round_conv_weight(dev: &Device, w: &Tensor) -> Tensor {
    let shape = w.shape().to_vec();
    let rows = shape.first().copied().unwrap_or(0);
    let matrix = w.reshape(&[rows, w.numel() / rows.max(1)]).unwrap();
    dev.round_bfloat16(&matrix).unwrap().reshape(&shape).unwrap()
}

fn bf16_all(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| bf16(x)).collect()
}

#[test]
fn conv1d() {
    let mut st = Stats::new("conv1d");
    let mut st_bf16 = Stats::new("conv1d (bf16 weight)");
    let mut rng = Rng::new(3);
    // (name, B, C_in, C_out, T, K, stride, padding, dilation, groups)
    type Case = (&'static str, usize, usize, usize, usize, usize, usize, usize, usize, usize);
    let cases: &[Case] = &[
        ("1x1", 1, 1, 1, 1, 1, 1, 0, 1, 1),
        ("pointwise", 2, 7, 17, 33, 1, 1, 0, 1, 1),
        // kernel 1, stride 1, no padding: the input read in place (dilation is moot)
        ("pointwise g3", 2, 6, 9, 21, 1, 1, 0, 1, 3),
        ("pointwise d2", 1, 4, 5, 10, 1, 1, 0, 2, 1),
        ("pointwise s2 (im2col)", 2, 3, 4, 11, 1, 2, 0, 1, 1),
        ("k3 p1", 2, 3, 5, 17, 3, 1, 1, 1, 1),
        ("k5 s2 p2 g2", 1, 4, 6, 33, 5, 2, 2, 1, 2),
        ("k3 d2 p2 g3", 2, 6, 6, 65, 3, 1, 2, 2, 3),
        ("k3 d3 p0", 1, 5, 3, 40, 3, 1, 0, 3, 1),
        ("k4 s3 p4", 2, 3, 7, 29, 4, 3, 4, 1, 1),
        ("k7 p3 s1 big pad", 1, 2, 2, 5, 7, 1, 6, 1, 1),
        ("depthwise k3", 2, 8, 8, 33, 3, 1, 1, 1, 8),
        ("depthwise x2 k5", 1, 7, 14, 40, 5, 1, 2, 1, 7),
        ("ecapa k3 d2 p2", 1, 16, 16, 65, 3, 1, 2, 2, 1),
        ("ecapa k5 p2", 2, 17, 33, 129, 5, 1, 2, 1, 1),
        ("whisper stem conv1 k3 p1 s1", 1, 80, 24, 1501, 3, 1, 1, 1, 1),
        ("whisper stem conv2 k3 p1 s2", 1, 24, 24, 1501, 3, 2, 1, 1, 1),
        ("whisper stem conv2 even T", 2, 9, 12, 3000, 3, 2, 1, 1, 1),
        ("w2v2 conv0 k10 s5", 1, 1, 16, 4001, 10, 5, 0, 1, 1),
        // One input channel, stride 2 or more, no padding or dilation: AVX-512's polyphase
        // form on the direct tiles (the strided-view GEMM elsewhere): output channels and
        // frames that fill no whole tile, a stride past the kernel (phases of zero taps), a
        // kernel that is a whole number of strides, one output frame, a kernel of one tap.
        ("sincnet k251 s10", 3, 1, 80, 8003, 251, 10, 0, 1, 1),
        ("polyphase k251 s10, 83 filters", 2, 1, 83, 5003, 251, 10, 0, 1, 1),
        ("polyphase k3 s5", 2, 1, 9, 101, 3, 5, 0, 1, 1),
        ("polyphase k8 s4", 1, 1, 8, 50, 8, 4, 0, 1, 1),
        ("polyphase k7 s2, one frame", 1, 1, 5, 8, 7, 2, 0, 1, 1),
        ("polyphase k1 s3", 2, 1, 3, 20, 1, 3, 0, 1, 1),
        ("polyphase, no output channels", 1, 1, 0, 30, 5, 3, 0, 1, 1),
        // one input channel per group, no padding: the strided-view path (no im2col)
        ("depthwise x2 k3 s2 p0", 2, 4, 8, 31, 3, 2, 0, 1, 4),
        ("w2v2 conv1 k3 s2", 2, 16, 16, 799, 3, 2, 0, 1, 1),
        ("w2v2 conv6 k2 s2", 1, 16, 16, 99, 2, 2, 0, 1, 1),
        ("w2v2 pos conv k128 p64 g16", 1, 32, 32, 50, 128, 1, 64, 1, 16),
        ("w2v2 pos conv short T", 2, 48, 48, 7, 128, 1, 64, 1, 16),
        ("T < kernel, no pad", 1, 2, 3, 2, 3, 1, 0, 1, 1),
        ("no frames, padded", 1, 2, 3, 0, 1, 1, 1, 1, 1),
        ("empty batch", 0, 2, 3, 9, 3, 1, 1, 1, 1),
        // Stride 1, one group, kernel 2 to 7: AVX-512's direct path (a plane of height 1) with
        // a short last block of output channels; wider kernels keep im2col.
        ("sincnet conv2 k5, 60 channels", 2, 20, 60, 300, 5, 1, 0, 1, 1),
        ("tdnn k3 d4 p4, 20 channels", 1, 24, 20, 100, 3, 1, 4, 4, 1),
        ("k9 p4 (im2col)", 1, 3, 5, 40, 9, 1, 4, 1, 1),
        // One input channel a group, stride 1, no padding or dilation: a bf16 weight reads the
        // signal with overlapping rows (column t, row k is x[t + k]).
        ("sliding k5", 2, 1, 8, 40, 5, 1, 0, 1, 1),
        ("depthwise k3 p0", 1, 4, 8, 30, 3, 1, 0, 1, 4),
    ];
    for &(name, b, cin, cout, t, k, stride, padding, dilation, groups) in cases {
        let p = Conv1dParams { stride, padding, dilation, groups };
        let x = rng.vec(b * cin * t, 1.0);
        let fan_in = (cin / groups * k) as f32;
        let w = rng.vec(cout * (cin / groups) * k, 1.0 / fan_in.sqrt());
        let bias = rng.vec(cout, 0.5);
        for (label, dev) in devices() {
            let xt = up(&dev, &x, &[b, cin, t]);
            let wt = up(&dev, &w, &[cout, cin / groups, k]);
            let bt = up(&dev, &bias, &[cout]);
            for with_bias in [false, true] {
                let y = dev.conv1d(&xt, &wt, with_bias.then_some(&bt), p).unwrap();
                let (t_out, want) = ref_conv1d(&x, b, cin, t, &w, cout, k, with_bias.then_some(&bias[..]), p);
                assert_eq!(y.shape(), &[b, cout, t_out], "conv1d {name}");
                assert_eq!(t_out, p.out_len(t, k), "Conv1dParams::out_len {name}");
                let shape = format!("{name}: x [{b},{cin},{t}] w [{cout},{},{k}] {p:?} bias {with_bias}", cin / groups);
                st.check("conv1d", &label, &shape, &down(&dev, &y), &want);
            }
            // The weight in bf16 (where the backend has bf16 products): the products of the
            // rounded input and weight, summed in f32.
            let wb = round_conv_weight(&dev, &wt);
            // (A weight of no output channels packs no bf16 rows to check it against.)
            if wb.dtype() == "bfloat16" && cout > 0 {
                let (xr, wr) = (bf16_all(&x), bf16_all(&w));
                for with_bias in [false, true] {
                    let y = dev.conv1d(&xt, &wb, with_bias.then_some(&bt), p).unwrap();
                    let (_, want) = ref_conv1d(&xr, b, cin, t, &wr, cout, k, with_bias.then_some(&bias[..]), p);
                    let shape = format!("{name} bf16 weight: x [{b},{cin},{t}] {p:?} bias {with_bias}");
                    st_bf16.check("conv1d", &label, &shape, &down(&dev, &y), &want);
                }
            }
        }
    }
    assert!(!scribe::backend::cpu::bf16::bf16_available() || st_bf16.cases > 0, "no conv1d ran with a bf16 weight");
    st_bf16.report();
    for (label, dev) in devices() {
        let x = up(&dev, &[0.0; 2 * 6 * 9], &[2, 6, 9]);
        let w = |co: usize, ci: usize, k: usize| up(&dev, &vec![0.0; co * ci * k], &[co, ci, k]);
        let p = |stride, padding, dilation, groups| Conv1dParams { stride, padding, dilation, groups };
        expect_err("conv1d C_in not divisible by groups", &label, || dev.conv1d(&x, &w(4, 1, 3), None, p(1, 0, 1, 4)));
        expect_err("conv1d C_out not divisible by groups", &label, || dev.conv1d(&x, &w(4, 2, 3), None, p(1, 0, 1, 3)));
        expect_err("conv1d weight C_in/groups mismatch", &label, || dev.conv1d(&x, &w(4, 6, 3), None, p(1, 0, 1, 2)));
        expect_err("conv1d weight C_in mismatch", &label, || dev.conv1d(&x, &w(4, 5, 3), None, p(1, 0, 1, 1)));
        expect_err("conv1d groups 0", &label, || dev.conv1d(&x, &w(4, 6, 3), None, p(1, 0, 1, 0)));
        expect_err("conv1d stride 0", &label, || dev.conv1d(&x, &w(4, 6, 3), None, p(0, 0, 1, 1)));
        expect_err("conv1d dilation 0", &label, || dev.conv1d(&x, &w(4, 6, 3), None, p(1, 0, 0, 1)));
        expect_err("conv1d bias length", &label, || {
            dev.conv1d(&x, &w(4, 6, 3), Some(&up(&dev, &[0.0; 3], &[3])), p(1, 0, 1, 1))
        });
        expect_err("conv1d rank-2 input", &label, || {
            dev.conv1d(&up(&dev, &[0.0; 54], &[6, 9]), &w(4, 6, 3), None, p(1, 0, 1, 1))
        });
        expect_err("conv1d rank-2 weight", &label, || {
            dev.conv1d(&x, &up(&dev, &[0.0; 24], &[4, 6]), None, p(1, 0, 1, 1))
        });
        // A bf16 weight viewed with a shape its packed matrix does not have.
        let wb = round_conv_weight(&dev, &w(4, 6, 3));
        if wb.dtype() == "bfloat16" {
            expect_err("conv1d bf16 weight viewed as another kernel", &label, || {
                dev.conv1d(&x, &wb.reshape(&[2, 6, 6]).unwrap(), None, p(1, 0, 1, 1))
            });
            expect_err("conv1d bf16 weight mismatch, no frames", &label, || {
                dev.conv1d(&up(&dev, &[0.0; 12], &[2, 6, 1]), &wb.reshape(&[2, 6, 6]).unwrap(), None, p(1, 0, 1, 1))
            });
            expect_err("bf16 conv weight in an activation", &label, || dev.activation(&wb, Activation::Relu));
        }
    }
    st.report();
}

/// `nn.Conv2d` in f64, one output at a time.
#[allow(clippy::too_many_arguments)]
fn ref_conv2d(
    x: &[f32],
    [b, cin, h, w]: [usize; 4],
    wt: &[f32],
    [cout, kh, kw]: [usize; 3],
    bias: Option<&[f32]>,
    p: Conv2dParams,
) -> ((usize, usize), Vec<f64>) {
    let (ho, wo) = p.out_size((h, w), (kh, kw));
    let (cg_in, cg_out) = (cin / p.groups, cout / p.groups);
    let mut out = vec![0.0f64; b * cout * ho * wo];
    for bi in 0..b {
        for co in 0..cout {
            let g = co / cg_out;
            for oh in 0..ho {
                for ow in 0..wo {
                    let mut acc = bias.map_or(0.0, |bs| bs[co] as f64);
                    for ci in 0..cg_in {
                        for a in 0..kh {
                            for c in 0..kw {
                                let ih = (oh * p.stride.0 + a * p.dilation.0) as isize - p.padding.0 as isize;
                                let iw = (ow * p.stride.1 + c * p.dilation.1) as isize - p.padding.1 as isize;
                                if ih < 0 || iw < 0 || ih as usize >= h || iw as usize >= w {
                                    continue;
                                }
                                let xv = x[((bi * cin + g * cg_in + ci) * h + ih as usize) * w + iw as usize];
                                let wv = wt[((co * cg_in + ci) * kh + a) * kw + c];
                                acc += xv as f64 * wv as f64;
                            }
                        }
                    }
                    out[((bi * cout + co) * ho + oh) * wo + ow] = acc;
                }
            }
        }
    }
    ((ho, wo), out)
}

#[test]
fn conv2d() {
    let mut st = Stats::new("conv2d");
    let mut st_bf16 = Stats::new("conv2d (bf16 weight)");
    let mut rng = Rng::new(31);
    let p = |stride, padding, dilation, groups| Conv2dParams { stride, padding, dilation, groups };
    // (name, [B, C_in, H, W], C_out, (KH, KW), params)
    type Case = (&'static str, [usize; 4], usize, (usize, usize), Conv2dParams);
    let cases: &[Case] = &[
        ("1x1", [1, 1, 1, 1], 1, (1, 1), p((1, 1), (0, 0), (1, 1), 1)),
        ("resnet stem 3x3 p1", [2, 1, 20, 33], 8, (3, 3), p((1, 1), (1, 1), (1, 1), 1)),
        ("strided 3x3 s2 p1", [1, 8, 17, 26], 16, (3, 3), p((2, 2), (1, 1), (1, 1), 1)),
        ("1x1 shortcut s2", [2, 5, 9, 13], 7, (1, 1), p((2, 2), (0, 0), (1, 1), 1)),
        ("3x5 s(1,2) p(2,1) d(2,1) g4", [1, 8, 17, 11], 8, (3, 5), p((1, 2), (2, 1), (2, 1), 4)),
        ("depthwise", [2, 6, 7, 9], 6, (3, 3), p((1, 1), (1, 1), (1, 1), 6)),
        ("kernel larger than input", [1, 3, 2, 3], 4, (5, 5), p((1, 1), (0, 0), (1, 1), 1)),
        ("padding larger than kernel", [1, 2, 3, 3], 3, (2, 2), p((1, 1), (3, 2), (1, 1), 1)),
        ("asymmetric strides", [3, 5, 7, 33], 7, (2, 3), p((3, 1), (1, 0), (1, 2), 1)),
        ("empty batch", [0, 2, 4, 4], 3, (3, 3), p((1, 1), (1, 1), (1, 1), 1)),
        // The CPU cuts the output positions into im2col tiles (910 positions here, the last
        // partial, tiles crossing output lines); two samples, two groups.
        ("fcm-like, several tiles", [2, 16, 21, 131], 16, (3, 3), p((1, 1), (1, 1), (1, 1), 1)),
        ("several tiles, s(2,1), g2", [1, 32, 23, 97], 8, (3, 3), p((2, 1), (1, 1), (1, 1), 2)),
        // Stride 1 along time, one group: AVX-512's direct path (tiles of 8 channels × 48
        // frames; ragged last tiles, rows with no input).
        ("direct 3x3, two ragged time tiles", [2, 5, 7, 50], 16, (3, 3), p((1, 1), (1, 1), (1, 1), 1)),
        ("direct 5x3 s(2,1) p(2,1) d(2,1)", [1, 3, 11, 97], 8, (5, 3), p((2, 1), (2, 1), (2, 1), 1)),
        ("direct, one frame", [1, 2, 4, 1], 8, (3, 3), p((1, 1), (1, 1), (1, 1), 1)),
        ("direct, output rows with no input row", [1, 1, 2, 20], 8, (3, 3), p((1, 1), (3, 1), (1, 1), 1)),
        // Any width from 2 to 7 along time, any padding and dilation there, a short channel block.
        ("direct 3x5 p(1,2), 12 channels", [2, 3, 6, 70], 12, (3, 5), p((1, 1), (1, 2), (1, 1), 1)),
        ("direct 1x7 d(1,3) p(0,5), 3 channels", [1, 4, 2, 61], 3, (1, 7), p((1, 1), (0, 5), (1, 3), 1)),
        ("8 wide: im2col", [1, 2, 3, 30], 8, (1, 8), p((1, 1), (0, 0), (1, 1), 1)),
        // im2col lines copied whole along time (stride 1 there): padding and dilation at both
        // edges, lines wholly in the padding.
        ("im2col 3x8 s(2,1) p(1,3) d(1,2)", [2, 4, 9, 40], 6, (3, 8), p((2, 1), (1, 3), (1, 2), 1)),
        ("im2col 1x8 s(2,1) p(0,9) d(1,2), narrow", [1, 3, 5, 6], 4, (1, 8), p((2, 1), (0, 9), (1, 2), 1)),
        // Tiles that start in the middle of an output line (2048 and 910 columns against lines
        // of 207 and 300), with padding along time.
        ("1x1 s(2,1) p(0,2), tiles mid-line", [1, 64, 80, 203], 8, (1, 1), p((2, 1), (0, 2), (1, 1), 1)),
        ("1x9 p(0,4), tiles mid-line", [1, 16, 6, 300], 4, (1, 9), p((1, 1), (0, 4), (1, 1), 1)),
    ];
    for &(name, [b, cin, h, w], cout, (kh, kw), p) in cases {
        let x = rng.vec(b * cin * h * w, 1.0);
        let fan_in = (cin / p.groups * kh * kw) as f32;
        let wt = rng.vec(cout * cin / p.groups * kh * kw, 1.0 / fan_in.sqrt());
        let bias = rng.vec(cout, 0.5);
        for (label, dev) in devices() {
            let xt = up(&dev, &x, &[b, cin, h, w]);
            let wtt = up(&dev, &wt, &[cout, cin / p.groups, kh, kw]);
            let bt = up(&dev, &bias, &[cout]);
            for with_bias in [false, true] {
                let y = dev.conv2d(&xt, &wtt, with_bias.then_some(&bt), p).unwrap();
                let ((ho, wo), want) =
                    ref_conv2d(&x, [b, cin, h, w], &wt, [cout, kh, kw], with_bias.then_some(&bias[..]), p);
                assert_eq!(y.shape(), &[b, cout, ho, wo], "conv2d {name}");
                let shape = format!("{name}: x [{b},{cin},{h},{w}] k ({kh},{kw}) {p:?} bias {with_bias}");
                st.check("conv2d", &label, &shape, &down(&dev, &y), &want);
            }
            let wb = round_conv_weight(&dev, &wtt);
            if wb.dtype() == "bfloat16" {
                let (xr, wr) = (bf16_all(&x), bf16_all(&wt));
                for with_bias in [false, true] {
                    let y = dev.conv2d(&xt, &wb, with_bias.then_some(&bt), p).unwrap();
                    let (_, want) =
                        ref_conv2d(&xr, [b, cin, h, w], &wr, [cout, kh, kw], with_bias.then_some(&bias[..]), p);
                    let shape =
                        format!("{name} bf16 weight: x [{b},{cin},{h},{w}] k ({kh},{kw}) {p:?} bias {with_bias}");
                    st_bf16.check("conv2d", &label, &shape, &down(&dev, &y), &want);
                }
            }
        }
    }
    assert!(!scribe::backend::cpu::bf16::bf16_available() || st_bf16.cases > 0, "no conv2d ran with a bf16 weight");
    st_bf16.report();
    for (label, dev) in devices() {
        let x = up(&dev, &[0.0; 2 * 6 * 4 * 4], &[2, 6, 4, 4]);
        let w = |co: usize, ci: usize| up(&dev, &vec![0.0; co * ci * 9], &[co, ci, 3, 3]);
        expect_err("conv2d C_in not divisible by groups", &label, || {
            dev.conv2d(&x, &w(4, 1), None, p((1, 1), (0, 0), (1, 1), 4))
        });
        expect_err("conv2d weight C_in mismatch", &label, || {
            dev.conv2d(&x, &w(4, 5), None, p((1, 1), (0, 0), (1, 1), 1))
        });
        expect_err("conv2d stride 0", &label, || dev.conv2d(&x, &w(4, 6), None, p((0, 1), (0, 0), (1, 1), 1)));
        expect_err("conv2d dilation 0", &label, || dev.conv2d(&x, &w(4, 6), None, p((1, 1), (0, 0), (1, 0), 1)));
        expect_err("conv2d bias length", &label, || {
            dev.conv2d(&x, &w(4, 6), Some(&up(&dev, &[0.0; 3], &[3])), p((1, 1), (0, 0), (1, 1), 1))
        });
        expect_err("conv2d rank-3 input", &label, || {
            dev.conv2d(&up(&dev, &[0.0; 54], &[6, 3, 3]), &w(4, 6), None, p((1, 1), (0, 0), (1, 1), 1))
        });
        // A bf16 weight viewed with a kernel its packed matrix does not have: refused, even
        // when the output is empty.
        let wb = round_conv_weight(&dev, &w(4, 6));
        if wb.dtype() == "bfloat16" {
            let other = wb.reshape(&[2, 6, 3, 6]).unwrap();
            expect_err("conv2d bf16 weight viewed as another kernel", &label, || {
                dev.conv2d(&up(&dev, &[0.0; 2 * 6 * 4 * 8], &[2, 6, 4, 8]), &other, None, p((1, 1), (0, 0), (1, 1), 1))
            });
            expect_err("conv2d bf16 weight mismatch, empty batch", &label, || {
                dev.conv2d(&up(&dev, &[], &[0, 6, 4, 8]), &other, None, p((1, 1), (0, 0), (1, 1), 1))
            });
        }
    }
    st.report();
}

// ---- padding and pooling ---------------------------------------------------------------------

#[test]
fn pad() {
    let mut st = Stats::new("pad");
    let mut rng = Rng::new(37);
    // (shape, dim, before, after)
    let cases: &[(&[usize], usize, usize, usize)] = &[
        (&[5], 0, 2, 3),
        (&[2, 3, 7], 2, 3, 3),
        (&[2, 3, 7], 1, 2, 1),
        (&[4, 9], 0, 0, 3),
        (&[1, 2, 3, 4], 3, 1, 2),
        (&[3, 2, 1000], 2, 255, 257),
        (&[2, 1, 6], 2, 0, 0),
    ];
    for &(shape, dim, before, after) in cases {
        let x = rng.vec(numel(shape), 1.0);
        let len = shape[dim];
        let outer: usize = shape[..dim].iter().product();
        let inner: usize = shape[dim + 1..].iter().product();
        for padding in [Padding::Constant(0.25), Padding::Reflect] {
            if padding == Padding::Reflect && (before >= len || after >= len) {
                continue;
            }
            // The reference: each output position's source, by the definition.
            let mut want = Vec::new();
            for o in 0..outer {
                for j in -(before as isize)..(len + after) as isize {
                    for k in 0..inner {
                        let src = match padding {
                            Padding::Constant(_) if j < 0 || j >= len as isize => None,
                            Padding::Constant(_) => Some(j as usize),
                            // Mirror about the edge without repeating it: -1 -> 1, len -> len - 2.
                            Padding::Reflect if j < 0 => Some((-j) as usize),
                            Padding::Reflect if j >= len as isize => Some(2 * (len - 1) - j as usize),
                            Padding::Reflect => Some(j as usize),
                        };
                        want.push(src.map_or(0.25, |s| x[(o * len + s) * inner + k]));
                    }
                }
            }
            for (label, dev) in devices() {
                let y = dev.pad(&up(&dev, &x, shape), dim, before, after, padding).unwrap();
                let mut out_shape = shape.to_vec();
                out_shape[dim] += before + after;
                assert_eq!(y.shape(), &out_shape[..]);
                st.exact(
                    "pad",
                    &label,
                    &format!("{shape:?} dim {dim} ({before}, {after}) {padding:?}"),
                    &down(&dev, &y),
                    &want,
                );
            }
        }
    }
    for (label, dev) in devices() {
        let x = up(&dev, &[0.0; 12], &[3, 4]);
        expect_err("pad dim out of range", &label, || dev.pad(&x, 2, 1, 1, Padding::Constant(0.0)));
        expect_err("pad reflect as long as the dim", &label, || dev.pad(&x, 1, 4, 0, Padding::Reflect));
        expect_err("pad reflect after too long", &label, || dev.pad(&x, 0, 0, 3, Padding::Reflect));
    }
    st.report();
}

/// pyannote's `StatsPool` in f64: `[mean ‖ std]` per sample.
fn ref_stats_pool(x: &[f32], [b, c, t]: [usize; 3], w: Option<&[f32]>) -> Vec<f64> {
    let mut out = vec![0.0f64; b * 2 * c];
    for bi in 0..b {
        for ci in 0..c {
            let row: Vec<f64> = x[(bi * c + ci) * t..][..t].iter().map(|&v| v as f64).collect();
            let (mean, std) = match w {
                None => {
                    let mean = row.iter().sum::<f64>() / t as f64;
                    let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (t as f64 - 1.0);
                    (mean, var.sqrt())
                }
                Some(w) => {
                    let w: Vec<f64> = w[bi * t..][..t].iter().map(|&v| v as f64).collect();
                    let v1 = w.iter().sum::<f64>() + 1e-8;
                    let mean = row.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>() / v1;
                    let v2 = w.iter().map(|w| w * w).sum::<f64>();
                    let var =
                        row.iter().zip(&w).map(|(x, w)| (x - mean).powi(2) * w).sum::<f64>() / (v1 - v2 / v1 + 1e-8);
                    (mean, var.sqrt())
                }
            };
            out[bi * 2 * c + ci] = mean;
            out[bi * 2 * c + c + ci] = std;
        }
    }
    out
}

#[test]
fn stats_pool() {
    let mut st = Stats::new("stats_pool");
    let mut rng = Rng::new(41);
    for &[b, c, t] in &[[1, 1, 2], [2, 3, 5], [3, 16, 257], [1, 256, 1001], [2, 7, 64]] {
        let x = rng.vec(b * c * t, 2.0);
        // Soft weights, and a mask of zeros and ones (pyannote's per-speaker frames).
        let soft: Vec<f32> = rng.vec(b * t, 1.0).iter().map(|v| v.abs()).collect();
        let mask: Vec<f32> = (0..b * t).map(|i| if i % 3 == 1 { 0.0 } else { 1.0 }).collect();
        for (label, dev) in devices() {
            let xt = up(&dev, &x, &[b, c, t]);
            let y = dev.stats_pool(&xt, None).unwrap();
            assert_eq!(y.shape(), &[b, 2 * c]);
            st.check(
                "stats_pool",
                &label,
                &format!("[{b}, {c}, {t}]"),
                &down(&dev, &y),
                &ref_stats_pool(&x, [b, c, t], None),
            );
            for (name, w) in [("soft", &soft), ("mask", &mask)] {
                let y = dev.stats_pool(&xt, Some(&up(&dev, w, &[b, t]))).unwrap();
                let want = ref_stats_pool(&x, [b, c, t], Some(w));
                st.check("stats_pool", &label, &format!("[{b}, {c}, {t}] {name} weights"), &down(&dev, &y), &want);
            }
        }
    }
    for (label, dev) in devices() {
        let x = up(&dev, &[0.0; 24], &[2, 3, 4]);
        expect_err("stats_pool weights shape", &label, || dev.stats_pool(&x, Some(&up(&dev, &[1.0; 6], &[2, 3]))));
        expect_err("stats_pool rank-2", &label, || dev.stats_pool(&up(&dev, &[0.0; 6], &[2, 3]), None));
        expect_err("stats_pool no frames", &label, || dev.stats_pool(&up(&dev, &[], &[2, 3, 0]), None));
    }
    st.report();
}

// ---- normalisation ---------------------------------------------------------------------------

/// Normalise `xs` (one statistics group) in f64: returns (mean, 1/√(var + eps)).
fn stats64(xs: impl Iterator<Item = f32> + Clone, eps: f32) -> (f64, f64) {
    let n = xs.clone().count() as f64;
    let mean = xs.clone().map(|v| v as f64).sum::<f64>() / n;
    let var = xs.map(|v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, 1.0 / (var + eps as f64).sqrt())
}

#[test]
fn layer_norm() {
    let mut st = Stats::new("layer_norm");
    let mut rng = Rng::new(4);
    let shapes: &[&[usize]] =
        &[&[1, 1], &[7], &[3, 7], &[2, 17, 33], &[1500, 64], &[5, 384], &[2, 1, 1500], &[3, 65], &[2, 129], &[0, 8]];
    for &shape in shapes {
        let d = *shape.last().unwrap();
        let rows = numel(shape) / d;
        // An offset and a scale per tensor so mean removal and variance are both exercised.
        let x: Vec<f32> = rng.vec(numel(shape), 2.0).iter().map(|v| v + 3.0).collect();
        let g = rng.vec(d, 1.0);
        let be = rng.vec(d, 1.0);
        let eps = 1e-5;
        let mut want = vec![0.0f64; numel(shape)];
        for r in 0..rows {
            let row = &x[r * d..(r + 1) * d];
            let (mean, inv) = stats64(row.iter().copied(), eps);
            for j in 0..d {
                want[r * d + j] = (row[j] as f64 - mean) * inv * g[j] as f64 + be[j] as f64;
            }
        }
        for (label, dev) in devices() {
            let y = dev.layer_norm(&up(&dev, &x, shape), &up(&dev, &g, &[d]), &up(&dev, &be, &[d]), eps).unwrap();
            assert_eq!(y.shape(), shape);
            st.check("layer_norm", &label, &format!("{shape:?}"), &down(&dev, &y), &want);
        }
    }
    for (label, dev) in devices() {
        let x = up(&dev, &[0.0; 12], &[3, 4]);
        let (g4, g3) = (up(&dev, &[1.0; 4], &[4]), up(&dev, &[1.0; 3], &[3]));
        expect_err("layer_norm gamma length", &label, || dev.layer_norm(&x, &g3, &g4, 1e-5));
        expect_err("layer_norm beta length", &label, || dev.layer_norm(&x, &g4, &g3, 1e-5));
    }
    st.report();
}

/// GroupNorm reference on [B, C, T]; `affine` None means γ = 1, β = 0.
#[allow(clippy::too_many_arguments)]
fn ref_group_norm(
    x: &[f32],
    b: usize,
    c: usize,
    t: usize,
    groups: usize,
    g: Option<&[f32]>,
    be: Option<&[f32]>,
    eps: f32,
) -> Vec<f64> {
    let cg = c / groups;
    let mut out = vec![0.0f64; b * c * t];
    for bi in 0..b {
        for gi in 0..groups {
            let lo = (bi * c + gi * cg) * t;
            let hi = lo + cg * t;
            let (mean, inv) = stats64(x[lo..hi].iter().copied(), eps);
            for ch in gi * cg..(gi + 1) * cg {
                for ti in 0..t {
                    let i = (bi * c + ch) * t + ti;
                    out[i] =
                        (x[i] as f64 - mean) * inv * g.map_or(1.0, |g| g[ch] as f64) + be.map_or(0.0, |b| b[ch] as f64);
                }
            }
        }
    }
    out
}

#[test]
fn group_norm() {
    let mut st = Stats::new("group_norm");
    let mut rng = Rng::new(5);
    // (B, C, T, groups)
    let cases = [
        (1, 1, 1, 1),
        (1, 1, 7, 1),
        (2, 6, 17, 3),
        (1, 8, 33, 1),
        (2, 16, 65, 16),
        (1, 64, 129, 64),
        (3, 12, 5, 4),
        (1, 33, 1500, 33),
        (1, 4, 3, 2),
    ];
    for &(b, c, t, groups) in &cases {
        let x: Vec<f32> = rng.vec(b * c * t, 1.5).iter().map(|v| v - 0.7).collect();
        let g = rng.vec(c, 1.0);
        let be = rng.vec(c, 1.0);
        let want = ref_group_norm(&x, b, c, t, groups, Some(&g), Some(&be), 1e-5);
        for (label, dev) in devices() {
            let y = dev
                .group_norm(&up(&dev, &x, &[b, c, t]), groups, &up(&dev, &g, &[c]), &up(&dev, &be, &[c]), 1e-5)
                .unwrap();
            assert_eq!(y.shape(), &[b, c, t]);
            st.check("group_norm", &label, &format!("[{b},{c},{t}] groups {groups}"), &down(&dev, &y), &want);
        }
    }
    for (label, dev) in devices() {
        let x = up(&dev, &[0.0; 2 * 6 * 5], &[2, 6, 5]);
        let g6 = up(&dev, &[1.0; 6], &[6]);
        expect_err("group_norm C % groups", &label, || dev.group_norm(&x, 4, &g6, &g6, 1e-5));
        expect_err("group_norm groups 0", &label, || dev.group_norm(&x, 0, &g6, &g6, 1e-5));
        expect_err("group_norm gamma length", &label, || dev.group_norm(&x, 3, &up(&dev, &[1.0; 3], &[3]), &g6, 1e-5));
        expect_err("group_norm beta length", &label, || dev.group_norm(&x, 3, &g6, &up(&dev, &[1.0; 5], &[5]), 1e-5));
        expect_err("group_norm rank-2", &label, || dev.group_norm(&up(&dev, &[0.0; 30], &[6, 5]), 3, &g6, &g6, 1e-5));
    }
    st.report();
}

#[test]
fn instance_norm() {
    let mut st = Stats::new("instance_norm");
    let mut rng = Rng::new(6);
    let cases = [(1, 1, 1), (1, 1, 9), (2, 3, 17), (3, 7, 33), (1, 80, 301), (2, 5, 1500)];
    for &(b, c, t) in &cases {
        let x: Vec<f32> = rng.vec(b * c * t, 3.0).iter().map(|v| v + 1.0).collect();
        let g = rng.vec(c, 1.0);
        let be = rng.vec(c, 1.0);
        for affine in [false, true] {
            let (gr, br) = if affine { (Some(&g[..]), Some(&be[..])) } else { (None, None) };
            let want = ref_group_norm(&x, b, c, t, c, gr, br, 1e-5);
            for (label, dev) in devices() {
                let (gt, bt) = (up(&dev, &g, &[c]), up(&dev, &be, &[c]));
                let (go, bo) = if affine { (Some(&gt), Some(&bt)) } else { (None, None) };
                let y = dev.instance_norm(&up(&dev, &x, &[b, c, t]), go, bo, 1e-5).unwrap();
                assert_eq!(y.shape(), &[b, c, t]);
                st.check("instance_norm", &label, &format!("[{b},{c},{t}] affine {affine}"), &down(&dev, &y), &want);
            }
        }
    }
    // A channel whose mean is large against its spread (1000 ± 0.01): the centring keeps the
    // mean's f64 precision (an f32 mean alone is off by up to 3e-5, 3e-3 of the spread).
    let (b, c, t) = (1, 2, 999);
    let x: Vec<f32> = rng.vec(b * c * t, 0.02).iter().map(|v| v + 1000.0).collect();
    let want = ref_group_norm(&x, b, c, t, c, None, None, 1e-5);
    for (label, dev) in devices() {
        let y = dev.instance_norm(&up(&dev, &x, &[b, c, t]), None, None, 1e-5).unwrap();
        st.check_tol("instance_norm", &label, "[1,2,999] mean 1000, spread 0.01", &down(&dev, &y), &want, 1e-3, 0.0);
    }
    for (label, dev) in devices() {
        let x = up(&dev, &[0.0; 30], &[2, 3, 5]);
        expect_err("instance_norm gamma length", &label, || {
            dev.instance_norm(&x, Some(&up(&dev, &[1.0; 2], &[2])), None, 1e-5)
        });
        expect_err("instance_norm beta length", &label, || {
            dev.instance_norm(&x, None, Some(&up(&dev, &[1.0; 4], &[4])), 1e-5)
        });
        expect_err("instance_norm rank-2", &label, || {
            dev.instance_norm(&up(&dev, &[0.0; 6], &[2, 3]), None, None, 1e-5)
        });
    }
    st.report();
}

#[test]
fn batch_norm() {
    let mut st = Stats::new("batch_norm");
    let mut rng = Rng::new(7);
    // [B, C] and [B, C, T] (BatchNorm1d), [B, C, H, W] (BatchNorm2d).
    let shapes: &[&[usize]] = &[
        &[1, 1],
        &[1, 1, 1],
        &[3, 7],
        &[2, 17, 33],
        &[4, 65],
        &[1, 512, 129],
        &[2, 3, 1500],
        &[2, 5, 0],
        &[2, 3, 4, 5],
        &[1, 32, 20, 37],
        &[3, 1, 1, 1],
    ];
    for &shape in shapes {
        let (b, c) = (shape[0], shape[1]);
        let t: usize = shape[2..].iter().product();
        let x = rng.vec(numel(shape), 2.0);
        let mean = rng.vec(c, 0.5);
        let var: Vec<f32> = rng.vec(c, 1.0).iter().map(|v| v.abs() + 0.1).collect();
        let g = rng.vec(c, 1.0);
        let be = rng.vec(c, 1.0);
        let eps = 1e-5f32;
        let mut want = vec![0.0f64; numel(shape)];
        for bi in 0..b {
            for ch in 0..c {
                for ti in 0..t {
                    let i = (bi * c + ch) * t + ti;
                    want[i] = (x[i] as f64 - mean[ch] as f64) / (var[ch] as f64 + eps as f64).sqrt() * g[ch] as f64
                        + be[ch] as f64;
                }
            }
        }
        for (label, dev) in devices() {
            let p = |v: &[f32]| up(&dev, v, &[c]);
            let y = dev.batch_norm(&up(&dev, &x, shape), &p(&mean), &p(&var), &p(&g), &p(&be), eps).unwrap();
            assert_eq!(y.shape(), shape);
            st.check("batch_norm", &label, &format!("{shape:?}"), &down(&dev, &y), &want);
            // With the ReLU in the same pass: the reference clamped at 0.
            let y = dev.batch_norm_relu(&up(&dev, &x, shape), &p(&mean), &p(&var), &p(&g), &p(&be), eps).unwrap();
            assert_eq!(y.shape(), shape);
            let clamped: Vec<f64> = want.iter().map(|&v| v.max(0.0)).collect();
            st.check("batch_norm_relu", &label, &format!("{shape:?}"), &down(&dev, &y), &clamped);
        }
    }
    for (label, dev) in devices() {
        let x = up(&dev, &[0.0; 30], &[2, 3, 5]);
        let (p3, p2) = (up(&dev, &[1.0; 3], &[3]), up(&dev, &[1.0; 2], &[2]));
        expect_err("batch_norm mean length", &label, || dev.batch_norm(&x, &p2, &p3, &p3, &p3, 1e-5));
        expect_err("batch_norm var length", &label, || dev.batch_norm(&x, &p3, &p2, &p3, &p3, 1e-5));
        expect_err("batch_norm gamma length", &label, || dev.batch_norm(&x, &p3, &p3, &p2, &p3, 1e-5));
        expect_err("batch_norm beta length", &label, || dev.batch_norm(&x, &p3, &p3, &p3, &p2, 1e-5));
        expect_err("batch_norm rank-1", &label, || dev.batch_norm(&p3, &p3, &p3, &p3, &p3, 1e-5));
        expect_err("batch_norm rank-4 channels", &label, || {
            dev.batch_norm(&up(&dev, &[0.0; 30], &[1, 2, 3, 5]), &p3, &p3, &p3, &p3, 1e-5)
        });
        expect_err("batch_norm_relu mean length", &label, || dev.batch_norm_relu(&x, &p2, &p3, &p3, &p3, 1e-5));
    }
    st.report();
}

// ---- elementwise -----------------------------------------------------------------------------

#[test]
fn activation() {
    let acts = [
        ("gelu", Activation::Gelu),
        ("relu", Activation::Relu),
        ("leaky_relu(0.01)", Activation::LeakyRelu(0.01)),
        ("leaky_relu(0.2)", Activation::LeakyRelu(0.2)),
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
        ("exp", Activation::Exp),
        ("log(floor 1e-10)", Activation::Log { floor: 1e-10 }),
        ("log(floor 1e-5)", Activation::Log { floor: 1e-5 }),
        ("sqrt", Activation::Sqrt),
        ("abs", Activation::Abs),
    ];
    let reference = |act: Activation, v: f64| -> f64 {
        match act {
            Activation::Gelu => 0.5 * v * (1.0 + erf64(v / std::f64::consts::SQRT_2)),
            Activation::Relu => v.max(0.0),
            Activation::LeakyRelu(s) => {
                if v >= 0.0 {
                    v
                } else {
                    v * s as f64
                }
            }
            Activation::Sigmoid => sigmoid64(v),
            Activation::Tanh => v.tanh(),
            Activation::Exp => v.exp(),
            Activation::Log { floor } => v.max(floor as f64).ln(),
            Activation::Sqrt => v.sqrt(),
            Activation::Abs => v.abs(),
        }
    };
    let mut rng = Rng::new(8);
    let shapes: &[&[usize]] = &[&[1], &[7], &[17], &[33], &[65], &[3, 129], &[2, 3, 250], &[16385], &[4, 20000], &[0]];
    let specials = [
        0.0f32, -0.0, 1.0, -1.0, 1e-4, -1e-4, 3.0, -3.0, 5.5, -5.5, 9.0, -9.0, 20.0, -20.0, 80.0, -80.0, -100.0, 1e-12,
        1e-10,
    ];
    for (name, act) in acts {
        let mut st = Stats::new(format!("activation {name}"));
        for &shape in shapes {
            let n = numel(shape);
            let mut x = rng.vec(n, 6.0);
            for (xi, s) in x.iter_mut().zip(specials.iter().cycle().skip(rng.below(specials.len()))).step_by(7) {
                *xi = *s;
            }
            if matches!(act, Activation::Sqrt | Activation::Log { .. }) {
                // Mostly non-negative inputs; negatives give NaN (skipped) or the log floor.
                for v in x.iter_mut().skip(1).step_by(2) {
                    *v = v.abs();
                }
            }
            let want: Vec<f64> = x.iter().map(|&v| reference(act, v as f64)).collect();
            for (label, dev) in devices() {
                let y = dev.activation(&up(&dev, &x, shape), act).unwrap();
                assert_eq!(y.shape(), shape);
                st.check(name, &label, &format!("{shape:?}"), &down(&dev, &y), &want);
            }
        }
        st.report();
    }
}

/// NumPy-broadcast reference: `b` right-aligned against `a`.
fn ref_binary(a: &[f32], ash: &[usize], b: &[f32], bsh: &[usize], op: BinaryOp) -> Vec<f64> {
    let pad = ash.len() - bsh.len();
    let bfull: Vec<usize> = std::iter::repeat_n(1, pad).chain(bsh.iter().copied()).collect();
    let bst = strides(&bfull);
    (0..a.len())
        .map(|i| {
            let idx = unravel(i, ash);
            let bi: usize =
                idx.iter().zip(&bfull).zip(&bst).map(|((&ix, &d), &s)| if d == 1 { 0 } else { ix * s }).sum();
            let (x, y) = (a[i] as f64, b[bi] as f64);
            match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div => x / y,
            }
        })
        .collect()
}

#[test]
fn binary() {
    let mut st = Stats::new("binary");
    let mut rng = Rng::new(9);
    let cases: &[(&str, &[usize], &[usize])] = &[
        ("same shape", &[1], &[1]),
        ("same shape", &[3, 7, 17], &[3, 7, 17]),
        ("same shape", &[16385], &[16385]),
        ("same shape", &[2, 3, 4, 5], &[2, 3, 4, 5]),
        ("trailing bias", &[2, 5, 33], &[33]),
        ("trailing bias", &[1500, 65], &[65]),
        ("trailing block", &[2, 5, 33], &[5, 33]),
        ("trailing bias, leading 1s", &[2, 5, 33], &[1, 1, 33]),
        ("trailing block, leading 1", &[3, 7, 9], &[1, 7, 9]),
        ("middle [B,C,1]", &[2, 6, 17], &[2, 6, 1]),
        ("middle [B,C,1] big", &[3, 65, 1500], &[3, 65, 1]),
        ("middle [C,1]", &[2, 6, 17], &[6, 1]),
        ("middle [1,C,1]", &[2, 6, 17], &[1, 6, 1]),
        ("leading [B,1,T]", &[2, 6, 17], &[2, 1, 17]),
        ("per row: CAM++'s gate [B,C,S,1]", &[5, 32, 5, 100], &[5, 32, 5, 1]),
        ("per row, many tasks", &[3, 300, 100], &[3, 300, 1]),
        ("empty a and b", &[0, 5], &[0, 1]),
        ("per row shape, zero-sized trailing dims", &[2, 0, 3], &[2, 1, 1]),
        ("rank-4 mixed", &[2, 3, 4, 5], &[2, 1, 4, 1]),
        ("rank-4 mixed", &[2, 3, 4, 5], &[3, 1, 5]),
        ("scalar []", &[3, 7], &[]),
        ("scalar [1]", &[3, 7, 2], &[1]),
        ("scalar [1] over many tasks", &[3, 16385], &[1]),
        ("all-1 b of equal rank", &[3, 7], &[1, 1]),
        ("rank-0 both", &[], &[]),
        ("empty a", &[0, 5], &[5]),
    ];
    let ops = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div];
    for &(name, ash, bsh) in cases {
        let a = rng.vec(numel(ash), 2.0);
        // Divisors kept away from zero.
        let b: Vec<f32> = rng.vec(numel(bsh), 1.0).iter().map(|v| v.signum() * (0.25 + v.abs())).collect();
        for op in ops {
            let want = ref_binary(&a, ash, &b, bsh, op);
            for (label, dev) in devices() {
                let y = dev.binary(&up(&dev, &a, ash), &up(&dev, &b, bsh), op).unwrap();
                assert_eq!(y.shape(), ash);
                st.check("binary", &label, &format!("{name}: {ash:?} {op:?} {bsh:?}"), &down(&dev, &y), &want);
            }
        }
    }
    for (label, dev) in devices() {
        let a = up(&dev, &[0.0; 2 * 6 * 17], &[2, 6, 17]);
        let bad: &[&[usize]] = &[&[5], &[6], &[2, 3, 1], &[3, 1, 17], &[1, 2, 6, 17], &[2, 6, 16]];
        for &bsh in bad {
            let b = up(&dev, &vec![1.0; numel(bsh)], bsh);
            expect_err(&format!("binary [2,6,17] vs {bsh:?}"), &label, || dev.binary(&a, &b, BinaryOp::Add));
        }
    }
    st.report();
}

#[test]
fn scale() {
    let mut st = Stats::new("scale");
    let mut rng = Rng::new(10);
    let shapes: &[&[usize]] = &[&[], &[1], &[7], &[3, 17], &[2, 33, 65], &[16385]];
    for &shape in shapes {
        let x = rng.vec(numel(shape), 3.0);
        for s in [0.125f32, -3.0, 0.0, 1.0 / 8.0f32.sqrt()] {
            let want: Vec<f64> = x.iter().map(|&v| v as f64 * s as f64).collect();
            for (label, dev) in devices() {
                let y = dev.scale(&up(&dev, &x, shape), s).unwrap();
                assert_eq!(y.shape(), shape);
                st.check("scale", &label, &format!("{shape:?} · {s}"), &down(&dev, &y), &want);
            }
        }
    }
    st.report();
}

// ---- softmax, attention ----------------------------------------------------------------------

fn ref_softmax_row(x: &[f32], log: bool) -> Vec<f64> {
    let max = x.iter().map(|&v| v as f64).fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
    x.iter()
        .map(|&v| {
            let v = v as f64;
            if log {
                v - max - sum.ln()
            } else {
                (v - max).exp() / sum
            }
        })
        .collect()
}

#[test]
fn softmax_and_log_softmax() {
    let mut sts = [Stats::new("softmax"), Stats::new("log_softmax")];
    let mut rng = Rng::new(11);
    let shapes: &[&[usize]] =
        &[&[1], &[1, 1], &[3, 7], &[2, 17, 33], &[4, 1500], &[2, 65], &[3, 129], &[1, 51865], &[5, 0]];
    for &shape in shapes {
        for masked in [false, true] {
            let d = *shape.last().unwrap();
            let mut x = rng.vec(numel(shape), 8.0);
            if masked && d > 0 {
                // Some -inf entries; one row keeps a single finite value; one row is all -inf.
                for v in x.iter_mut() {
                    if rng.below(3) == 0 {
                        *v = f32::NEG_INFINITY;
                    }
                }
                for (r, row) in x.chunks_mut(d).enumerate().take(2) {
                    row.fill(f32::NEG_INFINITY);
                    if r == 0 {
                        row[d / 2] = 1.5;
                    }
                }
            }
            for (si, log) in [false, true].into_iter().enumerate() {
                let want: Vec<f64> =
                    if d == 0 { vec![] } else { x.chunks(d).flat_map(|r| ref_softmax_row(r, log)).collect() };
                for (label, dev) in devices() {
                    let xt = up(&dev, &x, shape);
                    let y = if log { dev.log_softmax(&xt) } else { dev.softmax(&xt) }.unwrap();
                    assert_eq!(y.shape(), shape);
                    let got = down(&dev, &y);
                    let op = if log { "log_softmax" } else { "softmax" };
                    sts[si].check(op, &label, &format!("{shape:?} masked {masked}"), &got, &want);
                    if !log && d > 0 {
                        // Every row with a finite entry sums to 1.
                        for (r, row) in got.chunks(d).enumerate() {
                            if x[r * d..(r + 1) * d].iter().any(|v| v.is_finite()) {
                                let s: f64 = row.iter().map(|&v| v as f64).sum();
                                assert!((s - 1.0).abs() < RTOL, "softmax [{label}] {shape:?} row {r} sums to {s}");
                            }
                        }
                    }
                }
            }
        }
    }
    for s in &sts {
        s.report();
    }
}

#[allow(clippy::too_many_arguments)]
fn ref_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    b: usize,
    tq: usize,
    tk: usize,
    heads: usize,
    dh: usize,
    causal: bool,
) -> Vec<f64> {
    ref_attention_rounding(q, k, v, b, tq, tk, heads, dh, causal, |p| p)
}

/// [`ref_attention`] with each probability passed through `round` before `·V`.
#[allow(clippy::too_many_arguments)]
fn ref_attention_rounding(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    b: usize,
    tq: usize,
    tk: usize,
    heads: usize,
    dh: usize,
    causal: bool,
    round: impl Fn(f64) -> f64,
) -> Vec<f64> {
    let d = heads * dh;
    let scale = 1.0 / (dh as f64).sqrt();
    let mut out = vec![0.0f64; b * tq * d];
    for bi in 0..b {
        for h in 0..heads {
            for i in 0..tq {
                let visible = if causal { i + (tk - tq) + 1 } else { tk };
                let scores: Vec<f64> = (0..visible)
                    .map(|j| {
                        (0..dh)
                            .map(|e| {
                                q[(bi * tq + i) * d + h * dh + e] as f64 * k[(bi * tk + j) * d + h * dh + e] as f64
                            })
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = w.iter().sum();
                let p: Vec<f64> = w.iter().map(|&w| round(w / sum)).collect();
                for e in 0..dh {
                    out[(bi * tq + i) * d + h * dh + e] =
                        (0..visible).map(|j| p[j] * v[(bi * tk + j) * d + h * dh + e] as f64).sum();
                }
            }
        }
    }
    out
}

#[test]
fn attention() {
    let mut st = Stats::new("attention");
    let mut rng = Rng::new(12);
    // (B, Tq, Tk, heads, Dh, causal)
    let cases = [
        (1, 1, 1, 1, 1, false),
        (1, 1, 1, 1, 1, true),
        (2, 7, 7, 2, 8, false),
        (2, 7, 7, 2, 8, true),
        (1, 17, 33, 3, 5, false),
        (2, 33, 17, 4, 4, false),
        (1, 1, 65, 6, 64, true),
        (1, 1, 65, 6, 64, false),
        (2, 7, 19, 2, 16, true),
        (1, 33, 33, 8, 8, true),
        (1, 3, 129, 12, 7, true),
        (2, 150, 150, 6, 64, false),
        (1, 1, 1500, 6, 64, false),
        (1, 1, 448, 20, 64, true),
    ];
    for &(b, tq, tk, heads, dh, causal) in &cases {
        let d = heads * dh;
        let q = rng.vec(b * tq * d, 2.0);
        let k = rng.vec(b * tk * d, 2.0);
        let v = rng.vec(b * tk * d, 1.0);
        let want = ref_attention(&q, &k, &v, b, tq, tk, heads, dh, causal);
        for (label, dev) in devices() {
            let y = dev
                .attention(
                    &up(&dev, &q, &[b, tq, d]),
                    &up(&dev, &k, &[b, tk, d]),
                    &up(&dev, &v, &[b, tk, d]),
                    heads,
                    causal,
                )
                .unwrap();
            assert_eq!(y.shape(), &[b, tq, d]);
            let shape = format!("B {b} Tq {tq} Tk {tk} heads {heads} Dh {dh} causal {causal}");
            st.check("attention", &label, &shape, &down(&dev, &y), &want);
        }
    }
    for (label, dev) in devices() {
        let t = |b: usize, t: usize, d: usize| up(&dev, &vec![0.0; b * t * d], &[b, t, d]);
        let q = t(2, 5, 12);
        expect_err("attention heads do not divide D", &label, || {
            dev.attention(&q, &t(2, 5, 12), &t(2, 5, 12), 5, false)
        });
        expect_err("attention heads 0", &label, || dev.attention(&q, &t(2, 5, 12), &t(2, 5, 12), 0, false));
        expect_err("attention k/v shape mismatch", &label, || dev.attention(&q, &t(2, 5, 12), &t(2, 6, 12), 3, false));
        expect_err("attention batch mismatch", &label, || dev.attention(&q, &t(3, 5, 12), &t(3, 5, 12), 3, false));
        expect_err("attention D mismatch", &label, || dev.attention(&q, &t(2, 5, 6), &t(2, 5, 6), 3, false));
        expect_err("attention causal Tq > Tk", &label, || dev.attention(&q, &t(2, 4, 12), &t(2, 4, 12), 3, true));
        expect_err("attention rank-2 q", &label, || {
            dev.attention(&up(&dev, &[0.0; 60], &[5, 12]), &t(2, 5, 12), &t(2, 5, 12), 3, false)
        });
    }
    st.report();
}

/// Keys and values kept in half precision (`to_float16`, a decoder's cross-attention): each
/// schedule gives exactly what it gives over the same values widened back to f32 — the skinny
/// one (decoder steps: tiled keys, plain keys, heads not a multiple of 64 wide, key lengths)
/// widens as it reads, the blocked and bf16 ones widen first — and that is attention over the
/// f16-rounded values. f16 keys take the skinny schedule up to 64 query rows a head, f32 ones
/// up to 8: between the two, the results agree with the reference, not bit for bit. The casts round to nearest even, as `half` does, and
/// widen exactly; an f16 tensor survives `index_select`; mixed or misplaced precisions are errors.
#[test]
fn attention_over_half_precision_keys_and_values() {
    let mut st = Stats::new("attention f16 k/v");
    let mut rng = Rng::new(31);
    // (B, B_kv, Tq, Tk, heads, Dh, causal): query rows share key/value rows in groups of B / B_kv.
    let cases = [
        (15, 3, 1, 1500, 6, 64, false),
        (10, 2, 1, 301, 6, 64, false),
        (8, 1, 1, 257, 2, 64, false),
        (7, 1, 1, 300, 3, 64, false),
        (5, 1, 1, 40, 6, 64, true),
        (10, 2, 3, 1500, 6, 64, false),
        (4, 2, 1, 299, 2, 24, false),
        (2, 2, 150, 150, 6, 64, false),
        (1, 1, 33, 65, 3, 40, true),
        (13, 1, 5, 80, 2, 64, false),
    ];
    for &(b, bk, tq, tk, heads, dh, causal) in &cases {
        let d = heads * dh;
        let q = rng.vec(b * tq * d, 2.0);
        let k = rng.vec(bk * tk * d, 2.0);
        let v = rng.vec(bk * tk * d, 1.0);
        let rounded = |x: &[f32]| x.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect::<Vec<f32>>();
        let (k16, v16) = (rounded(&k), rounded(&v));
        let shape = format!("B {b} B_kv {bk} Tq {tq} Tk {tk} heads {heads} Dh {dh} causal {causal}");
        // The reference over the rounded values, each query row against its group's keys.
        let group = b / bk;
        let want: Vec<f64> = (0..b)
            .flat_map(|bi| {
                let kb = bi / group;
                let rows = |x: &[f32]| x[kb * tk * d..][..tk * d].to_vec();
                ref_attention(&q[bi * tq * d..][..tq * d], &rows(&k16), &rows(&v16), 1, tq, tk, heads, dh, causal)
            })
            .collect();
        for (label, dev) in devices() {
            let qt = up(&dev, &q, &[b, tq, d]);
            let (kt, vt) = (up(&dev, &k, &[bk, tk, d]), up(&dev, &v, &[bk, tk, d]));
            let (kh, vh) = (dev.to_float16(&kt).unwrap(), dev.to_float16(&vt).unwrap());
            assert_eq!((kh.dtype(), kh.shape()), ("float16", &[bk, tk, d][..]), "{label}");
            let (kw, vw) = (dev.to_float32(&kh).unwrap(), dev.to_float32(&vh).unwrap());
            assert_eq!(kw.dtype(), "float32");
            st.exact("to_float16 then to_float32", &label, &shape, &down(&dev, &kw), &k16);
            st.exact("download of float16", &label, &shape, &down(&dev, &vh), &v16);
            // Query rows a key/value head: both precisions take the same schedule at most 8 and
            // past 64.
            let same_schedule = group * tq <= 8 || group * tq > 64;
            let y = dev.attention(&qt, &kh, &vh, heads, causal).unwrap();
            let widened = dev.attention(&qt, &kw, &vw, heads, causal).unwrap();
            if same_schedule {
                st.exact("attention f16 k/v", &label, &shape, &down(&dev, &y), &down(&dev, &widened));
            }
            st.check("attention f16 k/v", &label, &shape, &down(&dev, &y), &want);
            if same_schedule {
                let y = dev.attention_bf16(&qt, &kh, &vh, heads, causal).unwrap();
                let widened = dev.attention_bf16(&qt, &kw, &vw, heads, causal).unwrap();
                st.exact("attention_bf16 f16 k/v", &label, &shape, &down(&dev, &y), &down(&dev, &widened));
            }
            if !causal {
                let lens: Vec<usize> = (0..bk).map(|i| tk - i % tk.min(3)).collect();
                let y = dev.attention_kv_lens(&qt, &kh, &vh, heads, &lens).unwrap();
                let widened = dev.attention_kv_lens(&qt, &kw, &vw, heads, &lens).unwrap();
                if same_schedule {
                    st.exact("attention_kv_lens f16 k/v", &label, &shape, &down(&dev, &y), &down(&dev, &widened));
                }
                let want = ref_attention_kv_lens(&q, &k16, &v16, b, &lens, tq, tk, heads, dh);
                st.check("attention_kv_lens f16 k/v", &label, &shape, &down(&dev, &y), &want);
            }
            // Rows of an f16 tensor stay f16 (a batch whose windows finish at different steps).
            let picked: Vec<usize> = (0..bk).rev().collect();
            let sel = dev.index_select(&kh, &picked).unwrap();
            assert_eq!(sel.dtype(), "float16", "{label}");
            st.exact(
                "index_select f16",
                &label,
                &shape,
                &down(&dev, &sel),
                &down(&dev, &dev.index_select(&kw, &picked).unwrap()),
            );
        }
    }
    for (label, dev) in devices() {
        let t = |b: usize, t: usize, d: usize| up(&dev, &vec![0.5; b * t * d], &[b, t, d]);
        let (q, k) = (t(2, 1, 12), t(2, 5, 12));
        let kh = dev.to_float16(&k).unwrap();
        expect_err("attention f16 k, f32 v", &label, || dev.attention(&q, &kh, &k, 3, false));
        expect_err("attention f32 k, f16 v", &label, || dev.attention(&q, &k, &kh, 3, false));
        expect_err("attention f16 q", &label, || dev.attention(&dev.to_float16(&q).unwrap(), &kh, &kh, 3, false));
        expect_err("to_float16 of float16", &label, || dev.to_float16(&kh));
        expect_err("to_float32 of float32", &label, || dev.to_float32(&k));
    }
    // Rounding: to nearest even, overflow to infinity, subnormals kept.
    let edge = [1.0 + 1.0 / 2048.0, 1.0 + 3.0 / 2048.0, 65520.0, -70000.0, 3.0e-6, -0.0, 1.0e-9];
    for (label, dev) in devices() {
        let h = dev.to_float16(&up(&dev, &edge, &[edge.len()])).unwrap();
        let want: Vec<f32> = edge.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect();
        st.exact("to_float16 rounding", &label, "edge values", &down(&dev, &h), &want);
    }
    st.report();
}

/// [`ref_attention`] as `attention_bf16` computes it: `q`, `k` and `v` rounded to bf16, the
/// scores and the softmax exact, each probability rounded to bf16 before `·V`.
#[allow(clippy::too_many_arguments)]
fn ref_attention_bf16(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    b: usize,
    tq: usize,
    tk: usize,
    heads: usize,
    dh: usize,
    causal: bool,
) -> Vec<f64> {
    let round = |x: &[f32]| x.iter().map(|&v| bf16(v)).collect::<Vec<f32>>();
    let p = |p: f64| bf16(p as f32) as f64;
    ref_attention_rounding(&round(q), &round(k), &round(v), b, tq, tk, heads, dh, causal, p)
}

#[test]
fn attention_bf16() {
    // `attention_bf16`: where the CPU has AVX-512 BF16 and many query rows share their keys (the
    // blocked schedule: an encoder), both products on bf16 operands with f32 sums; elsewhere
    // (few query rows, or no bf16 products) `attention` itself, value for value.
    let bf16_cpu = scribe::backend::cpu::bf16::bf16_available();
    assert!(bf16_cpu || std::env::var_os("CI").is_none(), "CI's CPUs have AVX-512 BF16; this one does not");
    let mut exact = Stats::new("attention_bf16");
    let mut vs_float = Stats::new("attention_bf16 vs f32");
    let mut rng = Rng::new(71);
    // (B, Tq, Tk, heads, Dh, causal): query blocks of 64 whole and cut, odd key counts (the
    // last pair of P half padding), odd head widths, more keys than one panel of 48.
    let cases = [
        (1, 64, 64, 1, 8, false),
        (2, 65, 65, 2, 8, false),
        (1, 150, 77, 3, 5, false),
        (2, 100, 100, 6, 64, true),
        (1, 130, 1500, 6, 64, false),
        (3, 200, 49, 4, 7, false),
        (1, 1, 33, 2, 8, false),
        (2, 3, 17, 2, 4, true),
    ];
    for &(b, tq, tk, heads, dh, causal) in &cases {
        let d = heads * dh;
        let q = rng.vec(b * tq * d, 2.0);
        let k = rng.vec(b * tk * d, 2.0);
        let v = rng.vec(b * tk * d, 1.0);
        let want = ref_attention_bf16(&q, &k, &v, b, tq, tk, heads, dh, causal);
        let float = ref_attention(&q, &k, &v, b, tq, tk, heads, dh, causal);
        for (label, dev) in devices() {
            let (qt, kt, vt) = (up(&dev, &q, &[b, tq, d]), up(&dev, &k, &[b, tk, d]), up(&dev, &v, &[b, tk, d]));
            let got = down(&dev, &dev.attention_bf16(&qt, &kt, &vt, heads, causal).unwrap());
            let shape = format!("B {b} Tq {tq} Tk {tk} heads {heads} Dh {dh} causal {causal}");
            // The blocked schedule: more query rows per key head than the skinny one takes (8).
            let blocked = tq > 8;
            if bf16_cpu && label.ends_with("Avx512") && blocked {
                // The f32 sums and softmax against f64 (measured 3.1e-5), and a probability on
                // either side of a bf16 rounding step.
                exact.check_tol("attention_bf16", &label, &shape, &got, &want, 2e-4, 0.0);
                vs_float.check_tol("attention_bf16", &label, &shape, &got, &float, 0.05, 0.0);
                assert_ne!(got, down(&dev, &dev.attention(&qt, &kt, &vt, heads, causal).unwrap()), "{label} {shape}");
            } else {
                let f32_op = down(&dev, &dev.attention(&qt, &kt, &vt, heads, causal).unwrap());
                assert_eq!(got, f32_op, "{label} {shape}: attention_bf16 should be attention here");
            }
        }
    }
    // Query batches sharing key/value batches (each key/value head packed once for its group).
    for &(b, bk, tq, tk, heads, dh) in &[(4, 2, 65, 40, 2, 8), (3, 1, 70, 33, 3, 5)] {
        let d = heads * dh;
        let q = rng.vec(b * tq * d, 2.0);
        let k = rng.vec(bk * tk * d, 2.0);
        let v = rng.vec(bk * tk * d, 1.0);
        let group = b / bk;
        let expand = |x: &[f32]| -> Vec<f32> {
            (0..b).flat_map(|i| x[i / group * tk * d..(i / group + 1) * tk * d].to_vec()).collect()
        };
        let want = ref_attention_bf16(&q, &expand(&k), &expand(&v), b, tq, tk, heads, dh, false);
        for (label, dev) in devices() {
            if !(bf16_cpu && label.ends_with("Avx512")) {
                continue;
            }
            let (qt, kt, vt) = (up(&dev, &q, &[b, tq, d]), up(&dev, &k, &[bk, tk, d]), up(&dev, &v, &[bk, tk, d]));
            let got = down(&dev, &dev.attention_bf16(&qt, &kt, &vt, heads, false).unwrap());
            let shape = format!("B {b} (k/v {bk}) Tq {tq} Tk {tk} heads {heads} Dh {dh}");
            exact.check_tol("attention_bf16", &label, &shape, &got, &want, 2e-4, 0.0);
        }
    }
    // With key lengths (`attention_kv_lens_bf16`: padded sequences through an encoder in bf16):
    // each query row over its sequence's keys alone, the padding (NaN) never read; elsewhere
    // `attention_kv_lens` itself, value for value.
    let kv_cases: [KvLensCase; 3] =
        [(2, &[40, 65], 65, 65, 2, 8), (3, &[70, 1, 33], 70, 70, 3, 5), (2, &[1500, 977], 130, 1500, 6, 64)];
    for &(b, lens, tq, tk, heads, dh) in &kv_cases {
        let d = heads * dh;
        let q = rng.vec(b * tq * d, 2.0);
        let (mut k, mut v) = (rng.vec(b * tk * d, 2.0), rng.vec(b * tk * d, 1.0));
        for (bi, &n) in lens.iter().enumerate() {
            k[(bi * tk + n) * d..(bi + 1) * tk * d].fill(f32::NAN);
            v[(bi * tk + n) * d..(bi + 1) * tk * d].fill(f32::NAN);
        }
        let want: Vec<f64> = (0..b)
            .flat_map(|bi| {
                let rows = |x: &[f32]| x[bi * tk * d..][..lens[bi] * d].to_vec();
                ref_attention_bf16(&q[bi * tq * d..][..tq * d], &rows(&k), &rows(&v), 1, tq, lens[bi], heads, dh, false)
            })
            .collect();
        for (label, dev) in devices() {
            let (qt, kt, vt) = (up(&dev, &q, &[b, tq, d]), up(&dev, &k, &[b, tk, d]), up(&dev, &v, &[b, tk, d]));
            let got = down(&dev, &dev.attention_kv_lens_bf16(&qt, &kt, &vt, heads, lens).unwrap());
            let shape = format!("B {b} lengths {lens:?} Tq {tq} Tk {tk} heads {heads} Dh {dh}");
            if bf16_cpu && label.ends_with("Avx512") {
                exact.check_tol("attention_kv_lens_bf16", &label, &shape, &got, &want, 2e-4, 0.0);
            } else {
                let f32_op = down(&dev, &dev.attention_kv_lens(&qt, &kt, &vt, heads, lens).unwrap());
                assert_eq!(got, f32_op, "{label} {shape}: attention_kv_lens_bf16 should be attention_kv_lens here");
            }
        }
    }
    for (label, dev) in devices() {
        let t = |b: usize, t: usize, d: usize| up(&dev, &vec![0.0; b * t * d], &[b, t, d]);
        let q = t(2, 5, 12);
        expect_err("attention_bf16 heads do not divide D", &label, || {
            dev.attention_bf16(&q, &t(2, 5, 12), &t(2, 5, 12), 5, false)
        });
        expect_err("attention_bf16 causal Tq > Tk", &label, || {
            dev.attention_bf16(&q, &t(2, 4, 12), &t(2, 4, 12), 3, true)
        });
        expect_err("attention_kv_lens_bf16 length past Tk", &label, || {
            dev.attention_kv_lens_bf16(&q, &t(2, 5, 12), &t(2, 5, 12), 3, &[5, 6])
        });
    }
    exact.report();
    vs_float.report();
}

/// Query batch `bi` over the first `lens[bi / group]` keys of its key/value row, each row
/// computed by [`ref_attention`] on the unpadded sequence.
#[allow(clippy::too_many_arguments)]
fn ref_attention_kv_lens(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    b: usize,
    lens: &[usize],
    tq: usize,
    tk: usize,
    heads: usize,
    dh: usize,
) -> Vec<f64> {
    let d = heads * dh;
    let group = b / lens.len();
    (0..b)
        .flat_map(|bi| {
            let (kb, n) = (bi / group, lens[bi / group]);
            let rows = |x: &[f32]| x[kb * tk * d..][..n * d].to_vec();
            ref_attention(&q[bi * tq * d..][..tq * d], &rows(k), &rows(v), 1, tq, n, heads, dh, false)
        })
        .collect()
}

/// (B, lengths per key/value row, Tq, Tk, heads, Dh).
type KvLensCase = (usize, &'static [usize], usize, usize, usize, usize);

#[test]
fn attention_with_key_lengths() {
    // A padded batch of sequences of different lengths: each key/value row's keys past its length
    // are padding no query may see. They hold NaN here, so a kernel that scores them and masks
    // afterwards (NaN · 0) fails, as one that lets them into the softmax does.
    let mut st = Stats::new("attention_kv_lens");
    let mut rng = Rng::new(41);
    // (B, lengths per key/value row, Tq, Tk, heads, Dh). ≤ 8 query rows per key/value head take
    // the skinny schedule (≥ 256 keys: where full-length attention uses cached key tiles), more
    // the blocked one (64-row blocks); lengths and sizes off 8/16/32/64.
    let cases: &[KvLensCase] = &[
        (1, &[1], 1, 1, 1, 1),
        (2, &[7, 3], 3, 7, 2, 8),
        (4, &[9, 3], 1, 9, 2, 8),
        (4, &[300, 257], 1, 300, 2, 64),
        (3, &[45, 7, 1], 45, 45, 2, 64),
        (2, &[33, 32], 33, 33, 12, 64),
        (4, &[100, 65, 31, 97], 100, 100, 4, 16),
        (2, &[17, 64], 70, 64, 3, 20),
        (2, &[150, 149], 150, 150, 6, 64),
        (2, &[130, 1], 130, 130, 1, 5),
        (6, &[20, 11], 9, 20, 2, 16),
    ];
    for &(b, lens, tq, tk, heads, dh) in cases {
        let d = heads * dh;
        let bk = lens.len();
        let q = rng.vec(b * tq * d, 2.0);
        let mut k = rng.vec(bk * tk * d, 2.0);
        let mut v = rng.vec(bk * tk * d, 1.0);
        for (kb, &n) in lens.iter().enumerate() {
            k[(kb * tk + n) * d..(kb + 1) * tk * d].fill(f32::NAN);
            v[(kb * tk + n) * d..(kb + 1) * tk * d].fill(f32::NAN);
        }
        let want = ref_attention_kv_lens(&q, &k, &v, b, lens, tq, tk, heads, dh);
        for (label, dev) in devices() {
            let (qt, kt, vt) = (up(&dev, &q, &[b, tq, d]), up(&dev, &k, &[bk, tk, d]), up(&dev, &v, &[bk, tk, d]));
            let y = dev.attention_kv_lens(&qt, &kt, &vt, heads, lens).unwrap();
            assert_eq!(y.shape(), &[b, tq, d]);
            let shape = format!("B {b} lengths {lens:?} Tq {tq} Tk {tk} heads {heads} Dh {dh}");
            st.check("attention_kv_lens", &label, &shape, &down(&dev, &y), &want);
        }
    }
    for (label, dev) in devices() {
        let t = |b: usize, t: usize, d: usize| up(&dev, &vec![0.0; b * t * d], &[b, t, d]);
        let q = t(2, 5, 12);
        let (k, v) = (t(2, 5, 12), t(2, 5, 12));
        expect_err("attention_kv_lens one length for two rows", &label, || dev.attention_kv_lens(&q, &k, &v, 3, &[5]));
        expect_err("attention_kv_lens length 0", &label, || dev.attention_kv_lens(&q, &k, &v, 3, &[5, 0]));
        expect_err("attention_kv_lens length over Tk", &label, || dev.attention_kv_lens(&q, &k, &v, 3, &[6, 5]));
        expect_err("attention_kv_lens heads do not divide D", &label, || dev.attention_kv_lens(&q, &k, &v, 5, &[5, 5]));
        expect_err("attention_kv_lens batch mismatch", &label, || {
            dev.attention_kv_lens(&q, &t(3, 5, 12), &t(3, 5, 12), 3, &[5, 5, 5])
        });
    }
    st.report();
}

#[test]
fn attention_with_key_lengths_equals_each_sequence_alone() {
    // What a padded batch is for: each row's valid query rows are those of its sequence run
    // alone (the scores of a row span its own keys only, in the same 64-row query blocks; only a
    // block's row count may differ, 129 = 2·64 + 1 rows alone, which a GEMM may sum in another
    // order: f32 rounding).
    let mut rng = Rng::new(43);
    let (heads, dh) = (4, 16);
    let d = heads * dh;
    let lens = [150usize, 37, 129, 64];
    let longest = 150;
    let seqs: Vec<[Vec<f32>; 3]> =
        lens.iter().map(|&n| [rng.vec(n * d, 2.0), rng.vec(n * d, 2.0), rng.vec(n * d, 1.0)]).collect();
    let padded = |which: usize| -> Vec<f32> {
        seqs.iter()
            .zip(&lens)
            .flat_map(|(s, &n)| s[which].iter().copied().chain(std::iter::repeat_n(0.0, (longest - n) * d)))
            .collect()
    };
    let b = lens.len();
    for (label, dev) in devices() {
        let batch = |x: &[f32]| up(&dev, x, &[b, longest, d]);
        let y =
            dev.attention_kv_lens(&batch(&padded(0)), &batch(&padded(1)), &batch(&padded(2)), heads, &lens).unwrap();
        let y = down(&dev, &y);
        for (i, (s, &n)) in seqs.iter().zip(&lens).enumerate() {
            let one = |x: &[f32]| up(&dev, x, &[1, n, d]);
            let alone = down(&dev, &dev.attention(&one(&s[0]), &one(&s[1]), &one(&s[2]), heads, false).unwrap());
            let batched = &y[i * longest * d..][..n * d];
            let worst = batched.iter().zip(&alone).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst <= 1e-6, "[{label}] sequence {i} of {n} frames: batched vs alone max |Δ| {worst:e}");
        }
    }
}

// ---- recurrent -------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn ref_lstm(
    x: &[f32],
    b: usize,
    t: usize,
    inp: usize,
    hs: usize,
    w_ih: &[f32],
    w_hh: &[f32],
    b_ih: &[f32],
    b_hh: &[f32],
    reverse: bool,
) -> Vec<f64> {
    let mut out = vec![0.0f64; b * t * hs];
    for bi in 0..b {
        let mut h = vec![0.0f64; hs];
        let mut c = vec![0.0f64; hs];
        for step in 0..t {
            let ti = if reverse { t - 1 - step } else { step };
            let xt = &x[(bi * t + ti) * inp..][..inp];
            let gate = |r: usize, h: &[f64]| -> f64 {
                let mut s = b_ih[r] as f64 + b_hh[r] as f64;
                for p in 0..inp {
                    s += w_ih[r * inp + p] as f64 * xt[p] as f64;
                }
                for p in 0..hs {
                    s += w_hh[r * hs + p] as f64 * h[p];
                }
                s
            };
            let pre: Vec<f64> = (0..4 * hs).map(|r| gate(r, &h)).collect();
            for j in 0..hs {
                let (i, f, g, o) =
                    (sigmoid64(pre[j]), sigmoid64(pre[hs + j]), pre[2 * hs + j].tanh(), sigmoid64(pre[3 * hs + j]));
                c[j] = f * c[j] + i * g;
                h[j] = o * c[j].tanh();
                out[(bi * t + ti) * hs + j] = h[j];
            }
        }
    }
    out
}

/// Rounded to bfloat16 as the bf16 kernels round their operands.
fn bf16(v: f32) -> f32 {
    scribe::backend::cpu::bf16::from_bf16(scribe::backend::cpu::bf16::to_bf16(v))
}

/// [`ref_lstm`] with bf16 products: `x`, both weights and each step's `h` rounded to bf16, the
/// sums, gates and cell in f64.
#[allow(clippy::too_many_arguments)]
fn ref_lstm_bf16(
    x: &[f32],
    b: usize,
    t: usize,
    inp: usize,
    hs: usize,
    w_ih: &[f32],
    w_hh: &[f32],
    b_ih: &[f32],
    b_hh: &[f32],
    reverse: bool,
) -> Vec<f64> {
    let round = |v: &[f32]| v.iter().map(|&x| bf16(x)).collect::<Vec<f32>>();
    let (x, w_ih, w_hh) = (round(x), round(w_ih), round(w_hh));
    let mut out = vec![0.0f64; b * t * hs];
    for bi in 0..b {
        let mut h = vec![0.0f64; hs];
        let mut c = vec![0.0f64; hs];
        for step in 0..t {
            let ti = if reverse { t - 1 - step } else { step };
            let xt = &x[(bi * t + ti) * inp..][..inp];
            let hr: Vec<f64> = h.iter().map(|&v| bf16(v as f32) as f64).collect();
            let pre: Vec<f64> = (0..4 * hs)
                .map(|r| {
                    let mut s = b_ih[r] as f64 + b_hh[r] as f64;
                    s += (0..inp).map(|p| w_ih[r * inp + p] as f64 * xt[p] as f64).sum::<f64>();
                    s + (0..hs).map(|p| w_hh[r * hs + p] as f64 * hr[p]).sum::<f64>()
                })
                .collect();
            for j in 0..hs {
                let (i, f, g, o) =
                    (sigmoid64(pre[j]), sigmoid64(pre[hs + j]), pre[2 * hs + j].tanh(), sigmoid64(pre[3 * hs + j]));
                c[j] = f * c[j] + i * g;
                h[j] = o * c[j].tanh();
                out[(bi * t + ti) * hs + j] = h[j];
            }
        }
    }
    out
}

#[test]
fn bf16_weights() {
    // A weight rounded by `round_bfloat16` computes bf16 products with f32 sums (linear, both
    // products of an LSTM step), close to the f32 op, and downloads as its rounded values. Where
    // the backend has no bf16 products (no AVX-512 BF16, or a SIMD level below AVX-512) the
    // weight is returned unchanged.
    let bf16_cpu = scribe::backend::cpu::bf16::bf16_available();
    assert!(bf16_cpu || std::env::var_os("CI").is_none(), "CI's CPUs have AVX-512 BF16; this one does not");
    let mut exact = Stats::new("linear (bf16 weight)");
    let mut vs_float = Stats::new("bf16 vs f32 linear");
    let mut rng = Rng::new(47);
    for &(m, k, n) in &[(1, 1, 1), (5, 384, 517), (8, 33, 65), (9, 17, 300), (40, 64, 129), (65, 60, 512), (3, 15, 7)] {
        let x = rng.vec(m * k, 1.0);
        let w = rng.vec(n * k, 1.0 / (k as f32).sqrt());
        let b = rng.vec(n, 1.0);
        let (xr, wr): (Vec<f32>, Vec<f32>) =
            (x.iter().map(|&v| bf16(v)).collect(), w.iter().map(|&v| bf16(v)).collect());
        for (label, dev) in devices() {
            let (xt, bt) = (up(&dev, &x, &[m, k]), up(&dev, &b, &[n]));
            let wt = dev.round_bfloat16(&up(&dev, &w, &[n, k])).unwrap();
            let rounded = bf16_cpu && label.ends_with("Avx512");
            assert_eq!(wt.dtype(), if rounded { "bfloat16" } else { "float32" }, "{label}: dtype after round_bfloat16");
            if !rounded {
                continue;
            }
            for bias in [false, true] {
                let got = down(&dev, &dev.linear(&xt, &wt, bias.then_some(&bt)).unwrap());
                let shape = format!("x [{m}, {k}] w bf16 [{n}, {k}] bias {bias}");
                exact.check("linear", &label, &shape, &got, &ref_linear(&xr, m, k, &wr, n, bias.then_some(&b[..])));
                // Rounding error: 2^-9 of each operand, of a sum of k products of unit scale.
                let float = ref_linear(&x, m, k, &w, n, bias.then_some(&b[..]));
                vs_float.check_tol("linear", &label, &shape, &got, &float, 0.02, 0.0);
            }
            assert_eq!(down(&dev, &wt), wr, "{label}: download of a bf16 weight");
            expect_err("bf16 weight in an activation", &label, || dev.activation(&wt, Activation::Relu));
            expect_err("bf16 weight K mismatch", &label, || {
                dev.linear(&up(&dev, &vec![0.0; m * (k + 1)], &[m, k + 1]), &wt, None)
            });
        }
    }
    for (label, dev) in devices() {
        expect_err("round_bfloat16 of a rank-3 tensor", &label, || {
            dev.round_bfloat16(&up(&dev, &[0.0; 6], &[3, 2, 1]))
        });
        // A half-precision checkpoint's weight (Whisper's) is rounded from its f16 values.
        let w16: Vec<half::f16> = rng.vec(6 * 5, 3.0).into_iter().map(half::f16::from_f32).collect();
        let wt = dev.round_bfloat16(&dev.upload_f16(&w16, &[6, 5]).unwrap()).unwrap();
        if wt.dtype() == "bfloat16" {
            assert_eq!(
                down(&dev, &wt),
                w16.iter().map(|v| bf16(v.to_f32())).collect::<Vec<_>>(),
                "{label}: f16 → bf16"
            );
        } else {
            assert_eq!(wt.dtype(), "float16", "{label}: an f16 weight stays f16 without bf16 products");
        }
    }
    exact.report();
    vs_float.report();

    // The LSTM with both weights rounded: each step's products in bf16 (`h` rounded too).
    let mut lstm_exact = Stats::new("lstm (bf16 weights)");
    let mut lstm_float = Stats::new("bf16 vs f32 lstm");
    for &(b, t, inp, hs) in
        &[(2, 7, 5, 3), (1, 129, 60, 128), (3, 65, 8, 16), (15, 5, 60, 33), (32, 4, 60, 128), (9, 3, 7, 20)]
    {
        let x = rng.vec(b * t * inp, 1.5);
        let s = 1.0 / (hs as f32).sqrt();
        let (w_ih, w_hh) = (rng.vec(4 * hs * inp, s), rng.vec(4 * hs * hs, s));
        let (b_ih, b_hh) = (rng.vec(4 * hs, s), rng.vec(4 * hs, s));
        for reverse in [false, true] {
            let want = ref_lstm_bf16(&x, b, t, inp, hs, &w_ih, &w_hh, &b_ih, &b_hh, reverse);
            let float = ref_lstm(&x, b, t, inp, hs, &w_ih, &w_hh, &b_ih, &b_hh, reverse);
            for (label, dev) in devices() {
                let wi = dev.round_bfloat16(&up(&dev, &w_ih, &[4 * hs, inp])).unwrap();
                let wh = dev.round_bfloat16(&up(&dev, &w_hh, &[4 * hs, hs])).unwrap();
                if wh.dtype() != "bfloat16" {
                    continue;
                }
                let y = dev
                    .lstm(
                        &up(&dev, &x, &[b, t, inp]),
                        &wi,
                        &wh,
                        &up(&dev, &b_ih, &[4 * hs]),
                        &up(&dev, &b_hh, &[4 * hs]),
                        reverse,
                    )
                    .unwrap();
                let (shape, got) = (format!("B {b} T {t} In {inp} H {hs} reverse {reverse}"), down(&dev, &y));
                // `h` rounded from f32 rather than f64 may land on the other side of a bf16 tie.
                lstm_exact.check_tol("lstm", &label, &shape, &got, &want, 3e-4, 0.0);
                lstm_float.check_tol("lstm", &label, &shape, &got, &float, 0.01, 0.0);
            }
        }
    }
    lstm_exact.report();
    lstm_float.report();
}

/// An LSTM's sequences are independent, bit for bit: a batch of 19 (groups of 8 and a ragged
/// one through the input projection, rows split between threads), in f32 and with bf16 weights,
/// gives each sequence what it gives alone. (Each sequence has more than 64 steps, so its input
/// projection alone is a GEMM as the batch's is, not a skinny product with other sums.)
#[test]
fn lstm_sequences_of_a_batch_get_their_own_bits() {
    let mut rng = Rng::new(29);
    let (b, t, inp, hs) = (19, 70, 60, 128);
    let x = rng.vec(b * t * inp, 1.5);
    let s = 1.0 / (hs as f32).sqrt();
    let (w_ih, w_hh) = (rng.vec(4 * hs * inp, s), rng.vec(4 * hs * hs, s));
    let (b_ih, b_hh) = (rng.vec(4 * hs, s), rng.vec(4 * hs, s));
    for (label, dev) in devices() {
        for bf16 in [false, true] {
            let weight = |w: &[f32], shape: &[usize]| {
                let t = up(&dev, w, shape);
                if bf16 {
                    dev.round_bfloat16(&t).unwrap()
                } else {
                    t
                }
            };
            let (wi, wh) = (weight(&w_ih, &[4 * hs, inp]), weight(&w_hh, &[4 * hs, hs]));
            let (bi, bh) = (up(&dev, &b_ih, &[4 * hs]), up(&dev, &b_hh, &[4 * hs]));
            for reverse in [false, true] {
                let run = |rows: std::ops::Range<usize>| {
                    let xs = up(&dev, &x[rows.start * t * inp..rows.end * t * inp], &[rows.len(), t, inp]);
                    down(&dev, &dev.lstm(&xs, &wi, &wh, &bi, &bh, reverse).unwrap())
                };
                let batch = run(0..b);
                for r in [0, 7, 8, 15, 16, 18] {
                    let alone = run(r..r + 1);
                    let row = &batch[r * t * hs..(r + 1) * t * hs];
                    assert!(
                        row.iter().zip(&alone).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{label} bf16 {bf16} reverse {reverse}: sequence {r} of the batch differs from it alone"
                    );
                }
            }
        }
    }
}

#[test]
fn lstm() {
    let mut st = Stats::new("lstm");
    let mut rng = Rng::new(13);
    // (B, T, In, H)
    let cases = [
        (1, 1, 1, 1),
        (2, 7, 5, 3),
        (1, 17, 33, 17),
        (3, 65, 8, 16),
        (1, 129, 60, 128),
        (2, 33, 256, 33),
        (1, 0, 4, 3),
        // many rows per thread: register tiles of 6 rows and a ragged last one; 4H not a
        // multiple of the 64-gate blocks (80, 132)
        (16, 9, 7, 20),
        (15, 5, 60, 33),
        (32, 4, 60, 128),
    ];
    for &(b, t, inp, hs) in &cases {
        let x = rng.vec(b * t * inp, 1.5);
        let s = 1.0 / (hs as f32).sqrt();
        let w_ih = rng.vec(4 * hs * inp, s);
        let w_hh = rng.vec(4 * hs * hs, s);
        let b_ih = rng.vec(4 * hs, s);
        let b_hh = rng.vec(4 * hs, s);
        for reverse in [false, true] {
            let want = ref_lstm(&x, b, t, inp, hs, &w_ih, &w_hh, &b_ih, &b_hh, reverse);
            for (label, dev) in devices() {
                let y = dev
                    .lstm(
                        &up(&dev, &x, &[b, t, inp]),
                        &up(&dev, &w_ih, &[4 * hs, inp]),
                        &up(&dev, &w_hh, &[4 * hs, hs]),
                        &up(&dev, &b_ih, &[4 * hs]),
                        &up(&dev, &b_hh, &[4 * hs]),
                        reverse,
                    )
                    .unwrap();
                assert_eq!(y.shape(), &[b, t, hs]);
                st.check(
                    "lstm",
                    &label,
                    &format!("B {b} T {t} In {inp} H {hs} reverse {reverse}"),
                    &down(&dev, &y),
                    &want,
                );
            }
        }
    }
    for (label, dev) in devices() {
        let (b, t, inp) = (2, 3, 5); // H = 4
        let x = up(&dev, &vec![0.0; b * t * inp], &[b, t, inp]);
        let m = |r: usize, c: usize| up(&dev, &vec![0.0; r * c], &[r, c]);
        let v = |n: usize| up(&dev, &vec![0.0; n], &[n]);
        expect_err("lstm w_hh not [4H, H]", &label, || dev.lstm(&x, &m(16, 5), &m(16, 5), &v(16), &v(16), false));
        expect_err("lstm w_ih rows", &label, || dev.lstm(&x, &m(12, 5), &m(16, 4), &v(16), &v(16), false));
        expect_err("lstm w_ih cols vs input", &label, || dev.lstm(&x, &m(16, 6), &m(16, 4), &v(16), &v(16), false));
        expect_err("lstm b_ih length", &label, || dev.lstm(&x, &m(16, 5), &m(16, 4), &v(15), &v(16), false));
        expect_err("lstm b_hh length", &label, || dev.lstm(&x, &m(16, 5), &m(16, 4), &v(16), &v(4), false));
        expect_err("lstm rank-2 input", &label, || dev.lstm(&m(3, 5), &m(16, 5), &m(16, 4), &v(16), &v(16), false));
        expect_err("lstm rank-1 w_ih", &label, || dev.lstm(&x, &v(16), &m(16, 4), &v(16), &v(16), false));
        expect_err("lstm rank-0 w_ih", &label, || {
            dev.lstm(&x, &up(&dev, &[0.0], &[]), &m(16, 4), &v(16), &v(16), false)
        });
    }
    st.report();
}

// ---- indexing, layout, reductions ------------------------------------------------------------

#[test]
fn embedding() {
    let mut st = Stats::new("embedding");
    let mut rng = Rng::new(14);
    for &(vocab, d, n) in &[(1, 1, 1), (17, 3, 9), (1000, 65, 33), (51865, 8, 7), (5, 4, 0)] {
        let table = rng.vec(vocab * d, 1.0);
        let mut ids: Vec<u32> = (0..n).map(|_| rng.below(vocab) as u32).collect();
        if n >= 3 {
            ids[0] = 0;
            ids[1] = (vocab - 1) as u32;
            ids[2] = ids[0];
        }
        let want: Vec<f32> = ids.iter().flat_map(|&i| table[i as usize * d..(i as usize + 1) * d].to_vec()).collect();
        for (label, dev) in devices() {
            let y = dev.embedding(&ids, &up(&dev, &table, &[vocab, d])).unwrap();
            assert_eq!(y.shape(), &[n, d]);
            st.exact("embedding", &label, &format!("table [{vocab},{d}] {n} ids"), &down(&dev, &y), &want);
        }
    }
    for (label, dev) in devices() {
        let table = up(&dev, &[0.0; 12], &[4, 3]);
        expect_err("embedding id == V", &label, || dev.embedding(&[0, 4], &table));
        expect_err("embedding id u32::MAX", &label, || dev.embedding(&[u32::MAX], &table));
        expect_err("embedding rank-3 table", &label, || dev.embedding(&[0], &up(&dev, &[0.0; 12], &[1, 4, 3])));
        expect_err("embedding rank-1 table", &label, || dev.embedding(&[0], &up(&dev, &[0.0; 12], &[12])));
    }
    st.report();
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for pos in 0..=p.len() {
            let mut q = p.clone();
            q.insert(pos, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn permute() {
    let mut st = Stats::new("permute");
    let mut rng = Rng::new(15);
    let shapes: &[&[usize]] = &[
        &[],
        &[7],
        &[3, 7],
        &[1, 17],
        &[2, 17, 5],
        &[1, 33, 1],
        &[2, 3, 4, 5],
        &[3, 1, 7, 2],
        &[2, 65, 6, 9],
        &[2, 0, 3],
    ];
    for &shape in shapes {
        let x = rng.vec(numel(shape), 1.0);
        let in_st = strides(shape);
        for perm in permutations(shape.len()) {
            let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
            let want: Vec<f32> = (0..x.len())
                .map(|i| {
                    let oi = unravel(i, &out_shape);
                    x[oi.iter().zip(&perm).map(|(&ix, &p)| ix * in_st[p]).sum::<usize>()]
                })
                .collect();
            for (label, dev) in devices() {
                let y = dev.permute(&up(&dev, &x, shape), &perm).unwrap();
                assert_eq!(y.shape(), &out_shape[..]);
                st.exact("permute", &label, &format!("{shape:?} perm {perm:?}"), &down(&dev, &y), &want);
            }
        }
    }
    for (label, dev) in devices() {
        let x = up(&dev, &[0.0; 24], &[2, 3, 4]);
        expect_err("permute duplicate", &label, || dev.permute(&x, &[0, 0, 1]));
        expect_err("permute too short", &label, || dev.permute(&x, &[1, 0]));
        expect_err("permute too long", &label, || dev.permute(&x, &[0, 1, 2, 3]));
        expect_err("permute out of range", &label, || dev.permute(&x, &[0, 1, 3]));
    }
    st.report();
}

#[test]
fn slice() {
    let mut st = Stats::new("slice");
    let mut rng = Rng::new(16);
    let shapes: &[&[usize]] = &[&[7], &[3, 7], &[3, 7, 17], &[2, 3, 4, 5], &[1, 1500, 3]];
    for &shape in shapes {
        let x = rng.vec(numel(shape), 1.0);
        let xs = strides(shape);
        for dim in 0..shape.len() {
            let n = shape[dim];
            let mut ranges = vec![(0, n), (0, 0), (n, 0), (0, 1), (n - 1, 1), (n / 3, n - n / 3)];
            if n > 2 {
                ranges.push((1, n - 2));
            }
            for (start, len) in ranges {
                let mut out_shape = shape.to_vec();
                out_shape[dim] = len;
                let want: Vec<f32> = (0..numel(&out_shape))
                    .map(|i| {
                        let mut idx = unravel(i, &out_shape);
                        idx[dim] += start;
                        x[idx.iter().zip(&xs).map(|(a, b)| a * b).sum::<usize>()]
                    })
                    .collect();
                for (label, dev) in devices() {
                    let y = dev.slice(&up(&dev, &x, shape), dim, start, len).unwrap();
                    assert_eq!(y.shape(), &out_shape[..]);
                    st.exact(
                        "slice",
                        &label,
                        &format!("{shape:?} dim {dim} [{start}, +{len})"),
                        &down(&dev, &y),
                        &want,
                    );
                }
            }
        }
    }
    for (label, dev) in devices() {
        let x = up(&dev, &[0.0; 24], &[2, 3, 4]);
        expect_err("slice dim out of range", &label, || dev.slice(&x, 3, 0, 1));
        expect_err("slice past the end", &label, || dev.slice(&x, 1, 2, 2));
        expect_err("slice start past the end", &label, || dev.slice(&x, 2, 5, 0));
        expect_err("slice of rank 0", &label, || dev.slice(&up(&dev, &[1.0], &[]), 0, 0, 1));
        expect_err("slice start + len overflows", &label, || dev.slice(&x, 1, usize::MAX, 2));
    }
    st.report();
}

#[test]
fn concat() {
    let mut st = Stats::new("concat");
    let mut rng = Rng::new(17);
    // The last base's outputs are large enough for the CPU's copies on every thread.
    let bases: &[&[usize]] = &[&[7], &[3, 7], &[2, 5, 17], &[2, 3, 4, 5], &[2, 150, 230]];
    for &base in bases {
        for dim in 0..base.len() {
            for sizes in [vec![base[dim]], vec![base[dim], 1, 3], vec![2, 0, base[dim]], vec![33, 1]] {
                let shapes: Vec<Vec<usize>> = sizes
                    .iter()
                    .map(|&s| {
                        let mut sh = base.to_vec();
                        sh[dim] = s;
                        sh
                    })
                    .collect();
                let parts: Vec<Vec<f32>> = shapes.iter().map(|s| rng.vec(numel(s), 1.0)).collect();
                let mut out_shape = base.to_vec();
                out_shape[dim] = sizes.iter().sum();
                let want: Vec<f32> = (0..numel(&out_shape))
                    .map(|i| {
                        let mut idx = unravel(i, &out_shape);
                        let mut part = 0;
                        while idx[dim] >= sizes[part] {
                            idx[dim] -= sizes[part];
                            part += 1;
                        }
                        parts[part][idx.iter().zip(strides(&shapes[part])).map(|(a, b)| a * b).sum::<usize>()]
                    })
                    .collect();
                for (label, dev) in devices() {
                    let ts: Vec<Tensor> = parts.iter().zip(&shapes).map(|(p, s)| up(&dev, p, s)).collect();
                    let refs: Vec<&Tensor> = ts.iter().collect();
                    let y = dev.concat(&refs, dim).unwrap();
                    assert_eq!(y.shape(), &out_shape[..]);
                    st.exact("concat", &label, &format!("{shapes:?} dim {dim}"), &down(&dev, &y), &want);
                }
            }
        }
    }
    for (label, dev) in devices() {
        let a = up(&dev, &[0.0; 24], &[2, 3, 4]);
        let b = up(&dev, &[0.0; 30], &[2, 3, 5]);
        let c = up(&dev, &[0.0; 12], &[3, 4]);
        expect_err("concat of nothing", &label, || dev.concat(&[], 0));
        expect_err("concat mismatch outside dim", &label, || dev.concat(&[&a, &b], 1));
        expect_err("concat rank mismatch", &label, || dev.concat(&[&a, &c], 0));
        expect_err("concat dim out of range", &label, || dev.concat(&[&a, &a], 3));
    }
    st.report();
}

#[test]
fn reduce() {
    let ops = [Reduce::Sum, Reduce::Mean, Reduce::Max, Reduce::Std];
    let mut rng = Rng::new(18);
    let shapes: &[&[usize]] = &[
        &[1],
        &[7],
        &[3, 7],
        &[2, 5, 33],
        &[4, 1500],
        &[1, 16385],
        &[3, 65],
        &[2, 129],
        &[0, 5],
        &[2, 3, 4, 17],
        &[300, 100],
        &[20_000, 1],
    ];
    for op in ops {
        let mut st = Stats::new(format!("reduce {op:?}"));
        for &shape in shapes {
            let d = *shape.last().unwrap();
            let x: Vec<f32> = rng.vec(numel(shape), 2.0).iter().map(|v| v + 0.5).collect();
            let want: Vec<f64> = x
                .chunks(d)
                .map(|r| {
                    let n = r.len() as f64;
                    let sum: f64 = r.iter().map(|&v| v as f64).sum();
                    match op {
                        Reduce::Sum => sum,
                        Reduce::Mean => sum / n,
                        Reduce::Max => r.iter().map(|&v| v as f64).fold(f64::NEG_INFINITY, f64::max),
                        Reduce::Std => (r.iter().map(|&v| (v as f64 - sum / n).powi(2)).sum::<f64>() / n).sqrt(),
                    }
                })
                .collect();
            for (label, dev) in devices() {
                let y = dev.reduce(&up(&dev, &x, shape), op).unwrap();
                assert_eq!(y.shape(), &shape[..shape.len() - 1]);
                st.check("reduce", &label, &format!("{shape:?} {op:?}"), &down(&dev, &y), &want);
            }
        }
        st.report();
    }
    for (label, dev) in devices() {
        for op in ops {
            expect_err("reduce empty last dim", &label, || dev.reduce(&up(&dev, &[], &[3, 0]), op));
            expect_err("reduce rank 0", &label, || dev.reduce(&up(&dev, &[1.0], &[]), op));
        }
    }
}

#[test]
fn windows_abs_max_pool() {
    let mut st = Stats::new("windows_abs_max_pool");
    let mut rng = Rng::new(23);
    // (C, T, windows, hop, length, pool): SincNet's pool of 3 (its vectorised loop) over lengths
    // that do and do not divide by it, other pools, too short for one pooled frame, no windows.
    let cases = [
        (1, 1, 1, 0, 1, 1),
        (3, 40, 4, 7, 19, 3),
        (2, 33, 3, 16, 1, 1),
        (80, 8775, 3, 800, 7175, 3),
        (80, 8776, 3, 800, 7176, 3),
        (4, 50, 5, 9, 14, 2),
        (3, 61, 2, 11, 50, 7),
        (2, 30, 3, 5, 2, 3),
        (5, 9, 0, 2, 4, 3),
        (2, 5, 3, 0, 4, 1),
    ];
    for &(c, t, w, hop, len, pool) in &cases {
        let (x, scale, shift) = (rng.vec(c * t, 1.0), rng.vec(w, 2.0), rng.vec(w * c, 1.0));
        let pooled = len / pool;
        let mut want = vec![0.0f32; w * c * pooled];
        for wi in 0..w {
            for ci in 0..c {
                for j in 0..pooled {
                    let mags =
                        (0..pool).map(|i| (x[ci * t + wi * hop + j * pool + i] * scale[wi] + shift[wi * c + ci]).abs());
                    want[(wi * c + ci) * pooled + j] = mags.fold(f32::NEG_INFINITY, f32::max);
                }
            }
        }
        for (label, dev) in devices() {
            let (sc, sh) = (up(&dev, &scale, &[w]), up(&dev, &shift, &[w, c]));
            let y = dev.windows_abs_max_pool(&up(&dev, &x, &[c, t]), hop, len, &sc, &sh, pool).unwrap();
            assert_eq!(y.shape(), &[w, c, pooled]);
            let what = format!("[{c},{t}] {w} of {len} every {hop}, pool {pool}");
            st.exact("windows_abs_max_pool", &label, &what, &down(&dev, &y), &want);
        }
    }
    for (label, dev) in devices() {
        let x = up(&dev, &[0.0; 20], &[2, 10]);
        let (sc, sh) = (up(&dev, &[1.0; 3], &[3]), up(&dev, &[0.0; 6], &[3, 2]));
        expect_err("windows_abs_max_pool past the end", &label, || dev.windows_abs_max_pool(&x, 4, 3, &sc, &sh, 3));
        expect_err("windows_abs_max_pool rank 3", &label, || {
            dev.windows_abs_max_pool(&up(&dev, &[0.0; 20], &[1, 2, 10]), 1, 3, &sc, &sh, 3)
        });
        expect_err("windows_abs_max_pool shift shape", &label, || {
            dev.windows_abs_max_pool(&x, 1, 3, &sc, &up(&dev, &[0.0; 6], &[2, 3]), 3)
        });
        expect_err("windows_abs_max_pool hop overflowing", &label, || {
            dev.windows_abs_max_pool(&x, usize::MAX, 3, &sc, &sh, 3)
        });
        expect_err("windows_abs_max_pool pool 0", &label, || dev.windows_abs_max_pool(&x, 1, 3, &sc, &sh, 0));
    }
    st.report();
}

#[test]
fn max_pool1d() {
    let mut st = Stats::new("max_pool1d");
    let mut rng = Rng::new(19);
    // (B, C, T, kernel, stride)
    let cases = [
        (1, 1, 1, 1, 1),
        (2, 3, 17, 3, 3),
        (1, 4, 33, 2, 1),
        (2, 2, 65, 5, 2),
        (1, 3, 1500, 3, 3),
        (2, 5, 2, 3, 1),
        (1, 2, 129, 4, 7),
        (1, 1, 9, 9, 1),
    ];
    for &(b, c, t, k, s) in &cases {
        let x = rng.vec(b * c * t, 1.0);
        let t_out = if t < k { 0 } else { (t - k) / s + 1 };
        let mut want = vec![0.0f32; b * c * t_out];
        for row in 0..b * c {
            for o in 0..t_out {
                want[row * t_out + o] =
                    x[row * t + o * s..row * t + o * s + k].iter().copied().fold(f32::NEG_INFINITY, f32::max);
            }
        }
        for (label, dev) in devices() {
            let y = dev.max_pool1d(&up(&dev, &x, &[b, c, t]), k, s).unwrap();
            assert_eq!(y.shape(), &[b, c, t_out]);
            st.exact("max_pool1d", &label, &format!("[{b},{c},{t}] kernel {k} stride {s}"), &down(&dev, &y), &want);
        }
    }
    for (label, dev) in devices() {
        let x = up(&dev, &[0.0; 30], &[2, 3, 5]);
        expect_err("max_pool1d kernel 0", &label, || dev.max_pool1d(&x, 0, 1));
        expect_err("max_pool1d stride 0", &label, || dev.max_pool1d(&x, 2, 0));
        expect_err("max_pool1d rank 2", &label, || dev.max_pool1d(&up(&dev, &[0.0; 15], &[3, 5]), 2, 1));
    }
    st.report();
}

#[test]
fn argmax() {
    let mut rng = Rng::new(20);
    let mut cases = 0;
    let shapes: &[&[usize]] = &[&[1], &[1, 1], &[3, 7], &[2, 5, 33], &[2, 51865], &[17, 65], &[0, 4]];
    for &shape in shapes {
        for ties in [false, true] {
            let d = *shape.last().unwrap();
            // With ties, values come from 3 levels so most rows have a repeated maximum.
            let mut x: Vec<f32> =
                rng.vec(numel(shape), 1.0).iter().map(|&v| if ties { (v * 1.5).round() } else { v }).collect();
            if ties && x.len() >= 2 * d && d > 0 {
                x[..d].fill(0.25); // an all-equal row → index 0
                x[d..2 * d].fill(f32::NEG_INFINITY);
            }
            let want: Vec<u32> = x
                .chunks(d.max(1))
                .take(if d == 0 { 0 } else { usize::MAX })
                .map(|r| {
                    let mut best = 0;
                    for i in 1..r.len() {
                        if r[i] > r[best] {
                            best = i;
                        }
                    }
                    best as u32
                })
                .collect();
            for (label, dev) in devices() {
                let got = dev.argmax(&up(&dev, &x, shape)).unwrap();
                assert_eq!(got, want, "argmax [{label}] {shape:?} ties {ties}");
                cases += 1;
            }
        }
    }
    for (label, dev) in devices() {
        expect_err("argmax empty last dim", &label, || dev.argmax(&up(&dev, &[], &[3, 0])));
    }
    println!("{:<26} {cases:>4} cases, exact", "argmax");
}

#[test]
fn upload_checks_length() {
    for (label, dev) in devices() {
        println!("backend under test: {label}");
        expect_err("upload length mismatch", &label, || dev.upload(&[1.0, 2.0], &[3]));
        let t = up(&dev, &[1.0, 2.0, 3.0], &[3, 1]);
        assert_eq!(down(&dev, &t), vec![1.0, 2.0, 3.0]);
    }
}

/// A reordered cache grown by a step: `concat([index_select(cache, sources), new], 1)`, exactly,
/// rows repeated and left out, odd widths.
#[test]
fn gather_append() {
    let mut st = Stats::new("gather_append");
    let mut rng = Rng::new(23);
    for &(r0, t, d, sources, s) in &[
        (1usize, 1usize, 1usize, &[0usize][..], 1usize),
        (5, 3, 7, &[4, 4, 0, 2, 1][..], 1),
        (3, 0, 5, &[2, 0, 1][..], 2),
        // 7 chunks × 5 beams of 36 positions: 497,280 values, a partial last block on CUDA.
        (
            35,
            36,
            384,
            &[
                1, 0, 2, 3, 34, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
                28, 29, 30, 31, 32, 33, 0,
            ][..],
            1,
        ),
        (4, 2, 3, &[3, 1][..], 3),
    ] {
        let cache = rng.vec(r0 * t * d, 1.0);
        let new = rng.vec(sources.len() * s * d, 1.0);
        let want: Vec<f32> = sources
            .iter()
            .enumerate()
            .flat_map(|(r, &src)| {
                let mut row = cache[src * t * d..(src + 1) * t * d].to_vec();
                row.extend_from_slice(&new[r * s * d..(r + 1) * s * d]);
                row
            })
            .collect();
        for (label, dev) in devices() {
            let (c, n) = (up(&dev, &cache, &[r0, t, d]), up(&dev, &new, &[sources.len(), s, d]));
            let y = dev.gather_append(&c, sources, &n).unwrap();
            assert_eq!(y.shape(), &[sources.len(), t + s, d]);
            st.exact(
                "gather_append",
                &label,
                &format!("[{r0}, {t}, {d}] + {s} by {} sources", sources.len()),
                &down(&dev, &y),
                &want,
            );
            let composed = dev.concat(&[&dev.index_select(&c, sources).unwrap(), &n], 1).unwrap();
            assert_eq!(down(&dev, &composed), down(&dev, &y), "{label}: the composition");
        }
    }
    for (label, dev) in devices() {
        let (c, n) = (up(&dev, &[0.0; 12], &[2, 3, 2]), up(&dev, &[0.0; 4], &[2, 1, 2]));
        expect_err("gather_append source out of range", &label, || dev.gather_append(&c, &[0, 2], &n));
        expect_err("gather_append rows vs sources", &label, || dev.gather_append(&c, &[0], &n));
        expect_err("gather_append width", &label, || dev.gather_append(&c, &[0, 1], &up(&dev, &[0.0; 6], &[2, 1, 3])));
        expect_err("gather_append rank", &label, || dev.gather_append(&up(&dev, &[0.0; 12], &[6, 2]), &[0, 1], &n));
    }
    st.report();
}

#[test]
fn index_select() {
    let mut st = Stats::new("index_select");
    let mut rng = Rng::new(21);
    // [300, 257]: outputs large enough for the CPU's copies on every thread.
    for shape in [vec![1usize], vec![5, 3], vec![4, 7, 2], vec![3, 0], vec![300, 257]] {
        let x = rng.vec(numel(&shape), 1.0);
        let inner: usize = shape[1..].iter().product();
        for idx in [vec![0usize], vec![shape[0] - 1, 0, 0], (0..shape[0]).rev().collect(), vec![]] {
            let want: Vec<f32> = idx.iter().flat_map(|&i| x[i * inner..(i + 1) * inner].to_vec()).collect();
            for (label, dev) in devices() {
                let y = dev.index_select(&up(&dev, &x, &shape), &idx).unwrap();
                assert_eq!(y.shape()[0], idx.len());
                st.exact("index_select", &label, &format!("{shape:?} rows {idx:?}"), &down(&dev, &y), &want);
                // Rows of a half-precision tensor (the decoder's cross-attention keys and values).
                let half = dev.to_float16(&up(&dev, &x, &shape)).unwrap();
                let want16: Vec<f32> = want.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
                let y16 = dev.index_select(&half, &idx).unwrap();
                st.exact("index_select f16", &label, &format!("{shape:?} rows {idx:?}"), &down(&dev, &y16), &want16);
            }
        }
    }
    for (label, dev) in devices() {
        expect_err("index_select row out of range", &label, || dev.index_select(&up(&dev, &[0.0; 6], &[2, 3]), &[2]));
        expect_err("index_select rank 0", &label, || dev.index_select(&up(&dev, &[1.0], &[]), &[0]));
    }
    st.report();
}

#[test]
fn attention_with_shared_key_value_rows() {
    // q rows [g·r, (g+1)·r) attend to k/v row g: beams sharing one audio's cross-attention.
    let mut st = Stats::new("attention (shared k/v)");
    let mut rng = Rng::new(31);
    // Covers both schedules: ≤ 8 query rows per key/value head (skinny, 64-wide register blocks
    // and their tails) and more (blocked).
    for &(b, bk, tq, tk, heads, dh) in &[
        (4, 2, 1, 9, 2, 8),
        (5, 1, 3, 65, 6, 16),
        (6, 3, 2, 7, 1, 4),
        (5, 1, 1, 1500, 6, 64),
        (8, 1, 1, 40, 2, 64),
        (3, 1, 3, 10, 2, 64),
        (2, 2, 1, 33, 1, 130),
        // ≥ 256 keys: decoder-step cross-attention scores from cached key tiles, including
        // key counts and head widths that do not fill a tile.
        (3, 1, 1, 300, 2, 64),
        (4, 2, 2, 257, 3, 20),
        (8, 1, 1, 1500, 6, 64),
    ] {
        let d = heads * dh;
        let q = rng.vec(b * tq * d, 2.0);
        let k = rng.vec(bk * tk * d, 2.0);
        let v = rng.vec(bk * tk * d, 1.0);
        let group = b / bk;
        let expand = |x: &[f32]| -> Vec<f32> {
            (0..b).flat_map(|i| x[i / group * tk * d..(i / group + 1) * tk * d].to_vec()).collect()
        };
        let want = ref_attention(&q, &expand(&k), &expand(&v), b, tq, tk, heads, dh, false);
        for (label, dev) in devices() {
            let y = dev
                .attention(
                    &up(&dev, &q, &[b, tq, d]),
                    &up(&dev, &k, &[bk, tk, d]),
                    &up(&dev, &v, &[bk, tk, d]),
                    heads,
                    false,
                )
                .unwrap();
            st.check("attention", &label, &format!("b {b} bk {bk} tq {tq} tk {tk} h {heads}"), &down(&dev, &y), &want);
        }
    }
    st.report();
}

#[test]
fn attention_key_tile_cache_follows_the_key_tensor() {
    // Decoder steps reuse one key and one value tensor for hundreds of calls, and the CPU
    // backend caches a rearranged copy of each (key tiles, values a head at a time). Every call
    // must still see the keys and values it is given: the same tensors with new queries, a
    // different tensor of the same shape for either, and reshaped views of the same storage
    // (one batch of 2·300 keys instead of two of 300).
    let mut st = Stats::new("attention (cached key tiles and values)");
    let mut rng = Rng::new(77);
    let (heads, dh, tk) = (2, 64, 300);
    let d = heads * dh;
    for (label, dev) in devices() {
        let k1 = rng.vec(2 * tk * d, 2.0);
        let k2 = rng.vec(2 * tk * d, 2.0);
        let v = rng.vec(2 * tk * d, 1.0);
        let v2 = rng.vec(2 * tk * d, 1.0);
        let (k1t, k2t, vt) = (up(&dev, &k1, &[2, tk, d]), up(&dev, &k2, &[2, tk, d]), up(&dev, &v, &[2, tk, d]));
        let v2t = up(&dev, &v2, &[2, tk, d]);
        // f16 copies made once, so that their cached layouts are reused and swapped too.
        let half = |t: &Tensor| dev.to_float16(t).unwrap();
        let (k1h, k2h, vh, v2h) = (half(&k1t), half(&k2t), half(&vt), half(&v2t));
        for (name, k, kt, k16, v, vt, v16) in [
            ("k1 v", &k1, &k1t, &k1h, &v, &vt, &vh),
            ("k1 v again", &k1, &k1t, &k1h, &v, &vt, &vh),
            ("k2 v", &k2, &k2t, &k2h, &v, &vt, &vh),
            ("k1 v2", &k1, &k1t, &k1h, &v2, &v2t, &v2h),
            ("k1 v third", &k1, &k1t, &k1h, &v, &vt, &vh),
        ] {
            let q = rng.vec(2 * d, 2.0);
            let y = dev.attention(&up(&dev, &q, &[2, 1, d]), kt, vt, heads, false).unwrap();
            let want = ref_attention(&q, k, v, 2, 1, tk, heads, dh, false);
            st.check("attention", &label, name, &down(&dev, &y), &want);
            // The same in f16, whose tiles and head-major values are cached in f16.
            let y16 = dev.attention(&up(&dev, &q, &[2, 1, d]), k16, v16, heads, false).unwrap();
            let widened = (dev.to_float32(k16).unwrap(), dev.to_float32(v16).unwrap());
            let y32 = dev.attention(&up(&dev, &q, &[2, 1, d]), &widened.0, &widened.1, heads, false).unwrap();
            st.exact("attention f16", &label, name, &down(&dev, &y16), &down(&dev, &y32));
        }
        let q = rng.vec(d, 2.0);
        let flat_k = k1t.reshape(&[1, 2 * tk, d]).unwrap();
        let flat_v = vt.reshape(&[1, 2 * tk, d]).unwrap();
        let y = dev.attention(&up(&dev, &q, &[1, 1, d]), &flat_k, &flat_v, heads, false).unwrap();
        let want = ref_attention(&q, &k1, &v, 1, 1, 2 * tk, heads, dh, false);
        st.check("attention", &label, "k1 reshaped", &down(&dev, &y), &want);
    }
    st.report();
}

/// The CPU takes a few sequences a pass (8, or the threads if more): a VAD batch of 32 becomes
/// passes of 8 on two threads; smaller batches stay as they are.
#[test]
fn the_cpu_takes_a_few_sequences_a_pass() {
    let dev = Device::cpu();
    let most = 8.max(rayon::current_num_threads());
    assert_eq!(dev.sequences_per_pass(32), most.min(32));
    assert_eq!(dev.sequences_per_pass(4), 4);
    assert_eq!(dev.sequences_per_pass(1), 1);
}
