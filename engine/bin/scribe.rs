//! `scribe` — the command line, with WhisperX's flag names.
//!
//! `scribe transcribe AUDIO...` transcribes files of any length — as WhisperX does by default,
//! voice-activity chunks decoded in batches (`--vad_method pyannote`), or with openai
//! transcribe.py's sequential long-form loop (`--vad_method none`) — and writes
//! txt/srt/vtt/tsv/json/aud; `scribe convert-ct2 IN_DIR OUT_DIR`
//! rewrites a CTranslate2 / faster-whisper checkpoint in the Hugging Face layout.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};

use scribe::align::Mode as AlignMode;
use scribe::backend::{Device, DeviceRequest};
use scribe::hub::torch_hub::TorchHubConfig;
use scribe::hub::{resolve_whisper, HubConfig};
use scribe::models::pyannote::checkpoint as vad_checkpoint;
use scribe::models::wav2vec2::bundles::TORCHAUDIO_MODELS_URL;
use scribe::models::whisper::clips::{parse_clip_timestamps, DEFAULT_CLIP_TIMESTAMPS};
use scribe::models::whisper::{Task, Whisper};
use scribe::output::{parse_formats, write_outputs, WriterOptions};
use scribe::pipeline::align_models::{AlignModels, AlignSource};
use scribe::pipeline::batched::BATCH_SIZE;
use scribe::pipeline::diarize_models::{ComputeTypes, DiarizeModels};
use scribe::pipeline::options::set_beam_size;
use scribe::pipeline::options::AlignOptions;
use scribe::pipeline::speaker_models::SpeakerModels;
use scribe::pipeline::speech_chunks::{CHUNK_SIZE, MIN_CHUNK_SIZE, VAD_OFFSET, VAD_ONSET};
use scribe::pipeline::{
    DiarizeOptions, Models, Pipeline, PipelineOptions, Progress, Stage, VadMethod, VadOptions, VerifyOptions,
};
use scribe::Cancel;

/// WhisperX flags whose stage this version does not have yet: refused by name, never ignored.
const NOT_YET: &[(&str, &str)] =
    &[("--segment_resolution", "wav2vec2 alignment"), ("--device_index", "the CUDA backend")];

/// whisperx `--patience` default (conventional beam search).
const DEFAULT_PATIENCE: f32 = 1.0;

#[derive(Parser)]
#[command(name = "scribe", version, about = "Speech to text: Whisper on CPU (CUDA to come)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transcribe audio files.
    Transcribe(Box<TranscribeArgs>),
    /// Convert a CTranslate2 (faster-whisper) model directory to the Hugging Face layout.
    #[command(name = "convert-ct2")]
    ConvertCt2 {
        /// Directory with model.bin, config.json, tokenizer.json.
        in_dir: PathBuf,
        /// Output directory (model.safetensors, config.json, generation_config.json, tokenizer.json).
        out_dir: PathBuf,
    },
    /// Convert a pyannote segmentation checkpoint (WhisperX's VAD, segmentation-3.0: a PyTorch
    /// Lightning pickle, read without executing it) to model.safetensors + config.json.
    #[command(name = "convert-vad")]
    ConvertVad {
        /// The checkpoint (whisperx/assets/pytorch_model.bin, segmentation-3.0's pytorch_model.bin).
        input: PathBuf,
        /// Output directory.
        out_dir: PathBuf,
    },
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("expected True or False, got `{s}`")),
    }
}

/// `--interpolate_method`: the library's own parser, so the CLI accepts what the worker accepts.
fn parse_interpolate(s: &str) -> Result<scribe::align::Interpolate, String> {
    s.parse().map_err(|e: scribe::Error| e.to_string())
}

/// A count of at least 1 (line widths and counts).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a whole number >= 1, got `{s}`")),
    }
}

