//! engine/hub against a fake Hugging Face hub on loopback.
//!
//! The fake speaks just enough HTTP/1.1 (one request per connection, `Connection: close`) to
//! answer `HEAD`/`GET /{repo}/resolve/{rev}/{file}` the way huggingface.co does: `X-Repo-Commit`,
//! `ETag`, and for LFS files `X-Linked-Etag`/`X-Linked-Size` plus a 302 to a "CDN" — a second
//! listener on another loopback host (127.0.0.2), which records whether a token leaked to it.
//! Nothing here leaves 127.0.0.0/8.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use scribe::hub::{self, repo_for_model, resolve_whisper, snapshot_download, HubConfig, Required, WHISPER_FILES};
use sha2::{Digest, Sha256};

const REPO: &str = "openai/whisper-tiny.en";
const REPO_FOLDER: &str = "models--openai--whisper-tiny.en";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const TOKEN: &str = "hf_test_token";
/// The LFS file; every other file is served inline like a small git file.
const LFS_FILE: &str = "model.safetensors";
/// Big enough to cross several reads, small enough to stay quick.
const LFS_BYTES: usize = 300_000;
const HUB_HOST: &str = "127.0.0.1";
const CDN_HOST: &str = "127.0.0.2";

#[derive(Clone, Debug)]
struct Request {
    server: &'static str,
    method: String,
    path: String,
    authorization: Option<String>,
}

/// What the fake serves.
struct Spec {
    files: BTreeMap<String, Vec<u8>>,
    token: Option<String>,
    /// The CDN serves bytes that do not match the announced sha256.
    corrupt_lfs: bool,
    /// Like a mirror that answers the LFS file's HEAD with a plain 200 and only redirects the
    /// GET: the client then meets the cross-host redirect while downloading.
    redirect_only_get: bool,
}

struct FakeHub {
    endpoint: String,
    log: Arc<Mutex<Vec<Request>>>,
    files: BTreeMap<String, Vec<u8>>,
}

impl FakeHub {
    fn start(spec: Spec) -> FakeHub {
        let log = Arc::new(Mutex::new(Vec::new()));
        let files = spec.files.clone();
        let hub = TcpListener::bind((HUB_HOST, 0)).expect("bind hub");
        let cdn = TcpListener::bind((CDN_HOST, 0)).expect("bind cdn on 127.0.0.2");
        let hub_addr = hub.local_addr().expect("hub addr");
        let cdn_addr = cdn.local_addr().expect("cdn addr");
        let spec = Arc::new(spec);
        serve(hub, "hub", log.clone(), spec.clone(), cdn_addr);
        serve(cdn, "cdn", log.clone(), spec, cdn_addr);
        FakeHub { endpoint: format!("http://{hub_addr}"), log, files }
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().expect("log").clone()
    }

    fn count(&self, server: &str, method: &str) -> usize {
        self.requests().iter().filter(|r| r.server == server && r.method == method).count()
    }
}

fn serve(listener: TcpListener, name: &'static str, log: Arc<Mutex<Vec<Request>>>, spec: Arc<Spec>, cdn: SocketAddr) {
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (log, spec) = (log.clone(), spec.clone());
            thread::spawn(move || {
                let _ = handle(stream, name, &log, &spec, cdn);
            });
        }
    });
}

fn handle(
    mut stream: TcpStream,
    server: &'static str,
    log: &Mutex<Vec<Request>>,
    spec: &Spec,
    cdn: SocketAddr,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    log.lock().expect("log").push(Request {
        server,
        method: method.clone(),
        path: path.clone(),
        authorization: authorization.clone(),
    });

    let (status, headers, body) =
        if server == "cdn" { cdn_answer(&path, spec) } else { hub_answer(&method, &path, authorization, spec, cdn) };
    let reason = match status {
        200 => "OK",
        302 => "Found",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(&body)?;
    }
    stream.flush()
}

type Answer = (u16, Vec<(String, String)>, Vec<u8>);

