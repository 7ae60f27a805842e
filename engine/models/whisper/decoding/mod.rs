//! Decoding one 30 s window: openai/whisper decoding.py `DecodingTask` as an explicit loop.
//! The prompt is built by [`DecodingTask::initial_tokens`]; each step runs the decoder for every
//! live hypothesis at once (beams as one batch sharing the window's cross-attention), applies
//! the logit filters, and lets the greedy or beam-search rule pick the next tokens.

use crate::backend::Tensor;
use crate::cancel::Cancel;
use crate::error::{Error, Result};

use super::decoder::LogitPositions;
use super::tokenizer::Task;
use super::Whisper;

pub mod compression;
pub mod filters;
pub mod rng;
pub mod sequences;

use crate::backend::{RowMask, Sampling};
use filters::{ApplyTimestampRules, NoEndBeforeSpeechEnds, SuppressBlank, SuppressTokens};
use sequences::{BeamSearchDecoder, GreedyDecoder};

/// openai decoding.py `DecodingOptions` (plus faster-whisper's `hotwords`).
#[derive(Clone, Debug, PartialEq)]
pub struct DecodingOptions {
    pub task: Task,
    /// Language code; None only for English-only models (multilingual callers detect first).
    pub language: Option<String>,
    pub temperature: f32,
    /// Maximum new tokens (default n_text_ctx / 2 = 224).
    pub sample_len: Option<usize>,
    /// Independent samples at temperature > 0.
    pub best_of: Option<usize>,
    pub beam_size: Option<usize>,
    pub patience: Option<f32>,
    /// None: rank by length-normalised log-prob; Some(α): Google NMT penalty.
    pub length_penalty: Option<f32>,
    /// Previous-text tokens (`<|startofprev|>` is added).
    pub prompt: Vec<u32>,
    /// Tokens forced at the start of the transcript.
    pub prefix: Vec<u32>,
    /// faster-whisper `hotwords`: tokens placed after `<|startofprev|>` when there is no prefix.
    pub hotwords: Vec<u32>,
    /// Suppressed ids; `-1` stands for the model's non-speech symbols (openai's default "-1").
    pub suppress_tokens: Vec<i64>,
    /// Extra ids to suppress (whisperx `suppress_numerals`).
    pub extra_suppress: Vec<u32>,
    pub suppress_blank: bool,
    pub without_timestamps: bool,
    /// Seconds: the first timestamp may not be later (openai default 1.0).
    pub max_initial_timestamp: Option<f32>,
    /// Seed of the sampler at temperature > 0.
    pub seed: u64,
}

impl Default for DecodingOptions {
    fn default() -> Self {
        DecodingOptions {
            task: Task::Transcribe,
            language: None,
            temperature: 0.0,
            sample_len: None,
            best_of: None,
            beam_size: None,
            patience: None,
            length_penalty: None,
            prompt: Vec::new(),
            prefix: Vec::new(),
            hotwords: Vec::new(),
            suppress_tokens: vec![-1],
            extra_suppress: Vec::new(),
            suppress_blank: true,
            without_timestamps: false,
            max_initial_timestamp: Some(1.0),
            seed: 0,
        }
    }
}

/// decoding.py `DecodingResult`.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodingResult {
    /// Sampled tokens without the prompt and end-of-text (timestamps included).
    pub tokens: Vec<u32>,
    pub text: String,
    pub avg_logprob: f64,
    pub no_speech_prob: f64,
    pub temperature: f32,
    pub compression_ratio: f64,
}

/// Seconds per timestamp token: 30 s / 1500 positions (decoding.py `precision`).
pub const TIMESTAMP_PRECISION: f32 = 0.02;

pub struct DecodingTask<'a> {
    model: &'a Whisper,
    options: DecodingOptions,
    initial_tokens: Vec<u32>,
    sample_begin: usize,
    sot_index: usize,
    sample_len: usize,
    n_group: usize,
    suppress_blank: Option<SuppressBlank>,
    suppress_tokens: Option<SuppressTokens>,
    timestamp_rules: Option<ApplyTimestampRules>,
    /// Checked before every decoder step.
    cancel: Cancel,
    /// Per window of a batch: the timestamp index before which it may not end.
    speech_until: Vec<Option<u32>>,
}

impl<'a> DecodingTask<'a> {
    /// Stop at the next step once `cancel` is cancelled ([`Error::Cancelled`]).
    pub fn with_cancel(mut self, cancel: &Cancel) -> Self {
        self.cancel = cancel.clone();
        self
    }

    /// Window `a` of the batch may not end before timestamp index `until[a]`
    /// ([`NoEndBeforeSpeechEnds`]); needs timestamps.
    pub fn with_speech_until(mut self, until: Vec<Option<u32>>) -> Self {
        self.speech_until = until;
        self
    }

