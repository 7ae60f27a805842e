//! PyanNet (pyannote.audio `models/segmentation/PyanNet.py`), the segmentation model WhisperX
//! uses as its VAD: SincNet → a monolithic bidirectional LSTM → leaky-ReLU linear layers → a
//! sigmoid per speaker track (the multi-label checkpoint WhisperX ships: 3 tracks).

use serde_json::Value as Json;

use crate::backend::{Activation, Device, Tensor};
use crate::error::{Error, Result};
use crate::models::common::layers::{load, Linear};
use crate::weights::WeightStore;

use super::receptive_field::{num_frames, FrameWindow};
use super::sincnet::{SincNet, CONV_CHANNELS, LEAKY_RELU_SLOPE};

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
        };
        if cfg.sample_rate != 16_000 {
            return Err(bad("SincNet only supports 16 kHz"));
        }
        Ok(cfg)
    }

    /// Samples in one inference window.
    pub fn window_samples(&self) -> usize {
        (self.duration * self.sample_rate as f64).round() as usize
    }
}

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
        let classifier = Linear::load(dev, store, "classifier", d, config.classes.len(), true)?;
        Ok(PyanNet { config, sincnet, lstm, linear, classifier })
    }

    /// Output frames for a window of `samples`.
    pub fn num_frames(&self, samples: usize) -> usize {
        num_frames(&self.sincnet.layers(), samples)
    }

    /// The output frames' place in time (pyannote `Model.receptive_field`).
    pub fn frames(&self) -> FrameWindow {
        FrameWindow::of(&self.sincnet.layers(), self.config.sample_rate)
    }

    /// `waveforms[B, 1, T]` → per-frame class probabilities `[B, frames, classes]`.
    pub fn forward(&self, dev: &Device, waveforms: &Tensor) -> Result<Tensor> {
        let features = self.sincnet.forward(dev, waveforms)?;
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
        dev.linear_activation(&x, &self.classifier.weight, self.classifier.bias.as_ref(), Activation::Sigmoid)
    }
}
