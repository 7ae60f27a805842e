//! Pointwise ops: activations (alone or fused with a bias), broadcast binary ops, scaling and the
//! f32→f16 cast before tensor-core GEMMs. Kernels: kernels/activation.cu, binary.cu, cast.cu.

use cudarc::driver::{CudaSlice, DeviceRepr};

use super::backend::{int, Arg, CudaBackend};
use super::storage::{address, f32_ptr};
use crate::backend::kernels::ElementwiseOps;
use crate::backend::{Activation, BinaryOp, Tensor};
use crate::error::{Error, Result};

/// kernels/binary.cu MAX_RANK: broadcasts fold to at most this many dimensions.
pub const MAX_RANK: usize = 6;

/// kernels/binary.cu `BroadcastShape`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BroadcastShape {
    pub rank: i32,
    pub pad: i32,
    pub dims: [i64; MAX_RANK],
    pub b_strides: [i64; MAX_RANK],
}

// SAFETY: plain #[repr(C)] integers, laid out as the CUDA struct.
unsafe impl DeviceRepr for BroadcastShape {}

/// kernels/activation.cu ACT_* codes and the parameter each takes.
pub fn activation_code(act: Activation) -> (i32, f32) {
    match act {
        Activation::Gelu => (1, 0.0),
        Activation::Relu => (2, 0.0),
        Activation::LeakyRelu(s) => (3, s),
        Activation::Sigmoid => (4, 0.0),
        Activation::Tanh => (5, 0.0),
        Activation::Exp => (6, 0.0),
        Activation::Log { floor } => (7, floor),
        Activation::Sqrt => (8, 0.0),
        Activation::Abs => (9, 0.0),
    }
}

/// The inverse of [`activation_code`] (for an activation code that is not the identity).
pub fn activation_from_code((code, param): (i32, f32)) -> Activation {
    match code {
        1 => Activation::Gelu,
        2 => Activation::Relu,
        3 => Activation::LeakyRelu(param),
        4 => Activation::Sigmoid,
        5 => Activation::Tanh,
        6 => Activation::Exp,
        7 => Activation::Log { floor: param },
        8 => Activation::Sqrt,
        _ => Activation::Abs,
    }
}

/// ACT_IDENTITY: a bias alone.
pub const NO_ACTIVATION: (i32, f32) = (0, 0.0);

fn binary_code(op: BinaryOp) -> i32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
    }
}

/// `b` broadcast against `a` (b right-aligned, NumPy rules), folded to as few dimensions as
/// possible: neighbours merge when b is contiguous across both or broadcast across both.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<BroadcastShape> {
    if b.len() > a.len() {
        return Err(Error::shape("binary", format!("cannot broadcast {b:?} to {a:?}")));
    }
    let pad = a.len() - b.len();
    let bfull: Vec<usize> = std::iter::repeat_n(1, pad).chain(b.iter().copied()).collect();
    let mut dims: Vec<(usize, usize)> = Vec::new(); // (size, b stride), outermost first
    let mut stride = 1;
    let mut rev = Vec::new();
    for i in (0..a.len()).rev() {
        if bfull[i] != a[i] && bfull[i] != 1 {
            return Err(Error::shape("binary", format!("dimension {i}: cannot broadcast {b:?} to {a:?}")));
        }
        let s = if bfull[i] == 1 && a[i] != 1 { 0 } else { stride };
        stride *= bfull[i];
        if a[i] != 1 {
            rev.push((a[i], s));
        }
    }
    for (size, s) in rev.into_iter().rev() {
        match dims.last_mut() {
            // The outer neighbour continues this one: merge.
            Some(last) if (last.1 == 0 && s == 0) || (s != 0 && last.1 == s * size) => {
                last.0 *= size;
                last.1 = s;
            }
            _ => dims.push((size, s)),
        }
    }
    if dims.is_empty() {
        dims.push((1, 0));
    }
    if dims.len() > MAX_RANK {
        return Err(Error::shape(
            "binary",
            format!("broadcasting {b:?} to {a:?} needs more than {MAX_RANK} dimensions"),
        ));
    }
    let mut out = BroadcastShape { rank: dims.len() as i32, ..Default::default() };
    for (i, (size, s)) in dims.into_iter().enumerate() {
        out.dims[i] = size as i64;
        out.b_strides[i] = s as i64;
    }
    Ok(out)
}

impl CudaBackend {
    /// In place: `y[r, c] = act(y[r, c] + bias[c])`.
    pub(crate) fn bias_activation_in_place(
        &self,
        y: u64,
        n: usize,
        bias: &Tensor,
        cols: usize,
        act: (i32, f32),
    ) -> Result<()> {
        if bias.numel() != cols {
            return Err(Error::shape("linear", format!("bias {:?} for {cols} outputs", bias.shape())));
        }
        self.launch_elementwise(
            "bias_activation",
            n,
            &[
                Arg::Ptr(y),
                Arg::Ptr(f32_ptr(bias)?),
                Arg::Ptr(y),
                Arg::I64(n as i64),
                Arg::I32(int(cols, "columns")?),
                Arg::I32(act.0),
                Arg::F32(act.1),
            ],
        )
    }

