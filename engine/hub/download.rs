//! HTTP against the hub: a HEAD for a file's metadata, then a GET of its blob.
//!
//! Redirects are followed by hand rather than by reqwest so that the rule huggingface_hub applies
//! (`_get_metadata_or_catch_error`) is explicit here: the HEAD only follows *relative* redirects
//! (a renamed repo); an absolute one points at the CDN, and the GET to a different host carries
//! no `Authorization` header, since the CDN URL is already signed.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_LENGTH, ETAG, LOCATION, USER_AGENT};
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};

use super::cache::create_parent;
use crate::error::{Error, Result};

/// The commit a `resolve` URL was answered from.
const HEADER_REPO_COMMIT: &str = "X-Repo-Commit";
/// For LFS files, the ETag of the pointed-to blob: its sha256 (the plain ETag is the pointer's).
const HEADER_LINKED_ETAG: &str = "X-Linked-Etag";
const HEADER_LINKED_SIZE: &str = "X-Linked-Size";
/// The hub's reason for a 4xx: `RepoNotFound`, `RevisionNotFound`, `EntryNotFound`, `GatedRepo`.
const HEADER_ERROR_CODE: &str = "X-Error-Code";
const ERROR_CODE_ENTRY_NOT_FOUND: &str = "EntryNotFound";

/// huggingface_hub's `HF_HUB_ETAG_TIMEOUT` default: a metadata request is small.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// huggingface_hub's `DEFAULT_REQUEST_TIMEOUT` / `HF_HUB_DOWNLOAD_TIMEOUT` for opening a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// More hops than any hub -> CDN chain needs; stops redirect loops.
const MAX_REDIRECTS: usize = 10;
/// Copy buffer for blob downloads.
const CHUNK_BYTES: usize = 1 << 20;
/// Log a progress line every this many bytes of a large download.
const PROGRESS_EVERY_BYTES: u64 = 256 << 20;
/// A sha256 in hex: the form of an LFS file's ETag, which lets us verify the bytes.
const SHA256_HEX_LEN: usize = 64;

/// What the hub said about one file at one revision.
#[derive(Debug, Clone)]
pub(crate) struct FileMeta {
    pub(crate) commit: String,
    /// Normalised: no `W/` prefix, no quotes.
    pub(crate) etag: String,
    pub(crate) size: Option<u64>,
    /// Where to GET the bytes: the CDN location of a redirect, or the resolve URL itself.
    pub(crate) location: Url,
}

/// The outcome of a HEAD other than a failure.
#[derive(Debug)]
pub(crate) enum Head {
    Found(FileMeta),
    /// The repo and revision exist but the file does not (404 `EntryNotFound`); the commit is
    /// known when the hub sent `X-Repo-Commit`.
    Missing {
        commit: Option<String>,
    },
}

/// Why a HEAD failed, split so the caller can fall back to the cache for all but a definite
/// "no such revision" answer.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// Connection refused, DNS, timeout, TLS: the endpoint was not reached.
    Unreachable(Error),
    /// The hub answered with an error (401, 5xx, no commit header...).
    Answered(Error),
}

impl HeadError {
    pub(crate) fn into_error(self) -> Error {
        match self {
            HeadError::Unreachable(e) | HeadError::Answered(e) => e,
        }
    }
}

/// A client for one endpoint and token.
pub(crate) struct Remote {
    client: Client,
    endpoint: String,
    token: Option<String>,
}

impl Remote {
    pub(crate) fn new(endpoint: &str, token: Option<String>) -> Result<Self> {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            // No overall limit: a multi-GB checkpoint takes as long as it takes.
            .timeout(None::<Duration>)
            .build()
            .map_err(|e| Error::Hub(format!("cannot build HTTP client: {}", chain(&e))))?;
        Ok(Remote { client, endpoint: endpoint.to_string(), token })
    }

    /// `{endpoint}/{repo}/resolve/{revision}/{filename}`, quoted as huggingface_hub's `hf_hub_url`
    /// does: `/` kept in the file name, escaped in the revision (`refs/pr/1` -> `refs%2Fpr%2F1`).
    pub(crate) fn resolve_url(&self, repo: &str, revision: &str, filename: &str) -> Result<Url> {
        let url = format!(
            "{}/{}/resolve/{}/{}",
            self.endpoint,
            repo,
            percent_encode(revision, false),
            percent_encode(filename, true)
        );
        Url::parse(&url).map_err(|e| Error::Hub(format!("invalid hub URL `{url}`: {e} (check HF_ENDPOINT)")))
    }