#[derive(clap::Args)]
#[command(rename_all = "snake_case")]
struct TranscribeArgs {
    /// Audio files (wav, flac).
    #[arg(required = true)]
    audio: Vec<PathBuf>,
    /// Model name (tiny.en, base, large-v3, owner/repo) or a model directory.
    #[arg(long, default_value = "tiny.en", env = "WHISPERX_MODEL")]
    model: String,
    /// Directory holding downloaded models (a model named NAME is looked for in MODEL_DIR/NAME).
    #[arg(long, default_value = "models")]
    model_dir: PathBuf,
    /// Device: auto, cpu or cuda.
    #[arg(long, default_value = "auto", env = "WHISPERX_DEVICE")]
    device: String,
    /// Requested precision: default computes the encoder's products in bf16 with f32 sums on CPUs
    /// with AVX-512 BF16, float32 elsewhere; bfloat16 computes the decoder's per-token products
    /// in bf16 too; CUDA computes in float16 with f32 accumulation; float32 keeps every CPU
    /// product in f32; int8 computes Whisper's products in int8 on CPUs with AVX-512 VNNI (the
    /// precision used is logged).
    #[arg(long, default_value = "default", value_parser = scribe::models::whisper::COMPUTE_TYPES)]
    compute_type: String,
    /// Precision of the pyannote segmentation models' LSTMs (WhisperX's VAD, diarization's
    /// segmentation-3.0): default and bfloat16 compute their products in bf16 (f32 sums) on CPUs
    /// with AVX-512 BF16, float32 keeps them in f32 (logged).
    #[arg(
        long,
        default_value = "default",
        env = "SEGMENTATION_COMPUTE_TYPE",
        value_parser = scribe::models::pyannote::SEGMENTATION_COMPUTE_TYPES
    )]
    segmentation_compute_type: String,
    /// Precision of the diarization's speaker-embedding model (CAM++'s FCM, TDNN and 1×1 convs):
    /// default and bfloat16 compute them in bf16 (f32 sums) on CPUs with AVX-512 BF16, float32
    /// keeps them in f32 (logged with the diarization model).
    #[arg(
        long,
        default_value = "default",
        env = "EMBEDDING_COMPUTE_TYPE",
        value_parser = scribe::models::campplus::EMBEDDING_COMPUTE_TYPES
    )]
    embedding_compute_type: String,
    /// Precision of the wav2vec2 alignment model: bfloat16 computes its transformer's
    /// projections, feed-forward and attention products and its feature encoder's convs (all
    /// but the first) in bf16 (f32 sums) on CPUs with AVX-512 BF16; default and float32 keep
    /// f32 (logged with the alignment model).
    #[arg(
        long,
        default_value = "default",
        env = "ALIGN_COMPUTE_TYPE",
        value_parser = scribe::models::wav2vec2::ALIGN_COMPUTE_TYPES
    )]
    align_compute_type: String,
    /// Directory for the output files.
    #[arg(short = 'o', long, default_value = ".")]
    output_dir: PathBuf,
    /// Output format: all, srt, vtt, txt, tsv, json, aud (all = txt, vtt, srt, tsv, json).
    #[arg(short = 'f', long, default_value = "all")]
    output_format: String,
    /// transcribe, or translate to English (multilingual models).
    #[arg(long, default_value = "transcribe", value_parser = ["transcribe", "translate"])]
    task: String,
    /// Language code; detected on the first 30 s when omitted (multilingual models).
    #[arg(long)]
    language: Option<String>,
    /// Sampling temperature of the first attempt (>= 0).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    temperature: f32,
    /// Temperature added on each fallback when a window fails the gates ("none" disables fallback).
    #[arg(long, default_value = "0.2", allow_hyphen_values = true)]
    temperature_increment_on_fallback: String,
    /// Candidates sampled when the temperature is above 0 (>= 1).
    #[arg(long, default_value_t = 5, allow_hyphen_values = true)]
    best_of: usize,
    /// Beams at temperature 0 (1 = greedy).
    #[arg(long, default_value_t = 5, allow_hyphen_values = true)]
    beam_size: usize,
    /// Beam search patience (finished candidates = beam_size × patience; > 0, needs beam_size > 1).
    #[arg(long, default_value_t = DEFAULT_PATIENCE, allow_hyphen_values = true)]
    patience: f32,
    /// Google NMT length penalty alpha in [0, 1] ("none" = simple length normalisation).
    #[arg(long, default_value = "1.0", allow_hyphen_values = true)]
    length_penalty: String,
    /// Comma-separated token ids to suppress; -1 = the model's non-speech symbols.
    #[arg(long, default_value = "-1", allow_hyphen_values = true)]
    suppress_tokens: String,
    /// Suppress numerals and currency/percent symbols (numbers are spelled out). A bare switch
    /// as in whisperx (`--suppress_numerals`); `--suppress_numerals=False` is accepted too.
    #[arg(
        long,
        default_value = "False",
        value_parser = parse_bool,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "True",
        action = ArgAction::Set
    )]
    suppress_numerals: bool,
    /// Text to condition the first window on.
    #[arg(long)]
    initial_prompt: Option<String>,
    /// Words to bias decoding towards (placed in the prompt of every window).
    #[arg(long)]
    hotwords: Option<String>,
    /// Feed each window's text as the prompt of the next (WhisperX default False).
    #[arg(long, default_value = "False", value_parser = parse_bool, action = ArgAction::Set)]
    condition_on_previous_text: bool,
    /// Retry at a higher temperature above this gzip compression ratio ("none": no check).
    #[arg(long, default_value = "2.4", allow_hyphen_values = true)]
    compression_ratio_threshold: String,
    /// Retry at a higher temperature below this average log-probability ("none": no check).
    #[arg(long, default_value = "-1.0", allow_hyphen_values = true)]
    logprob_threshold: String,
    /// Treat a window as silence above this no-speech probability (with a low log-prob; "none": never).
    #[arg(long, default_value = "0.6", allow_hyphen_values = true)]
    no_speech_threshold: String,
    /// Word times from cross-attention DTW (openai-whisper's flag); wav2vec2 alignment, when it
    /// runs, replaces them.
    #[arg(long, default_value = "False", value_parser = parse_bool, action = ArgAction::Set)]
    word_timestamps: bool,
    /// No wav2vec2 alignment (word times then only from --word_timestamps True).
    #[arg(long)]
    no_align: bool,
    /// wav2vec2 CTC model for word alignment: a torchaudio bundle name, a Hugging Face repo or a
    /// local directory (default: WhisperX's model for the language).
    #[arg(long)]
    align_model: Option<String>,
    /// How words the aligner could not time get times: nearest, linear or ignore.
    #[arg(long, default_value = "nearest", value_parser = parse_interpolate)]
    interpolate_method: scribe::align::Interpolate,
    /// Also write each character's time (the JSON's `chars`).
    #[arg(long)]
    return_char_alignments: bool,
    /// Label each segment and word with its speaker (pyannote-style diarization: segmentation-3.0
    /// and CAM++ embeddings by default; `models/fetch segmentation-3.0` and `models/fetch campplus`).
    #[arg(long)]
    diarize: bool,
    /// At least this many speakers (with --diarize).
    #[arg(long)]
    min_speakers: Option<usize>,
    /// At most this many speakers (with --diarize).
    #[arg(long)]
    max_speakers: Option<usize>,
    /// The diarization models: a directory holding segmentation-3.0/ and campplus/ (default:
    /// those under --model_dir).
    #[arg(long)]
    diarize_model: Option<String>,
    /// Write each speaker's embedding (its cluster's centroid) to the JSON's `speaker_embeddings`.
    #[arg(long)]
    speaker_embeddings: bool,
    /// The diarization clustering's cosine distance threshold (default: the model's own; lower
    /// finds more speakers).
    #[arg(long, allow_hyphen_values = true)]
    diarize_threshold: Option<f64>,
    /// On the CPU, find the speakers after the transcription rather than alongside it (the
    /// same result, later; for timing each stage alone).
    #[arg(long)]
    diarize_after_transcription: bool,
    /// An enrolled voice, NAME=PATH (repeatable; several samples of one name are combined):
    /// diarized speakers whose voice matches take the name (turns --diarize on).
    #[arg(long = "speaker_sample", value_parser = parse_speaker_sample)]
    speaker_samples: Vec<scribe::pipeline::SpeakerSample>,
    /// The model that embeds the samples and the speakers: "diarization" (the diarizer's own,
    /// CAM++ by default) or a SpeechBrain ECAPA directory or hub repository
    /// (speechbrain/spkrec-ecapa-voxceleb).
    #[arg(long, env = "SPEAKER_MODEL")]
    speaker_model: Option<String>,
    /// The cosine similarity a speaker needs to take a name (default: the model's own).
    #[arg(long, allow_hyphen_values = true)]
    speaker_threshold: Option<f64>,
    /// ctc-viterbi (true CTC Viterbi: words end where their sound ends, every word timed) or
    /// whisperx-compat (WhisperX 3.8's trellis, result for result).
    #[arg(long, default_value = "ctc-viterbi", value_parser = ["ctc-viterbi", "whisperx-compat"])]
    align_mode: String,
    /// Only these spans: "start,end,start,end,..." in seconds (an odd count runs to the end).
    #[arg(long, default_value = DEFAULT_CLIP_TIMESTAMPS, allow_hyphen_values = true)]
    clip_timestamps: String,
    /// With --word_timestamps True: skip silences longer than this (seconds) around a likely
    /// hallucination ("none": off).
    #[arg(long, default_value = "none", allow_hyphen_values = true)]
    hallucination_silence_threshold: String,
    /// Subtitles: maximum characters per line (needs word timestamps).
    #[arg(long, value_parser = at_least_one, allow_hyphen_values = true)]
    max_line_width: Option<usize>,
    /// Subtitles: maximum lines per cue (needs --max_line_width).
    #[arg(long, value_parser = at_least_one, allow_hyphen_values = true)]
    max_line_count: Option<usize>,
    /// Subtitles: underline each word as it is spoken (needs word times).
    #[arg(long, default_value = "False", value_parser = parse_bool, action = ArgAction::Set)]
    highlight_words: bool,
    /// CPU threads (0 = all cores).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    threads: usize,
    /// Log progress lines even when stderr is not a terminal.
    #[arg(long, default_value = "False", value_parser = parse_bool, action = ArgAction::Set)]
    print_progress: bool,
    /// Hugging Face token for gated or private models (else HF_TOKEN).
    #[arg(long)]
    hf_token: Option<String>,
    /// Never download: use models already in --model_dir or the hub cache (as HF_HUB_OFFLINE=1).
    #[arg(long, default_value = "False", value_parser = parse_bool, action = ArgAction::Set)]
    model_cache_only: bool,
    /// Print each segment (`[start --> end] text`) to stdout as the file finishes.
    #[arg(long, default_value = "True", value_parser = parse_bool, action = ArgAction::Set)]
    verbose: bool,
    /// Seed of temperature sampling.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    seed: u64,
    /// Voice activity detection: pyannote (WhisperX's segmentation model; speech is cut into
    /// chunks decoded in batches) or none (openai's sequential long-form decoding of everything).
    #[arg(long, default_value = "pyannote")]
    vad_method: String,
    /// VAD: a speech region starts where the score rises above this.
    #[arg(long, default_value_t = VAD_ONSET, allow_hyphen_values = true)]
    vad_onset: f32,
    /// VAD: a speech region ends where the score falls below this.
    #[arg(long, default_value_t = VAD_OFFSET, allow_hyphen_values = true)]
    vad_offset: f32,
    /// VAD: longest chunk of merged speech, seconds (at most 30, Whisper's window).
    #[arg(long, default_value_t = CHUNK_SIZE, allow_hyphen_values = true)]
    chunk_size: f64,
    /// VAD: chunks encoded and decoded together.
    #[arg(long, default_value_t = BATCH_SIZE, allow_hyphen_values = true)]
    batch_size: usize,
    /// VAD: seconds between the model's 5 s windows (a Scribe extension). `auto` is pyannote's
    /// 0.5 s, WhisperX's exact scores; larger steps cost proportionally less on a CPU
    /// (2.5 s: 5× less) and move region edges slightly.
    #[arg(long, default_value = "auto")]
    vad_step: String,
    /// VAD: score the windows coarse to fine (every fifth first, then all windows over the
    /// frames whose decision is near a threshold): WhisperX's regions from fewer windows where
    /// the recording has long stretches without speech. False scores every window.
    #[arg(long, default_value = "True", value_parser = parse_bool, action = ArgAction::Set)]
    vad_coarse_to_fine: bool,
}

