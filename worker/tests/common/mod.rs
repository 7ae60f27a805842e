//! Helpers for the worker's tests: a small HTTP server on 127.0.0.1 that records what it is
//! sent, a resolver that answers from a table, and a connection gate that records every
//! connection the downloader opens and refuses anything off loopback. No test sends a packet
//! beyond 127.0.0.0/8.
#![allow(dead_code)]

pub mod http_server;
pub mod schema;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use scribe_worker::url_guard::{BoxFuture, ConnectGate, Resolver};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A fetched model under models/, or None (the test is skipped) when it is missing.
pub fn model_dir(name: &str) -> Option<PathBuf> {
    let dir = root().join("models").join(name);
    if dir.join(".complete").is_file() {
        Some(dir)
    } else {
        eprintln!("skipped: run models/fetch {name}");
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
