//! The CUDA backend: kernels/*.cu (hand-written, compiled by nvcc at build time or NVRTC at run
//! time) plus cuBLAS GEMMs, behind the same [`Backend`](super::Backend) trait as the CPU.

pub mod compile;
mod probe;

pub use probe::{probe, CudaProbe};
