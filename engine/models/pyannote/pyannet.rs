//! PyanNet (pyannote.audio `models/segmentation/PyanNet.py`): SincNet → a monolithic
//! bidirectional LSTM → leaky-ReLU linear layers → the classifier, whose activation the task
//! chooses (`Model.default_activation`): a sigmoid per speaker track for the multi-label
//! checkpoint WhisperX ships as its VAD (3 tracks, 5 s windows), a log-softmax over the
//! powerset classes for segmentation-3.0 (7 classes over 3 speakers, 10 s windows).

use serde_json::Value as Json;

use crate::backend::{Activation, Device, Tensor};
use crate::error::{Error, Result};
use crate::models::common::compute_type::{wants_bfloat16, BF16_COMPUTE_TYPES};
use crate::models::common::layers::{load, Linear};
use crate::weights::WeightStore;

use super::receptive_field::{num_frames, FrameWindow};
use super::sincnet::{SincNet, WindowSpan, CONV_CHANNELS, LEAKY_RELU_SLOPE};

/// The hyper-parameters PyanNet is built from (the checkpoint's `hyper_parameters` plus its
/// task `specifications`, as `models/fetch vad` writes them to `config.json`).
#[derive(Clone, Debug, PartialEq)]
pub struct PyanNetConfig {
    pub sample_rate: usize,
    pub sincnet_stride: usize,
    pub lstm_hidden: usize,
    pub lstm_layers: usize,
    pub bidirectional: bool,
    pub linear_hidden: usize,
    pub linear_layers: usize,
    /// One output track per class (`speaker#1` …).
    pub classes: Vec<String>,
    /// Window the model was trained on, seconds (5.0 for WhisperX's VAD).
    pub duration: f64,
    /// The task's `powerset_max_classes` (segmentation-3.0: 2): the classifier then scores
    /// every set of at most that many of `classes` (see [`super::powerset`]).
    pub powerset_max_classes: Option<usize>,
}

impl PyanNetConfig {
    pub fn from_json(config: &Json) -> Result<Self> {
        let bad = |what: &str| Error::Other(format!("VAD config: {what}"));
        let uint = |v: Option<&Json>, what: &str| -> Result<usize> {
            v.and_then(Json::as_u64)
                .map(|u| u as usize)
                .ok_or_else(|| bad(&format!("{what} missing or not a whole number")))
        };
        let arch = config.pointer("/architecture/class").and_then(Json::as_str);
        if arch.is_some_and(|a| a != "PyanNet") {
            return Err(bad(&format!("architecture {} is not PyanNet", arch.unwrap_or_default())));
        }
        let lstm = config.get("lstm").ok_or_else(|| bad("no lstm section"))?;
        if lstm.get("monolithic").and_then(Json::as_bool) == Some(false) {
            return Err(bad("a non-monolithic LSTM is not supported"));
        }
        let linear = config.get("linear").ok_or_else(|| bad("no linear section"))?;
        let classes: Vec<String> = config
            .get("classes")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(|c| c.as_str().map(String::from)).collect())
            .unwrap_or_default();
        if classes.is_empty() {
            return Err(bad("no classes"));
        }
        let duration =
            config.get("duration").and_then(Json::as_f64).filter(|d| *d > 0.0).ok_or_else(|| bad("no duration"))?;
        let cfg = PyanNetConfig {
            sample_rate: config.get("sample_rate").and_then(Json::as_u64).unwrap_or(16_000) as usize,
            sincnet_stride: config.pointer("/sincnet/stride").and_then(Json::as_u64).unwrap_or(1) as usize,
            lstm_hidden: uint(lstm.get("hidden_size"), "lstm.hidden_size")?,
            lstm_layers: uint(lstm.get("num_layers"), "lstm.num_layers")?,
            bidirectional: lstm.get("bidirectional").and_then(Json::as_bool).unwrap_or(true),
            linear_hidden: uint(linear.get("hidden_size"), "linear.hidden_size")?,
            linear_layers: uint(linear.get("num_layers"), "linear.num_layers")?,
            classes,
            duration,
            powerset_max_classes: config.get("powerset_max_classes").and_then(Json::as_u64).map(|m| m as usize),
        };
        if cfg.sample_rate != 16_000 {
            return Err(bad("SincNet only supports 16 kHz"));
        }
        Ok(cfg)
    }

    /// The classifier's outputs: one per class, or one per powerset class.
    pub fn outputs(&self) -> usize {
        match self.powerset_max_classes {
            Some(m) => super::powerset::num_powerset_classes(self.classes.len(), m),
            None => self.classes.len(),
        }
    }

    /// The powerset the outputs score (None: one sigmoid track per class).
    pub fn powerset(&self) -> Result<Option<super::powerset::Powerset>> {
        self.powerset_max_classes.map(|m| super::powerset::Powerset::new(self.classes.len(), m)).transpose()
    }

    /// Samples in one inference window.
    pub fn window_samples(&self) -> usize {
        (self.duration * self.sample_rate as f64).round() as usize
    }
}

