//! Every op of a backend against the CPU reference on random inputs. The start-up self-check runs
//! the small set (well under a second on a GPU) and disables CUDA, naming the kernel, on any
//! mismatch; the tests and the GPU pack run the thorough set: many shapes, including sizes that
//! do not divide the block size (32-key tiles, 256-thread rows, 16-query blocks).
//!
//! Written against [`Device`] only, so it checks whatever backend it is given.

use crate::backend::{
    Activation, BinaryOp, Conv1dParams, Conv2dParams, Device, Padding, Reduce, RowMask, Sampling, Tensor, TokenChoice,
};
use crate::error::Result;

/// Which set of shapes to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckScale {
    /// One small case per kernel: the start-up check.
    Startup,
    /// Many shapes per kernel, odd sizes included: tests and the GPU pack.
    Thorough,
}

/// Pass when `|got − want| ≤ atol + rtol·|want|` for every element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub atol: f32,
    pub rtol: f32,
}

/// f32 arithmetic in another order (sums over a row, a GEMM's k).
const F32: Tolerance = Tolerance { atol: 2e-5, rtol: 2e-4 };

/// f16 GEMM operands: the activation is rounded to f16 (relative error 2⁻¹¹) before the product.
fn f16_gemm(k: usize) -> Tolerance {
    Tolerance { atol: 2e-3 * (k as f32).sqrt(), rtol: 1e-2 }
}

/// f32 GEMM over `k` terms.
fn f32_gemm(k: usize) -> Tolerance {
    Tolerance { atol: 1e-5 * (k as f32).sqrt(), rtol: 2e-4 }
}

/// The outcome of one op on one shape.
#[derive(Clone, Debug)]
pub struct OpCheck {
    /// The op and its shapes, e.g. `attention q[2, 7, 64] k[1, 45, 64] heads 2 causal`.
    pub case: String,
    /// The kernel file(s) exercised, to name in the log when the check fails.
    pub kernel: &'static str,
    pub max_abs: f32,
    pub max_rel: f32,
    pub tolerance: Tolerance,
    pub passed: bool,
}

impl std::fmt::Display for OpCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<6} {:<16} max_abs {:.2e} max_rel {:.2e} (atol {:.1e}, rtol {:.1e})  {}",
            if self.passed { "ok" } else { "FAIL" },
            self.kernel,
            self.max_abs,
            self.max_rel,
            self.tolerance.atol,
            self.tolerance.rtol,
            self.case
        )
    }
}

/// Compare two result vectors.
pub fn compare(case: String, kernel: &'static str, got: &[f32], want: &[f32], tol: Tolerance) -> OpCheck {
    let (mut max_abs, mut max_rel, mut passed) = (0.0f32, 0.0f32, got.len() == want.len());
    for (&g, &w) in got.iter().zip(want) {
        if g.is_nan() != w.is_nan() || (g.is_infinite() || w.is_infinite()) && g != w {
            passed = false;
            max_abs = f32::INFINITY;
            continue;
        }
        if g.is_nan() || g == w {
            continue;
        }
        let err = (g - w).abs();
        max_abs = max_abs.max(err);
        max_rel = max_rel.max(err / w.abs().max(f32::MIN_POSITIVE));
        if err > tol.atol + tol.rtol * w.abs() {
            passed = false;
        }
    }
    OpCheck { case, kernel, max_abs, max_rel, tolerance: tol, passed }
}

/// Deterministic uniform values in [-1, 1) (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40; // 24 bits
        bits as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn values(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
    fn below(&mut self, n: usize) -> usize {
        ((self.next() + 1.0) * 0.5 * n as f32) as usize % n.max(1)
    }
}

/// A tensor on both devices.
struct Pair {
    dev: Tensor,
    cpu: Tensor,
}

struct Checker<'a> {
    dev: &'a Device,
    cpu: Device,
    rng: Rng,
    out: Vec<OpCheck>,
}

impl Checker<'_> {
    fn tensor(&mut self, shape: &[usize], scale: f32) -> Result<Pair> {
        let v = self.rng.values(shape.iter().product(), scale);
        Ok(Pair { dev: self.dev.upload(&v, shape)?, cpu: self.cpu.upload(&v, shape)? })
    }

    /// A weight stored in half precision on both devices (values exactly representable).
    fn half(&mut self, shape: &[usize], scale: f32) -> Result<Pair> {
        let v: Vec<half::f16> =
            self.rng.values(shape.iter().product(), scale).into_iter().map(half::f16::from_f32).collect();
        Ok(Pair { dev: self.dev.upload_f16(&v, shape)?, cpu: self.cpu.upload_f16(&v, shape)? })
    }

    fn positive(&mut self, shape: &[usize]) -> Result<Pair> {
        let v: Vec<f32> = self.rng.values(shape.iter().product(), 1.0).into_iter().map(|x| x.abs() + 0.1).collect();
        Ok(Pair { dev: self.dev.upload(&v, shape)?, cpu: self.cpu.upload(&v, shape)? })
    }

    /// Run `op` on both devices and record the comparison.
    fn check(
        &mut self,
        case: String,
        kernel: &'static str,
        tol: Tolerance,
        op: impl Fn(&Device, bool) -> Result<Tensor>,
    ) -> Result<()> {
        let got = self.dev.download(&op(self.dev, true)?)?;
        let want = self.cpu.download(&op(&self.cpu, false)?)?;
        self.out.push(compare(case, kernel, &got, &want, tol));
        Ok(())
    }
}

