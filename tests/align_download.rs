//! Alignment models missing from the caches are downloaded, through the path a transcription
//! takes (`AlignModels::get` -> `choice::open`), from a fake server on 127.0.0.1 that the test
//! starts (nothing leaves loopback):
//! - a torchaudio bundle (`WAV2VEC2_ASR_BASE_960H`) lands in torch.hub's `checkpoints/` with the
//!   served bytes and is not fetched again;
//! - a Hugging Face repo lands in the hub cache (config, vocab, then model.safetensors or
//!   pytorch_model.bin), the token goes along as `Authorization: Bearer`, and the model loads;
//! - offline with an empty cache is an error saying so, and nothing is asked of the server;
//! - a 404, a 500 or a truncated body is an error naming the model, and leaves nothing in the
//!   cache that a later run would take for a complete file.
//!
//! The files served are the small random-initialised models under
//! tests/reference/data/wav2vec2/. The torchaudio one has the bundle's file name and format but
//! not its size (32-wide, 2 layers instead of 768 and 12), and the bundle loader builds the
//! model with the bundle's fixed architecture: through `AlignModels` the downloaded file is found
//! and refused by shape, so the torch hub test checks the download and the cache there, and loads
//! the downloaded file with the small architecture its reference manifest records.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use scribe::backend::Device;
use scribe::hub::torch_hub::TorchHubConfig;
use scribe::hub::HubConfig;
use scribe::models::wav2vec2::bundles;
use scribe::models::wav2vec2::checkpoint;
use scribe::models::wav2vec2::{Wav2Vec2Config, Wav2Vec2ForCtc};
use scribe::pipeline::align_models::{AlignModels, AlignSource};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The only address the fake server listens on.
const LOOPBACK: &str = "127.0.0.1";
/// Where the fake serves torchaudio files (torchaudio's own address ends the same way).
const TORCH_PREFIX: &str = "/torchaudio/models";
/// English's default alignment model, a torchaudio bundle.
const TORCH_BUNDLE: &str = "WAV2VEC2_ASR_BASE_960H";
/// A Hugging Face alignment model, asked for by name as `--align_model` does.
const HF_REPO: &str = "jonatasgrosman/wav2vec2-large-xlsr-53-french";
const HF_REPO_FOLDER: &str = "models--jonatasgrosman--wav2vec2-large-xlsr-53-french";
const HF_LANGUAGE: &str = "fr";
const HF_COMMIT: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
const HF_REVISION: &str = "main";
const TOKEN: &str = "hf_align_download_test";
/// What the hub client leaves while a blob is being written.
const INCOMPLETE_SUFFIX: &str = ".incomplete";
const CONFIG: &str = "config.json";
const VOCAB: &str = "vocab.json";
const SAFETENSORS: &str = "model.safetensors";
const PYTORCH_BIN: &str = "pytorch_model.bin";
/// The body of an answer spoiled with an error status.
const SPOILED_BODY: &[u8] = b"spoiled on purpose";
/// One second of 16 kHz audio: enough frames to run the downloaded model once.
const PROBE_SAMPLES: usize = 16_000;

/// `tests/reference/data/wav2vec2/<variant>`.
fn reference(variant: &str) -> PathBuf {
    common::root().join("tests/reference/data/wav2vec2").join(variant)
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// The fake server: one request per connection (`Connection: close`), every request logged.

/// One request the server received.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    authorization: Option<String>,
}

/// How the server spoils its answer for one file.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// This status and no file.
    Status(u16),
    /// The full `Content-Length`, half the bytes, then the connection closes.
    Truncated,
}

/// What the server holds: Hugging Face files as `/{HF_REPO}/resolve/{main|commit}/{file}` (with
/// the hub's `X-Repo-Commit` and a sha256 `ETag`), torchaudio files as `{TORCH_PREFIX}/{file}`.
#[derive(Default)]
struct Routes {
    hf: BTreeMap<String, Vec<u8>>,
    torch: BTreeMap<String, Vec<u8>>,
    /// (method, file name) -> the spoiled answer.
    faults: BTreeMap<(String, String), Fault>,
}

impl Routes {
    fn hf(files: &[(&str, Vec<u8>)]) -> Self {
        Routes { hf: files.iter().map(|(n, b)| (n.to_string(), b.clone())).collect(), ..Default::default() }
    }

    fn torch(file: &str, bytes: Vec<u8>) -> Self {
        Routes { torch: BTreeMap::from([(file.to_string(), bytes)]), ..Default::default() }
    }