fn hub_answer(method: &str, path: &str, authorization: Option<String>, spec: &Spec, cdn: SocketAddr) -> Answer {
    let commit = ("X-Repo-Commit".to_string(), COMMIT.to_string());
    if let Some(token) = &spec.token {
        if authorization.as_deref() != Some(format!("Bearer {token}").as_str()) {
            return (401, vec![("X-Error-Code".into(), "RepoNotFound".into())], b"Invalid credentials".to_vec());
        }
    }
    let Some(rest) = path.strip_prefix(&format!("/{REPO}/resolve/")) else {
        return (404, vec![("X-Error-Code".into(), "RepoNotFound".into())], Vec::new());
    };
    let Some((rev, file)) = rest.split_once('/') else { return (404, vec![], Vec::new()) };
    if rev != "main" && rev != COMMIT {
        return (404, vec![("X-Error-Code".into(), "RevisionNotFound".into())], Vec::new());
    }
    let Some(bytes) = spec.files.get(file) else {
        return (404, vec![("X-Error-Code".into(), "EntryNotFound".into()), commit], b"Entry not found".to_vec());
    };
    if file == LFS_FILE {
        let sha = sha256_hex(bytes);
        let mut headers = vec![
            commit,
            ("ETag".into(), "\"pointer-etag-of-the-lfs-pointer\"".into()),
            ("X-Linked-Etag".into(), format!("\"{sha}\"")),
            ("X-Linked-Size".into(), bytes.len().to_string()),
        ];
        if spec.redirect_only_get && method == "HEAD" {
            return (200, headers, Vec::new());
        }
        headers.push(("Location".into(), format!("http://{cdn}/blobs/{sha}")));
        return (302, headers, Vec::new());
    }
    (200, vec![commit, ("ETag".into(), format!("\"{}\"", git_like_etag(bytes)))], bytes.clone())
}

