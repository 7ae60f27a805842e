//! A decoding step sends only token ids and their log-probabilities to the host: decoding runs
//! on a backend that counts every byte downloaded, while token choice happens "on the device"
//! (the wrapped CPU backend, uncounted, as a GPU chooses in place). Greedy, sampling and beam
//! search, with timestamp rules, must download nothing. The GPU version of this count is in
//! tests/cuda_whisper.rs.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{model_dir, speech};
use scribe::audio::{load_audio, log_mel_window};
use scribe::backend::cpu::CpuBackend;
use scribe::backend::{
    Activation, Backend, BinaryOp, Conv1dParams, Device, Reduce, RowMask, Sampling, Tensor, TokenChoice,
};
use scribe::error::Result;
use scribe::models::whisper::decoding::{DecodingOptions, DecodingTask};
use scribe::models::whisper::Whisper;

/// The CPU backend with its downloads counted.
struct Counting {
    inner: CpuBackend,
    downloaded: AtomicUsize,
}

impl Backend for Counting {
    fn name(&self) -> &'static str {
        "counting-cpu"
    }
    fn upload(&self, d: &[f32], s: &[usize]) -> Result<Tensor> {
        self.inner.upload(d, s)
    }
    fn upload_f16(&self, d: &[half::f16], s: &[usize]) -> Result<Tensor> {
        self.inner.upload_f16(d, s)
    }
    fn download(&self, t: &Tensor) -> Result<Vec<f32>> {
        self.downloaded.fetch_add(t.numel() * 4, Ordering::Relaxed);
        self.inner.download(t)
    }
    fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        self.inner.linear(x, w, b)
    }
    fn matmul(&self, a: &Tensor, b: &Tensor, t: bool) -> Result<Tensor> {
        self.inner.matmul(a, b, t)
    }
    fn conv1d(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv1dParams) -> Result<Tensor> {
        self.inner.conv1d(x, w, b, p)
    }
    fn layer_norm(&self, x: &Tensor, g: &Tensor, b: &Tensor, eps: f32) -> Result<Tensor> {
        self.inner.layer_norm(x, g, b, eps)
    }
    fn group_norm(&self, x: &Tensor, groups: usize, g: &Tensor, b: &Tensor, eps: f32) -> Result<Tensor> {
        self.inner.group_norm(x, groups, g, b, eps)
    }
    fn instance_norm(&self, x: &Tensor, g: Option<&Tensor>, b: Option<&Tensor>, eps: f32) -> Result<Tensor> {
        self.inner.instance_norm(x, g, b, eps)
    }
    fn batch_norm(&self, x: &Tensor, m: &Tensor, v: &Tensor, g: &Tensor, b: &Tensor, eps: f32) -> Result<Tensor> {
        self.inner.batch_norm(x, m, v, g, b, eps)
    }
    fn activation(&self, x: &Tensor, a: Activation) -> Result<Tensor> {
        self.inner.activation(x, a)
    }
    fn binary(&self, a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
        self.inner.binary(a, b, op)
    }
    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        self.inner.scale(x, s)
    }
    fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        self.inner.softmax(x)
    }
    fn log_softmax(&self, x: &Tensor) -> Result<Tensor> {
        self.inner.log_softmax(x)
    }
    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
        self.inner.attention(q, k, v, heads, causal)
    }
    fn lstm(&self, x: &Tensor, wi: &Tensor, wh: &Tensor, bi: &Tensor, bh: &Tensor, rev: bool) -> Result<Tensor> {
        self.inner.lstm(x, wi, wh, bi, bh, rev)
    }
    fn embedding(&self, ids: &[u32], t: &Tensor) -> Result<Tensor> {
        self.inner.embedding(ids, t)
    }
    fn permute(&self, x: &Tensor, p: &[usize]) -> Result<Tensor> {
        self.inner.permute(x, p)
    }
    fn slice(&self, x: &Tensor, d: usize, s: usize, l: usize) -> Result<Tensor> {
        self.inner.slice(x, d, s, l)
    }
    fn index_select(&self, x: &Tensor, i: &[usize]) -> Result<Tensor> {
        self.inner.index_select(x, i)
    }
    fn concat(&self, xs: &[&Tensor], d: usize) -> Result<Tensor> {
        self.inner.concat(xs, d)
    }
    fn reduce(&self, x: &Tensor, op: Reduce) -> Result<Tensor> {
        self.inner.reduce(x, op)
    }
    fn max_pool1d(&self, x: &Tensor, k: usize, s: usize) -> Result<Tensor> {
        self.inner.max_pool1d(x, k, s)
    }
    fn argmax(&self, x: &Tensor) -> Result<Vec<u32>> {
        self.inner.argmax(x)
    }
    // Token choice happens where the logits are: not counted.
    fn choose_tokens(&self, l: &Tensor, m: &[RowMask], k: usize, s: Option<&Sampling>) -> Result<Vec<TokenChoice>> {
        self.inner.choose_tokens(l, m, k, s)
    }
    fn logprob_of(&self, l: &Tensor, row: usize, id: u32) -> Result<f32> {
        self.inner.logprob_of(l, row, id)
    }
}

#[test]
fn decoding_downloads_no_logits() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let backend = Arc::new(Counting { inner: CpuBackend::new(), downloaded: AtomicUsize::new(0) });
    let model = Whisper::load(&dir, Device::new(backend.clone())).unwrap();
    let audio = load_audio(&speech("jfk.flac")).unwrap();
    let mel = log_mel_window(&audio[..audio.len().min(480_000)], model.config.num_mel_bins).unwrap();
    let features = model.encode(&mel.data, 1).unwrap();
    let runs = [
        ("greedy with timestamps", DecodingOptions { without_timestamps: false, ..Default::default() }),
        ("sampling", DecodingOptions { temperature: 0.6, best_of: Some(2), seed: 7, ..Default::default() }),
        ("beam 5", DecodingOptions { beam_size: Some(5), without_timestamps: false, ..Default::default() }),
    ];
    for (name, options) in runs {
        let before = backend.downloaded.load(Ordering::Relaxed);
        let result = DecodingTask::new(&model, options).unwrap().run(&features).unwrap();
        let bytes = backend.downloaded.load(Ordering::Relaxed) - before;
        eprintln!("{name}: {:?}, {bytes} bytes downloaded", result.text);
        assert!(result.tokens.len() > 5, "{name}: {:?}", result.text);
        assert!(result.no_speech_prob.is_finite(), "{name}");
        assert_eq!(bytes, 0, "{name}: decoding downloaded {bytes} bytes besides the chosen tokens");
    }
    // The count is live: a download is seen.
    let before = backend.downloaded.load(Ordering::Relaxed);
    model.device.download(&features).unwrap();
    assert_eq!(backend.downloaded.load(Ordering::Relaxed) - before, features.numel() * 4);
}