/// Pick a pair's side.
fn side(p: &Pair, dev: bool) -> &Tensor {
    if dev {
        &p.dev
    } else {
        &p.cpu
    }
}

/// Run every op on `dev` and on the CPU and compare.
pub fn check_ops(dev: &Device, scale: CheckScale) -> Result<Vec<OpCheck>> {
    let mut c = Checker { dev, cpu: Device::cpu(), rng: Rng(0x5eed_cafe_f00d_d00d), out: Vec::new() };
    let thorough = scale == CheckScale::Thorough;
    check_linear(&mut c, thorough)?;
    check_norms(&mut c, thorough)?;
    check_pointwise(&mut c, thorough)?;
    check_softmax(&mut c, thorough)?;
    check_attention(&mut c, thorough)?;
    check_conv(&mut c, thorough)?;
    check_conv2d(&mut c, thorough)?;
    check_layout(&mut c, thorough)?;
    check_padding(&mut c, thorough)?;
    check_stats_pool(&mut c, thorough)?;
    check_lstm(&mut c, thorough)?;
    check_token_choice(&mut c, thorough)?;
    Ok(c.out)
}

fn check_linear(c: &mut Checker, thorough: bool) -> Result<()> {
    let shapes: &[(usize, usize, usize)] = if thorough {
        &[(1, 1, 1), (1, 384, 384), (3, 17, 5), (5, 51, 384), (33, 65, 31), (257, 130, 96)]
    } else {
        &[(7, 33, 24)]
    };
    for &(rows, n, k) in shapes {
        let x = c.tensor(&[rows, k], 1.0)?;
        let w = c.tensor(&[n, k], 0.5)?;
        let b = c.tensor(&[n], 0.5)?;
        c.check(format!("linear f32 x[{rows}, {k}] w[{n}, {k}]"), "cuBLAS+activation", f32_gemm(k), |d, s| {
            d.linear(side(&x, s), side(&w, s), Some(side(&b, s)))
        })?;
        let wh = c.half(&[n, k], 0.5)?;
        c.check(format!("linear f16 x[{rows}, {k}] w[{n}, {k}]"), "cast+cuBLAS", f16_gemm(k), |d, s| {
            d.linear(side(&x, s), side(&wh, s), None)
        })?;
        c.check(format!("linear+gelu f16 x[{rows}, {k}] w[{n}, {k}]"), "activation(gelu)", f16_gemm(k), |d, s| {
            d.linear_activation(side(&x, s), side(&wh, s), Some(side(&b, s)), Activation::Gelu)
        })?;
        let r = c.tensor(&[rows, n], 2.0)?;
        c.check(
            format!("linear+residual f16 x[{rows}, {k}] w[{n}, {k}]"),
            "activation(bias_residual)",
            f16_gemm(k),
            |d, s| d.linear_residual(side(&x, s), side(&wh, s), Some(side(&b, s)), side(&r, s)),
        )?;
        c.check(
            format!("linear+residual f32 no bias x[{rows}, {k}] w[{n}, {k}]"),
            "activation(bias_residual)",
            f32_gemm(k),
            |d, s| d.linear_residual(side(&x, s), side(&w, s), None, side(&r, s)),
        )?;
    }
    let shapes: &[(usize, usize, usize, usize)] =
        if thorough { &[(1, 1, 1, 1), (2, 7, 9, 5), (6, 33, 17, 64), (3, 64, 100, 31)] } else { &[(2, 7, 9, 5)] };
    for &(b, m, n, k) in shapes {
        let a = c.tensor(&[b, m, k], 1.0)?;
        let bn = c.tensor(&[b, k, n], 1.0)?;
        let bt = c.tensor(&[b, n, k], 1.0)?;
        c.check(format!("matmul [{b}, {m}, {k}]·[{b}, {k}, {n}]"), "cuBLAS", f32_gemm(k), |d, s| {
            d.matmul(side(&a, s), side(&bn, s), false)
        })?;
        c.check(format!("matmul [{b}, {m}, {k}]·[{b}, {n}, {k}]ᵀ"), "cuBLAS", f32_gemm(k), |d, s| {
            d.matmul(side(&a, s), side(&bt, s), true)
        })?;
    }
    Ok(())
}

