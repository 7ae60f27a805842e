//! Downloads a job's audio with reqwest, streaming to a file: http(s) only, every hop's host
//! resolved through the injected [`Resolver`] and checked against the [`UrlPolicy`] before any
//! connection, redirects followed by hand (each one checked the same way), the connection
//! pinned to the checked addresses, a size cap before and during the transfer, retries on 5xx
//! and network errors, and a sniff of the first bytes (an HTML error page is not audio).

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use reqwest::{StatusCode, Url};

pub use crate::redact::redact;
use crate::url_guard::{BoxFuture, ConnectGate, Resolver, UrlPolicy};

/// Redirects followed before giving up (browsers use 20; a media link needs one or two).
pub const MAX_REDIRECTS: usize = 10;
/// Attempts per hop for 5xx answers and network errors.
pub const ATTEMPTS: usize = 3;
/// First pause between attempts; doubled each time.
pub const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Bytes looked at to tell audio from an error page.
const SNIFF_BYTES: usize = 512;

/// MAX_DOWNLOAD_BYTES and DOWNLOAD_TIMEOUT_S.
#[derive(Clone, Debug)]
pub struct DownloadLimits {
    pub max_bytes: u64,
    pub timeout: Duration,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        DownloadLimits { max_bytes: 2 << 30, timeout: Duration::from_secs(300) }
    }
}

pub struct Downloader {
    pub resolver: Arc<dyn Resolver>,
    pub gate: Arc<dyn ConnectGate>,
    pub policy: UrlPolicy,
    pub limits: DownloadLimits,
}

/// What a probe tells of a URL's content.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Probe {
    pub etag: Option<String>,
    /// Bytes in the whole file.
    pub length: Option<u64>,
}

/// What was fetched.
#[derive(Clone, Debug, PartialEq)]
pub struct Downloaded {
    pub bytes: u64,
    pub content_type: Option<String>,
    /// The URL after redirects, without its query (safe to log).
    pub final_url: String,
}

impl Downloader {
    /// Fetch `url` into `dest`. Errors name the URL (redacted) and what failed.
    pub async fn fetch(&self, url: &str, dest: &Path) -> Result<Downloaded, String> {
        match tokio::time::timeout(self.limits.timeout, self.fetch_inner(url, dest)).await {
            Ok(r) => r,
            Err(_) => Err(format!("{}: download timed out after {} s", redact(url), self.limits.timeout.as_secs())),
        }
    }

    async fn fetch_inner(&self, url: &str, dest: &Path) -> Result<Downloaded, String> {
        let (response, shown) = self.open(url, None).await?;
        self.save(response, dest, shown).await
    }

    /// What identifies `url`'s content without downloading it: a one-byte ranged GET (what a
    /// presigned GET URL allows, unlike HEAD), read for its ETag and the file's length
    /// (`Content-Range`'s total on 206, `Content-Length` on a 200 that ignored the range); the
    /// body is never read.
    pub async fn probe(&self, url: &str) -> Result<Probe, String> {
        let fut = async {
            let (response, _) = self.open(url, Some("bytes=0-0")).await?;
            let header = |name: reqwest::header::HeaderName| {
                response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
            };
            let length = if response.status() == reqwest::StatusCode::PARTIAL_CONTENT {
                header(reqwest::header::CONTENT_RANGE)
                    .and_then(|r| r.rsplit_once('/').and_then(|(_, total)| total.trim().parse().ok()))
            } else {
                response.content_length()
            };
            Ok(Probe { etag: header(reqwest::header::ETAG), length })
        };
        match tokio::time::timeout(self.limits.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(format!("{}: timed out after {} s", redact(url), self.limits.timeout.as_secs())),
        }
    }