    fn with_fault(mut self, method: &str, file: &str, fault: Fault) -> Self {
        self.faults.insert((method.to_string(), file.to_string()), fault);
        self
    }

    /// The file a path asks for and its bytes (None: the server has no such file); None for a
    /// path outside both trees or at another revision.
    fn lookup(&self, path: &str) -> Option<(String, Option<&Vec<u8>>)> {
        if let Some(rest) = path.strip_prefix(&format!("/{HF_REPO}/resolve/")) {
            let (revision, file) = rest.split_once('/')?;
            if revision != HF_REVISION && revision != HF_COMMIT {
                return None;
            }
            return Some((file.to_string(), self.hf.get(file)));
        }
        let file = path.strip_prefix(&format!("{TORCH_PREFIX}/"))?;
        Some((file.to_string(), self.torch.get(file)))
    }
}

struct FakeServer {
    /// `http://127.0.0.1:<port>`.
    base: String,
    log: Arc<Mutex<Vec<Request>>>,
}

impl FakeServer {
    fn start(routes: Routes) -> Self {
        let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (routes, served_log) = (Arc::new(routes), log.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (routes, log) = (routes.clone(), served_log.clone());
                thread::spawn(move || {
                    let _ = answer(stream, &routes, &log);
                });
            }
        });
        FakeServer { base, log }
    }

    fn torch_base_url(&self) -> String {
        format!("{}{TORCH_PREFIX}", self.base)
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().expect("request log").clone()
    }

    /// How many `method` requests named `file` (the last part of the path).
    fn count(&self, method: &str, file: &str) -> usize {
        self.requests().iter().filter(|r| r.method == method && r.path.ends_with(&format!("/{file}"))).count()
    }
}

fn answer(mut stream: TcpStream, routes: &Routes, log: &Mutex<Vec<Request>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
        }
    }
    log.lock().expect("request log").push(Request { method: method.clone(), path: path.clone(), authorization });

    let commit = format!("X-Repo-Commit: {HF_COMMIT}\r\n");
    // (status, extra headers, the body, how many bytes of it are sent)
    let (status, headers, body, sent) = match routes.lookup(&path) {
        None => (404, "X-Error-Code: RepoNotFound\r\n".to_string(), Vec::new(), 0),
        Some((file, bytes)) => match (routes.faults.get(&(method.clone(), file)), bytes) {
            (Some(Fault::Status(status)), _) => (*status, String::new(), SPOILED_BODY.to_vec(), SPOILED_BODY.len()),
            (_, None) => (404, format!("X-Error-Code: EntryNotFound\r\n{commit}"), Vec::new(), 0),
            (fault, Some(bytes)) => {
                let headers = format!("{commit}ETag: \"{}\"\r\n", sha256_hex(bytes));
                let sent = if matches!(fault, Some(Fault::Truncated)) { bytes.len() / 2 } else { bytes.len() };
                (200, headers, bytes.clone(), sent)
            }
        },
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let head =
        format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n", body.len());
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(&body[..sent])?;
    }
    stream.flush()
}

// ---------------------------------------------------------------------------------------------
// The caches and the models.

/// Empty torch.hub and Hugging Face caches in a temporary directory.
struct Caches {
    _dir: tempfile::TempDir,
    hf: PathBuf,
    checkpoints: PathBuf,
    models_dir: PathBuf,
}

impl Caches {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        Caches {
            hf: root.join("huggingface/hub"),
            checkpoints: root.join("torch/hub/checkpoints"),
            models_dir: root.join("models"),
            _dir: dir,
        }
    }

    /// Alignment models from `server`'s addresses into these caches.
    fn models(&self, server: &FakeServer, offline: bool) -> AlignModels {
        AlignModels::new(AlignSource {
            hub: HubConfig::new(&server.base, &self.hf, Some(TOKEN.to_string()), offline),
            torch: TorchHubConfig {
                checkpoints_dir: self.checkpoints.clone(),
                base_url: server.torch_base_url(),
                offline,
            },
            models_dir: self.models_dir.clone(),
            compute_type: "default".into(),
        })
    }

    fn hf_repo(&self) -> PathBuf {
        self.hf.join(HF_REPO_FOLDER)
    }
}

/// Every file below `dir` (symlinks included, not followed); none if `dir` does not exist.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => out.extend(files_under(&path)),
            _ => out.push(path),
        }
    }
    out
}

