//! The CPU backend: f32, both cores (rayon), SIMD chosen at run time. It is also the numerical
//! reference every other backend is tested against.

use std::any::Any;
use std::sync::Arc;

use super::kernels::{MemoryOps, TokenOps};
use super::{Backend, Storage, Tensor};
use crate::error::{Error, Result};

mod attention;
pub mod bf16;
mod conv;
#[cfg(target_arch = "x86_64")]
mod conv2d_direct;
mod conv_bf16;
mod elementwise;
pub mod gemm;
#[cfg(target_arch = "x86_64")]
mod gemm_avx512;
pub mod int8;
mod key_tiles;
mod layout;
mod linear;
mod lstm;
pub mod math;
mod norm;
pub mod panels;
mod pooling;
mod shared_out;
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
    fn dtype(&self) -> &'static str {
        "float16"
    }
}

/// A linear weight quantised to int8 per output channel (see [`int8`]).
pub struct CpuInt8Storage(pub int8::Int8Matrix);

impl Storage for CpuInt8Storage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn backend_name(&self) -> &'static str {
        "cpu"
    }
    fn dtype(&self) -> &'static str {
        "int8"
    }
}

/// A weight rounded to bfloat16 and packed for the `vdpbf16ps` kernel (see [`bf16`]).
pub struct CpuBf16Storage(pub bf16::Bf16Matrix);

impl Storage for CpuBf16Storage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn backend_name(&self) -> &'static str {
        "cpu"
    }
    fn dtype(&self) -> &'static str {
        "bfloat16"
    }
}

/// A linear weight in column panels for products with few rows (see [`panels`]).
pub struct CpuPanelStorage(pub panels::PanelMatrix);

impl Storage for CpuPanelStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn backend_name(&self) -> &'static str {
        "cpu"
    }
    fn dtype(&self) -> &'static str {
        self.0.dtype()
    }
}

/// Borrow a tensor's data, or fail if it lives on another backend or is a half-precision
/// weight (which only the ops that read weights accept, through [`weight`]).
pub(crate) fn data(t: &Tensor) -> Result<&[f32]> {
    let any = t.storage().as_any();
    if let Some(s) = any.downcast_ref::<CpuStorage>() {
        return Ok(&s.0[..]);
    }
    if any.is::<CpuHalfStorage>()
        || any.is::<CpuInt8Storage>()
        || any.is::<CpuBf16Storage>()
        || any.is::<CpuPanelStorage>()
    {
        return Err(Error::Other(format!(
            "tensor {:?} is a {} {}; only linear, lstm, embedding, download, quantize_int8, round_bfloat16, (bf16) the convolutions and (f16, not in panels) attention's keys and values, index_select and to_float32 accept one",
            t.shape(),
            t.storage().dtype(),
            if any.is::<CpuPanelStorage>() { "weight in column panels" } else { "tensor" },
        )));
    }
    Err(Error::Other(format!("tensor {:?} is not on the CPU backend", t.shape())))
}

