//! [`Backend`] for [`CudaBackend`]: each op forwards to its file (elementwise, linear, norm,
//! attention, conv, layout, lstm).

use std::sync::Arc;

use super::backend::CudaBackend;
use super::elementwise::{activation_code, NO_ACTIVATION};
use super::storage::{storage, CudaStorage};
use crate::backend::{Activation, Backend, BinaryOp, Conv1dParams, Reduce, RowMask, Sampling, Tensor, TokenChoice};
use crate::error::{Error, Result};

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn describe(&self) -> String {
        let (major, minor) = self.info.compute_capability;
        let origins: Vec<String> = self.kernels.origins.iter().map(|(n, o)| format!("{n}:{o:?}")).collect();
        format!("cuda GPU {} sm_{major}{minor}; kernels {}", self.info.device_name, origins.join(" "))
    }

    fn compute_type(&self) -> &'static str {
        // f16 checkpoint weights run on the tensor cores with f32 accumulation.
        "float16"
    }

    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        if shape.iter().product::<usize>() != data.len() {
            return Err(Error::shape("upload", format!("{} values for shape {shape:?}", data.len())));
        }
        let buf = self.to_device(data)?;
        Ok(Tensor::from_storage(shape.to_vec(), Arc::new(CudaStorage::F32(buf))))
    }

    fn upload_f16(&self, data: &[half::f16], shape: &[usize]) -> Result<Tensor> {
        if shape.iter().product::<usize>() != data.len() {
            return Err(Error::shape("upload_f16", format!("{} values for shape {shape:?}", data.len())));
        }
        let buf = self.to_device(data)?;
        Ok(Tensor::from_storage(shape.to_vec(), Arc::new(CudaStorage::F16(buf))))
    }

    fn download(&self, t: &Tensor) -> Result<Vec<f32>> {
        match storage(t)? {
            CudaStorage::F32(s) => self.to_host(s, t.numel()),
            CudaStorage::F16(s) => Ok(self.to_host(s, t.numel())?.into_iter().map(|v| v.to_f32()).collect()),
        }
    }

    fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        self.linear_op(x, w, b, NO_ACTIVATION)
    }

    fn linear_activation(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, act: Activation) -> Result<Tensor> {
        self.linear_op(x, w, b, activation_code(act))
    }

    fn linear_residual(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, residual: &Tensor) -> Result<Tensor> {
        self.linear_residual_op(x, w, b, residual)
    }

    fn matmul(&self, a: &Tensor, b: &Tensor, transpose_b: bool) -> Result<Tensor> {
        self.matmul_op(a, b, transpose_b)
    }

    fn conv1d(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv1dParams) -> Result<Tensor> {
        self.conv1d_op(x, w, b, p)
    }

    fn layer_norm(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor> {
        self.layer_norm_op(x, gamma, beta, eps)
    }

    fn group_norm(&self, x: &Tensor, groups: usize, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor> {
        self.group_norm_op(x, groups, Some(gamma), Some(beta), eps)
    }

    fn instance_norm(&self, x: &Tensor, gamma: Option<&Tensor>, beta: Option<&Tensor>, eps: f32) -> Result<Tensor> {
        let (_, c, _) = x.dims3("instance_norm")?;
        self.group_norm_op(x, c, gamma, beta, eps)
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
        self.batch_norm_op(x, mean, var, gamma, beta, eps)
    }

    fn activation(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        self.activation_op(x, act)
    }

    fn binary(&self, a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
        self.binary_op(a, b, op)
    }

    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        self.scale_op(x, s)
    }

    fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        self.softmax_op(x, false)
    }

    fn log_softmax(&self, x: &Tensor) -> Result<Tensor> {
        self.softmax_op(x, true)
    }

    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
        self.attention_op(q, k, v, heads, causal)
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
        self.lstm_op(x, w_ih, w_hh, b_ih, b_hh, reverse)
    }

    fn embedding(&self, ids: &[u32], table: &Tensor) -> Result<Tensor> {
        self.embedding_op(ids, table)
    }

    fn embedding_with_positions(
        &self,
        ids: &[u32],
        table: &Tensor,
        positions: &Tensor,
        offset: usize,
        seq_len: usize,
    ) -> Result<Tensor> {
        self.embedding_with_positions_op(ids, table, positions, offset, seq_len)
    }

    fn permute(&self, x: &Tensor, perm: &[usize]) -> Result<Tensor> {
        self.permute_op(x, perm)
    }

    fn slice(&self, x: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        self.slice_op(x, dim, start, len)
    }

    fn index_select(&self, x: &Tensor, indices: &[usize]) -> Result<Tensor> {
        self.index_select_op(x, indices)
    }

    fn concat(&self, xs: &[&Tensor], dim: usize) -> Result<Tensor> {
        self.concat_op(xs, dim)
    }

    fn reduce(&self, x: &Tensor, op: Reduce) -> Result<Tensor> {
        self.reduce_op(x, op)
    }

    fn max_pool1d(&self, x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
        self.max_pool1d_op(x, kernel, stride)
    }

    fn argmax(&self, x: &Tensor) -> Result<Vec<u32>> {
        self.argmax_op(x)
    }

    fn choose_tokens(
        &self,
        logits: &Tensor,
        masks: &[RowMask],
        k: usize,
        sampling: Option<&Sampling>,
    ) -> Result<Vec<TokenChoice>> {
        self.choose_tokens_op(logits, masks, k, sampling)
    }

    fn logprob_of(&self, logits: &Tensor, row: usize, id: u32) -> Result<f32> {
        self.logprob_of_op(logits, row, id)
    }
}
