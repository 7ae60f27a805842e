//! The CUDA backend. So far: finding out, without a panic, whether this machine can run it.
//! The kernels (kernels/*.cu, embedded by build.rs) and the cuBLAS GEMMs come next.

mod probe;

pub use probe::{probe, CudaProbe};