/// A weight's values as stored: f32, f16 to be widened as it is read, int8 per channel, or
/// bf16 packed for its kernel.
#[derive(Clone, Copy)]
pub(crate) enum Weight<'a> {
    F32(&'a [f32]),
    F16(&'a [half::f16]),
    I8(&'a int8::Int8Matrix),
    Bf16(&'a bf16::Bf16Matrix),
    Panels(&'a panels::PanelMatrix),
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
            Weight::I8(w) => std::borrow::Cow::Owned(packed_rows(rows, cols, w.cols(), |r| w.dequantized_rows(r))),
            Weight::Bf16(w) => std::borrow::Cow::Owned(packed_rows(rows, cols, w.cols(), |r| w.dequantized_rows(r))),
            Weight::Panels(w) => std::borrow::Cow::Owned(packed_rows(rows, cols, w.cols(), |r| w.dequantized_rows(r))),
        }
    }
}

/// Rows `rows` of a `[_, cols]` view of a packed `[_, width]` matrix (int8 or bf16) whose own
/// rows `dequantize` gives as f32: the matrix is the view itself when `cols == width`; a flat
/// view (`cols` 1) is read through the matrix rows it spans.
fn packed_rows(
    rows: std::ops::Range<usize>,
    cols: usize,
    width: usize,
    dequantize: impl Fn(std::ops::Range<usize>) -> Vec<f32>,
) -> Vec<f32> {
    if width == 0 || rows.is_empty() || cols == 0 {
        return Vec::new();
    }
    let (first, last) = (rows.start * cols / width, (rows.end * cols).div_ceil(width));
    let all = dequantize(first..last);
    let skip = rows.start * cols - first * width;
    all[skip..skip + rows.len() * cols].to_vec()
}

/// Borrow a weight tensor (f32 or half precision).
pub(crate) fn weight(t: &Tensor) -> Result<Weight<'_>> {
    let any = t.storage().as_any();
    if let Some(s) = any.downcast_ref::<CpuHalfStorage>() {
        return Ok(Weight::F16(&s.0[..]));
    }
    if let Some(s) = any.downcast_ref::<CpuInt8Storage>() {
        return Ok(Weight::I8(&s.0));
    }
    if let Some(s) = any.downcast_ref::<CpuBf16Storage>() {
        return Ok(Weight::Bf16(&s.0));
    }
    if let Some(s) = any.downcast_ref::<CpuPanelStorage>() {
        return Ok(Weight::Panels(&s.0));
    }
    data(t).map(Weight::F32)
}

/// Borrow an f32 or f16 tensor (attention's keys and values, rows to select): a [`Weight`] of
/// one of those two kinds, else an error naming the op.
pub(crate) fn floats<'a>(t: &'a Tensor, op: &str) -> Result<Weight<'a>> {
    match weight(t)? {
        w @ (Weight::F32(_) | Weight::F16(_)) => Ok(w),
        w => Err(Error::Other(format!("{op}: tensor {:?} is {}, not float32 or float16", t.shape(), stored_as(&w)))),
    }
}

/// How a weight is stored, for error messages: its dtype, and the layout where the dtype alone
/// would read as one the op accepts.
fn stored_as(w: &Weight<'_>) -> String {
    match w {
        Weight::F32(_) => "a float32 tensor".into(),
        Weight::F16(_) => "a float16 tensor".into(),
        Weight::I8(_) => "an int8 weight".into(),
        Weight::Bf16(_) => "a bfloat16 weight".into(),
        Weight::Panels(p) => format!("a {} weight in column panels (pack_for_few_rows)", p.dtype()),
    }
}

/// f32 values rounded to f16 (round to nearest even, as `half::f16::from_f32`; the `half`
/// crate's slice conversion uses F16C eight values an instruction where the CPU has it), on
/// every thread for long inputs.
fn f32_to_half(x: &[f32]) -> Vec<half::f16> {
    use half::slice::HalfFloatSliceExt;
    use rayon::prelude::*;
    /// Values per task: the conversion runs at memory speed, so tasks are large.
    const PER_TASK: usize = 1 << 16;
    let mut out = vec![half::f16::ZERO; x.len()];
    out.par_chunks_mut(PER_TASK).zip(x.par_chunks(PER_TASK)).for_each(|(o, s)| o.convert_from_f32_slice(s));
    out
}

simd::multiversion! {
    /// Widen f16 values to f32 (exact), vectorised.
    pub(crate) fn half_to_f32(src: &[half::f16], dst: &mut [f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = math::f16_to_f32(s.to_bits());
        }
    }
}

