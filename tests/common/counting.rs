//! An op observer that counts what crosses to the host and how often the models run: bytes
//! downloaded, decoder forwards (rows × tokens), Whisper encoder forwards and VAD forwards, on any
//! device it is attached to (`Device::observed`). Token choice happens "on the device" (inside
//! the backend's op, uncounted, as a GPU chooses in place). It can cancel a run when a given
//! forward starts, so tests can count what ran after.
//! Included by the tests that need it (`#[path = "common/counting.rs"] mod counting;`).
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use scribe::Cancel;

use scribe::backend::observe::{OpCall, OpObserver};
use scribe::backend::Device;

/// Downloads, decoder, encoder and VAD forwards, counted.
pub struct Counting {
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
            downloaded: AtomicUsize::new(0),
            decoder_forwards: Mutex::new(Vec::new()),
            encoder_forwards: Mutex::new(Vec::new()),
            n_mels,
            vad_forwards: AtomicUsize::new(0),
            cancel_at: Mutex::new(None),
        }
    }

    /// A CPU device counted by `counting`.
    pub fn cpu(counting: &std::sync::Arc<Counting>) -> Device {
        Device::cpu().observed(counting.clone())
    }

    pub fn counts(&self) -> Counts {
        Counts {
            vad: self.vad_forwards.load(Ordering::SeqCst),
            encoder: self.encoder_forwards.lock().unwrap().len(),
            decoder: self.decoder_forwards.lock().unwrap().len(),
        }
    }

    /// The `n`-th forward of `kind` has started (`n` as its count was raised, so two forwards
    /// starting at once on two threads see their own numbers): cancel when it is the awaited one.
    fn started(&self, kind: Forward, n: usize) {
        if let Some((k, at, cancel)) = &*self.cancel_at.lock().unwrap() {
            if *k == kind && *at == n {
                cancel.cancel();
            }
        }
    }
}

impl OpObserver for Counting {
    fn before(&self, call: &OpCall<'_>) {
        match call.op {
            "download" => {
                self.downloaded.fetch_add(call.sizes[0] * 4, Ordering::Relaxed);
            }
            "conv1d" => {
                let (x, w) = (call.inputs[0], call.inputs[1]);
                if x.rank() == 3 && x.dim(1) == self.n_mels && w.rank() == 3 && w.dim(2) == 3 {
                    let n = {
                        let mut forwards = self.encoder_forwards.lock().unwrap();
                        forwards.push(x.dim(0));
                        forwards.len()
                    };
                    self.started(Forward::Encoder, n);
                }
                if x.rank() == 3 && x.dim(1) == 1 {
                    let n = self.vad_forwards.fetch_add(1, Ordering::SeqCst) + 1;
                    self.started(Forward::Vad, n);
                }
            }
            "embedding_with_positions" => {
                let (ids, seq_len, offset) = (call.sizes[0], call.sizes[1], call.sizes[2]);
                let n = {
                    let mut forwards = self.decoder_forwards.lock().unwrap();
                    forwards.push((ids / seq_len.max(1), seq_len, offset));
                    forwards.len()
                };
                self.started(Forward::Decoder, n);
            }
            _ => {}
        }
    }
}