fn cdn_answer(path: &str, spec: &Spec) -> Answer {
    let wanted = path.strip_prefix("/blobs/").unwrap_or("");
    for bytes in spec.files.values() {
        if sha256_hex(bytes) == wanted {
            let mut body = bytes.clone();
            if spec.corrupt_lfs {
                body[0] ^= 0xff;
            }
            return (200, vec![], body);
        }
    }
    (404, vec![], Vec::new())
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A 40-hex ETag like the hub's git-sha1 ones for small files (not 64 hex: never verified as sha256).
fn git_like_etag(bytes: &[u8]) -> String {
    sha256_hex(bytes)[..40].to_string()
}

fn model_files() -> BTreeMap<String, Vec<u8>> {
    let tokenizer = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny.en/tokenizer.json");
    let tokenizer = fs::read(tokenizer).unwrap_or_else(|_| br#"{"version":"1.0","model":{}}"#.to_vec());
    let lfs: Vec<u8> = (0..LFS_BYTES).map(|i| (i * 7 % 251) as u8).collect();
    let mut files = BTreeMap::new();
    files.insert("config.json".into(), br#"{"d_model":384}"#.to_vec());
    files.insert(LFS_FILE.into(), lfs);
    files.insert("tokenizer.json".into(), tokenizer);
    files.insert("generation_config.json".into(), br#"{"max_length":448}"#.to_vec());
    // preprocessor_config.json deliberately absent: optional.
    files
}

fn fake(token: Option<&str>) -> FakeHub {
    FakeHub::start(Spec {
        files: model_files(),
        token: token.map(String::from),
        corrupt_lfs: false,
        redirect_only_get: false,
    })
}

fn config(hub_endpoint: &str, cache: &Path, token: Option<&str>, offline: bool) -> HubConfig {
    HubConfig::new(hub_endpoint, cache, token.map(String::from), offline)
}

fn repo_root(cache: &Path) -> PathBuf {
    cache.join(REPO_FOLDER)
}

fn incomplete_files(cache: &Path) -> Vec<PathBuf> {
    match fs::read_dir(repo_root(cache).join("blobs")) {
        Ok(entries) => {
            entries.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(".incomplete")).collect()
        }
        Err(_) => Vec::new(),
    }
}

/// A loopback port nothing listens on.
fn closed_endpoint() -> String {
    let listener = TcpListener::bind((HUB_HOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

fn err_text(result: scribe::Result<PathBuf>) -> String {
    match result {
        Ok(p) => panic!("expected an error, got {}", p.display()),
        Err(e) => {
            let text = e.to_string();
            eprintln!("error text: {text}");
            text
        }
    }
}

#[test]
fn full_download_creates_huggingface_hub_layout() {
    let hub = fake(Some(TOKEN));
    let cache = tempfile::tempdir().expect("tempdir");
    let cfg = config(&hub.endpoint, cache.path(), Some(TOKEN), false);

    let dir = snapshot_download(&cfg, REPO, "main", WHISPER_FILES).expect("download");

    let root = repo_root(cache.path());
    assert_eq!(dir, root.join("snapshots").join(COMMIT));
    assert_eq!(fs::read_to_string(root.join("refs/main")).expect("refs/main"), COMMIT);
    for (name, bytes) in &hub.files {
        let etag = if name == LFS_FILE { sha256_hex(bytes) } else { git_like_etag(bytes) };
        let blob = root.join("blobs").join(&etag);
        assert_eq!(&fs::read(&blob).expect("blob"), bytes, "blob of {name}");
        let link = dir.join(name);
        let target = fs::read_link(&link).expect("snapshot entry is a symlink");
        assert_eq!(target, Path::new("../../blobs").join(&etag), "link of {name}");
        assert_eq!(&fs::read(&link).expect("through link"), bytes);
    }
    assert!(!dir.join("preprocessor_config.json").exists());
    assert!(root.join(".no_exist").join(COMMIT).join("preprocessor_config.json").is_file());
    assert!(incomplete_files(cache.path()).is_empty());

    let requests = hub.requests();
    let cdn: Vec<_> = requests.iter().filter(|r| r.server == "cdn").collect();
    assert_eq!(cdn.len(), 1, "one CDN GET: {requests:?}");
    assert_eq!(cdn[0].method, "GET");
    assert_eq!(cdn[0].authorization, None, "token leaked to the CDN host");
    let bearer = format!("Bearer {TOKEN}");
    assert!(requests.iter().filter(|r| r.server == "hub").all(|r| r.authorization.as_deref() == Some(bearer.as_str())));
    // Files are fetched from the hub itself, the LFS file never: its bytes come from the CDN.
    assert!(!requests.iter().any(|r| r.server == "hub" && r.method == "GET" && r.path.ends_with(LFS_FILE)));
}

#[test]
fn token_is_not_forwarded_when_the_get_is_redirected_to_another_host() {
    let spec = Spec { files: model_files(), token: Some(TOKEN.into()), corrupt_lfs: false, redirect_only_get: true };
    let hub = FakeHub::start(spec);
    let cache = tempfile::tempdir().expect("tempdir");
    let dir = snapshot_download(&config(&hub.endpoint, cache.path(), Some(TOKEN), false), REPO, "main", WHISPER_FILES)
        .expect("download");
    assert_eq!(fs::read(dir.join(LFS_FILE)).expect("model"), hub.files[LFS_FILE]);
    let requests = hub.requests();
    let lfs_get = requests.iter().find(|r| r.server == "hub" && r.method == "GET" && r.path.ends_with(LFS_FILE));
    assert_eq!(lfs_get.and_then(|r| r.authorization.clone()), Some(format!("Bearer {TOKEN}")), "{requests:?}");
    let cdn: Vec<_> = requests.iter().filter(|r| r.server == "cdn").collect();
    assert_eq!(cdn.len(), 1, "{requests:?}");
    assert_eq!(cdn[0].authorization, None, "token leaked to the CDN host");
}

#[test]
fn offline_second_call_makes_no_request_and_returns_same_path() {
    let hub = fake(None);
    let cache = tempfile::tempdir().expect("tempdir");
    let first = snapshot_download(&config(&hub.endpoint, cache.path(), None, false), REPO, "main", WHISPER_FILES)
        .expect("online");
    let before = hub.requests().len();
    assert!(before > 0);

    let second = snapshot_download(&config(&hub.endpoint, cache.path(), None, true), REPO, "main", WHISPER_FILES)
        .expect("offline");
    assert_eq!(first, second);
    assert_eq!(hub.requests().len(), before, "offline mode touched the network");
}

#[test]
fn online_second_call_with_unchanged_etag_does_not_download_again() {
    let hub = fake(None);
    let cache = tempfile::tempdir().expect("tempdir");
    let cfg = config(&hub.endpoint, cache.path(), None, false);
    let first = snapshot_download(&cfg, REPO, "main", WHISPER_FILES).expect("first");
    let (gets, cdn_gets, heads) = (hub.count("hub", "GET"), hub.count("cdn", "GET"), hub.count("hub", "HEAD"));
    assert_eq!(gets, 3, "config, tokenizer, generation_config");
    assert_eq!(cdn_gets, 1);

    let second = snapshot_download(&cfg, REPO, "main", WHISPER_FILES).expect("second");
    assert_eq!(first, second);
    assert_eq!(hub.count("hub", "GET"), gets, "re-downloaded a small file");
    assert_eq!(hub.count("cdn", "GET"), cdn_gets, "re-downloaded the LFS blob");
    assert_eq!(hub.count("hub", "HEAD"), 2 * heads, "each file is checked for updates");
}

#[test]
fn missing_token_is_a_clear_401_error() {
    let hub = fake(Some(TOKEN));
    let cache = tempfile::tempdir().expect("tempdir");
    for token in [None, Some("hf_wrong")] {
        let text = err_text(snapshot_download(
            &config(&hub.endpoint, cache.path(), token, false),
            REPO,
            "main",
            WHISPER_FILES,
        ));
        assert!(text.contains("HF_TOKEN"), "{text}");
        assert!(text.contains("401"), "{text}");
        assert!(text.contains(REPO), "{text}");
    }
}

#[test]
fn missing_required_file_is_an_error_naming_it() {
    let mut files = model_files();
    files.remove("tokenizer.json");
    let hub = FakeHub::start(Spec { files, token: None, corrupt_lfs: false, redirect_only_get: false });
    let cache = tempfile::tempdir().expect("tempdir");
    let text =
        err_text(snapshot_download(&config(&hub.endpoint, cache.path(), None, false), REPO, "main", WHISPER_FILES));
    assert!(text.contains("tokenizer.json"), "{text}");
    assert!(text.contains(REPO), "{text}");
}

#[test]
fn missing_optional_files_are_fine() {
    let mut files = model_files();
    files.remove("generation_config.json");
    let hub = FakeHub::start(Spec { files, token: None, corrupt_lfs: false, redirect_only_get: false });
    let cache = tempfile::tempdir().expect("tempdir");
    let dir = snapshot_download(&config(&hub.endpoint, cache.path(), None, false), REPO, "main", WHISPER_FILES)
        .expect("download");
    assert!(dir.join("config.json").is_file());
    assert!(dir.join("model.safetensors").is_file());
    assert!(!dir.join("generation_config.json").exists());
    assert!(!dir.join("preprocessor_config.json").exists());
}

#[test]
fn offline_with_empty_cache_is_a_clear_error() {
    let hub = fake(None);
    let cache = tempfile::tempdir().expect("tempdir");
    let text =
        err_text(snapshot_download(&config(&hub.endpoint, cache.path(), None, true), REPO, "main", WHISPER_FILES));
    assert!(text.contains("HF_HUB_OFFLINE"), "{text}");
    assert!(text.contains(REPO), "{text}");
    assert!(hub.requests().is_empty());
}

#[test]
fn offline_with_a_file_missing_from_the_cache_names_it() {
    let hub = fake(None);
    let cache = tempfile::tempdir().expect("tempdir");
    let dir = snapshot_download(&config(&hub.endpoint, cache.path(), None, false), REPO, "main", WHISPER_FILES)
        .expect("download");
    fs::remove_file(dir.join("tokenizer.json")).expect("rm");
    let text =
        err_text(snapshot_download(&config(&hub.endpoint, cache.path(), None, true), REPO, "main", WHISPER_FILES));
    assert!(text.contains("tokenizer.json") && text.contains(REPO), "{text}");
}

#[test]
fn refused_connection_names_the_endpoint() {
    let endpoint = closed_endpoint();
    let cache = tempfile::tempdir().expect("tempdir");
    let text = err_text(snapshot_download(&config(&endpoint, cache.path(), None, false), REPO, "main", WHISPER_FILES));
    assert!(text.contains(&endpoint), "{text}");
    assert!(text.contains("HF_HUB_OFFLINE"), "{text}");
}

/// Builds by hand what Python's huggingface_hub leaves on disk after
/// `hf_hub_download("openai/whisper-tiny.en", f)` for each Whisper file.
fn python_style_cache(cache: &Path) -> PathBuf {
    let root = repo_root(cache);
    fs::create_dir_all(root.join("blobs")).expect("blobs");
    fs::create_dir_all(root.join("refs")).expect("refs");
    let snap = root.join("snapshots").join(COMMIT);
    fs::create_dir_all(&snap).expect("snapshot");
    fs::write(root.join("refs/main"), COMMIT).expect("ref");
    for (name, bytes) in model_files() {
        let etag = sha256_hex(&bytes);
        fs::write(root.join("blobs").join(&etag), &bytes).expect("blob");
        std::os::unix::fs::symlink(Path::new("../../blobs").join(&etag), snap.join(&name)).expect("symlink");
    }
    snap
}

#[test]
fn prefilled_python_cache_is_reused_without_network() {
    let hub = fake(None);
    let cache = tempfile::tempdir().expect("tempdir");
    let snap = python_style_cache(cache.path());

    let dir = resolve_whisper(&config(&hub.endpoint, cache.path(), None, true), "tiny.en").expect("offline");
    assert_eq!(dir, snap);
    assert!(hub.requests().is_empty(), "offline lookup made a request");

    // Online with the hub down, the complete cached snapshot is used (as huggingface_hub does).
    let dir = resolve_whisper(&config(&closed_endpoint(), cache.path(), None, false), "tiny.en").expect("fallback");
    assert_eq!(dir, snap);
}

#[test]
fn corrupted_download_is_an_error_and_leaves_no_incomplete_file() {
    let hub = FakeHub::start(Spec { files: model_files(), token: None, corrupt_lfs: true, redirect_only_get: false });
    let cache = tempfile::tempdir().expect("tempdir");
    let text =
        err_text(snapshot_download(&config(&hub.endpoint, cache.path(), None, false), REPO, "main", WHISPER_FILES));
    assert!(text.contains("sha256") && text.contains(LFS_FILE), "{text}");

    let sha = sha256_hex(&hub.files[LFS_FILE]);
    let root = repo_root(cache.path());
    assert!(!root.join("blobs").join(&sha).exists(), "a corrupt blob was kept");
    assert!(fs::symlink_metadata(root.join("snapshots").join(COMMIT).join(LFS_FILE)).is_err());
    assert!(incomplete_files(cache.path()).is_empty(), "{:?}", incomplete_files(cache.path()));
}

#[test]
fn resolve_whisper_takes_directories_and_names() {
    let hub = fake(None);
    let cache = tempfile::tempdir().expect("tempdir");
    let cfg = config(&hub.endpoint, cache.path(), None, false);

    let local = tempfile::tempdir().expect("local model dir");
    assert_eq!(resolve_whisper(&cfg, &local.path().to_string_lossy()).expect("dir"), local.path());
    assert!(hub.requests().is_empty());

    let text = err_text(resolve_whisper(&cfg, "./no/such/model"));
    assert!(text.contains("./no/such/model"), "{text}");

    let dir = resolve_whisper(&cfg, "tiny.en").expect("by name");
    assert_eq!(dir, repo_root(cache.path()).join("snapshots").join(COMMIT));
    assert!(hub.requests().iter().all(|r| r.server == "cdn" || r.path.starts_with(&format!("/{REPO}/resolve/"))));
}

#[test]
fn explicit_file_list_and_commit_revision() {
    let hub = fake(None);
    let cache = tempfile::tempdir().expect("tempdir");
    let cfg = config(&hub.endpoint, cache.path(), None, false);
    let dir = snapshot_download(&cfg, REPO, COMMIT, &[("config.json", Required::Yes)]).expect("by commit");
    assert!(dir.join("config.json").is_file());
    assert!(!dir.join(LFS_FILE).exists());
    // A commit hash is not a branch: no refs/ entry is written for it.
    assert!(!repo_root(cache.path()).join("refs").join(COMMIT).exists());
    let text = err_text(snapshot_download(&cfg, REPO, "no-such-branch", &[("config.json", Required::No)]));
    assert!(text.contains("no-such-branch"), "{text}");
}

#[test]
fn model_names_map_to_repos() {
    assert_eq!(repo_for_model("tiny.en"), "openai/whisper-tiny.en");
    assert_eq!(repo_for_model("base"), "openai/whisper-base");
    assert_eq!(repo_for_model("medium.en"), "openai/whisper-medium.en");
    assert_eq!(repo_for_model("large-v2"), "openai/whisper-large-v2");
    assert_eq!(repo_for_model("large"), "openai/whisper-large-v3");
    assert_eq!(repo_for_model("large-v3-turbo"), "openai/whisper-large-v3-turbo");
    assert_eq!(repo_for_model("turbo"), "openai/whisper-large-v3-turbo");
    assert_eq!(repo_for_model("distil-large-v3"), "distil-whisper/distil-large-v3");
    assert_eq!(repo_for_model("someone/my-whisper"), "someone/my-whisper");
}

#[test]
fn config_follows_huggingface_hub_precedence() {
    let home = tempfile::tempdir().expect("home");
    let hf_home = home.path().join("hf");
    fs::create_dir_all(&hf_home).expect("hf home");
    fs::write(hf_home.join("token"), "hf_from_file\n").expect("token file");
    let vars = |pairs: &[(&str, &str)]| {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name: &str| map.get(name).cloned()
    };
    let home_str = home.path().to_string_lossy().to_string();
    let hf_home_str = hf_home.to_string_lossy().to_string();

    let defaults = HubConfig::from_vars(vars(&[("HOME", &home_str)]));
    assert_eq!(defaults.endpoint, hub::config::DEFAULT_ENDPOINT);
    assert_eq!(defaults.cache_dir, home.path().join(".cache/huggingface/hub"));
    assert_eq!(defaults.token, None);
    assert!(!defaults.offline);

    let from_home =
        HubConfig::from_vars(vars(&[("HOME", &home_str), ("HF_HOME", &hf_home_str), ("HF_HUB_OFFLINE", "1")]));
    assert_eq!(from_home.cache_dir, hf_home.join("hub"));
    assert_eq!(from_home.token.as_deref(), Some("hf_from_file"));
    assert!(from_home.offline);

    let explicit = HubConfig::from_vars(vars(&[
        ("HOME", &home_str),
        ("HF_HOME", &hf_home_str),
        ("HUGGINGFACE_HUB_CACHE", "/legacy"),
        ("HF_HUB_CACHE", "/new"),
        ("HF_TOKEN", "hf_env"),
        ("HF_ENDPOINT", "http://127.0.0.1:9/"),
        ("HF_HUB_OFFLINE", "0"),
    ]));
    assert_eq!(explicit.cache_dir, PathBuf::from("/new"));
    assert_eq!(explicit.token.as_deref(), Some("hf_env"));
    assert_eq!(explicit.endpoint, "http://127.0.0.1:9");
    assert!(!explicit.offline);

    let legacy = HubConfig::from_vars(vars(&[("HOME", &home_str), ("HUGGINGFACE_HUB_CACHE", "~/legacy")]));
    assert_eq!(legacy.cache_dir, home.path().join("legacy"));
}