    /// `n` f32 values at `x` rounded to a new f16 buffer (round to nearest even).
    pub(crate) fn to_f16(&self, x: u64, n: usize) -> Result<CudaSlice<half::f16>> {
        // SAFETY: the cast kernel writes all n values.
        let out = unsafe { self.stream.alloc::<half::f16>(n.max(1)) }
            .map_err(|e| super::backend::driver_error("alloc", e))?;
        self.launch_elementwise("cast_f32_to_f16", n, &[Arg::Ptr(x), Arg::Ptr(address(&out)), Arg::I64(n as i64)])?;
        Ok(out)
    }
}

impl ElementwiseOps for CudaBackend {
    fn activation(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        let (op, param) = activation_code(act);
        let (y, yp) = self.output(x.shape().to_vec())?;
        let n = x.numel();
        self.launch_elementwise(
            "activation",
            n,
            &[Arg::Ptr(f32_ptr(x)?), Arg::Ptr(yp), Arg::I64(n as i64), Arg::I32(op), Arg::F32(param)],
        )?;
        Ok(y)
    }

    fn binary(&self, a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
        let shape = broadcast_shape(a.shape(), b.shape())?;
        let (y, yp) = self.output(a.shape().to_vec())?;
        let n = a.numel();
        self.launch_elementwise(
            "binary_broadcast",
            n,
            &[
                Arg::Ptr(f32_ptr(a)?),
                Arg::Ptr(f32_ptr(b)?),
                Arg::Ptr(yp),
                Arg::I64(n as i64),
                Arg::I32(binary_code(op)),
                Arg::Broadcast(shape),
            ],
        )?;
        Ok(y)
    }

    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        let (y, yp) = self.output(x.shape().to_vec())?;
        let n = x.numel();
        self.launch_elementwise("scale", n, &[Arg::Ptr(f32_ptr(x)?), Arg::Ptr(yp), Arg::I64(n as i64), Arg::F32(s)])?;
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Index of b for each element of a, by the folded shape.
    fn b_indices(s: &BroadcastShape, n: usize) -> Vec<i64> {
        (0..n as i64)
            .map(|i| {
                let (mut rest, mut bi) = (i, 0);
                for d in (0..s.rank as usize).rev() {
                    bi += (rest % s.dims[d]) * s.b_strides[d];
                    rest /= s.dims[d];
                }
                bi
            })
            .collect()
    }

    /// The same, straight from NumPy's rules.
    fn numpy_indices(a: &[usize], b: &[usize]) -> Vec<i64> {
        let pad = a.len() - b.len();
        let n: usize = a.iter().product();
        (0..n)
            .map(|i| {
                let mut rest = i;
                let mut idx = vec![0; a.len()];
                for d in (0..a.len()).rev() {
                    idx[d] = rest % a[d];
                    rest /= a[d];
                }
                let mut bi = 0;
                for (d, &bd) in b.iter().enumerate() {
                    bi = bi * bd + if bd == 1 { 0 } else { idx[d + pad] };
                }
                bi as i64
            })
            .collect()
    }

    #[test]
    fn folded_broadcasts_index_b_as_numpy_does() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[2, 3, 4], &[4]),
            (&[2, 3, 4], &[3, 1]),
            (&[2, 3, 4], &[2, 3, 4]),
            (&[2, 3, 4], &[1, 3, 1]),
            (&[2, 1, 4], &[4]),
            (&[5, 7], &[]),
            (&[3, 2, 5, 1, 2], &[2, 1, 1, 2]),
            (&[2, 3, 4, 5, 6, 7, 2], &[3, 4, 1, 1, 7, 2]),
        ];
        for &(a, b) in cases {
            let s = broadcast_shape(a, b).unwrap();
            let n = a.iter().product();
            assert_eq!(b_indices(&s, n), numpy_indices(a, b), "{a:?} <- {b:?} folded to {s:?}");
        }
        assert_eq!(broadcast_shape(&[2, 3, 4], &[4]).unwrap().rank, 2);
        assert_eq!(broadcast_shape(&[2, 3, 4], &[2, 3, 4]).unwrap().rank, 1);
        // Seven alternating broadcast dimensions cannot fold into six: refused, not miscomputed.
        assert!(broadcast_shape(&[2, 3, 4, 5, 6, 7, 2], &[3, 1, 5, 1, 7, 1]).is_err());
        assert!(broadcast_shape(&[2, 3], &[2]).is_err());
        assert!(broadcast_shape(&[3], &[2, 3]).is_err());
    }
}
