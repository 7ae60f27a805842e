//! A CPU backend that counts what crosses to the host and how often the models run: bytes
//! downloaded, decoder forwards (rows × tokens), Whisper encoder forwards and VAD forwards. Token
//! choice happens "on the device" (the wrapped CPU backend, uncounted, as a GPU chooses in
//! place). It can cancel a run when a given forward starts, so tests can count what ran after.
//! Included by the tests that need it (`#[path = "common/counting.rs"] mod counting;`).
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use scribe::Cancel;

use scribe::backend::cpu::CpuBackend;
use scribe::backend::{Activation, Backend, BinaryOp, Conv1dParams, Reduce, RowMask, Sampling, Tensor, TokenChoice};
use scribe::error::Result;

/// The CPU backend with its downloads, decoder forwards and encoder forwards counted.
pub struct Counting {
    pub inner: CpuBackend,
    /// Bytes downloaded to the host.
    pub downloaded: AtomicUsize,
    /// Every decoder forward (one token + position embedding each): (rows, tokens per row,
    /// position of the first; 0 starts a decoding run).
    pub decoder_forwards: Mutex<Vec<(usize, usize, usize)>>,
    /// Whisper encoder forwards (its first conv: `n_mels` input channels, kernel 3), with the
    /// batch of each.
    pub encoder_forwards: Mutex<Vec<usize>>,
    /// Input channels of the encoder's first conv (80 or 128).
    pub n_mels: usize,
    /// VAD forwards (PyanNet's sinc convolution over the waveform: one input channel).
    pub vad_forwards: AtomicUsize,
    /// Cancel this token when the n-th forward of this kind starts.
    pub cancel_at: Mutex<Option<(Forward, usize, Cancel)>>,
}

/// A kind of forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    Vad,
    Encoder,
    Decoder,
}

/// Forwards of each kind counted at some moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub vad: usize,
    pub encoder: usize,
    pub decoder: usize,
}

impl Counting {
    pub fn new(n_mels: usize) -> Self {
        Counting {
            inner: CpuBackend::new(),
            downloaded: AtomicUsize::new(0),
            decoder_forwards: Mutex::new(Vec::new()),
            encoder_forwards: Mutex::new(Vec::new()),
            n_mels,
            vad_forwards: AtomicUsize::new(0),
            cancel_at: Mutex::new(None),
        }
    }

    pub fn counts(&self) -> Counts {
        Counts {
            vad: self.vad_forwards.load(Ordering::SeqCst),
            encoder: self.encoder_forwards.lock().unwrap().len(),
            decoder: self.decoder_forwards.lock().unwrap().len(),
        }
    }

    /// A forward of `kind` has started: cancel when it is the awaited one.
    fn started(&self, kind: Forward) {
        let c = self.counts();
        let n = match kind {
            Forward::Vad => c.vad,
            Forward::Encoder => c.encoder,
            Forward::Decoder => c.decoder,
        };
        if let Some((k, at, cancel)) = &*self.cancel_at.lock().unwrap() {
            if *k == kind && *at == n {
                cancel.cancel();
            }
        }
    }
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
        if x.rank() == 3 && x.dim(1) == self.n_mels && w.rank() == 3 && w.dim(2) == 3 {
            self.encoder_forwards.lock().unwrap().push(x.dim(0));
            self.started(Forward::Encoder);
        }
        if x.rank() == 3 && x.dim(1) == 1 {
            self.vad_forwards.fetch_add(1, Ordering::SeqCst);
            self.started(Forward::Vad);
        }
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
    fn embedding_with_positions(
        &self,
        ids: &[u32],
        table: &Tensor,
        positions: &Tensor,
        offset: usize,
        seq_len: usize,
    ) -> Result<Tensor> {
        self.decoder_forwards.lock().unwrap().push((ids.len() / seq_len.max(1), seq_len, offset));
        self.started(Forward::Decoder);
        self.inner.embedding_with_positions(ids, table, positions, offset, seq_len)
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