/// A new buffer of `len` values, each written by `fill`, without clearing it first:
/// `vec![0.0; len]` is `calloc`, which clears every block the heap reuses (the process keeps
/// freed blocks, see `crate::allocator`), so an op that then writes every element paid for a
/// `memset` of its whole output (6 % of the diarization stage's CPU samples on the benchmark's
/// 10-minute file, 2.7 % of a batched transcription's). With debug assertions the buffer is NaN
/// before `fill` runs, so an element it leaves unwritten shows in every comparison with a
/// reference (`cargo test`'s profile has them; `--release` builds do not).
///
/// # Safety
/// `fill` must write every element of the slice it is given.
pub(crate) unsafe fn written(len: usize, fill: impl FnOnce(&mut [std::mem::MaybeUninit<f32>])) -> Vec<f32> {
    // SAFETY: the caller's promise.
    unsafe { written_poisoned(len, f32::NAN, fill) }
}

/// [`written`] for any element type: with debug assertions the buffer holds `poison` before
/// `fill` runs.
///
/// # Safety
/// `fill` must write every element of the slice it is given.
pub(crate) unsafe fn written_poisoned<T: Copy>(
    len: usize,
    poison: T,
    fill: impl FnOnce(&mut [std::mem::MaybeUninit<T>]),
) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    let spare = &mut v.spare_capacity_mut()[..len];
    if cfg!(debug_assertions) {
        spare.fill(std::mem::MaybeUninit::new(poison));
    }
    fill(spare);
    // SAFETY: the caller's `fill` wrote all `len` elements.
    unsafe { v.set_len(len) };
    v
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
    /// The decoder's cross-attention values a head at a time, per window and layer.
    values: key_tiles::ValueCache,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// Best SIMD level of this CPU, capped by `SCRIBE_SIMD`.
    pub fn new() -> Self {
        CpuBackend { simd: SimdLevel::from_env(), key_tiles: Default::default(), values: Default::default() }
    }

    /// A backend that uses exactly `level` (which must not exceed the CPU's).
    pub fn with_simd(level: SimdLevel) -> Self {
        CpuBackend { simd: level.min(SimdLevel::detect()), key_tiles: Default::default(), values: Default::default() }
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

    fn runs_stages_alongside(&self) -> bool {
        true
    }

    /// Eight pyannote windows (5 s, 293 frames) a pass keep each layer's activations in the
    /// caches for the next: WhisperX's VAD on the long benchmark file took 1.21–1.29 s in
    /// batches of 32 windows and 1.09–1.10 s in batches of 8 on two threads (the same speech
    /// regions, the filter bank computed over more overlapping spans), 4 windows 1.31–1.36 s.
    /// No fewer than the threads, each of which runs whole sequences through a recurrence.
    fn sequences_per_pass(&self) -> Option<usize> {
        Some(CPU_SEQUENCES_PER_PASS.max(rayon::current_num_threads()))
    }
}

/// See [`CpuBackend::sequences_per_pass`]; the LSTM's projection groups are as large
/// (`lstm::SEQUENCES_PER_PROJECTION`).
pub(crate) const CPU_SEQUENCES_PER_PASS: usize = 8;

impl MemoryOps for CpuBackend {
    fn upload(&self, d: &[f32], shape: &[usize]) -> Result<Tensor> {
        Ok(tensor(shape.to_vec(), d.to_vec()))
    }

    fn download(&self, t: &Tensor) -> Result<Vec<f32>> {
        Ok(weight(t)?.rows_f32(self.simd, 0..t.numel(), 1).into_owned())
    }

    fn upload_f16(&self, d: &[half::f16], shape: &[usize]) -> Result<Tensor> {
        Ok(Tensor::from_storage(shape.to_vec(), Arc::new(CpuHalfStorage(d.to_vec()))))
    }

    fn to_float16(&self, x: &Tensor) -> Result<Tensor> {
        Ok(Tensor::from_storage(x.shape().to_vec(), Arc::new(CpuHalfStorage(f32_to_half(data(x)?)))))
    }

