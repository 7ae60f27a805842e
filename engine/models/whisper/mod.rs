//! Whisper: configuration, tokenizer, encoder, decoder and greedy decoding, loaded from a
//! Hugging Face or CTranslate2 (faster-whisper) checkpoint directory.

use std::path::{Path, PathBuf};

use crate::backend::{Device, Tensor};
use crate::error::{Error, Result};
use crate::weights::{self, CheckpointKind, WeightStore};

pub mod attention;
pub mod bpe;
pub mod clips;
pub mod config;
pub mod decoder;
pub mod decoding;
pub mod encoder;
pub mod hallucination;
pub mod longform;
pub mod timing;
pub mod tokenizer;
pub mod transcribe;

pub use config::{GenerationData, WhisperConfig};
pub use tokenizer::{Task, WhisperTokenizer};

pub struct Whisper {
    pub config: WhisperConfig,
    pub generation: GenerationData,
    pub tokenizer: WhisperTokenizer,
    pub encoder: encoder::Encoder,
    pub decoder: decoder::Decoder,
    pub device: Device,
    /// The checkpoint file the weights came from.
    pub weights_path: PathBuf,
}

/// Open the weights of a model directory (either layout) with its configuration.
pub fn open_checkpoint(dir: &Path) -> Result<(Box<dyn WeightStore>, WhisperConfig, GenerationData)> {
    match weights::detect(dir)? {
        CheckpointKind::HuggingFace(path) => {
            let store = weights::safetensors_store::SafetensorsStore::open(&path)?;
            let config = WhisperConfig::from_hf_json(&dir.join("config.json"))?;
            let generation =
                GenerationData::from_hf_json(Some(&dir.join("generation_config.json")), &dir.join("config.json"))?;
            Ok((Box::new(store), config, generation))
        }
        CheckpointKind::CTranslate2(path) => {
            let store = weights::ct2::Ct2Store::open(&path)?;
            let config = WhisperConfig::from(store.whisper_dims()?);
            let ct2_config = dir.join("config.json");
            let generation = if ct2_config.is_file() {
                GenerationData::from_ct2_json(&ct2_config)?
            } else {
                GenerationData::default()
            };
            Ok((Box::new(store), config, generation))
        }
    }
}

/// The `compute_type`s [`Whisper::apply_compute_type`] accepts (the CLI's `--compute_type`, the
/// worker's WHISPERX_COMPUTE_TYPE).
pub const COMPUTE_TYPES: [&str; 5] = ["default", "float16", "float32", "int8", "bfloat16"];

