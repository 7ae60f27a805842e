//! GEMMs through cuBLAS. Every tensor is row-major; cuBLAS is column-major. The mapping is
//! written once, here: a row-major `X[r, c]` buffer *is* the column-major `Xᵀ[c, r]` with leading
//! dimension `c`, so the row-major product `C = A · op(B)` is computed as the column-major
//! `Cᵀ = op(B)ᵀ · Aᵀ`, i.e. cuBLAS gets the operands swapped and `m = N, n = M`.

use std::ffi::c_void;

use cudarc::cublas::{result as blas, sys, CudaBlas};

use crate::error::{Error, Result};

/// Element type of the two GEMM inputs (the output and the accumulation are always f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmInput {
    /// f32 operands, f32 arithmetic (no TF32: the CPU reference's numerics).
    F32,
    /// f16 operands on the tensor cores, f32 accumulation.
    F16,
}

/// One (possibly batched) product `C[b] = A[b] · B[b]` or `A[b] · B[b]ᵀ`, all row-major:
/// `A` is `[M, K]`, `B` is `[K, N]` (or `[N, K]` when `transpose_b`), `C` is `[M, N]`.
/// Strides are in elements; a stride of 0 broadcasts that operand over the batch.
#[derive(Clone, Copy, Debug)]
pub struct RowMajorGemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub transpose_b: bool,
    pub batch: usize,
    pub a: u64,
    pub stride_a: usize,
    pub b: u64,
    pub stride_b: usize,
    pub c: u64,
    pub stride_c: usize,
    pub input: GemmInput,
}

/// The cuBLAS arguments of a row-major product (the mapping in the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnMajorCall {
    pub transa: bool,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// First cuBLAS operand is our `B`, second our `A`.
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
}

impl RowMajorGemm {
    pub fn column_major(&self) -> ColumnMajorCall {
        ColumnMajorCall {
            transa: self.transpose_b,
            m: self.n,
            n: self.m,
            k: self.k,
            lda: if self.transpose_b { self.k } else { self.n },
            ldb: self.k,
            ldc: self.n,
        }
    }

    pub fn run(&self, blas: &CudaBlas) -> Result<()> {
        // Nothing to compute (with k = 0 the callers have zeroed C; cuBLAS would reject ld = 0).
        if self.m == 0 || self.n == 0 || self.k == 0 || self.batch == 0 {
            return Ok(());
        }
        let cm = self.column_major();
        let int = |v: usize, what: &str| {
            i32::try_from(v).map_err(|_| Error::Cuda(format!("gemm: {what} = {v} exceeds cuBLAS's 32-bit range")))
        };
        let (dtype, algo) = match self.input {
            GemmInput::F32 => (sys::cudaDataType::CUDA_R_32F, sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT),
            GemmInput::F16 => (sys::cudaDataType::CUDA_R_16F, sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT_TENSOR_OP),
        };
        let op = |t: bool| if t { sys::cublasOperation_t::CUBLAS_OP_T } else { sys::cublasOperation_t::CUBLAS_OP_N };
        let (alpha, beta) = (1.0f32, 0.0f32);
        // SAFETY: the pointers are live device buffers of the backend (the callers check shapes),
        // alpha/beta are host f32 values (the handle's default pointer mode) that outlive the call.
        let r = unsafe {
            blas::gemm_strided_batched_ex(
                *blas.handle(),
                op(cm.transa),
                op(false),
                int(cm.m, "n")?,
                int(cm.n, "m")?,
                int(cm.k, "k")?,
                &alpha as *const f32 as *const c_void,
                self.b as *const c_void,
                dtype,
                int(cm.lda, "ld")?,
                self.stride_b as i64,
                self.a as *const c_void,
                dtype,
                int(cm.ldb, "ld")?,
                self.stride_a as i64,
                &beta as *const f32 as *const c_void,
                self.c as *mut c_void,
                sys::cudaDataType::CUDA_R_32F,
                int(cm.ldc, "ld")?,
                self.stride_c as i64,
                int(self.batch, "batch")?,
                sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                algo,
            )
        };
        r.map_err(|e| {
            if e.0 == sys::cublasStatus_t::CUBLAS_STATUS_ALLOC_FAILED {
                Error::DeviceOutOfMemory(format!("cuBLAS gemm {}x{}x{}", self.m, self.n, self.k))
            } else {
                Error::Cuda(format!("cuBLAS gemm {}x{}x{} (batch {}): {e:?}", self.m, self.n, self.k, self.batch))
            }
        })
    }
}

/// The same product on the host, from the column-major call alone: checks the mapping without a
/// GPU (a column-major `X` with leading dimension `ld` has `X[i, j]` at `i + j·ld`).
pub fn column_major_reference(call: &ColumnMajorCall, b: &[f32], a: &[f32]) -> Vec<f32> {
    let mut c = vec![0.0f32; call.ldc * call.n];
    for j in 0..call.n {
        for i in 0..call.m {
            let mut s = 0.0f32;
            for p in 0..call.k {
                let opa = if call.transa { b[p + i * call.lda] } else { b[i + p * call.lda] };
                s += opa * a[p + j * call.ldb];
            }
            c[i + j * call.ldc] = s;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_major_product(a: &[f32], b: &[f32], m: usize, n: usize, k: usize, transpose_b: bool) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] =
                    (0..k).map(|p| a[i * k + p] * if transpose_b { b[j * k + p] } else { b[p * n + j] }).sum();
            }
        }
        c
    }

    #[test]
    fn the_column_major_call_computes_the_row_major_product() {
        for &(m, n, k) in &[(1, 1, 1), (3, 5, 7), (8, 3, 1), (17, 33, 9), (2, 64, 65)] {
            for transpose_b in [false, true] {
                let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
                let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.61).cos()).collect();
                let g = RowMajorGemm {
                    m,
                    n,
                    k,
                    transpose_b,
                    batch: 1,
                    a: 0,
                    stride_a: 0,
                    b: 0,
                    stride_b: 0,
                    c: 0,
                    stride_c: 0,
                    input: GemmInput::F32,
                };
                let got = column_major_reference(&g.column_major(), &b, &a);
                let want = row_major_product(&a, &b, m, n, k, transpose_b);
                for (x, y) in got.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-4, "{m}x{n}x{k} t={transpose_b}: {x} vs {y}");
                }
            }
        }
    }
}