    fn to_float32(&self, x: &Tensor) -> Result<Tensor> {
        match weight(x)? {
            w @ Weight::F16(_) => Ok(tensor(x.shape().to_vec(), w.rows_f32(self.simd, 0..x.numel(), 1).into_owned())),
            w => Err(Error::Other(format!("to_float32: tensor {:?} is {}, not float16", x.shape(), stored_as(&w)))),
        }
    }

    /// Quantised where the CPU has VNNI; elsewhere the portable int8 kernel would be slower than
    /// the f32 GEMM, so the weight stays as it is.
    fn quantize_int8(&self, w: &Tensor) -> Result<Tensor> {
        if int8::Int8Kernel::for_level(self.simd) != int8::Int8Kernel::Vnni || w.dtype() == "int8" {
            return Ok(w.clone());
        }
        let (n, k) = (w.dim(0), w.dim(1));
        let stored = weight(w)?;
        let values = stored.rows_f32(self.simd, 0..n, k);
        Ok(Tensor::from_storage(vec![n, k], Arc::new(CpuInt8Storage(int8::Int8Matrix::quantize(&values, n, k)))))
    }

    /// Rounded where the CPU has AVX-512 BF16; elsewhere bf16 products would be slower than the
    /// f32 GEMM (and no more exact), so the weight stays as it is.
    fn round_bfloat16(&self, w: &Tensor) -> Result<Tensor> {
        if !bf16::kernel_available(self.simd) || w.dtype() == "bfloat16" {
            return Ok(w.clone());
        }
        let (n, k) = (w.dim(0), w.dim(1));
        let stored = weight(w)?;
        let values = stored.rows_f32(self.simd, 0..n, k);
        Ok(Tensor::from_storage(
            vec![n, k],
            Arc::new(CpuBf16Storage(bf16::Bf16Matrix::from_f32(self.simd, &values, n, k))),
        ))
    }

    /// In column panels where the CPU has a panel kernel (AVX-512, or AVX2 with F16C); elsewhere
    /// the skinny kernel reads the weight as it is. An int8 or bf16 weight stays as it is.
    fn pack_for_few_rows(&self, w: &Tensor) -> Result<Tensor> {
        if !panels::kernel_available(self.simd) {
            return Ok(w.clone());
        }
        let (n, k) = (w.dim(0), w.dim(1));
        let packed = match weight(w)? {
            Weight::F32(v) => panels::PanelMatrix::from_f32(v, n, k),
            Weight::F16(v) => panels::PanelMatrix::from_f16(v, n, k),
            Weight::I8(_) | Weight::Bf16(_) | Weight::Panels(_) => return Ok(w.clone()),
        };
        Ok(Tensor::from_storage(vec![n, k], Arc::new(CpuPanelStorage(packed))))
    }
}

/// Token choice on the host rows: the reference itself, run on the logits where they lie (the
/// trait's defaults copy them first: 7 MB a decoding step for 7 chunks × 5 beams).
impl TokenOps for CpuBackend {
    fn choose_tokens(
        &self,
        logits: &Tensor,
        masks: &[crate::backend::RowMask],
        k: usize,
        sampling: Option<&crate::backend::Sampling>,
    ) -> Result<Vec<crate::backend::TokenChoice>> {
        let v = logits.dim(-1);
        self.with_f32_rows(logits, |rows| {
            crate::backend::token_choice::choose_rows_on_host(rows, v, masks, k, sampling)
        })
    }

    fn logprob_of(&self, logits: &Tensor, row: usize, id: u32) -> Result<f32> {
        let v = logits.dim(-1);
        self.with_f32_rows(logits, |rows| {
            crate::backend::token_choice::log_softmax(&rows[row * v..(row + 1) * v])[id as usize]
        })
    }
}