fn check_norms(c: &mut Checker, thorough: bool) -> Result<()> {
    let widths: &[(usize, usize)] =
        if thorough { &[(1, 1), (3, 31), (5, 384), (2, 1280), (9, 257), (1500, 384)] } else { &[(5, 384)] };
    for &(rows, d) in widths {
        let x = c.tensor(&[rows, d], 3.0)?;
        let g = c.tensor(&[d], 1.0)?;
        let b = c.tensor(&[d], 1.0)?;
        c.check(format!("layer_norm [{rows}, {d}]"), "layer_norm", F32, |dv, s| {
            dv.layer_norm(side(&x, s), side(&g, s), side(&b, s), 1e-5)
        })?;
    }
    let shapes: &[(usize, usize, usize, usize)] =
        if thorough { &[(1, 4, 1, 2), (2, 6, 33, 3), (2, 512, 49, 512), (1, 16, 300, 1)] } else { &[(2, 6, 33, 3)] };
    for &(b, ch, t, groups) in shapes {
        let x = c.tensor(&[b, ch, t], 2.0)?;
        let g = c.tensor(&[ch], 1.0)?;
        let be = c.tensor(&[ch], 1.0)?;
        c.check(format!("group_norm [{b}, {ch}, {t}] groups {groups}"), "group_norm", F32, |d, s| {
            d.group_norm(side(&x, s), groups, side(&g, s), side(&be, s), 1e-5)
        })?;
        c.check(format!("instance_norm [{b}, {ch}, {t}] no affine"), "group_norm", F32, |d, s| {
            d.instance_norm(side(&x, s), None, None, 1e-5)
        })?;
        let mean = c.tensor(&[ch], 1.0)?;
        let var = c.positive(&[ch])?;
        c.check(format!("batch_norm [{b}, {ch}, {t}]"), "group_norm", F32, |d, s| {
            d.batch_norm(side(&x, s), side(&mean, s), side(&var, s), side(&g, s), side(&be, s), 1e-5)
        })?;
        c.check(format!("batch_norm_relu [{b}, {ch}, {t}]"), "group_norm", F32, |d, s| {
            d.batch_norm_relu(side(&x, s), side(&mean, s), side(&var, s), side(&g, s), side(&be, s), 1e-5)
        })?;
    }
    // BatchNorm2d over [B, C, H, W] (a ResNet speaker encoder) and BatchNorm1d over [B, C].
    let shapes: &[&[usize]] =
        if thorough { &[&[2, 32, 20, 37], &[1, 3, 1, 1], &[3, 64, 10, 9], &[5, 192]] } else { &[&[2, 4, 5, 7]] };
    for &shape in shapes {
        let ch = shape[1];
        let x = c.tensor(shape, 2.0)?;
        let (mean, var, g, be) =
            (c.tensor(&[ch], 1.0)?, c.positive(&[ch])?, c.tensor(&[ch], 1.0)?, c.tensor(&[ch], 1.0)?);
        c.check(format!("batch_norm {shape:?}"), "group_norm", F32, |d, s| {
            d.batch_norm(side(&x, s), side(&mean, s), side(&var, s), side(&g, s), side(&be, s), 1e-5)
        })?;
        c.check(format!("batch_norm_relu {shape:?}"), "group_norm", F32, |d, s| {
            d.batch_norm_relu(side(&x, s), side(&mean, s), side(&var, s), side(&g, s), side(&be, s), 1e-5)
        })?;
    }
    Ok(())
}

fn check_pointwise(c: &mut Checker, thorough: bool) -> Result<()> {
    let n = if thorough { 70_001 } else { 1000 };
    let x = c.tensor(&[n], 4.0)?;
    let acts = [
        Activation::Gelu,
        Activation::Relu,
        Activation::LeakyRelu(0.01),
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Exp,
        Activation::Log { floor: 1e-10 },
        Activation::Abs,
    ];
    for act in acts {
        c.check(format!("activation {act:?} [{n}]"), "activation", F32, |d, s| d.activation(side(&x, s), act))?;
    }
    let p = c.positive(&[n])?;
    c.check(format!("activation Sqrt [{n}]"), "activation", F32, |d, s| d.activation(side(&p, s), Activation::Sqrt))?;
    c.check(format!("scale [{n}]"), "activation", F32, |d, s| d.scale(side(&x, s), 0.125))?;
    let cases: &[(&[usize], &[usize])] = if thorough {
        &[
            (&[2, 3, 5], &[2, 3, 5]),
            (&[2, 3, 5], &[5]),
            (&[4, 7, 3], &[7, 1]),
            (&[2, 1500, 384], &[1500, 384]),
            (&[3, 1, 4, 5], &[1, 1, 5]),
        ]
    } else {
        &[(&[4, 7, 3], &[7, 1])]
    };
    for &(a_shape, b_shape) in cases {
        let a = c.tensor(a_shape, 2.0)?;
        let b = c.positive(b_shape)?;
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
            c.check(format!("binary {op:?} {a_shape:?} by {b_shape:?}"), "binary", F32, |d, s| {
                d.binary(side(&a, s), side(&b, s), op)
            })?;
        }
    }
    Ok(())
}

