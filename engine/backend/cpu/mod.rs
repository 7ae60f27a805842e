//! The CPU backend: f32, both cores (rayon), SIMD chosen at run time. It is also the numerical
//! reference every other backend is tested against.

use std::any::Any;
use std::sync::Arc;

use super::{Activation, Backend, BinaryOp, Conv1dParams, Reduce, Storage, Tensor};
use crate::error::{Error, Result};

mod attention;
mod conv;
mod elementwise;
pub mod gemm;
mod key_tiles;
mod layout;
mod linear;
mod lstm;
pub mod math;
mod norm;
pub mod profile;
pub mod simd;
mod skinny;
pub mod softmax;

pub use simd::SimdLevel;

/// Host memory owned by the CPU backend.
pub struct CpuStorage(pub Vec<f32>);

impl Storage for CpuStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn backend_name(&self) -> &'static str {
        "cpu"
    }
}

/// A half-precision weight in host memory (see [`Backend::upload_f16`]).
pub struct CpuHalfStorage(pub Vec<half::f16>);

impl Storage for CpuHalfStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn backend_name(&self) -> &'static str {
        "cpu"
    }
}

/// Borrow a tensor's data, or fail if it lives on another backend or is a half-precision
/// weight (which only the ops that read weights accept, through [`weight`]).
pub(crate) fn data(t: &Tensor) -> Result<&[f32]> {
    let any = t.storage().as_any();
    if let Some(s) = any.downcast_ref::<CpuStorage>() {
        return Ok(&s.0[..]);
    }
    if any.is::<CpuHalfStorage>() {
        return Err(Error::Other(format!(
            "tensor {:?} is a half-precision weight; only linear, embedding and download accept one",
            t.shape()
        )));
    }
    Err(Error::Other(format!("tensor {:?} is not on the CPU backend", t.shape())))
}

/// A weight's values as stored: f32, or f16 to be widened as it is read.
#[derive(Clone, Copy)]
pub(crate) enum Weight<'a> {
    F32(&'a [f32]),
    F16(&'a [half::f16]),
}

impl Weight<'_> {
    /// Rows `rows` of a row-major `[_, cols]` weight as f32 (borrowed when already f32).
    pub(crate) fn rows_f32(
        &self,
        level: SimdLevel,
        rows: std::ops::Range<usize>,
        cols: usize,
    ) -> std::borrow::Cow<'_, [f32]> {
        match self {
            Weight::F32(w) => std::borrow::Cow::Borrowed(&w[rows.start * cols..rows.end * cols]),
            Weight::F16(w) => {
                let mut out = vec![0.0f32; rows.len() * cols];
                half_to_f32(level, &w[rows.start * cols..rows.end * cols], &mut out);
                std::borrow::Cow::Owned(out)
            }
        }
    }
}

/// Borrow a weight tensor (f32 or half precision).
pub(crate) fn weight(t: &Tensor) -> Result<Weight<'_>> {
    match t.storage().as_any().downcast_ref::<CpuHalfStorage>() {
        Some(s) => Ok(Weight::F16(&s.0[..])),
        None => data(t).map(Weight::F32),
    }
}

simd::multiversion! {
    /// Widen f16 values to f32 (exact), vectorised.
    pub(crate) fn half_to_f32(src: &[half::f16], dst: &mut [f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = math::f16_to_f32(s.to_bits());
        }
    }
}

/// Wrap a result buffer.
pub(crate) fn tensor(shape: Vec<usize>, v: Vec<f32>) -> Tensor {
    debug_assert_eq!(shape.iter().product::<usize>(), v.len());
    Tensor::from_storage(shape, Arc::new(CpuStorage(v)))
}

pub struct CpuBackend {
    simd: SimdLevel,
    /// Cross-attention keys laid out for decoder steps, reused across the steps of a window.
    key_tiles: key_tiles::KeyTileCache,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// Best SIMD level of this CPU, capped by `SCRIBE_SIMD`.
    pub fn new() -> Self {
        CpuBackend { simd: SimdLevel::from_env(), key_tiles: Default::default() }
    }

    /// A backend that uses exactly `level` (which must not exceed the CPU's).
    pub fn with_simd(level: SimdLevel) -> Self {
        CpuBackend { simd: level.min(SimdLevel::detect()), key_tiles: Default::default() }
    }