/// `--vad_step`: `auto` (pyannote's step) or seconds in (0, 5].
fn vad_step(s: &str) -> anyhow::Result<Option<f64>> {
    if s == "auto" {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 5.0 => Ok(Some(v)),
        _ => anyhow::bail!("--vad_step {s}: expected auto or seconds in (0, 5] (the window is 5 s)"),
    }
}

fn vad_method(s: &str) -> anyhow::Result<VadMethod> {
    match s {
        "pyannote" => Ok(VadMethod::Pyannote),
        "none" => Ok(VadMethod::None),
        "silero" => anyhow::bail!(
            "--vad_method silero is not supported: Scribe runs WhisperX's default pyannote VAD (or none, sequential decoding)"
        ),
        other => anyhow::bail!("--vad_method {other}: expected pyannote or none"),
    }
}

fn main() -> ExitCode {
    scribe::allocator::keep_large_blocks();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args: Vec<String> = std::env::args().collect();
    for a in &args {
        let flag = a.split('=').next().unwrap_or(a);
        if let Some((_, stage)) = NOT_YET.iter().find(|(f, _)| *f == flag) {
            eprintln!(
                "scribe: error: {flag} is not supported yet: it belongs to {stage}, which this version does not have"
            );
            return ExitCode::from(2);
        }
    }
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::Transcribe(args) => run_transcribe(*args),
        Command::ConvertCt2 { in_dir, out_dir } => {
            scribe::weights::convert::ct2_to_hf(&in_dir, &out_dir).map_err(Into::into)
        }
        Command::ConvertVad { input, out_dir } => {
            scribe::weights::convert_vad::convert_vad(&input, &out_dir).map_err(Into::into)
        }
    };
    if scribe::backend::profile::enabled() {
        eprint!("{}", scribe::backend::profile::report());
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scribe: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A directory as given, else MODEL_DIR/NAME, else the Hugging Face hub (cache first).
fn resolve_model(name: &str, model_dir: &Path, token: Option<String>, cache_only: bool) -> anyhow::Result<PathBuf> {
    let direct = Path::new(name);
    if direct.is_dir() {
        return Ok(direct.to_path_buf());
    }
    let local = model_dir.join(name);
    if local.is_dir() {
        return Ok(local);
    }
    let mut hub = HubConfig::from_env();
    if token.is_some() {
        hub.token = token;
    }
    hub.offline |= cache_only;
    Ok(resolve_whisper(&hub, name)?)
}

/// whisperx `optional_float`: a finite number, or `none` (any case).
fn optional_f64(flag: &str, s: &str) -> anyhow::Result<Option<f64>> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => anyhow::bail!("--{flag}: expected a finite number or none, got `{s}`"),
    }
}

