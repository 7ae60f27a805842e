//! Activations and broadcasting binary ops.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::math;
use super::simd::{multiversion, SimdLevel};
use super::{data, tensor, written, CpuBackend};
use crate::backend::kernels::ElementwiseOps;
use crate::backend::{Activation, BinaryOp, Tensor};
use crate::error::Result;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

multiversion! {
    fn apply(act: Activation, x: &[f32], out: &mut [MaybeUninit<f32>]) {
        // A loop of its own for each activation, so each vectorises.
        macro_rules! each {
            (|$v:ident| $e:expr) => {
                out.iter_mut().zip(x).for_each(|(o, &$v)| {
                    o.write($e);
                })
            };
        }
        match act {
            Activation::Gelu => each!(|v| math::gelu(v)),
            Activation::Relu => each!(|v| v.max(0.0)),
            Activation::LeakyRelu(s) => each!(|v| if v >= 0.0 { v } else { v * s }),
            Activation::Sigmoid => each!(|v| math::sigmoid(v)),
            Activation::Tanh => each!(|v| math::tanh(v)),
            Activation::Exp => each!(|v| math::exp(v)),
            Activation::Log { floor } => each!(|v| v.max(floor).ln()),
            Activation::Sqrt => each!(|v| v.sqrt()),
            Activation::Abs => each!(|v| v.abs()),
        }
    }
}

pub fn activation(level: SimdLevel, x: &Tensor, act: Activation) -> Result<Tensor> {
    let xd = data(x)?;
    // SAFETY: `apply` writes every element of each chunk it is given, and the chunks cover the
    // output.
    let out = unsafe {
        written(xd.len(), |out| {
            out.par_chunks_mut(CHUNK).zip(xd.par_chunks(CHUNK)).for_each(|(o, c)| apply(level, act, c, o))
        })
    };
    Ok(tensor(x.shape().to_vec(), out))
}

#[inline(always)]
fn op_fn(op: BinaryOp) -> fn(f32, f32) -> f32 {
    match op {
        BinaryOp::Add => |a, b| a + b,
        BinaryOp::Sub => |a, b| a - b,
        BinaryOp::Mul => |a, b| a * b,
        BinaryOp::Div => |a, b| a / b,
    }
}

/// `out[i] = x[i] op y[i]` for each `i`, one `y` value when `y` holds one (a broadcast scalar).
/// The op is matched once, outside the loop, so each arm vectorises (a function pointer called
/// per element, as [`op_fn`] gives, does not).
#[inline(always)]
fn zip_op(op: BinaryOp, x: &[f32], y: &[f32], out: &mut [MaybeUninit<f32>]) {
    macro_rules! each {
        ($e:expr) => {
            if let [y] = *y {
                out.iter_mut().zip(x).for_each(|(o, &a)| {
                    o.write($e(a, y));
                });
            } else {
                out.iter_mut().zip(x.iter().zip(y)).for_each(|(o, (&a, &b))| {
                    o.write($e(a, b));
                });
            }
        };
    }
    match op {
        BinaryOp::Add => each!(|a: f32, b: f32| a + b),
        BinaryOp::Sub => each!(|a: f32, b: f32| a - b),
        BinaryOp::Mul => each!(|a: f32, b: f32| a * b),
        BinaryOp::Div => each!(|a: f32, b: f32| a / b),
    }
}

multiversion! {
    /// [`zip_op`] at the SIMD level's width.
    fn apply_binary(op: BinaryOp, x: &[f32], y: &[f32], out: &mut [MaybeUninit<f32>]) {
        zip_op(op, x, y, out)
    }
}

/// `a op b`, `b` broadcast to `a`'s shape (NumPy rules, `b` may have lower rank).
pub fn binary(level: SimdLevel, a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
    let (ad, bd) = (data(a)?, data(b)?);
    let (ash, bsh) = (a.shape(), b.shape());
    // b's shape right-aligned against a's (the device checked that it broadcasts).
    let pad = ash.len() - bsh.len();
    let bfull: Vec<usize> = std::iter::repeat_n(1, pad).chain(bsh.iter().copied()).collect();
    // SAFETY: every branch writes each element of the output once: the chunks of the first
    // four cover it, the last writes every index.
    let out = unsafe {
        written(ad.len(), |out| {
            if bd.len() == ad.len() {
                out.par_chunks_mut(CHUNK)
                    .zip(ad.par_chunks(CHUNK))
                    .zip(bd.par_chunks(CHUNK))
                    .for_each(|((o, x), y)| apply_binary(level, op, x, y, o));
            } else if bd.len() == 1 {
                out.par_chunks_mut(CHUNK)
                    .zip(ad.par_chunks(CHUNK))
                    .for_each(|(o, x)| apply_binary(level, op, x, bd, o));
            } else if !bd.is_empty() && is_trailing_block(ash, &bfull) {
                // b equals a trailing block of a (bias-like): repeat it.
                let n = bd.len();
                out.par_chunks_mut(n).zip(ad.par_chunks(n)).for_each(|(o, x)| apply_binary(level, op, x, bd, o));
            } else if let Some(inner) = per_row_block(ash, &bfull).filter(|&n| n > 0 && bd.len() * n == ad.len()) {
                // One value of b for each run of `inner` contiguous elements of a (a gate per channel
                // and segment, a scale per row).
                let rows_per_task = CHUNK.div_ceil(inner);
                out.par_chunks_mut(rows_per_task * inner)
                    .zip(ad.par_chunks(rows_per_task * inner))
                    .enumerate()
                    .for_each(|(task, (o, x))| {
                        let ys = &bd[task * rows_per_task..];
                        for ((o, x), y) in o.chunks_mut(inner).zip(x.chunks(inner)).zip(ys) {
                            apply_binary(level, op, x, std::slice::from_ref(y), o);
                        }
                    });
            } else {
                // General broadcast: strides of b with zeros on broadcast dimensions.
                let f = op_fn(op);
                let mut bstride = vec![0usize; ash.len()];
                let mut s = 1;
                for i in (0..ash.len()).rev() {
                    bstride[i] = if bfull[i] == 1 { 0 } else { s };
                    s *= bfull[i];
                }
                for (idx, o) in out.iter_mut().enumerate() {
                    let mut rem = idx;
                    let mut bi = 0;
                    for d in (0..ash.len()).rev() {
                        bi += (rem % ash[d]) * bstride[d];
                        rem /= ash[d];
                    }
                    o.write(f(ad[idx], bd[bi]));
                }
            }
        })
    };
    Ok(tensor(ash.to_vec(), out))
}

/// When `b` (already right-aligned) is `a`'s leading dimensions followed by 1s: the number of
/// `a`'s elements each value of `b` applies to (the product of those trailing dimensions).
fn per_row_block(a: &[usize], b: &[usize]) -> Option<usize> {
    let ones = b.iter().rev().take_while(|&&d| d == 1).count();
    let lead = b.len() - ones;
    (b[..lead] == a[..lead]).then(|| a[lead..].iter().product())
}

/// True when `b` (already right-aligned) is 1s followed by exactly `a`'s trailing dimensions.
fn is_trailing_block(a: &[usize], b: &[usize]) -> bool {
    let first = b.iter().position(|&d| d != 1).unwrap_or(b.len());
    b[first..] == a[first..]
}

impl ElementwiseOps for CpuBackend {
    fn activation(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        activation(self.simd, x, act)
    }

    fn binary(&self, a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
        binary(self.simd, a, b, op)
    }

    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        Ok(tensor(x.shape().to_vec(), data(x)?.iter().map(|v| v * s).collect()))
    }
}