/// The `segmentation_compute_type`s [`PyanNet::apply_compute_type`] accepts (the CLI's
/// `--segmentation_compute_type`, the worker's SEGMENTATION_COMPUTE_TYPE).
pub const SEGMENTATION_COMPUTE_TYPES: [&str; 3] = BF16_COMPUTE_TYPES;

/// One LSTM layer: forward (and reverse) direction weights `w_ih`, `w_hh`, `b_ih`, `b_hh`.
struct LstmLayer {
    directions: Vec<[Tensor; 4]>,
}

pub struct PyanNet {
    pub config: PyanNetConfig,
    sincnet: SincNet,
    lstm: Vec<LstmLayer>,
    linear: Vec<Linear>,
    classifier: Linear,
}

impl PyanNet {
    pub fn load(dev: &Device, store: &dyn WeightStore, config: &Json) -> Result<Self> {
        let config = PyanNetConfig::from_json(config)?;
        let sincnet = SincNet::load(dev, store, "sincnet", config.sincnet_stride, config.sample_rate)?;
        let h = config.lstm_hidden;
        let dirs = if config.bidirectional { 2 } else { 1 };
        let mut lstm = Vec::new();
        for l in 0..config.lstm_layers {
            let d_in = if l == 0 { CONV_CHANNELS } else { dirs * h };
            let mut directions = Vec::new();
            for suffix in ["", "_reverse"].iter().take(dirs) {
                let name = |w: &str| format!("lstm.{w}_l{l}{suffix}");
                directions.push([
                    load(dev, store, &name("weight_ih"), &[4 * h, d_in])?,
                    load(dev, store, &name("weight_hh"), &[4 * h, h])?,
                    load(dev, store, &name("bias_ih"), &[4 * h])?,
                    load(dev, store, &name("bias_hh"), &[4 * h])?,
                ]);
            }
            lstm.push(LstmLayer { directions });
        }
        let mut d = if config.lstm_layers > 0 { dirs * h } else { CONV_CHANNELS };
        let mut linear = Vec::new();
        for i in 0..config.linear_layers {
            linear.push(Linear::load(dev, store, &format!("linear.{i}"), d, config.linear_hidden, true)?);
            d = config.linear_hidden;
        }
        let classifier = Linear::load(dev, store, "classifier", d, config.outputs(), true)?;
        Ok(PyanNet { config, sincnet, lstm, linear, classifier })
    }

    /// Set the precision of the LSTMs' products (`segmentation_compute_type`, one of
    /// [`SEGMENTATION_COMPUTE_TYPES`]): `default` and `bfloat16` round both weights of every
    /// LSTM (`W_ih`, `W_hh`) to bfloat16 where the device computes bf16 products
    /// ([`Device::round_bfloat16`]: CPUs with AVX-512 BF16) and leave them elsewhere; `float32`
    /// keeps them as loaded. The biases, the gates, the cell, SincNet and the layers after the
    /// LSTMs stay f32 either way. Chosen by measurement (benches/README.md): the LSTMs take 1.7×
    /// less time and WhisperX's VAD gives the same speech regions to within one frame. (SincNet's
    /// 5-tap convs in bf16 ran 1.4–1.6× faster but doubled the drift: VAD scores 1.8e-2 → 3.3e-2
    /// from WhisperX's, segmentation-3.0's log-probabilities 3.8e-2 → 6.3e-2; not kept.)
    pub fn apply_compute_type(&mut self, dev: &Device, compute_type: &str) -> Result<()> {
        if wants_bfloat16("segmentation_compute_type", compute_type)? {
            for layer in &mut self.lstm {
                for [w_ih, w_hh, _, _] in &mut layer.directions {
                    *w_ih = dev.round_bfloat16(w_ih)?;
                    *w_hh = dev.round_bfloat16(w_hh)?;
                }
            }
        }
        Ok(())
    }

