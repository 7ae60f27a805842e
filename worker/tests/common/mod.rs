//! Helpers for the worker's tests: a small HTTP server on 127.0.0.1 that records what it is
//! sent, a resolver that answers from a table, and a connection gate that records every
//! connection the downloader opens and refuses anything off loopback. No test sends a packet
//! beyond 127.0.0.0/8.
#![allow(dead_code)]

#[path = "../../../tests/common/ci.rs"]
mod ci;
pub mod http_server;
pub mod schema;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use ci::cannot_run;
use scribe_worker::url_guard::{BoxFuture, ConnectGate, Resolver};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A fetched model under models/, or None (a note; a failure under CI) when it is missing.
pub fn model_dir(name: &str) -> Option<PathBuf> {
    let dir = root().join("models").join(name);
    if dir.join(".complete").is_file() {
        Some(dir)
    } else {
        cannot_run(&format!("run models/fetch {name}"));
        None
    }
}

/// A recording from ../shared/data/speech.
pub fn speech(name: &str) -> PathBuf {
    root().join("../shared/data/speech").join(name)
}

/// Answers from a table; unknown names fail. Every lookup is recorded.
#[derive(Default)]
pub struct TableResolver {
    pub table: HashMap<String, Vec<SocketAddr>>,
    pub lookups: Mutex<Vec<String>>,
}

impl TableResolver {
    pub fn new(entries: &[(&str, &str)]) -> Arc<Self> {
        let mut table: HashMap<String, Vec<SocketAddr>> = HashMap::new();
        for (host, addr) in entries {
            table.entry(host.to_string()).or_default().push(addr.parse().unwrap());
        }
        Arc::new(TableResolver { table, lookups: Mutex::new(Vec::new()) })
    }
}

impl Resolver for TableResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        self.lookups.lock().unwrap().push(host.to_string());
        let found = self.table.get(host).map(|addrs| {
            addrs.iter().map(|a| SocketAddr::new(a.ip(), if a.port() == 0 { port } else { a.port() })).collect()
        });
        Box::pin(
            async move { found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no such host {host}"))) },
        )
    }
}

/// Records every connection attempt; refuses any whose addresses are not all loopback.
#[derive(Default)]
pub struct LoopbackOnly {
    pub attempts: Mutex<Vec<(String, Vec<SocketAddr>)>>,
}

impl ConnectGate for LoopbackOnly {
    fn connecting(&self, host: &str, addrs: &[SocketAddr]) -> io::Result<()> {
        self.attempts.lock().unwrap().push((host.to_string(), addrs.to_vec()));
        if addrs.iter().all(|a| a.ip().is_loopback()) {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("test gate: {host} {addrs:?} is not loopback")))
        }
    }
}

/// A job runner with tiny.en and the VAD on the CPU, jobs under `jobs_dir`, reaching only the
/// test server on `port` (through `gate`), with `extra` settings; None when the models are
/// missing.
pub fn runner(
    port: u16,
    jobs_dir: &std::path::Path,
    gate: Arc<dyn ConnectGate>,
    resolver: Arc<dyn Resolver>,
    extra: &[(&str, &str)],
) -> Option<scribe_worker::job::JobRunner> {
    let tiny = model_dir("tiny.en")?;
    model_dir("vad")?;
    let mut vars: HashMap<String, String> = HashMap::from([
        ("WHISPERX_MODEL".into(), tiny.display().to_string()),
        ("WHISPERX_DEVICE".into(), "cpu".into()),
        ("SCRIBE_MODELS_DIR".into(), root().join("models").display().to_string()),
        ("JOBS_DIR".into(), jobs_dir.display().to_string()),
        ("ALLOW_PRIVATE_URLS".into(), format!("127.0.0.1:{port}")),
        // Alignment models only from local files: tests never reach the hub or torchaudio.
        ("HF_HUB_OFFLINE".into(), "1".into()),
        ("TORCH_HOME".into(), jobs_dir.join("torch-home").display().to_string()),
    ]);
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    let settings = scribe_worker::settings::Settings::from_vars(&|k| vars.get(k).cloned()).unwrap();
    let models = Arc::new(scribe_worker::models::Models::load(&settings).unwrap());
    let downloader = Arc::new(scribe_worker::download::Downloader {
        resolver,
        gate,
        policy: settings.policy.clone(),
        limits: settings.limits.clone(),
    });
    let storage = settings.storage.clone().map(|c| Arc::new(scribe_worker::storage::Storage::new(c)));
    Some(scribe_worker::job::JobRunner { models, downloader, settings: Arc::new(settings), storage })
}

/// A free port on 127.0.0.1 (for servers started as child processes).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// 16 kHz mono 16-bit PCM WAV bytes.
pub fn wav_i16(samples: &[i16]) -> Vec<u8> {
    let data = (samples.len() * 2) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    // fmt chunk: size 16, PCM, 1 channel, 16 kHz, 32000 bytes/s, block 2, 16 bits.
    for v in [16u32, 0x0001_0001, 16_000, 32_000, 0x0010_0002] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

/// [`wav_i16`] of samples in [-1, 1].
pub fn wav(samples: &[f32]) -> Vec<u8> {
    wav_i16(&samples.iter().map(|s| (s.clamp(-1.0, 1.0) * 32767.0) as i16).collect::<Vec<_>>())
}

/// The shared sentences `spk{s}_snt1..6` of each speaker in `speakers`, `repeats` times, with
/// `gap` seconds of silence after each: a job that takes a few seconds.
pub fn sentences_wav(repeats: usize, speakers: &[u32], gap: f32) -> Vec<u8> {
    let mut audio = Vec::new();
    for _ in 0..repeats {
        for spk in speakers {
            for n in 1..=6 {
                audio.extend(scribe::audio::load_audio(&speech(&format!("spk{spk}_snt{n}.wav"))).unwrap());
                audio.extend(std::iter::repeat_n(0.0, (gap * 16_000.0) as usize));
            }
        }
    }
    wav(&audio)
}

/// The environment every spawned worker gets: nothing inherited but PATH, tiny.en and the VAD
/// on the CPU, jobs under `jobs_dir` (also the working directory), and only the test server on
/// `audio_port` reachable.
pub fn worker_env(cmd: &mut std::process::Command, jobs_dir: &std::path::Path, audio_port: u16) {
    cmd.current_dir(jobs_dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WHISPERX_MODEL", root().join("models/tiny.en"))
        .env("WHISPERX_DEVICE", "cpu")
        .env("SCRIBE_MODELS_DIR", root().join("models"))
        .env("JOBS_DIR", jobs_dir)
        .env("MIN_FREE_DISK_MB", "1")
        .env("HF_HUB_OFFLINE", "1")
        .env("TORCH_HOME", jobs_dir.join("torch-home"))
        .env("ALLOW_PRIVATE_URLS", format!("127.0.0.1:{audio_port}"));
}