    pub fn new(model: &'a Whisper, options: DecodingOptions) -> Result<Self> {
        // decoding.py `_verify_options`
        if options.beam_size.is_some() && options.best_of.is_some() {
            return Err(Error::Other("beam_size and best_of can't be given together".into()));
        }
        if options.temperature == 0.0 && options.best_of.is_some() {
            return Err(Error::Other("best_of with greedy sampling (T=0) is not compatible".into()));
        }
        if options.patience.is_some() && options.beam_size.is_none() {
            return Err(Error::Other("patience requires beam_size to be given".into()));
        }
        if options.length_penalty.is_some_and(|a| !(0.0..=1.0).contains(&a)) {
            return Err(Error::Other("length_penalty (alpha) should be a value between 0 and 1".into()));
        }
        let tok = &model.tokenizer;
        let n_ctx = model.config.max_target_positions;
        let sample_len = options.sample_len.unwrap_or(n_ctx / 2);
        let initial_tokens = Self::initial_tokens(model, &options, sample_len)?;
        let sample_begin = initial_tokens.len();
        let sot_index = initial_tokens.iter().position(|&t| t == tok.special.sot).unwrap_or(0);
        let n_group = options.beam_size.or(options.best_of).unwrap_or(1).max(1);

        let suppress_blank = options.suppress_blank.then(|| -> Result<SuppressBlank> {
            let mut blank_and_eot = tok.encode(" ")?;
            blank_and_eot.push(tok.special.eot);
            Ok(SuppressBlank { blank_and_eot, sample_begin })
        });
        let suppress = Self::suppress_tokens(model, &options);
        let timestamp_rules = (!options.without_timestamps).then(|| ApplyTimestampRules {
            eot: tok.special.eot,
            no_timestamps: tok.special.no_timestamps,
            timestamp_begin: tok.special.timestamp_begin,
            sample_begin,
            max_initial_timestamp_index: options
                .max_initial_timestamp
                .map(|s| (s / TIMESTAMP_PRECISION).round() as u32),
        });
        Ok(DecodingTask {
            model,
            initial_tokens,
            sample_begin,
            sot_index,
            sample_len,
            n_group,
            suppress_blank: suppress_blank.transpose()?,
            suppress_tokens: (!suppress.is_empty()).then_some(SuppressTokens { tokens: suppress }),
            timestamp_rules,
            options,
            cancel: Cancel::new(),
            speech_until: Vec::new(),
        })
    }

    /// decoding.py `_get_initial_tokens` (with faster-whisper's hotwords):
    /// `[<|startofprev|> hotwords? prompt[-(n_ctx/2-1):]] sot_sequence [<|notimestamps|>] prefix`.
    pub fn initial_tokens(model: &Whisper, o: &DecodingOptions, sample_len: usize) -> Result<Vec<u32>> {
        let tok = &model.tokenizer;
        let n_ctx = model.config.max_target_positions;
        let mut tokens = tok.sot_sequence(o.language.as_deref(), o.task)?;
        if o.without_timestamps {
            tokens.push(tok.special.no_timestamps);
        }
        if !o.prefix.is_empty() {
            let max_prefix_len = (n_ctx / 2).saturating_sub(sample_len);
            tokens.extend_from_slice(&o.prefix[o.prefix.len().saturating_sub(max_prefix_len)..]);
        }
        let hotwords: &[u32] = if o.prefix.is_empty() { &o.hotwords } else { &[] };
        if !o.prompt.is_empty() || !hotwords.is_empty() {
            let keep = n_ctx / 2 - 1;
            let mut head = vec![tok.special.sot_prev];
            head.extend_from_slice(&hotwords[..hotwords.len().min(keep)]);
            let room = keep.saturating_sub(head.len() - 1);
            head.extend_from_slice(&o.prompt[o.prompt.len().saturating_sub(room)..]);
            head.extend(tokens);
            tokens = head;
        }
        Ok(tokens)
    }