impl CpuBackend {
    /// `f` of a tensor's values: its f32 storage in place, or a widened copy of another dtype.
    fn with_f32_rows<R>(&self, t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        match t.storage().as_any().downcast_ref::<CpuStorage>() {
            Some(s) => Ok(f(&s.0)),
            None => Ok(f(&self.download(t)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `written` hands `fill` the whole buffer, NaN in the test builds (so an element a kernel
    /// leaves unwritten shows), and keeps what it wrote.
    #[test]
    fn written_buffers_are_poisoned_for_the_tests_and_keep_what_was_written() {
        let len = 1000;
        let fill = |out: &mut [std::mem::MaybeUninit<f32>]| {
            if cfg!(debug_assertions) {
                // SAFETY: with debug assertions `written` filled the buffer with NaN.
                assert!(out.iter().all(|x| unsafe { x.assume_init_ref() }.is_nan()), "NaN before it is written");
            }
            for (i, o) in out.iter_mut().enumerate() {
                o.write(i as f32);
            }
        };
        // SAFETY: `fill` writes every element.
        let v = unsafe { written(len, fill) };
        assert_eq!(v.len(), len);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32));
        // SAFETY: nothing to write.
        assert!(unsafe { written(0, |out| assert!(out.is_empty())) }.is_empty());
    }

    /// Token choice reads the logits in place and gives what the host reference gives on a
    /// copy of them, row by row (masks and k included), and so does `logprob_of`.
    #[test]
    fn token_choice_on_the_logits_in_place_is_the_host_reference() {
        use crate::backend::token_choice::{choose_rows_on_host, log_softmax};
        use crate::backend::RowMask;
        let dev = crate::backend::Device::cpu();
        let (rows, vocab) = (3, 257);
        let values: Vec<f32> = (0..rows * vocab).map(|i| ((i * 7919) % 1013) as f32 / 97.0 - 5.0).collect();
        let logits = dev.upload(&values, &[rows, vocab]).unwrap();
        let masks = vec![
            RowMask::default(),
            RowMask { ids: vec![3, 200], ..Default::default() },
            RowMask { ranges: vec![(0, 100)], dominance_split: Some(250), ..Default::default() },
        ];
        let got = dev.choose_tokens(&logits, &masks, 4, None).unwrap();
        assert_eq!(got, choose_rows_on_host(&values, vocab, &masks, 4, None));
        for (row, id) in [(0, 5), (2, 256)] {
            let want = log_softmax(&values[row * vocab..(row + 1) * vocab])[id as usize];
            assert_eq!(dev.logprob_of(&logits, row, id).unwrap(), want);
        }
    }

    /// The norms size their output from the shapes and fill it by zipping with the stored
    /// values: a tensor whose storage is shorter than its shape is an error, not an output left
    /// partly unwritten.
    #[test]
    fn norms_refuse_storage_shorter_than_the_shape() {
        use crate::backend::kernels::NormOps;
        let cpu = CpuBackend::new();
        let short = Tensor::from_storage(vec![2, 3, 8], Arc::new(CpuStorage(vec![1.0; 40])));
        let ones = |n: usize| tensor(vec![n], vec![1.0; n]);
        let zeros = |n: usize| tensor(vec![n], vec![0.0; n]);
        assert!(cpu.layer_norm(&short, &ones(8), &zeros(8), 1e-5).is_err());
        let short_gamma = Tensor::from_storage(vec![8], Arc::new(CpuStorage(vec![1.0; 5])));
        let x = tensor(vec![2, 3, 8], vec![1.0; 48]);
        assert!(cpu.layer_norm(&x, &short_gamma, &zeros(8), 1e-5).is_err());
        assert!(cpu.layer_norm(&x, &ones(8), &zeros(8), 1e-5).is_ok());
        assert!(cpu.group_norm(&short, 3, Some(&ones(3)), Some(&zeros(3)), 1e-5).is_err());
        assert!(cpu.batch_norm(&short, &zeros(3), &ones(3), &ones(3), &zeros(3), 1e-5, true).is_err());
    }
}