    /// The commit, ETag, size and download location of `filename` at `revision`.
    pub(crate) fn head(&self, repo: &str, revision: &str, filename: &str) -> Result<Head, HeadError> {
        let mut url = self.resolve_url(repo, revision, filename).map_err(HeadError::Answered)?;
        for _ in 0..=MAX_REDIRECTS {
            let request = self.prepare(self.client.head(url.clone()).timeout(HEAD_TIMEOUT), true);
            let response = request.send().map_err(|e| HeadError::Unreachable(self.unreachable(&e)))?;
            let status = response.status();
            let headers = response.headers();

            if status.is_redirection() {
                let location = location(headers, &url).map_err(HeadError::Answered)?;
                if is_relative_location(headers) {
                    url = location; // renamed repo: ask again at the new name, same host
                    continue;
                }
                return metadata(headers, location).map(Head::Found).map_err(HeadError::Answered);
            }
            if status == StatusCode::NOT_FOUND && is_missing_entry(headers) {
                return Ok(Head::Missing { commit: header(headers, HEADER_REPO_COMMIT) });
            }
            if !status.is_success() {
                let sent_token = self.token.is_some();
                return Err(HeadError::Answered(status_error(status, headers, repo, revision, filename, sent_token)));
            }
            return metadata(headers, url).map(Head::Found).map_err(HeadError::Answered);
        }
        Err(HeadError::Answered(Error::Hub(format!("{repo}/{filename}: more than {MAX_REDIRECTS} redirects"))))
    }

    /// Downloads the bytes `meta` describes into `tmp`, checking size and (for a sha256 ETag) the
    /// hash. On any failure `tmp` is removed; the caller renames it into `blobs/` on success.
    pub(crate) fn download(&self, repo: &str, filename: &str, meta: &FileMeta, tmp: &Path) -> Result<()> {
        let result = self.download_inner(repo, filename, meta, tmp);
        if result.is_err() {
            let _ = fs::remove_file(tmp);
        }
        result
    }

    fn download_inner(&self, repo: &str, filename: &str, meta: &FileMeta, tmp: &Path) -> Result<()> {
        let mut response = self.get_following(repo, filename, &meta.location)?;
        create_parent(tmp)?;
        let mut file = fs::File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut written: u64 = 0;
        let mut next_report = PROGRESS_EVERY_BYTES;
        loop {
            let n = response.read(&mut buf).map_err(|e| {
                Error::Hub(format!("{repo}/{filename}: download interrupted after {written} bytes: {e}"))
            })?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            hasher.update(chunk);
            file.write_all(chunk).map_err(|e| Error::io(tmp, e))?;
            written += n as u64;
            if written >= next_report {
                tracing::info!("{repo}/{filename}: {} / {} MB", written >> 20, meta.size.map_or(0, |s| s >> 20));
                next_report += PROGRESS_EVERY_BYTES;
            }
        }
        file.sync_all().map_err(|e| Error::io(tmp, e))?;

        if let Some(expected) = meta.size {
            if written != expected {
                return Err(Error::Hub(format!(
                    "{repo}/{filename}: downloaded {written} bytes, the hub announced {expected}"
                )));
            }
        }
        if is_sha256_hex(&meta.etag) {
            let actual = hex(&hasher.finalize());
            if !actual.eq_ignore_ascii_case(&meta.etag) {
                return Err(Error::Hub(format!(
                    "{repo}/{filename}: corrupted download: sha256 {actual} does not match the hub's {}",
                    meta.etag
                )));
            }
        }
        Ok(())
    }

    /// GET `url`, following redirects by hand; the token goes only to the endpoint's own host,
    /// and once a redirect leaves that host it is never sent again.
    fn get_following(&self, repo: &str, filename: &str, url: &Url) -> Result<Response> {
        let endpoint =
            Url::parse(&self.endpoint).map_err(|e| Error::Hub(format!("invalid endpoint `{}`: {e}", self.endpoint)))?;
        let mut url = url.clone();
        let mut send_token = same_host(&url, &endpoint);
        for _ in 0..=MAX_REDIRECTS {
            let request = self.prepare(self.client.get(url.clone()), send_token);
            let response = request.send().map_err(|e| self.unreachable_at(&url, &e))?;
            let status = response.status();
            if status.is_redirection() {
                let next = location(response.headers(), &url)?;
                send_token = send_token && same_host(&next, &url);
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(status_error(status, response.headers(), repo, "", filename, send_token));
            }
            return Ok(response);
        }
        Err(Error::Hub(format!("{repo}/{filename}: more than {MAX_REDIRECTS} redirects")))
    }

