//! `scribe` — the command line.
//!
//! `scribe transcribe AUDIO...` prints the transcript (this version: greedy decoding of the
//! first 30 s of each file); `scribe convert-ct2 IN_DIR OUT_DIR` rewrites a CTranslate2 /
//! faster-whisper checkpoint in the Hugging Face layout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use scribe::audio::{decode::load_audio, mel::log_mel_window, SAMPLE_RATE};
use scribe::backend::{Device, DeviceRequest};
use scribe::hub::{resolve_whisper, HubConfig};
use scribe::models::whisper::{Task, Whisper};

/// Seconds of audio one Whisper window covers (openai audio.py CHUNK_LENGTH).
const CHUNK_LENGTH: usize = 30;

#[derive(Parser)]
#[command(name = "scribe", version, about = "Speech to text: Whisper on CPU (CUDA to come)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transcribe audio files (greedy decoding of the first 30 s of each, for now).
    Transcribe(TranscribeArgs),
    /// Convert a CTranslate2 (faster-whisper) model directory to the Hugging Face layout.
    #[command(name = "convert-ct2")]
    ConvertCt2 {
        /// Directory with model.bin, config.json, tokenizer.json.
        in_dir: PathBuf,
        /// Output directory (model.safetensors, config.json, generation_config.json, tokenizer.json).
        out_dir: PathBuf,
    },
}

#[derive(clap::Args)]
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
    /// Language code for multilingual models (default en).
    #[arg(long)]
    language: Option<String>,
    /// transcribe or translate.
    #[arg(long, default_value = "transcribe", value_parser = ["transcribe", "translate"])]
    task: String,
    /// CPU threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Transcribe(args) => transcribe(args),
        Command::ConvertCt2 { in_dir, out_dir } => {
            scribe::weights::convert::ct2_to_hf(&in_dir, &out_dir).map_err(Into::into)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scribe: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A directory as given, else MODEL_DIR/NAME, else the Hugging Face hub (cache first).
fn resolve_model(name: &str, model_dir: &Path) -> anyhow::Result<PathBuf> {
    let direct = Path::new(name);
    if direct.is_dir() {
        return Ok(direct.to_path_buf());
    }
    let local = model_dir.join(name);
    if local.is_dir() {
        return Ok(local);
    }
    Ok(resolve_whisper(&HubConfig::from_env(), name)?)
}

fn transcribe(args: TranscribeArgs) -> anyhow::Result<()> {
    if args.threads > 0 {
        rayon::ThreadPoolBuilder::new().num_threads(args.threads).build_global()?;
    }
    let device = Device::select(args.device.parse::<DeviceRequest>()?)?;
    let dir = resolve_model(&args.model, &args.model_dir)?;
    let model = Whisper::load(&dir, device.clone())?;
    tracing::info!("[Predict] device={} compute_type=float32 model={}", device.name(), dir.display());
    tracing::debug!("backend: {}", device.describe());
    let task = if args.task == "translate" { Task::Translate } else { Task::Transcribe };
    for path in &args.audio {
        let audio = load_audio(path)?;
        let window = &audio[..audio.len().min(CHUNK_LENGTH * SAMPLE_RATE as usize)];
        let mel = log_mel_window(window, model.config.num_mel_bins)?;
        let features = model.encode(&mel.data, 1)?;
        let tokens = model.greedy(&features, args.language.as_deref(), task)?;
        let text = model.tokenizer.decode(&tokens)?;
        if args.audio.len() > 1 {
            println!("{}: {}", path.display(), text.trim());
        } else {
            println!("{}", text.trim());
        }
    }
    Ok(())
}