/// Whether a half-written blob of the hub client is left below `dir`.
fn has_incomplete(dir: &Path) -> bool {
    files_under(dir).iter().any(|p| p.to_string_lossy().ends_with(INCOMPLETE_SUFFIX))
}

fn bundle() -> &'static bundles::Bundle {
    bundles::by_name(TORCH_BUNDLE).expect("the English bundle is known")
}

/// The small torchaudio-format reference file, to be served under the bundle's file name.
fn torchaudio_file() -> Vec<u8> {
    read(&reference("torchaudio_base").join(bundle().file))
}

/// The architecture of the small torchaudio reference model, from its manifest (as
/// tests/wav2vec2_reference.rs builds it).
fn small_torchaudio_config(labels: usize) -> Wav2Vec2Config {
    let manifest: Value =
        serde_json::from_slice(&read(&reference("torchaudio_base").join("manifest.json"))).expect("manifest");
    let p = &manifest["bundle_params"];
    let int = |v: &Value| v.as_u64().expect("an integer") as usize;
    let convs = p["extractor_conv_layer_config"].as_array().expect("conv layers");
    let column = |i: usize| convs.iter().map(|c| int(&c[i])).collect::<Vec<_>>();
    Wav2Vec2Config {
        hidden_size: int(&p["encoder_embed_dim"]),
        num_hidden_layers: int(&p["encoder_num_layers"]),
        num_attention_heads: int(&p["encoder_num_heads"]),
        intermediate_size: int(&p["encoder_ff_interm_features"]),
        conv_dim: column(0),
        conv_kernel: column(1),
        conv_stride: column(2),
        ..checkpoint::bundle_config(labels)
    }
}

/// The reference Hugging Face model's files, with one of its two weight files.
fn hf_files(weights: &'static str) -> Vec<(&'static str, Vec<u8>)> {
    let dir = reference("base_group");
    [CONFIG, VOCAB, weights].into_iter().map(|f| (f, read(&dir.join(f)))).collect()
}

/// A short deterministic signal.
fn probe() -> Vec<f32> {
    (0..PROBE_SAMPLES).map(|i| 0.1 * (i as f32 * 0.031).sin()).collect()
}