fn optional_f32(flag: &str, s: &str) -> anyhow::Result<Option<f32>> {
    Ok(optional_f64(flag, s)?.map(|v| v as f32))
}

/// whisperx/openai CLI: `np.arange(temperature, 1.0 + 1e-6, increment)` or just `temperature`.
fn temperatures(start: f32, increment: Option<f32>) -> anyhow::Result<Vec<f32>> {
    if !start.is_finite() || start < 0.0 {
        anyhow::bail!("--temperature {start}: expected a finite number >= 0");
    }
    match increment {
        None => Ok(vec![start]),
        Some(i) if i <= 0.0 => anyhow::bail!("--temperature_increment_on_fallback must be positive or none"),
        Some(i) => {
            let n = ((1.0 + 1e-6 - start) / i).ceil().max(1.0) as usize;
            Ok((0..n).map(|k| start + k as f32 * i).collect())
        }
    }
}

/// whisperx asr.py `find_numeral_symbol_tokens`: tokens whose text holds a digit, %, $ or £.
fn numeral_symbol_tokens(model: &Whisper) -> anyhow::Result<Vec<u32>> {
    let mut out = Vec::new();
    for id in 0..model.tokenizer.special.eot {
        let text = model.tokenizer.decode(&[id])?;
        if text.trim_start_matches(' ').chars().any(|c| "0123456789%$£".contains(c)) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Checks that need no model, so that a bad value fails before anything is loaded.
fn check_args(args: &TranscribeArgs) -> anyhow::Result<()> {
    if args.beam_size == 0 {
        anyhow::bail!("--beam_size 0: expected at least 1 (1 = greedy)");
    }
    if args.best_of == 0 {
        anyhow::bail!("--best_of 0: expected at least 1");
    }
    if !args.patience.is_finite() || args.patience <= 0.0 {
        anyhow::bail!("--patience {}: expected a number > 0", args.patience);
    }
    if args.beam_size == 1 && args.patience != DEFAULT_PATIENCE {
        anyhow::bail!("--patience applies to beam search: it needs --beam_size > 1 (1 is greedy decoding)");
    }
    let vad = vad_method(&args.vad_method)?;
    if vad == VadMethod::Pyannote {
        if !(args.chunk_size >= MIN_CHUNK_SIZE && args.chunk_size <= CHUNK_SIZE) {
            anyhow::bail!(
                "--chunk_size {}: expected seconds from {MIN_CHUNK_SIZE} (WhisperX takes whole seconds) to {CHUNK_SIZE} (Whisper's window)",
                args.chunk_size
            );
        }
        if !(0.0..=1.0).contains(&args.vad_onset) || !(0.0..=1.0).contains(&args.vad_offset) {
            anyhow::bail!("--vad_onset / --vad_offset: expected probabilities in [0, 1]");
        }
        if args.batch_size == 0 {
            anyhow::bail!("--batch_size 0: expected at least 1");
        }
        vad_step(&args.vad_step)?;
        if args.clip_timestamps != DEFAULT_CLIP_TIMESTAMPS {
            anyhow::bail!("--clip_timestamps applies to sequential decoding: add --vad_method none");
        }
    }
    let hallucination = optional_f64("hallucination_silence_threshold", &args.hallucination_silence_threshold)?;
    if hallucination.is_some() && !args.word_timestamps {
        anyhow::bail!("--hallucination_silence_threshold needs --word_timestamps True");
    }
    Ok(())
}

/// The run's options: WhisperX's defaults with the flags given.
fn pipeline_options(args: &TranscribeArgs, model: &Whisper) -> anyhow::Result<PipelineOptions> {
    let suppress_tokens = args
        .suppress_tokens
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<i64>().map_err(|_| anyhow::anyhow!("--suppress_tokens: `{s}` is not a token id")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tok = &model.tokenizer;
    let mut o = PipelineOptions::default();
    let asr = &mut o.asr_options;
    let d = &mut asr.decode;
    d.task = if args.task == "translate" { Task::Translate } else { Task::Transcribe };
    d.language = args.language.clone();
    d.best_of = Some(args.best_of);
    d.length_penalty = optional_f32("length_penalty", &args.length_penalty)?;
    d.suppress_tokens = suppress_tokens;
    d.extra_suppress = if args.suppress_numerals { numeral_symbol_tokens(model)? } else { Vec::new() };
    d.hotwords = match &args.hotwords {
        Some(h) => tok.encode(&format!(" {}", h.trim()))?,
        None => Vec::new(),
    };
    d.seed = args.seed;
    set_beam_size(asr, args.beam_size, args.patience);
    asr.temperatures = temperatures(
        args.temperature,
        optional_f32("temperature_increment_on_fallback", &args.temperature_increment_on_fallback)?,
    )?;
    asr.compression_ratio_threshold = optional_f64("compression_ratio_threshold", &args.compression_ratio_threshold)?;
    asr.logprob_threshold = optional_f64("logprob_threshold", &args.logprob_threshold)?;
    asr.no_speech_threshold = optional_f64("no_speech_threshold", &args.no_speech_threshold)?;
    asr.condition_on_previous_text = args.condition_on_previous_text;
    asr.initial_prompt = args.initial_prompt.clone();
    asr.word_timestamps = args.word_timestamps;
    asr.clip_timestamps = parse_clip_timestamps(&args.clip_timestamps).map_err(|e| anyhow::anyhow!("--{e}"))?;
    asr.hallucination_silence_threshold =
        optional_f64("hallucination_silence_threshold", &args.hallucination_silence_threshold)?;
    asr.validate().map_err(|e| anyhow::anyhow!("--{e}"))?;
    o.vad_options = VadOptions {
        method: vad_method(&args.vad_method)?,
        vad_onset: args.vad_onset,
        vad_offset: args.vad_offset,
        chunk_size: args.chunk_size,
        step: vad_step(&args.vad_step)?,
        coarse_to_fine: args.vad_coarse_to_fine,
    };
    o.batch_size = args.batch_size;
    o.align_options = AlignOptions {
        align_output: !args.no_align,
        align_model: args.align_model.clone(),
        interpolate_method: args.interpolate_method,
        return_char_alignments: args.return_char_alignments,
        mode: if args.align_mode == "whisperx-compat" { AlignMode::WhisperxCompat } else { AlignMode::CtcViterbi },
        // DTW word times only when asked for (--word_timestamps True).
        dtw_fallback: args.word_timestamps,
    };
    o.diarize_options = DiarizeOptions {
        diarize: args.diarize,
        min_speakers: args.min_speakers,
        max_speakers: args.max_speakers,
        diarize_model: args.diarize_model.clone(),
        speaker_embeddings: args.speaker_embeddings,
        diarize_threshold: args.diarize_threshold,
        after_transcription: args.diarize_after_transcription,
    };
    if let Some(t) = args.speaker_threshold {
        anyhow::ensure!((-1.0..=1.0).contains(&t), "--speaker_threshold {t}: expected a cosine similarity in [-1, 1]");
    }
    o.verify_options = VerifyOptions {
        speaker_verification: !args.speaker_samples.is_empty(),
        speaker_samples: args.speaker_samples.clone(),
        speaker_model: args.speaker_model.clone(),
        speaker_threshold: args.speaker_threshold,
    };
    Ok(o)
}

/// `--speaker_sample NAME=PATH`: a non-empty name and an existing file.
fn parse_speaker_sample(v: &str) -> Result<scribe::pipeline::SpeakerSample, String> {
    let (name, path) = v.split_once('=').ok_or_else(|| format!("{v}: expected NAME=PATH"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("{v}: the name is empty"));
    }
    if !std::path::Path::new(path).is_file() {
        return Err(format!("{path}: no such file"));
    }
    Ok(scribe::pipeline::SpeakerSample { name: name.to_string(), source: path.to_string(), ..Default::default() })
}

/// Where pyannote pipelines named by --diarize_model come from: the hub cache, downloading with
/// HF_TOKEN / --hf_token unless offline (--model_cache_only).
fn diarize_hub(args: &TranscribeArgs) -> HubConfig {
    let mut hub = HubConfig::from_env();
    if args.hf_token.is_some() {
        hub.token = args.hf_token.clone();
    }
    hub.offline |= args.model_cache_only;
    hub
}

/// Where alignment models come from: the hub cache (downloads unless offline), torch.hub's
/// checkpoints (torchaudio bundles), and `model_dir/punkt/` for sentence models.
fn align_models(args: &TranscribeArgs) -> AlignModels {
    let mut hub = HubConfig::from_env();
    if args.hf_token.is_some() {
        hub.token = args.hf_token.clone();
    }
    hub.offline |= args.model_cache_only;
    let torch = TorchHubConfig::from_vars(|k| std::env::var(k).ok(), TORCHAUDIO_MODELS_URL, hub.offline);
    AlignModels::new(AlignSource {
        hub,
        torch,
        models_dir: args.model_dir.clone(),
        compute_type: args.align_compute_type.clone(),
    })
}

fn run_transcribe(args: TranscribeArgs) -> anyhow::Result<()> {
    check_args(&args)?;
    if args.threads > 0 {
        rayon::ThreadPoolBuilder::new().num_threads(args.threads).build_global()?;
    }
    let formats = parse_formats(&args.output_format)?;
    let writer = WriterOptions {
        max_line_width: args.max_line_width,
        max_line_count: args.max_line_count,
        highlight_words: args.highlight_words,
    };
    // Word times come from wav2vec2 alignment (unless --no_align) or from DTW (--word_timestamps).
    writer.validate(!args.no_align || args.word_timestamps)?;
    let device = Device::select(args.device.parse::<DeviceRequest>()?)?;
    let dir = resolve_model(&args.model, &args.model_dir, args.hf_token.clone(), args.model_cache_only)?;
    let mut model = Whisper::load(&dir, device.clone())?;
    model.apply_compute_type(&args.compute_type)?;
    let computed = model.compute_type();
    if args.compute_type != computed && args.compute_type != "default" {
        tracing::warn!(
            "compute_type {} requested; the {} backend computes in {computed}",
            args.compute_type,
            device.name()
        );
    }
    tracing::info!(
        "[Predict] device={} compute_type={computed} decoder={} cross_kv={} model={}",
        device.name(),
        model.decoder_compute_type(),
        model.cross_kv_dtype(),
        dir.display()
    );
    tracing::debug!("backend: {}", device.describe());
    let options = pipeline_options(&args, &model)?;
    let vad = match options.vad_options.method {
        VadMethod::None => None,
        VadMethod::Pyannote => {
            let env = std::env::var_os(vad_checkpoint::VAD_MODEL_PATH).map(PathBuf::from);
            let (vad, path) =
                Models::load_vad(&device, &args.model_dir, env.as_deref(), &args.segmentation_compute_type)
                    .map_err(|e| anyhow::anyhow!("{e} (or transcribe without VAD: --vad_method none)"))?;
            tracing::info!("VAD model: {} (compute_type={})", path.display(), vad.compute_type(&device));
            Some(vad)
        }
    };
    let pipeline = Pipeline::new(
        std::sync::Arc::new(Models {
            whisper: model,
            vad,
            align: align_models(&args),
            diarize: DiarizeModels::new(args.model_dir.clone(), diarize_hub(&args)).with_compute_types(ComputeTypes {
                segmentation: args.segmentation_compute_type.clone(),
                embedding: args.embedding_compute_type.clone(),
            }),
            speakers: SpeakerModels::new(args.model_dir.clone(), diarize_hub(&args)),
        }),
        options,
    )
    .map_err(|e| anyhow::anyhow!("--{e}"))?;
    let cancel = Cancel::new();
    for path in &args.audio {
        let mut display = ProgressDisplay::new(path, args.print_progress);
        let result = pipeline.run(path, &cancel, &mut |p| display.show(p));
        display.finish();
        let file = result?;
        for w in &file.warnings {
            tracing::warn!("{}: {w}", path.display());
        }
        let timings: Vec<String> = file.timings.stages.iter().map(|(s, t)| format!("{s} {t:.2} s")).collect();
        tracing::debug!("{}: {}", path.display(), timings.join(", "));
        if args.verbose {
            for s in file.transcript.segments.iter().filter(|s| !s.text.trim().is_empty()) {
                println!("[{} --> {}] {}", clock(s.start), clock(s.end), s.text.trim());
            }
        }
        for w in write_outputs(&file.transcript, path, &args.output_dir, &formats, &writer)? {
            tracing::info!("wrote {}", w.display());
        }
    }
    Ok(())
}

/// Progress on the terminal: a spinner while the audio is read and scored (the length of the
/// speech is not known yet), then a bar; without a terminal, a log line every 10 % of files
/// longer than 30 s (or every update with --print_progress).
struct ProgressDisplay<'a> {
    path: &'a Path,
    print_all: bool,
    spinner: Option<indicatif::ProgressBar>,
    bar: Option<indicatif::ProgressBar>,
    stage: Option<Stage>,
    seconds: f64,
    last_logged: u32,
}

impl<'a> ProgressDisplay<'a> {
    fn new(path: &'a Path, print_all: bool) -> Self {
        let spinner = std::io::stderr().is_terminal().then(indicatif::ProgressBar::new_spinner);
        ProgressDisplay { path, print_all, spinner, bar: None, stage: None, seconds: 0.0, last_logged: 0 }
    }

    fn show(&mut self, p: Progress) {
        if self.stage != Some(p.stage) {
            self.stage = Some(p.stage);
            self.last_logged = 0;
        }
        match p.stage {
            Stage::Audio | Stage::VoiceActivity => {
                self.seconds = self.seconds.max(p.done);
                if let Some(sp) = &self.spinner {
                    sp.set_message(format!("{}: {:.0} s", p.stage, p.done));
                    sp.tick();
                }
            }
            _ => {
                if let Some(sp) = self.spinner.take() {
                    sp.finish_and_clear();
                    self.bar = progress_bar(self.seconds);
                }
                let pct = p.percent();
                if let Some(b) = &self.bar {
                    b.set_message(p.stage.name());
                    b.set_position(pct as u64);
                } else if self.print_all || (self.seconds > 30.0 && pct >= self.last_logged + 10) {
                    tracing::info!("{}: {} {pct}%", self.path.display(), p.stage);
                    self.last_logged = pct;
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(sp) = self.spinner.take() {
            sp.finish_and_clear();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// A terminal progress bar for files longer than 30 s.
fn progress_bar(seconds: f64) -> Option<indicatif::ProgressBar> {
    (std::io::stderr().is_terminal() && seconds > 30.0).then(|| {
        let b = indicatif::ProgressBar::new(100);
        b.set_style(
            indicatif::ProgressStyle::with_template("{msg:>16} {bar:40} {percent:>3}% {elapsed} / {eta} left")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    })
}

/// MM:SS.mmm for the console (openai's verbose lines).
fn clock(t: f64) -> String {
    let ms = (t * 1000.0).round() as u64;
    format!("{:02}:{:02}.{:03}", ms / 60_000, ms / 1000 % 60, ms % 1000)
}