    /// What the LSTMs' products compute in: `bfloat16` once rounded weights took, else the
    /// device's own precision.
    pub fn compute_type(&self, dev: &Device) -> &'static str {
        match self.lstm.first().and_then(|l| l.directions.first()) {
            Some([_, w_hh, _, _]) if w_hh.dtype() == "bfloat16" => "bfloat16",
            _ => dev.compute_type(),
        }
    }

    /// Output frames for a window of `samples`.
    pub fn num_frames(&self, samples: usize) -> usize {
        num_frames(&self.sincnet.layers(), samples)
    }

    /// The output frames' place in time (pyannote `Model.receptive_field`).
    pub fn frames(&self) -> FrameWindow {
        FrameWindow::of(&self.sincnet.layers(), self.config.sample_rate)
    }

    /// `waveforms[B, 1, T]` → per-frame class probabilities `[B, frames, classes]` (sigmoids),
    /// or for a powerset model log-probabilities `[B, frames, outputs]` (log-softmax).
    pub fn forward(&self, dev: &Device, waveforms: &Tensor) -> Result<Tensor> {
        self.head(dev, self.sincnet.forward(dev, waveforms)?)
    }

    /// [`PyanNet::forward`] of `count` windows of the model's length, `hop` samples apart, from
    /// `stretch` (zero beyond its end), the sliding inference's batch, with the overlapping
    /// windows' filter bank computed once ([`SincNet::forward_windows`]).
    pub fn forward_windows(&self, dev: &Device, stretch: &[f32], count: usize, hop: usize) -> Result<Tensor> {
        let window = self.config.window_samples();
        self.head(dev, self.sincnet.forward_windows(dev, stretch, count, hop, window)?)
    }

    /// [`PyanNet::forward_windows`] of the wanted windows of several spans in one batch, in
    /// order ([`SincNet::forward_window_spans`]).
    pub fn forward_window_spans(&self, dev: &Device, spans: &[WindowSpan], hop: usize) -> Result<Tensor> {
        let window = self.config.window_samples();
        self.head(dev, self.sincnet.forward_window_spans(dev, spans, hop, window)?)
    }

    /// From SincNet's features `[B, 60, frames]` to the outputs.
    fn head(&self, dev: &Device, features: Tensor) -> Result<Tensor> {
        // batch feature frame → batch frame feature
        let mut x = dev.permute(&features, &[0, 2, 1])?;
        for layer in &self.lstm {
            let outs = layer
                .directions
                .iter()
                .enumerate()
                .map(|(d, [w_ih, w_hh, b_ih, b_hh])| dev.lstm(&x, w_ih, w_hh, b_ih, b_hh, d == 1))
                .collect::<Result<Vec<_>>>()?;
            x = if outs.len() == 1 { outs.into_iter().next().unwrap() } else { dev.concat(&[&outs[0], &outs[1]], 2)? };
        }
        for linear in &self.linear {
            x = dev.linear_activation(
                &x,
                &linear.weight,
                linear.bias.as_ref(),
                Activation::LeakyRelu(LEAKY_RELU_SLOPE),
            )?;
        }
        if self.config.powerset_max_classes.is_some() {
            let logits = dev.linear(&x, &self.classifier.weight, self.classifier.bias.as_ref())?;
            return dev.log_softmax(&logits);
        }
        dev.linear_activation(&x, &self.classifier.weight, self.classifier.bias.as_ref(), Activation::Sigmoid)
    }
}