    pub fn simd(&self) -> SimdLevel {
        self.simd
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn describe(&self) -> String {
        format!("cpu simd={:?} threads={}", self.simd, rayon::current_num_threads())
    }

    fn upload(&self, d: &[f32], shape: &[usize]) -> Result<Tensor> {
        if shape.iter().product::<usize>() != d.len() {
            return Err(Error::shape("upload", format!("{} values for shape {shape:?}", d.len())));
        }
        Ok(tensor(shape.to_vec(), d.to_vec()))
    }

    fn download(&self, t: &Tensor) -> Result<Vec<f32>> {
        profile::timed("download", || Ok(weight(t)?.rows_f32(self.simd, 0..t.numel(), 1).into_owned()))
    }

    fn upload_f16(&self, d: &[half::f16], shape: &[usize]) -> Result<Tensor> {
        if shape.iter().product::<usize>() != d.len() {
            return Err(Error::shape("upload_f16", format!("{} values for shape {shape:?}", d.len())));
        }
        Ok(Tensor::from_storage(shape.to_vec(), Arc::new(CpuHalfStorage(d.to_vec()))))
    }

    fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        profile::timed(
            if x.rows_cols().0 <= skinny::SKINNY_BATCH_MAX_ROWS { "linear (skinny)" } else { "linear (gemm)" },
            || linear::linear(self.simd, x, w, b),
        )
    }

    fn matmul(&self, a: &Tensor, b: &Tensor, transpose_b: bool) -> Result<Tensor> {
        profile::timed("matmul", || linear::matmul(self.simd, a, b, transpose_b))
    }

    fn conv1d(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv1dParams) -> Result<Tensor> {
        profile::timed("conv1d", || conv::conv1d(self.simd, x, w, b, p))
    }

    fn layer_norm(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor> {
        profile::timed("layer_norm", || norm::layer_norm(self.simd, x, gamma, beta, eps))
    }

    fn group_norm(&self, x: &Tensor, groups: usize, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor> {
        profile::timed("group_norm", || norm::group_norm(x, groups, Some(gamma), Some(beta), eps))
    }

    fn instance_norm(&self, x: &Tensor, gamma: Option<&Tensor>, beta: Option<&Tensor>, eps: f32) -> Result<Tensor> {
        let (_, c, _) = x.dims3("instance_norm")?;
        norm::group_norm(x, c, gamma, beta, eps)
    }

    fn batch_norm(
        &self,
        x: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<Tensor> {
        profile::timed("batch_norm", || norm::batch_norm(x, mean, var, gamma, beta, eps))
    }

    fn activation(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        profile::timed("activation", || elementwise::activation(self.simd, x, act))
    }

    fn binary(&self, a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
        profile::timed("binary", || elementwise::binary(a, b, op))
    }

    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        profile::timed("scale", || Ok(tensor(x.shape().to_vec(), data(x)?.iter().map(|v| v * s).collect())))
    }

    fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        profile::timed("softmax", || softmax::softmax(self.simd, x, false))
    }

    fn log_softmax(&self, x: &Tensor) -> Result<Tensor> {
        profile::timed("log_softmax", || softmax::softmax(self.simd, x, true))
    }

    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
        profile::timed(if q.shape()[1] == 1 { "attention (step)" } else { "attention" }, || {
            attention::attention(self.simd, q, k, v, heads, causal, &self.key_tiles)
        })
    }

    fn lstm(
        &self,
        x: &Tensor,
        w_ih: &Tensor,
        w_hh: &Tensor,
        b_ih: &Tensor,
        b_hh: &Tensor,
        reverse: bool,
    ) -> Result<Tensor> {
        profile::timed("lstm", || lstm::lstm(self.simd, x, w_ih, w_hh, b_ih, b_hh, reverse))
    }

    fn embedding(&self, ids: &[u32], table: &Tensor) -> Result<Tensor> {
        profile::timed("embedding", || layout::embedding(self.simd, ids, table))
    }

    fn permute(&self, x: &Tensor, perm: &[usize]) -> Result<Tensor> {
        profile::timed("permute", || layout::permute(x, perm))
    }

    fn slice(&self, x: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        profile::timed("slice", || layout::slice(x, dim, start, len))
    }

    fn index_select(&self, x: &Tensor, indices: &[usize]) -> Result<Tensor> {
        profile::timed("index_select", || layout::index_select(x, indices))
    }

    fn concat(&self, xs: &[&Tensor], dim: usize) -> Result<Tensor> {
        profile::timed("concat", || layout::concat(xs, dim))
    }

    fn reduce(&self, x: &Tensor, op: Reduce) -> Result<Tensor> {
        profile::timed("reduce", || layout::reduce(x, op))
    }

    fn max_pool1d(&self, x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
        profile::timed("max_pool1d", || conv::max_pool1d(x, kernel, stride))
    }

    fn argmax(&self, x: &Tensor) -> Result<Vec<u32>> {
        profile::timed("argmax", || layout::argmax(x))
    }
}