    /// Adds our User-Agent, and the token when the request goes to the endpoint's host.
    fn prepare(&self, request: RequestBuilder, send_token: bool) -> RequestBuilder {
        let request = request.header(USER_AGENT, user_agent());
        match (&self.token, send_token) {
            (Some(token), true) => request.header(AUTHORIZATION, format!("Bearer {token}")),
            _ => request,
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> Error {
        Error::Hub(format!(
            "cannot reach the hub at {}: {}; set HF_HUB_OFFLINE=1 to use only the local cache, \
             or pass the path of a local model directory",
            self.endpoint,
            chain(e)
        ))
    }

    fn unreachable_at(&self, url: &Url, e: &reqwest::Error) -> Error {
        let host = url.host_str().unwrap_or("?");
        Error::Hub(format!(
            "download from {host} (redirected from {}) failed: {}; set HF_HUB_OFFLINE=1 to use only \
             the local cache, or pass the path of a local model directory",
            self.endpoint,
            chain(e)
        ))
    }
}

fn user_agent() -> String {
    format!("scribe/{}", env!("CARGO_PKG_VERSION"))
}

/// Commit, ETag and size from a HEAD answer; huggingface_hub refuses to cache without the first
/// two (a proxy or captive portal answered, not the hub).
fn metadata(headers: &HeaderMap, location: Url) -> Result<FileMeta> {
    let commit = header(headers, HEADER_REPO_COMMIT).ok_or_else(|| {
        Error::Hub(format!(
            "{location}: the answer has no {HEADER_REPO_COMMIT} header; it does not seem to come from a \
             Hugging Face hub (check HF_ENDPOINT and any proxy)"
        ))
    })?;
    let etag = header(headers, HEADER_LINKED_ETAG)
        .or_else(|| header(headers, ETAG.as_str()))
        .map(|e| normalize_etag(&e))
        .filter(|e| !e.is_empty())
        .ok_or_else(|| Error::Hub(format!("{location}: the answer has no ETag; cannot cache it reliably")))?;
    let size = header(headers, HEADER_LINKED_SIZE)
        .or_else(|| header(headers, CONTENT_LENGTH.as_str()))
        .and_then(|s| s.parse().ok());
    Ok(FileMeta { commit, etag, size, location })
}

/// huggingface_hub's `_normalize_etag`: drop a weak `W/` prefix and the quotes.
fn normalize_etag(etag: &str) -> String {
    etag.trim().trim_start_matches("W/").trim_matches('"').to_string()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_string())
}

/// A 404 without an error code is taken as a missing file too (a plain static server).
fn is_missing_entry(headers: &HeaderMap) -> bool {
    header(headers, HEADER_ERROR_CODE).is_none_or(|code| code == ERROR_CODE_ENTRY_NOT_FOUND)
}

/// A `Location` with no scheme and host (`/new-owner/name/resolve/...`).
fn is_relative_location(headers: &HeaderMap) -> bool {
    header(headers, LOCATION.as_str()).is_some_and(|l| Url::parse(&l).is_err())
}

fn location(headers: &HeaderMap, base: &Url) -> Result<Url> {
    let raw = header(headers, LOCATION.as_str())
        .ok_or_else(|| Error::Hub(format!("{base}: redirect without a Location header")))?;
    base.join(&raw).map_err(|e| Error::Hub(format!("{base}: bad redirect Location `{raw}`: {e}")))
}

/// Same host and port: huggingface_hub compares `netloc`.
fn same_host(a: &Url, b: &Url) -> bool {
    a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// An error that says what to do about it.
fn status_error(
    status: StatusCode,
    headers: &HeaderMap,
    repo: &str,
    revision: &str,
    filename: &str,
    sent_token: bool,
) -> Error {
    let code = header(headers, HEADER_ERROR_CODE).unwrap_or_default();
    let at = if revision.is_empty() { String::new() } else { format!(" at revision `{revision}`") };
    let what = match status.as_u16() {
        // The hub answers 401 for a repo that does not exist too, so as not to reveal private ones.
        401 | 403 if sent_token => format!(
            "access denied (HTTP {status}) to repo `{repo}` with the configured token (HF_TOKEN or the \
             token file): the token is invalid or has no access to this private or gated repo, or the \
             repo does not exist"
        ),
        401 | 403 => format!(
            "access denied (HTTP {status}) to repo `{repo}`: it is private or gated and needs a token \
             with access (set HF_TOKEN, or log in with `hf auth login`), or the repo does not exist"
        ),
        404 if code == "RevisionNotFound" => format!("repo `{repo}` has no revision `{revision}` (HTTP 404)"),
        404 if code == "RepoNotFound" => format!("repo `{repo}` does not exist (HTTP 404)"),
        404 => format!("repo `{repo}` has no file `{filename}`{at} (HTTP 404)"),
        _ => format!("fetching `{filename}` from repo `{repo}`{at} failed: HTTP {status}"),
    };
    Error::Hub(what)
}

/// The error and its causes on one line; reqwest's Display alone hides "connection refused".
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == SHA256_HEX_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Python's `urllib.parse.quote(s, safe="/" or "")`: unreserved characters pass, the rest are
/// `%XX`-escaped byte by byte.
fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