/// The error of a `get` that must fail, as text.
fn get_err(models: &AlignModels, language: &str, explicit: Option<&str>) -> String {
    match models.get(&Device::cpu(), language, explicit) {
        Ok(a) => panic!("expected an error, got the model {}", a.name),
        Err(e) => e.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// torch.hub

#[test]
fn a_missing_torchaudio_bundle_is_downloaded_once_into_the_checkpoints_dir() {
    let served = torchaudio_file();
    let server = FakeServer::start(Routes::torch(bundle().file, served.clone()));
    let caches = Caches::new();
    let models = caches.models(&server, false);

    // English's default: the bundle, fetched from the server; the small file is then refused by
    // the bundle's fixed (base-size) architecture, naming the model.
    let e = get_err(&models, "en", None);
    eprintln!("the small file as the bundle: {e}");
    assert!(e.contains(TORCH_BUNDLE), "{e}");
    assert_eq!(server.count("GET", bundle().file), 1, "{:?}", server.requests());
    let path = caches.checkpoints.join(bundle().file);
    assert_eq!(read(&path), served, "the checkpoint holds the served bytes");
    assert_eq!(files_under(&caches.checkpoints), vec![path.clone()], "only the checkpoint is left");

    // Asked again, by this job and by a later run: the cached file is used, the server not asked.
    let again = get_err(&models, "en", None);
    assert_eq!(again, e);
    let later = get_err(&caches.models(&server, false), "en", Some(TORCH_BUNDLE));
    assert_eq!(later, e);
    assert_eq!(server.requests().len(), 1, "{:?}", server.requests());

    // The downloaded file is the torchaudio checkpoint it stands for: it loads with the
    // architecture it was made with and the bundle's labels, the aux rows dropped.
    let labels = bundle().all_labels();
    let ckpt = checkpoint::open_torchaudio(
        &path,
        small_torchaudio_config(labels.len()),
        labels.clone(),
        bundle().remove_aux_axis,
    )
    .expect("open the downloaded bundle file");
    let model = Wav2Vec2ForCtc::load(&Device::cpu(), &ckpt).expect("load the downloaded bundle file");
    assert_eq!(model.labels, labels);
    let lp = model.log_probs(&Device::cpu(), &probe()).expect("forward");
    assert!(lp.frames > 0 && lp.data.iter().all(|x| x.is_finite()));
}

#[test]
fn offline_with_an_empty_torch_cache_is_an_error_and_asks_nothing() {
    let server = FakeServer::start(Routes::torch(bundle().file, torchaudio_file()));
    let caches = Caches::new();
    let e = get_err(&caches.models(&server, true), "en", None);
    assert!(e.to_lowercase().contains("offline"), "{e}");
    assert!(e.contains(TORCH_BUNDLE) && e.contains(bundle().file), "{e}");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(files_under(&caches.checkpoints).is_empty());
}

#[test]
fn a_failed_torchaudio_download_names_the_model_and_leaves_nothing_behind() {
    for (fault, says) in [(Fault::Status(404), "404"), (Fault::Status(500), "500"), (Fault::Truncated, "interrupted")] {
        let routes = Routes::torch(bundle().file, torchaudio_file()).with_fault("GET", bundle().file, fault);
        let server = FakeServer::start(routes);
        let caches = Caches::new();
        let e = get_err(&caches.models(&server, false), "en", None);
        eprintln!("{fault:?}: {e}");
        assert!(e.contains(TORCH_BUNDLE) && e.contains(bundle().file), "{fault:?}: {e}");
        assert!(e.contains(says), "{fault:?}: {e}");
        assert_eq!(server.requests().len(), 1, "{fault:?}");
        let left = files_under(&caches.checkpoints);
        assert!(left.is_empty(), "{fault:?}: left behind {left:?}");
        // A later offline run finds nothing it could take for the checkpoint.
        let e = get_err(&caches.models(&server, true), "en", None);
        assert!(e.to_lowercase().contains("offline"), "{fault:?}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Hugging Face hub

/// Downloads `HF_REPO` serving `weights` as its weight file, and checks the cache, the requests
/// and the model.
fn hf_repo_is_downloaded_and_loads(weights: &'static str) {
    let files = hf_files(weights);
    let server = FakeServer::start(Routes::hf(&files));
    let caches = Caches::new();
    let models = caches.models(&server, false);

    let aligner = models.get(&Device::cpu(), HF_LANGUAGE, Some(HF_REPO)).expect("download and load");
    assert_eq!(aligner.name, HF_REPO);

    let snapshot = caches.hf_repo().join("snapshots").join(HF_COMMIT);
    for (name, bytes) in &files {
        assert_eq!(&read(&snapshot.join(name)), bytes, "{name} in the snapshot");
        assert_eq!(server.count("GET", name), 1, "{name}: {:?}", server.requests());
    }
    assert_eq!(fs::read_to_string(caches.hf_repo().join("refs").join(HF_REVISION)).expect("refs/main"), HF_COMMIT);
    let other = if weights == SAFETENSORS { PYTORCH_BIN } else { SAFETENSORS };
    assert_eq!(server.count("GET", other), 0, "{other} fetched besides {weights}");
    assert!(!has_incomplete(&caches.hf), "{:?}", files_under(&caches.hf));

    // Every request carried the token.
    let bearer = format!("Bearer {TOKEN}");
    for r in server.requests() {
        assert_eq!(r.authorization.as_deref(), Some(bearer.as_str()), "{r:?}");
    }

    // The model is the reference one: same labels, same log-probabilities.
    let want = Wav2Vec2ForCtc::load(&Device::cpu(), &checkpoint::open(&reference("base_group")).expect("reference"))
        .expect("reference model");
    assert_eq!(aligner.model.labels, want.labels);
    let (got, want) = (
        aligner.model.log_probs(&Device::cpu(), &probe()).expect("forward"),
        want.log_probs(&Device::cpu(), &probe()).expect("reference forward"),
    );
    assert_eq!((got.frames, got.classes), (want.frames, want.classes));
    let worst = got.data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-4, "log-probs differ from the reference model's by {worst}");

    // Asked again: the loaded model; a later offline run: the cache, with no request.
    let before = server.requests().len();
    assert!(Arc::ptr_eq(&aligner, &models.get(&Device::cpu(), HF_LANGUAGE, Some(HF_REPO)).expect("again")));
    let later = caches.models(&server, true).get(&Device::cpu(), HF_LANGUAGE, Some(HF_REPO)).expect("from the cache");
    assert_eq!(later.model.labels, aligner.model.labels);
    assert_eq!(server.requests().len(), before, "{:?}", server.requests());
}

#[test]
fn a_missing_hf_repo_is_downloaded_with_the_token_and_loads_from_safetensors() {
    hf_repo_is_downloaded_and_loads(SAFETENSORS);
}

#[test]
fn a_hf_repo_without_safetensors_is_downloaded_and_loads_from_pytorch_model_bin() {
    hf_repo_is_downloaded_and_loads(PYTORCH_BIN);
}

#[test]
fn offline_with_an_empty_hf_cache_is_an_error_and_asks_nothing() {
    let server = FakeServer::start(Routes::hf(&hf_files(SAFETENSORS)));
    let caches = Caches::new();
    let e = get_err(&caches.models(&server, true), HF_LANGUAGE, Some(HF_REPO));
    assert!(e.to_lowercase().contains("offline"), "{e}");
    assert!(e.contains(HF_REPO), "{e}");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(files_under(&caches.hf).is_empty(), "{:?}", files_under(&caches.hf));
}

#[test]
fn a_failed_hf_download_names_the_model_and_leaves_no_partial_file() {
    let files = hf_files(SAFETENSORS);
    let weights = files.iter().find(|(n, _)| *n == SAFETENSORS).map(|(_, b)| b.clone()).expect("weights");
    let cases = [
        ("GET", SAFETENSORS, Fault::Status(404), "404"),
        ("GET", SAFETENSORS, Fault::Status(500), "500"),
        ("GET", SAFETENSORS, Fault::Truncated, "interrupted"),
        ("HEAD", CONFIG, Fault::Status(500), "500"),
    ];
    for (method, file, fault, says) in cases {
        let server = FakeServer::start(Routes::hf(&files).with_fault(method, file, fault));
        let caches = Caches::new();
        let e = get_err(&caches.models(&server, false), HF_LANGUAGE, Some(HF_REPO));
        eprintln!("{method} {file} {fault:?}: {e}");
        assert!(e.contains(HF_REPO), "{method} {file} {fault:?}: {e}");
        assert!(e.contains(says), "{method} {file} {fault:?}: {e}");

        // No blob of the weights, no half-written one, no snapshot entry for them.
        let left = files_under(&caches.hf);
        assert!(!has_incomplete(&caches.hf), "{left:?}");
        assert!(!caches.hf_repo().join("blobs").join(sha256_hex(&weights)).exists(), "{left:?}");
        let snapshot = caches.hf_repo().join("snapshots").join(HF_COMMIT);
        assert!(fs::symlink_metadata(snapshot.join(SAFETENSORS)).is_err(), "{left:?}");

        // A later offline run does not take what is cached for a model; a later online run
        // against a healthy server completes it.
        let e = get_err(&caches.models(&server, true), HF_LANGUAGE, Some(HF_REPO));
        assert!(e.to_lowercase().contains("offline") && e.contains(HF_REPO), "{method} {file} {fault:?}: {e}");
        let healthy = FakeServer::start(Routes::hf(&files));
        let aligner = caches
            .models(&healthy, false)
            .get(&Device::cpu(), HF_LANGUAGE, Some(HF_REPO))
            .unwrap_or_else(|e| panic!("{method} {file} {fault:?}, healthy retry: {e}"));
        assert_eq!(read(&snapshot.join(SAFETENSORS)), weights);
        assert_eq!(aligner.name, HF_REPO);
    }
}

/// An error asking about the optional safetensors weights is the hub's error, not a cache
/// stand-in: the cache (config and vocab just fetched) does not know whether the repo has
/// safetensors, so it must not pass the file off as absent and send the loader for
/// `pytorch_model.bin` (which would then be reported missing, or downloaded needlessly).
#[test]
fn an_error_asking_for_the_optional_weights_is_reported_not_taken_for_absence() {
    for weights in [SAFETENSORS, PYTORCH_BIN] {
        let server =
            FakeServer::start(Routes::hf(&hf_files(weights)).with_fault("HEAD", SAFETENSORS, Fault::Status(500)));
        let caches = Caches::new();
        let e = get_err(&caches.models(&server, false), HF_LANGUAGE, Some(HF_REPO));
        assert!(e.contains("500") && e.contains(SAFETENSORS), "{weights}: {e}");
        assert!(!e.contains(PYTORCH_BIN), "{weights}: {e}");
        assert_eq!(server.count("HEAD", PYTORCH_BIN) + server.count("GET", PYTORCH_BIN), 0, "{weights}");
    }
}