fn check_softmax(c: &mut Checker, thorough: bool) -> Result<()> {
    let shapes: &[(usize, usize)] =
        if thorough { &[(1, 1), (3, 33), (5, 1500), (2, 51865), (300, 7)] } else { &[(3, 1500)] };
    for &(rows, d) in shapes {
        let x = c.tensor(&[rows, d], 8.0)?;
        c.check(format!("softmax [{rows}, {d}]"), "softmax", F32, |dv, s| dv.softmax(side(&x, s)))?;
        c.check(format!("log_softmax [{rows}, {d}]"), "softmax", F32, |dv, s| dv.log_softmax(side(&x, s)))?;
        c.check(format!("reduce Max/Sum [{rows}, {d}]"), "reduce", f32_gemm(d), |dv, s| {
            let m = dv.reduce(side(&x, s), Reduce::Max)?;
            let sum = dv.reduce(side(&x, s), Reduce::Sum)?;
            dv.concat(&[&m, &sum], 0)
        })?;
        c.check(format!("reduce Mean/Std [{rows}, {d}]"), "reduce", F32, |dv, s| {
            let m = dv.reduce(side(&x, s), Reduce::Mean)?;
            let sd = dv.reduce(side(&x, s), Reduce::Std)?;
            dv.concat(&[&m, &sd], 0)
        })?;
        let got = c.dev.argmax(&x.dev)?;
        let want = c.cpu.argmax(&x.cpu)?;
        let as_f32 = |v: Vec<u32>| v.into_iter().map(|i| i as f32).collect::<Vec<_>>();
        c.out.push(compare(
            format!("argmax [{rows}, {d}]"),
            "reduce",
            &as_f32(got),
            &as_f32(want),
            Tolerance { atol: 0.0, rtol: 0.0 },
        ));
    }
    Ok(())
}