impl Whisper {
    /// Load a model directory onto `device`.
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let (store, config, generation) = open_checkpoint(dir)?;
        let tokenizer_path = dir.join("tokenizer.json");
        if !tokenizer_path.is_file() {
            return Err(Error::format(dir, "tokenizer.json is missing from the model directory"));
        }
        // The tokenizer's 2 MB of JSON (about 95 ms) is parsed while the weights load (about
        // 75 ms for tiny.en): each is one thread's work.
        let (tokenizer, weights) = rayon::join(
            || WhisperTokenizer::from_file(&tokenizer_path, config.vocab_size),
            || -> Result<_> {
                let encoder = encoder::Encoder::load(&device, store.as_ref(), &config)?;
                Ok((encoder, decoder::Decoder::load(&device, store.as_ref(), &config)?))
            },
        );
        let (tokenizer, (encoder, decoder)) = (tokenizer?, weights?);
        Ok(Whisper {
            weights_path: store.path().to_path_buf(),
            config,
            generation,
            tokenizer,
            encoder,
            decoder,
            device,
        })
    }

    /// Compute the encoder's and decoder's products in int8 where the backend can
    /// (`compute_type=int8`, see [`Device::quantize_int8`]); elsewhere nothing changes.
    pub fn quantize_int8(&mut self) -> Result<()> {
        self.encoder.quantize_int8(&self.device)?;
        self.decoder.quantize_int8(&self.device)
    }

    /// Compute the encoder's products (and the cross-attention's keys and values, its other
    /// GEMMs over the audio frames) in bfloat16 with f32 sums where the backend can
    /// (`compute_type=default`, see [`Device::round_bfloat16`]); elsewhere nothing changes.
    pub fn round_encoder_bfloat16(&mut self) -> Result<()> {
        self.encoder.round_bfloat16(&self.device)?;
        self.decoder.round_cross_kv_bfloat16(&self.device)
    }

    /// Every linear product in bfloat16 with f32 sums where the backend can (`compute_type=bfloat16`):
    /// the encoder's, as [`Self::round_encoder_bfloat16`], and the decoder's per-token ones
    /// ([`decoder::Decoder::round_bfloat16`]).
    pub fn round_bfloat16(&mut self) -> Result<()> {
        self.encoder.round_bfloat16(&self.device)?;
        self.decoder.round_bfloat16(&self.device)
    }

    /// Apply a requested `compute_type` (one of [`COMPUTE_TYPES`]): `int8` quantises where the
    /// backend computes int8 products; `default` rounds the encoder's weights where it computes
    /// bf16 products (CPUs with AVX-512 BF16), `bfloat16` the decoder's too; `float32` and
    /// `float16` keep the checkpoint's weights and the backend's own precision (float32 on the
    /// CPU, float16 on CUDA, as `default` and `bfloat16` are where there are no bf16 products).
    /// The encoder in bf16 is the default because it moved no WER figure of the benchmark
    /// (clips, long and noisy files, sequential and batched, benches/README.md); the decoder in
    /// bf16 and int8 are not: each moves some figures, up or down, and int8 costs tiny.en 3.6 WER
    /// points on the noisy file sequentially.
    ///
    /// Every type but `float32` also keeps the decoder's cross-attention keys and values in f16
    /// ([`decoder::Decoder::keep_cross_kv_float16`]): that moved no WER figure and no transcript
    /// of the same benchmark, and halves what each decoding step reads. `float32` is the
    /// checkpoint's arithmetic throughout.
    pub fn apply_compute_type(&mut self, requested: &str) -> Result<()> {
        match requested {
            "int8" => self.quantize_int8(),
            "default" => self.round_encoder_bfloat16(),
            "bfloat16" => self.round_bfloat16(),
            "float16" | "float32" => Ok(()),
            other => Err(Error::Other(format!(
                "unknown compute_type `{other}` (expected one of {})",
                COMPUTE_TYPES.join(", ")
            ))),
        }?;
        self.decoder.keep_cross_kv_float16(requested != "float32");
        Ok(())
    }

    /// How the decoder's cross-attention keys and values are stored (`float16` or `float32`).
    pub fn cross_kv_dtype(&self) -> &'static str {
        self.decoder.cross_kv_dtype()
    }

    /// What the products really compute in, for the `[Predict] compute_type=` line: `int8`
    /// once quantised weights took, `bfloat16` once the encoder's (at least) were rounded, else
    /// the backend's own precision.
    pub fn compute_type(&self) -> &'static str {
        match (self.decoder.weight_dtype(), self.encoder.weight_dtype()) {
            ("int8", _) => "int8",
            (_, "bfloat16") => "bfloat16",
            _ => self.device.compute_type(),
        }
    }

    /// What the decoder's per-token products compute in (the `[Predict]` line's `decoder=`):
    /// `int8` or `bfloat16` once its weights took, else the backend's own precision.
    pub fn decoder_compute_type(&self) -> &'static str {
        match self.decoder.weight_dtype() {
            dtype @ ("int8" | "bfloat16") => dtype,
            _ => self.device.compute_type(),
        }
    }

    /// Encode a batch of log-mel windows, `mel` row-major `[B, n_mels, 3000]`. When the GPU runs
    /// out of memory the batch is halved and the rest encoded in smaller chunks.
    pub fn encode(&self, mel: &[f32], batch: usize) -> Result<Tensor> {
        let frames = 2 * self.config.max_source_positions;
        let window = self.config.num_mel_bins * frames;
        if mel.len() != batch * window {
            return Err(crate::error::Error::shape("encode", format!("{} mel values for {batch} windows", mel.len())));
        }
        let (chunks, _) = crate::backend::oom::halve_on_oom(batch, batch, |start, len| {
            let x = self
                .device
                .upload(&mel[start * window..(start + len) * window], &[len, self.config.num_mel_bins, frames])?;
            self.encoder.forward(&self.device, &x)
        })?;
        match chunks.len() {
            1 => Ok(chunks.into_iter().next().expect("one chunk")),
            _ => self.device.concat(&chunks.iter().collect::<Vec<_>>(), 0),
        }
    }

    /// Greedy decoding of one encoded window (`[1, T, D]`) without timestamps: the rule the
    /// reference tests pin down (suppress_tokens "-1", suppress_blank, argmax, 224 tokens).
    pub fn greedy(&self, audio_features: &Tensor, language: Option<&str>, task: Task) -> Result<Vec<u32>> {
        let options = decoding::DecodingOptions {
            task,
            language: self.tokenizer.multilingual.then(|| language.unwrap_or("en").to_string()),
            without_timestamps: true,
            ..Default::default()
        };
        Ok(decoding::DecodingTask::new(self, options)?.run(audio_features)?.tokens)
    }

    /// Cross-attention heads used for word timing: the checkpoint's alignment heads, else every
    /// head of the upper half of the decoder layers (openai model.py default).
    pub fn alignment_heads(&self) -> Vec<(usize, usize)> {
        if !self.generation.alignment_heads.is_empty() {
            return self.generation.alignment_heads.clone();
        }
        let (layers, heads) = (self.config.decoder_layers, self.config.decoder_attention_heads);
        (layers / 2..layers).flat_map(|l| (0..heads).map(move |h| (l, h))).collect()
    }

    /// Word times of `text_tokens` in one encoded window (`[1, T, D]`) by cross-attention DTW
    /// (openai timing.py `find_alignment`); times relative to the window start.
    pub fn word_alignment(
        &self,
        audio_features: &Tensor,
        text_tokens: &[u32],
        language: &str,
        task: Task,
        num_frames: usize,
    ) -> Result<Vec<timing::WordTiming>> {
        if text_tokens.is_empty() {
            return Ok(Vec::new());
        }
        let tok = &self.tokenizer;
        let sot = tok.sot_sequence(Some(language), task)?;
        let mut tokens = sot.clone();
        tokens.push(tok.special.no_timestamps);
        tokens.extend_from_slice(text_tokens);
        tokens.push(tok.special.eot);
        if tokens.len() > self.config.max_target_positions {
            return Ok(Vec::new());
        }
        let mut captured: Vec<((usize, usize), Vec<f32>)> =
            self.alignment_heads().into_iter().map(|h| (h, Vec::new())).collect();
        let dev = &self.device;
        let mut state = self.decoder.start(dev, audio_features, 1)?;
        let logits = dev.download(&self.decoder.forward_capturing(
            dev,
            &[tokens.clone()],
            &mut state,
            decoder::LogitPositions::All,
            &mut captured,
        )?)?;
        // "token_probs = logits[len(sot_sequence):, :eot].softmax(-1)" at each text token
        let vocab = self.config.vocab_size;
        let eot = tok.special.eot as usize;
        let token_probs: Vec<f32> = text_tokens
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let row = &logits[(sot.len() + i) * vocab..][..eot];
                let lp = decoding::filters::log_softmax(row);
                lp.get(t as usize).map_or(0.0, |v| v.exp())
            })
            .collect();
        let n_frames_total = audio_features.dim(1);
        let qk: Vec<f32> = captured.into_iter().flat_map(|(_, v)| v).collect();
        let n_heads = qk.len() / (tokens.len() * n_frames_total).max(1);
        let split = |t: &[u32]| tok.split_to_word_tokens(t, language).unwrap_or_default();
        Ok(timing::find_alignment(
            &qk,
            n_heads,
            tokens.len(),
            n_frames_total,
            num_frames,
            sot.len(),
            text_tokens,
            tok.special.eot,
            &token_probs,
            &split,
            timing::MEDFILT_WIDTH,
            1.0,
        ))
    }
}