    /// decoding.py `_get_suppress_tokens`.
    fn suppress_tokens(model: &Whisper, o: &DecodingOptions) -> Vec<u32> {
        let mut out: Vec<u32> = o.suppress_tokens.iter().filter(|&&t| t >= 0).map(|&t| t as u32).collect();
        if o.suppress_tokens.contains(&-1) {
            out.extend_from_slice(&model.generation.suppress_tokens);
        }
        out.extend_from_slice(&o.extra_suppress);
        if !o.suppress_tokens.is_empty() || !o.extra_suppress.is_empty() {
            out.extend(model.tokenizer.always_suppressed());
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// What the logit filters mask in the row of a hypothesis with `tokens` so far.
    fn row_mask(&self, tokens: &[u32], window: usize) -> RowMask {
        let mut mask = RowMask::default();
        if let (Some(Some(until)), Some(rules)) = (self.speech_until.get(window), &self.timestamp_rules) {
            NoEndBeforeSpeechEnds {
                eot: rules.eot,
                timestamp_begin: rules.timestamp_begin,
                sample_begin: self.sample_begin,
                until: *until,
            }
            .mask_into(&mut mask, tokens);
        }
        if let Some(f) = &self.suppress_blank {
            f.mask_into(&mut mask, tokens);
        }
        if let Some(f) = &self.suppress_tokens {
            f.mask_into(&mut mask);
        }
        if let Some(f) = &self.timestamp_rules {
            f.mask_into(&mut mask, tokens);
        }
        mask
    }

    /// Decode one window; `audio_features` is `[1, T, D]`.
    pub fn run(&self, audio_features: &Tensor) -> Result<DecodingResult> {
        let mut results = self.run_batch(audio_features)?;
        results.pop().ok_or_else(|| Error::Other("decoding returned no result".into()))
    }

    /// Decode a batch of windows `[A, T, D]` together (decoding.py `DecodingTask.run` on a
    /// batch of mels): every step runs the decoder once for all live hypotheses of all windows
    /// (`A × n_group` rows, each window's rows sharing its cross-attention), and each window
    /// keeps its own greedy / beam rule and sums. A window whose rule completes leaves the
    /// batch (its rows are dropped from the caches); the others go on.
    pub fn run_batch(&self, audio_features: &Tensor) -> Result<Vec<DecodingResult>> {
        let model = self.model;
        let dev = &model.device;
        let eot = model.tokenizer.special.eot;
        let n_ctx = model.config.max_target_positions;
        let vocab = model.config.vocab_size;
        let n_audio = audio_features.dim(0);
        let g = self.n_group;
        let mut state = model.decoder.start(dev, audio_features, g)?;
        let mut windows: Vec<WindowDecoding> = (0..n_audio)
            .map(|a| WindowDecoding {
                tokens: vec![self.initial_tokens.clone(); g],
                sum_logprobs: vec![0.0f32; g],
                no_speech_prob: f64::NAN,
                rule: match self.options.beam_size {
                    Some(b) => Rule::Beam(BeamSearchDecoder::new(b, eot, self.options.patience)),
                    // One random stream per window; the first window's is the single-window one.
                    None => Rule::Greedy(GreedyDecoder::new(
                        self.options.temperature,
                        eot,
                        self.options.seed.wrapping_add(a as u64),
                    )),
                },
                done: false,
            })
            .collect();
        // Windows still decoding, in the order of their rows in `state`.
        let mut live: Vec<usize> = (0..n_audio).collect();
        for step in 0..self.sample_len {
            if live.is_empty() {
                break;
            }
            self.cancel.check()?;
            let (feed, positions): (Vec<Vec<u32>>, _) = if step == 0 {
                let n = self.initial_tokens.len();
                let feed = live.iter().flat_map(|&a| windows[a].tokens.iter().cloned()).collect();
                (feed, LogitPositions::At(vec![self.sot_index, n - 1]))
            } else {
                let feed = live
                    .iter()
                    .flat_map(|&a| windows[a].tokens.iter().map(|t| vec![*t.last().unwrap_or(&eot)]))
                    .collect();
                (feed, LogitPositions::Last)
            };
            // [rows, positions, V] on the device; only the chosen ids and their log-probs come back.
            let logits = model.decoder.forward(dev, &feed, &mut state, positions)?;
            let rows = feed.len();
            let per_row = logits.numel() / (rows * vocab);
            let flat = logits.reshape(&[rows * per_row, vocab])?;
            if step == 0 {
                // "save no_speech_probs": softmax at the sot position of each window's first row
                for (j, &a) in live.iter().enumerate() {
                    let row = j * g * per_row;
                    windows[a].no_speech_prob =
                        (dev.logprob_of(&flat, row, model.tokenizer.special.no_speech)? as f64).exp();
                }
            }
            let last = if per_row == 1 {
                flat
            } else {
                dev.index_select(&flat, &(0..rows).map(|r| r * per_row + per_row - 1).collect::<Vec<_>>())?
            };
            let masks: Vec<RowMask> =
                live.iter().flat_map(|&a| windows[a].tokens.iter().map(move |seq| self.row_mask(seq, a))).collect();
            let choices = match self.options.beam_size {
                Some(b) => dev.choose_tokens(&last, &masks, b + 1, None)?,
                None => {
                    // Each window draws its rows' uniforms from its own stream.
                    let mut sampling: Option<Sampling> = None;
                    for &a in &live {
                        if let Rule::Greedy(d) = &mut windows[a].rule {
                            if let Some(s) = d.sampling(g) {
                                sampling
                                    .get_or_insert(Sampling { temperature: s.temperature, uniforms: Vec::new() })
                                    .uniforms
                                    .extend(s.uniforms);
                            }
                        }
                    }
                    dev.choose_tokens(&last, &masks, 0, sampling.as_ref())?
                }
            };
            let mut sources = Vec::with_capacity(rows);
            for (j, &a) in live.iter().enumerate() {
                let w = &mut windows[a];
                let mine = &choices[j * g..(j + 1) * g];
                w.done = match &mut w.rule {
                    Rule::Greedy(d) => {
                        sources.extend(j * g..(j + 1) * g);
                        d.update(&mut w.tokens, mine, &mut w.sum_logprobs)
                    }
                    Rule::Beam(b) => {
                        let top: Vec<Vec<(u32, f32)>> = mine.iter().map(|c| c.top.clone()).collect();
                        let (next, from, done) = b.update(&w.tokens, &top, &mut w.sum_logprobs);
                        sources.extend(from.iter().map(|&s| j * g + s));
                        w.tokens = next;
                        done
                    }
                } || w.tokens[0].len() > n_ctx;
            }
            state.reorder(&sources)?;
            let keep: Vec<bool> = live.iter().map(|&a| !windows[a].done).collect();
            if keep.iter().any(|k| !k) {
                state.retain_audios(dev, &keep)?;
                live.retain(|&a| !windows[a].done);
            }
        }
        windows.into_iter().map(|w| self.finish(w)).collect()
    }

    /// A window's best sequence (decoding.py: finalize, trim at the first eot, rank).
    fn finish(&self, w: WindowDecoding) -> Result<DecodingResult> {
        let model = self.model;
        let eot = model.tokenizer.special.eot;
        let candidates = match w.rule {
            Rule::Greedy(g) => g.finalize(w.tokens, &w.sum_logprobs),
            Rule::Beam(b) => b.finalize(&w.tokens, &w.sum_logprobs),
        };
        // "tokens = t[sample_begin : first eot]", then rank
        let trimmed: Vec<Vec<u32>> = candidates
            .iter()
            .map(|(t, _)| {
                let body = &t[self.sample_begin.min(t.len())..];
                body[..body.iter().position(|&x| x == eot).unwrap_or(body.len())].to_vec()
            })
            .collect();
        let sums: Vec<f32> = candidates.iter().map(|(_, s)| *s).collect();
        let lengths: Vec<usize> = trimmed.iter().map(Vec::len).collect();
        let best = sequences::rank(&lengths, &sums, self.options.length_penalty);
        let tokens = trimmed.into_iter().nth(best).unwrap_or_default();
        let text = model.tokenizer.decode(&tokens)?.trim().to_string();
        Ok(DecodingResult {
            avg_logprob: sums[best] as f64 / (tokens.len() + 1) as f64,
            compression_ratio: compression::compression_ratio(&text),
            tokens,
            text,
            no_speech_prob: w.no_speech_prob,
            temperature: self.options.temperature,
        })
    }
}

enum Rule {
    Greedy(GreedyDecoder),
    Beam(BeamSearchDecoder),
}

/// One window's hypotheses while a batch decodes.
struct WindowDecoding {
    tokens: Vec<Vec<u32>>,
    sum_logprobs: Vec<f32>,
    no_speech_prob: f64,
    rule: Rule,
    done: bool,
}

/// decoding.py `detect_language`: probabilities of each language token at the first position
/// after `<|startoftranscript|>`, for one encoded window `[1, T, D]`. Sorted, most likely first.
pub fn detect_language(model: &Whisper, audio_features: &Tensor) -> Result<Vec<(String, f32)>> {
    let tok = &model.tokenizer;
    if !tok.multilingual {
        return Err(Error::Other("language detection needs a multilingual model; this one is English-only".into()));
    }
    let dev = &model.device;
    let mut state = model.decoder.start(dev, audio_features, 1)?;
    let logits =
        dev.download(&model.decoder.forward(dev, &[vec![tok.special.sot]], &mut state, LogitPositions::Last)?)?;
    let lang_logits: Vec<f32> = tok.special.languages.iter().map(|&t| logits[t as usize]).collect();
    let probs = filters::log_softmax(&lang_logits);
    let mut out: Vec<(String, f32)> =
        super::tokenizer::LANGUAGES.iter().zip(probs).map(|(code, lp)| (code.to_string(), lp.exp())).collect();
    out.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    Ok(out)
}
