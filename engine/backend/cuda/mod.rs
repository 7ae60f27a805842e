//! The CUDA backend: kernels/*.cu (hand-written; compiled by nvcc at build time or by NVRTC at run
//! time, see [`compile`]) plus cuBLAS GEMMs, implementing the same op families
//! ([`kernels`](super::kernels)) as the CPU, each in the file of its family. Activations are f32 on the device; f16 checkpoint weights stay f16 and their GEMMs run
//! on the tensor cores (f16 operands, f32 accumulation).

mod attention;
mod backend;
pub mod compile;
mod conv;
mod elementwise;
pub mod gemm;
mod kernels;
mod layout;
mod linear;
mod lstm;
mod norm;
mod pooling;
mod probe;
pub mod self_check;
mod storage;
mod token_choice;

pub use backend::{CudaBackend, Traffic};
pub use kernels::entry_names;
pub use probe::{probe, CudaProbe};