/// An attention case with key lengths: (batch of q, key/value lengths, tq, tk, heads, head size).
type KvLensCase = (usize, &'static [usize], usize, usize, usize, usize);

fn check_attention(c: &mut Checker, thorough: bool) -> Result<()> {
    // (batch of q, batch of k/v, tq, tk, heads, head size, causal)
    type Case = (usize, usize, usize, usize, usize, usize, bool);
    let f32_cases: &[Case] = if thorough {
        &[
            (1, 1, 1, 1, 1, 8, false),
            (1, 1, 1, 1500, 6, 64, false),    // decoder step, cross-attention (tiny)
            (5, 1, 1, 1500, 6, 64, false),    // five beams sharing one audio's keys
            (5, 5, 1, 37, 6, 64, true),       // decoder step over a KV cache
            (2, 2, 9, 9, 4, 64, true),        // the prompt pass
            (1, 1, 1500, 1500, 6, 64, false), // an encoder window (tiny.en)
            (2, 2, 45, 77, 3, 20, false),     // odd head size and lengths
            (1, 1, 33, 33, 2, 128, true),     // the largest head size
            (3, 1, 17, 31, 1, 80, false),
        ]
    } else {
        &[(2, 1, 3, 45, 2, 64, true), (1, 1, 20, 20, 2, 64, false)]
    };
    // Keys and values kept in f16 (`attention_f16kv`: a decoder's cross-attention, rounded once
    // a window): each side rounds the same f32 values (`to_float16`) and attends over them.
    let f16_cases: &[Case] = if thorough {
        &[
            (35, 7, 1, 1500, 6, 64, false), // 7 chunks x 5 beams, one decoding step
            (10, 2, 3, 1500, 6, 64, false), // the prompt pass over them
            (4, 2, 1, 301, 2, 24, false),   // odd head size, keys off the 32-key tiles
            (1, 1, 33, 65, 3, 40, true),
        ]
    } else {
        &[(10, 2, 1, 301, 2, 64, false)]
    };
    let all = f32_cases.iter().map(|c| (c, false)).chain(f16_cases.iter().map(|c| (c, true)));
    for (&(b, bk, tq, tk, heads, dh, causal), half) in all {
        let d = heads * dh;
        let q = c.tensor(&[b, tq, d], 1.0)?;
        let k = c.tensor(&[bk, tk, d], 1.0)?;
        let v = c.tensor(&[bk, tk, d], 1.0)?;
        let (kind, kernel) = if half { (" f16 k/v", "attention_f16kv") } else { ("", "attention") };
        let case = format!("attention{kind} q[{b}, {tq}, {d}] k[{bk}, {tk}, {d}] heads {heads} causal {causal}");
        c.check(case, kernel, f32_gemm(dh), |dv, s| {
            if half {
                let (kh, vh) = (dv.to_float16(side(&k, s))?, dv.to_float16(side(&v, s))?);
                dv.attention(side(&q, s), &kh, &vh, heads, causal)
            } else {
                dv.attention(side(&q, s), side(&k, s), side(&v, s), heads, causal)
            }
        })?;
    }
    // Key lengths (a padded batch of different lengths): (batch of q, key/value lengths, tq, tk,
    // heads, head size). Lengths off the 32-key tiles and the 16-query blocks, rows with all
    // their keys and with a single one, more queries than keys.
    let cases: &[KvLensCase] = if thorough {
        &[
            (1, &[1], 1, 1, 1, 8),
            (3, &[45, 7, 1], 45, 45, 2, 64), // wav2vec2 segments padded to the longest
            (2, &[33, 32], 33, 33, 12, 64),  // base-size heads, one key past a tile
            (4, &[100, 65, 31, 97], 100, 100, 16, 64), // large-size heads
            (2, &[17, 64], 70, 64, 3, 20),   // odd head size, Tq ≠ Tk
            (4, &[9, 3], 5, 9, 2, 128),      // two query rows per key/value row, largest head
            (1, &[1499], 1500, 1500, 6, 64), // a 30 s window less one frame
        ]
    } else {
        &[(2, &[20, 7], 20, 20, 2, 64)]
    };
    for &(b, lens, tq, tk, heads, dh) in cases {
        let d = heads * dh;
        let bk = lens.len();
        let q = c.tensor(&[b, tq, d], 1.0)?;
        let k = c.tensor(&[bk, tk, d], 1.0)?;
        let v = c.tensor(&[bk, tk, d], 1.0)?;
        let case = format!("attention_kv_lens q[{b}, {tq}, {d}] k[{bk}, {tk}, {d}] heads {heads} lengths {lens:?}");
        c.check(case, "attention", f32_gemm(dh), |dv, s| {
            dv.attention_kv_lens(side(&q, s), side(&k, s), side(&v, s), heads, lens)
        })?;
    }
    Ok(())
}

/// One conv1d case: input `[batch, c_in, t]`, `c_out` filters of width `kernel`.
struct ConvCase {
    batch: usize,
    c_in: usize,
    t: usize,
    c_out: usize,
    kernel: usize,
    p: Conv1dParams,
}

#[allow(clippy::too_many_arguments)]
const fn conv(
    batch: usize,
    c_in: usize,
    t: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    groups: usize,
) -> ConvCase {
    ConvCase { batch, c_in, t, c_out, kernel, p: Conv1dParams { stride, padding, dilation, groups } }
}

fn check_conv(c: &mut Checker, thorough: bool) -> Result<()> {
    let cases: &[ConvCase] = if thorough {
        &[
            conv(1, 80, 3000, 384, 3, 1, 1, 1, 1),  // Whisper conv1 (tiny)
            conv(1, 384, 3000, 384, 3, 2, 1, 1, 1), // Whisper conv2
            conv(2, 1, 1601, 16, 10, 5, 0, 1, 1),   // wav2vec2's first feature conv
            conv(1, 32, 77, 32, 9, 1, 4, 1, 16),    // grouped (wav2vec2 positional conv)
            conv(2, 7, 50, 5, 3, 1, 2, 3, 1),       // dilated (ECAPA)
            conv(1, 3, 2, 4, 5, 1, 0, 1, 1),        // kernel longer than the input
        ]
    } else {
        &[conv(1, 8, 50, 12, 3, 2, 1, 1, 1)]
    };
    for case in cases {
        let &ConvCase { batch: b, c_in: ci, t, c_out: co, kernel: k, p } = case;
        let groups = p.groups;
        let x = c.tensor(&[b, ci, t], 1.0)?;
        let w = c.tensor(&[co, ci / groups, k], 0.3)?;
        let bias = c.tensor(&[co], 0.3)?;
        c.check(
            format!("conv1d x[{b}, {ci}, {t}] w[{co}, {}, {k}] {p:?}", ci / groups),
            "conv",
            f32_gemm(ci * k),
            |d, s| d.conv1d(side(&x, s), side(&w, s), Some(side(&bias, s)), p),
        )?;
    }
    let x = c.tensor(&[2, 3, if thorough { 1001 } else { 20 }], 1.0)?;
    for (k, stride) in [(3, 3), (2, 1), (5, 2)] {
        c.check(format!("max_pool1d {:?} kernel {k} stride {stride}", x.dev.shape()), "conv", F32, |d, s| {
            d.max_pool1d(side(&x, s), k, stride)
        })?;
    }
    // (channels, time, windows, hop, length): SincNet's shared filter bank (80 filters, 32
    // windows of 7975 frames every 800) and ragged ones.
    let windows: &[(usize, usize, usize, usize, usize)] = if thorough {
        &[(80, 32_775, 32, 800, 7975), (3, 1001, 7, 150, 101), (5, 37, 1, 0, 37)]
    } else {
        &[(3, 60, 4, 7, 33)]
    };
    for &(ch, t, count, hop, len) in windows {
        let x = c.tensor(&[ch, t], 1.0)?;
        let scale = c.tensor(&[count], 2.0)?;
        let shift = c.tensor(&[count, ch], 1.0)?;
        for pool in [3, 1, 4] {
            let label = format!("windows_abs_max_pool [{ch}, {t}] {count} windows of {len} every {hop}, pool {pool}");
            c.check(label, "conv", F32, |d, s| {
                d.windows_abs_max_pool(side(&x, s), hop, len, side(&scale, s), side(&shift, s), pool)
            })?;
        }
    }
    Ok(())
}

/// One conv2d case: input `[batch, c_in, h, w]`, `c_out` filters of `kernel`.
struct Conv2dCase {
    batch: usize,
    c_in: usize,
    hw: (usize, usize),
    c_out: usize,
    kernel: (usize, usize),
    p: Conv2dParams,
}

fn check_conv2d(c: &mut Checker, thorough: bool) -> Result<()> {
    let p = |stride, padding, dilation, groups| Conv2dParams { stride, padding, dilation, groups };
    let case = |batch, c_in, hw, c_out, kernel, p| Conv2dCase { batch, c_in, hw, c_out, kernel, p };
    let cases: Vec<Conv2dCase> = if thorough {
        vec![
            case(2, 1, (80, 51), 32, (3, 3), p((1, 1), (1, 1), (1, 1), 1)), // ResNet stem on fbanks
            case(1, 32, (40, 26), 64, (3, 3), p((2, 2), (1, 1), (1, 1), 1)), // a strided stage
            case(2, 16, (9, 13), 16, (1, 1), p((2, 2), (0, 0), (1, 1), 1)), // 1×1 shortcut
            case(1, 8, (17, 11), 8, (3, 5), p((1, 2), (2, 1), (2, 1), 4)),  // grouped, dilated
            case(1, 3, (2, 3), 4, (5, 5), p((1, 1), (0, 0), (1, 1), 1)),    // kernel larger than input
            case(3, 5, (7, 33), 7, (2, 3), p((3, 1), (1, 0), (1, 2), 1)),
        ]
    } else {
        vec![case(1, 4, (9, 10), 6, (3, 3), p((2, 1), (1, 1), (1, 1), 2))]
    };
    for Conv2dCase { batch: b, c_in: ci, hw: (h, w), c_out: co, kernel: (kh, kw), p } in cases {
        let x = c.tensor(&[b, ci, h, w], 1.0)?;
        let wt = c.tensor(&[co, ci / p.groups, kh, kw], 0.3)?;
        let bias = c.tensor(&[co], 0.3)?;
        c.check(
            format!("conv2d x[{b}, {ci}, {h}, {w}] w[{co}, {}, {kh}, {kw}] {p:?}", ci / p.groups),
            "conv",
            f32_gemm(ci / p.groups * kh * kw),
            |d, s| d.conv2d(side(&x, s), side(&wt, s), Some(side(&bias, s)), p),
        )?;
    }
    Ok(())
}

fn check_padding(c: &mut Checker, thorough: bool) -> Result<()> {
    // (shape, dim, before, after)
    let cases: &[(&[usize], usize, usize, usize)] = if thorough {
        &[
            (&[2, 80, 301], 2, 2, 2),
            (&[3, 5], 1, 4, 0),
            (&[1, 7, 33, 5], 1, 6, 6),
            (&[9], 0, 1, 8),
            (&[2, 3, 1000], 2, 255, 257),
        ]
    } else {
        &[(&[2, 6, 17], 2, 3, 2)]
    };
    for &(shape, dim, before, after) in cases {
        let x = c.tensor(shape, 1.0)?;
        c.check(format!("pad constant {shape:?} dim {dim} ({before}, {after})"), "layout", F32, |d, s| {
            d.pad(side(&x, s), dim, before, after, Padding::Constant(0.5))
        })?;
        if before < shape[dim] && after < shape[dim] {
            c.check(format!("pad reflect {shape:?} dim {dim} ({before}, {after})"), "layout", F32, |d, s| {
                d.pad(side(&x, s), dim, before, after, Padding::Reflect)
            })?;
        }
    }
    Ok(())
}

fn check_stats_pool(c: &mut Checker, thorough: bool) -> Result<()> {
    let shapes: &[(usize, usize, usize)] =
        if thorough { &[(1, 1, 2), (2, 256, 300), (3, 5, 3), (4, 80, 1001), (2, 3, 257)] } else { &[(2, 8, 50)] };
    for &(b, ch, t) in shapes {
        let x = c.tensor(&[b, ch, t], 2.0)?;
        let w = c.positive(&[b, t])?;
        if t > 1 {
            c.check(format!("stats_pool [{b}, {ch}, {t}]"), "pooling", F32, |d, s| d.stats_pool(side(&x, s), None))?;
        }
        c.check(format!("stats_pool [{b}, {ch}, {t}] weighted"), "pooling", F32, |d, s| {
            d.stats_pool(side(&x, s), Some(side(&w, s)))
        })?;
    }
    Ok(())
}

fn check_layout(c: &mut Checker, thorough: bool) -> Result<()> {
    let (vocab, dim) = if thorough { (51865, 384) } else { (100, 24) };
    let table = c.tensor(&[vocab, dim], 1.0)?;
    let half_table = c.half(&[vocab, dim], 1.0)?;
    let ids: Vec<u32> = (0..9).map(|_| c.rng.below(vocab) as u32).collect();
    c.check(format!("embedding f32 [{vocab}, {dim}] {} ids", ids.len()), "embedding", F32, |d, s| {
        d.embedding(&ids, side(&table, s))
    })?;
    c.check(format!("embedding f16 [{vocab}, {dim}] {} ids", ids.len()), "embedding", F32, |d, s| {
        d.embedding(&ids, side(&half_table, s))
    })?;
    c.check(format!("download f16 [{vocab}, {dim}]"), "embedding", F32, |_, s| Ok(side(&half_table, s).clone()))?;
    let positions = c.tensor(&[448, dim], 1.0)?;
    for (offset, seq_len) in [(0, 3), (5, 1), (445, 3)] {
        let ids: Vec<u32> = (0..3 * seq_len).map(|_| c.rng.below(vocab) as u32).collect();
        c.check(
            format!("embedding+positions f16 {} ids, rows of {seq_len} at {offset}", ids.len()),
            "embedding",
            F32,
            |d, s| d.embedding_with_positions(&ids, side(&half_table, s), side(&positions, s), offset, seq_len),
        )?;
    }
    let x = c.tensor(&[3, 5, 7, 2], 1.0)?;
    for perm in [[0, 2, 1, 3], [3, 2, 1, 0], [1, 0, 3, 2]] {
        c.check(format!("permute [3, 5, 7, 2] {perm:?}"), "layout", F32, |d, s| d.permute(side(&x, s), &perm))?;
    }
    for (dim, start, len) in [(0, 1, 2), (1, 0, 5), (2, 3, 4), (3, 1, 1), (2, 6, 0)] {
        c.check(format!("slice [3, 5, 7, 2] dim {dim} [{start}, +{len})"), "layout", F32, |d, s| {
            d.slice(side(&x, s), dim, start, len)
        })?;
    }
    let y = c.tensor(&[3, 2, 7, 2], 1.0)?;
    c.check("concat [3, 5, 7, 2] + [3, 2, 7, 2] dim 1".into(), "layout", F32, |d, s| {
        d.concat(&[side(&x, s), side(&y, s), side(&x, s)], 1)
    })?;
    c.check("index_select rows [2, 0, 0, 1]".into(), "layout", F32, |d, s| d.index_select(side(&x, s), &[2, 0, 0, 1]))?;
    // f16 casts (round to nearest even, widened exactly) and the rows of an f16 tensor, whose
    // last 256-thread block is partial in the thorough case.
    let rows = if thorough { c.tensor(&[7, 1500, 384], 4.0)? } else { c.tensor(&[3, 5, 7, 2], 4.0)? };
    c.check("to_float16 then to_float32".into(), "cast_f32_to_f16", F32, |d, s| {
        d.to_float32(&d.to_float16(side(&rows, s))?)
    })?;
    c.check("index_select f16 rows [2, 0, 0, 1]".into(), "gather_rows_f16", F32, |d, s| {
        d.to_float32(&d.index_select(&d.to_float16(side(&rows, s))?, &[2, 0, 0, 1])?)
    })?;
    // A beam search's cache: 7 chunks × 5 beams of 36 positions of 384, grown by one (497,280
    // values: the last 256-thread block is partial); and a small one with a row repeated and a
    // step of 3.
    let cases: &[(usize, usize, usize, usize)] =
        if thorough { &[(35, 36, 384, 1), (3, 2, 7, 3)] } else { &[(3, 2, 7, 3)] };
    for &(rows, t, width, step) in cases {
        let cache = c.tensor(&[rows, t, width], 1.0)?;
        let new = c.tensor(&[rows, step, width], 1.0)?;
        let sources: Vec<usize> = (0..rows).map(|r| if r % 3 == 1 { r - 1 } else { rows - 1 - r }).collect();
        c.check(format!("gather_append [{rows}, {t}, {width}] + {step}"), "layout", F32, |d, s| {
            d.gather_append(side(&cache, s), &sources, side(&new, s))
        })?;
    }
    Ok(())
}

fn check_lstm(c: &mut Checker, thorough: bool) -> Result<()> {
    let cases: &[(usize, usize, usize, usize)] =
        if thorough { &[(1, 1, 3, 2), (2, 50, 60, 128), (3, 7, 33, 31)] } else { &[(2, 5, 12, 8)] };
    for &(b, t, input, hidden) in cases {
        let x = c.tensor(&[b, t, input], 1.0)?;
        let w_ih = c.tensor(&[4 * hidden, input], 0.3)?;
        let w_hh = c.tensor(&[4 * hidden, hidden], 0.3)?;
        let b_ih = c.tensor(&[4 * hidden], 0.3)?;
        let b_hh = c.tensor(&[4 * hidden], 0.3)?;
        for reverse in [false, true] {
            c.check(
                format!("lstm x[{b}, {t}, {input}] hidden {hidden} reverse {reverse}"),
                "lstm",
                f32_gemm(input + hidden),
                |d, s| d.lstm(side(&x, s), side(&w_ih, s), side(&w_hh, s), side(&b_ih, s), side(&b_hh, s), reverse),
            )?;
        }
    }
    Ok(())
}

/// Ids (exact) and log-probabilities (within `F32`) of token choices, flattened.
fn flatten(choices: &[TokenChoice]) -> (Vec<f32>, Vec<f32>) {
    let (mut ids, mut lps) = (Vec::new(), Vec::new());
    for c in choices {
        for &(id, lp) in std::iter::once(&c.best).chain(&c.top).chain(c.sampled.as_ref()) {
            ids.push(id as f32);
            lps.push(lp);
        }
    }
    (ids, lps)
}

fn check_token_choice(c: &mut Checker, thorough: bool) -> Result<()> {
    let vocab = if thorough { 51865 } else { 1000 };
    let split = vocab - vocab / 30; // the "timestamps"
                                    // Row 0 plain; row 1 masked ids and ranges; row 2's mass above the split beats every id below
                                    // it (the dominance rule fires); row 3's does not; row 4 masks all but a handful.
    let rows = 5;
    let mut values = c.rng.values(rows * vocab, 4.0);
    values[2 * vocab + split..3 * vocab].fill(1.0);
    values[3 * vocab + split..4 * vocab].fill(-30.0);
    let x = Pair { dev: c.dev.upload(&values, &[rows, vocab])?, cpu: c.cpu.upload(&values, &[rows, vocab])? };
    let masks = vec![
        RowMask::default(),
        RowMask {
            ids: (0..vocab as u32).step_by(7).chain([vocab as u32 + 5]).collect(),
            ranges: vec![(split as u32, u32::MAX)],
            dominance_split: None,
        },
        RowMask { ids: vec![3, 1, 2], ranges: vec![(10, 20)], dominance_split: Some(split as u32) },
        RowMask { ids: vec![], ranges: vec![(0, 5)], dominance_split: Some(split as u32) },
        RowMask { ids: vec![], ranges: vec![(0, 100), (105, u32::MAX)], dominance_split: None },
    ];
    let uniforms: Vec<f64> = (0..rows).map(|_| (c.rng.next() as f64 + 1.0) * 0.5).collect();
    let warm = Sampling { temperature: 0.7, uniforms: uniforms.clone() };
    let hot = Sampling { temperature: 1.5, uniforms };
    for (k, sampling) in [(0, None), (6, None), (1, Some(&warm)), (16, Some(&hot))] {
        let case = format!("choose_tokens [{rows}, {vocab}] k {k} sampling {:?}", sampling.map(|s| s.temperature));
        let got = flatten(&c.dev.choose_tokens(&x.dev, &masks, k, sampling)?);
        let want = flatten(&c.cpu.choose_tokens(&x.cpu, &masks, k, sampling)?);
        c.out.push(compare(format!("{case} ids"), "token_choice", &got.0, &want.0, Tolerance { atol: 0.0, rtol: 0.0 }));
        c.out.push(compare(format!("{case} log-probs"), "token_choice", &got.1, &want.1, F32));
    }
    let got = [c.dev.logprob_of(&x.dev, 2, 7)?, c.dev.logprob_of(&x.dev, 4, (vocab - 1) as u32)?];
    let want = [c.cpu.logprob_of(&x.cpu, 2, 7)?, c.cpu.logprob_of(&x.cpu, 4, (vocab - 1) as u32)?];
    c.out.push(compare(format!("logprob_of [{rows}, {vocab}]"), "softmax", &got, &want, F32));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_backend_passes_its_own_check_and_a_wrong_result_fails() {
        // The harness itself: CPU against CPU is exact, and a perturbed value is caught.
        let cpu = Device::cpu();
        let checks = check_ops(&cpu, CheckScale::Startup).unwrap();
        assert!(checks.len() > 30, "{} checks", checks.len());
        for c in &checks {
            assert!(c.passed && c.max_abs == 0.0, "{c}");
        }
        let bad = compare("x".into(), "k", &[1.0, 2.0, 3.5], &[1.0, 2.0, 3.0], F32);
        assert!(!bad.passed && (bad.max_abs - 0.5).abs() < 1e-6);
        let nan = compare("x".into(), "k", &[f32::NAN], &[1.0], F32);
        assert!(!nan.passed);
    }
}