    /// The response to a GET of `url` (with a `Range` header when given), after redirects, each
    /// hop vetted; with the redacted URL of the last hop.
    async fn open(&self, url: &str, range: Option<&str>) -> Result<(reqwest::Response, String), String> {
        let mut current = Url::parse(url).map_err(|e| format!("{}: not a URL ({e})", redact(url)))?;
        for _ in 0..=MAX_REDIRECTS {
            let shown = redact(current.as_str());
            let (host, port, addrs) = self.vet(&current).await.map_err(|e| format!("{shown}: refused: {e}"))?;
            // One client per hop; a refusal by the gate ends the download, so the flag is
            // never set on a retry.
            let refused = Arc::new(AtomicBool::new(false));
            let client = self.client(&current, &host, &addrs, refused.clone())?;
            let mut attempt = 0;
            let response = loop {
                attempt += 1;
                let mut request = client.get(current.clone());
                if let Some(range) = range {
                    request = request.header(reqwest::header::RANGE, range);
                }
                match request.send().await {
                    Ok(r) if r.status().is_server_error() && attempt < ATTEMPTS => {
                        tracing::warn!("{shown}: HTTP {}, retrying", r.status().as_u16());
                    }
                    Ok(r) => break r,
                    Err(_) if refused.load(Ordering::SeqCst) => {
                        return Err(format!("{shown}: refused: connection to {host}:{port} not allowed"));
                    }
                    Err(e) if attempt < ATTEMPTS && (e.is_connect() || e.is_timeout() || e.is_request()) => {
                        tracing::warn!("{shown}: {}, retrying", error_chain(&e.without_url()));
                    }
                    Err(e) => return Err(format!("{shown}: {}", error_chain(&e.without_url()))),
                }
                tokio::time::sleep(RETRY_PAUSE * (1 << (attempt - 1))).await;
            };
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| format!("{shown}: HTTP {} without a Location", status.as_u16()))?;
                current = current.join(location).map_err(|e| format!("{shown}: bad redirect target ({e})"))?;
                continue;
            }
            if !status.is_success() {
                return Err(format!("{shown}: HTTP {} {}", status.as_u16(), reason(status)));
            }
            return Ok((response, shown));
        }
        Err(format!("{}: more than {MAX_REDIRECTS} redirects", redact(url)))
    }

    /// Scheme, host and resolved addresses of one hop, checked against the policy.
    async fn vet(&self, url: &Url) -> Result<(String, u16, Vec<SocketAddr>), String> {
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(format!("scheme {other}:// is not allowed (only http and https)")),
        }
        let port = url.port_or_known_default().ok_or("no port")?;
        let (host, addrs) = match url.host() {
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
            Some(url::Host::Domain(d)) => {
                let addrs = self.resolver.lookup(d, port).await.map_err(|e| format!("cannot resolve {d}: {e}"))?;
                (d.to_string(), addrs)
            }
            None => return Err("the URL has no host".into()),
        };
        self.policy.check(&host, port, &addrs)?;
        Ok((host, port, addrs))
    }

    /// A client for one hop: no proxies, no automatic redirects, DNS pinned to the vetted
    /// addresses, and the gate told of every connection.
    fn client(
        &self,
        url: &Url,
        host: &str,
        addrs: &[SocketAddr],
        refused: Arc<AtomicBool>,
    ) -> Result<reqwest::Client, String> {
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(15))
            .connector_layer(GateLayer {
                gate: self.gate.clone(),
                host: host.to_string(),
                addrs: addrs.to_vec(),
                refused,
            });
        if matches!(url.host(), Some(url::Host::Domain(_))) {
            b = b.resolve_to_addrs(host, addrs);
        }
        b.build().map_err(|e| format!("cannot build an HTTP client: {e}"))
    }

    async fn save(&self, mut response: reqwest::Response, dest: &Path, shown: String) -> Result<Downloaded, String> {
        let max = self.limits.max_bytes;
        if let Some(len) = response.content_length() {
            if len > max {
                return Err(format!("{shown}: {len} bytes is more than MAX_DOWNLOAD_BYTES ({max})"));
            }
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.to_ascii_lowercase());
        if let Some(ct) = &content_type {
            if ct.starts_with("text/html") || ct.starts_with("application/json") || ct.starts_with("application/xml") {
                return Err(format!("{shown}: the server sent {ct}, not audio (an error page?)"));
            }
        }
        let mut file = std::fs::File::create(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
        let mut written = 0u64;
        let mut head = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| format!("{shown}: {}", error_chain(&e.without_url())))?
        {
            written += chunk.len() as u64;
            if written > max {
                return Err(format!("{shown}: more than MAX_DOWNLOAD_BYTES ({max}) bytes"));
            }
            if head.len() < SNIFF_BYTES {
                head.extend_from_slice(&chunk[..chunk.len().min(SNIFF_BYTES - head.len())]);
                if head.len() >= SNIFF_BYTES && looks_like_markup(&head) {
                    return Err(format!("{shown}: the server sent an HTML page, not audio"));
                }
            }
            file.write_all(&chunk).map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        }
        if written == 0 {
            return Err(format!("{shown}: the file is empty (0 bytes)"));
        }
        if looks_like_markup(&head) {
            return Err(format!("{shown}: the server sent an HTML page, not audio"));
        }
        file.flush().map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        Ok(Downloaded { bytes: written, content_type, final_url: shown })
    }
}

/// An HTML or XML document rather than media.
pub fn looks_like_markup(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start_matches('\u{feff}').trim_start().to_ascii_lowercase();
    t.starts_with("<!doctype html") || t.starts_with("<html") || t.starts_with("<?xml") || t.starts_with("<head")
}

fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("")
}

/// reqwest's error with its causes (the outer message alone is often "error sending request"),
/// for an error whose URL was taken out (`without_url`); any URL a cause names is redacted.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    crate::redact::safe_message(&out)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Puts [`ConnectGate`] in front of reqwest's connector.
#[derive(Clone)]
struct GateLayer {
    gate: Arc<dyn ConnectGate>,
    host: String,
    addrs: Vec<SocketAddr>,
    refused: Arc<AtomicBool>,
}

impl<S> tower_layer::Layer<S> for GateLayer {
    type Service = GateService<S>;

    fn layer(&self, inner: S) -> GateService<S> {
        GateService { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
struct GateService<S> {
    inner: S,
    layer: GateLayer,
}

impl<S, R> tower_service::Service<R> for GateService<S>
where
    S: tower_service::Service<R, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        if let Err(e) = self.layer.gate.connecting(&self.layer.host, &self.layer.addrs) {
            self.layer.refused.store(true, Ordering::SeqCst);
            return Box::pin(async move { Err(Box::new(e) as BoxError) });
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_told_from_audio() {
        assert!(looks_like_markup(b"\n  <!DOCTYPE html><html>"));
        assert!(looks_like_markup(b"\xef\xbb\xbf<HTML><body>404</body>"));
        assert!(looks_like_markup(b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>"));
        assert!(!looks_like_markup(b"RIFF\x24\x00\x00\x00WAVEfmt "));
        assert!(!looks_like_markup(b"ID3\x04\x00"));
    }
}
