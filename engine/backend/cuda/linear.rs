//! `nn.Linear` and batched matmul on cuBLAS (kernels: cast.cu for f16 operands, activation.cu for
//! the bias epilogue). An f16 weight runs on the tensor cores with f16 activations and f32
//! accumulation; an f32 weight runs in f32.

use super::backend::{int, Arg, CudaBackend};
use super::elementwise::{activation_code, NO_ACTIVATION};
use super::gemm::{GemmInput, RowMajorGemm};
use super::storage::{address, f32_ptr, storage, CudaStorage};
use crate::backend::kernels::{ElementwiseOps, LinearOps};
use crate::backend::{Activation, Tensor};
use crate::error::{Error, Result};

impl CudaBackend {
    /// `act(x · wᵀ + b)`; `act` is fused with the bias in one pass over the output.
    pub(crate) fn fused_linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, act: (i32, f32)) -> Result<Tensor> {
        let (rows, k) = x.rows_cols();
        let (n, wk) = match w.shape() {
            [n, wk] => (*n, *wk),
            s => return Err(Error::shape("linear", format!("weight must be [N, K], got {s:?}"))),
        };
        if wk != k {
            return Err(Error::shape("linear", format!("x {:?} · w {:?}ᵀ", x.shape(), w.shape())));
        }
        let mut shape = x.shape().to_vec();
        *shape.last_mut().expect("rows_cols of a rank ≥ 1 tensor") = n;
        // cuBLAS leaves C untouched when k is 0; the product is then zeros.
        let (y, yp) = if k == 0 { self.output_zeroed(shape)? } else { self.output(shape)? };
        let xp = f32_ptr(x)?;
        let mut g = RowMajorGemm {
            m: rows,
            n,
            k,
            transpose_b: true,
            batch: 1,
            a: xp,
            stride_a: 0,
            b: 0,
            stride_b: 0,
            c: yp,
            stride_c: 0,
            input: GemmInput::F32,
        };
        let blas = self.blas.lock().map_err(|_| Error::Cuda("cuBLAS handle poisoned".into()))?;
        match storage(w)? {
            CudaStorage::F32(ws) => {
                g.b = address(ws);
                g.run(&blas)?;
            }
            CudaStorage::F16(ws) => {
                let x16 = self.to_f16(xp, rows * k)?;
                g.a = address(&x16);
                g.b = address(ws);
                g.input = GemmInput::F16;
                g.run(&blas)?;
            }
        }
        drop(blas);
        match b {
            Some(b) => self.bias_activation_in_place(yp, rows * n, b, n, act)?,
            None if act != NO_ACTIVATION => {
                return self.activation(&y, crate::backend::cuda::elementwise::activation_from_code(act));
            }
            None => {}
        }
        Ok(y)
    }
}

impl LinearOps for CudaBackend {
    fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        self.fused_linear(x, w, b, NO_ACTIVATION)
    }

    fn linear_activation(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, act: Activation) -> Result<Tensor> {
        self.fused_linear(x, w, b, activation_code(act))
    }

    /// `residual + x · wᵀ + b`: the GEMM, then bias and residual in one pass.
    fn linear_residual(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, residual: &Tensor) -> Result<Tensor> {
        let y = self.fused_linear(x, w, None, NO_ACTIVATION)?;
        if residual.shape() != y.shape() {
            return Err(Error::shape(
                "linear_residual",
                format!("residual {:?} for output {:?}", residual.shape(), y.shape()),
            ));
        }
        let cols = y.dim(-1);
        if let Some(b) = b {
            if b.numel() != cols {
                return Err(Error::shape("linear", format!("bias {:?} for {cols} outputs", b.shape())));
            }
        }
        let yp = f32_ptr(&y)?;
        let n = y.numel();
        self.launch_elementwise(
            "bias_residual",
            n,
            &[
                Arg::Ptr(yp),
                Arg::Ptr(b.map(f32_ptr).transpose()?.unwrap_or(0)),
                Arg::Ptr(f32_ptr(residual)?),
                Arg::Ptr(yp),
                Arg::I64(n as i64),
                Arg::I32(int(cols.max(1), "columns")?),
            ],
        )?;
        Ok(y)
    }

    fn matmul(&self, a: &Tensor, b: &Tensor, transpose_b: bool) -> Result<Tensor> {
        let (ba, m, k) = a.dims3("matmul")?;
        let (bb, r, c) = b.dims3("matmul")?;
        let (kb, n) = if transpose_b { (c, r) } else { (r, c) };
        if ba != bb || kb != k {
            return Err(Error::shape(
                "matmul",
                format!("{:?} · {:?} (transpose_b={transpose_b})", a.shape(), b.shape()),
            ));
        }
        let (y, yp) = if k == 0 { self.output_zeroed(vec![ba, m, n])? } else { self.output(vec![ba, m, n])? };
        let g = RowMajorGemm {
            m,
            n,
            k,
            transpose_b,
            batch: ba,
            a: f32_ptr(a)?,
            stride_a: m * k,
            b: f32_ptr(b)?,
            stride_b: k * n,
            c: yp,
            stride_c: m * n,
            input: GemmInput::F32,
        };
        g.run(&*self.blas.lock().map_err(|_| Error::Cuda("cuBLAS handle poisoned".into()))?)?;
        Ok(y)
    }
}
