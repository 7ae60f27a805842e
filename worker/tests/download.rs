//! The downloader against a local server, with an injected resolver and a connection gate that
//! records every attempt: what is fetched, and what is refused before any connection is made.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::http_server::{Response, Server};
use common::{speech, LoopbackOnly, TableResolver};
use scribe_worker::download::{DownloadLimits, Downloader};
use scribe_worker::url_guard::UrlPolicy;

struct Setup {
    server: Server,
    gate: Arc<LoopbackOnly>,
    resolver: Arc<TableResolver>,
    downloader: Downloader,
    dir: tempfile::TempDir,
}

/// A server with the routes the tests use, allowed through ALLOW_PRIVATE_URLS; `media.example`
/// resolves to it, `evil.example` to a private address, `meta.example` to the metadata service.
async fn setup(limits: DownloadLimits) -> Setup {
    let wav = std::fs::read(speech("spk1_snt1.wav")).unwrap();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = Server::start(Arc::new(move |r| {
        let n = hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match r.path() {
            "/a.wav" => Response::new(200, wav.clone()).header("Content-Type", "audio/wav"),
            "/missing.wav" => Response::new(404, "no"),
            "/page" => Response::new(200, "<!DOCTYPE html><html><body>Sign in</body></html>")
                .header("Content-Type", "application/octet-stream"),
            "/typed-html" => Response::new(200, "whatever").header("Content-Type", "text/html; charset=utf-8"),
            "/empty" => Response::new(200, Vec::new()),
            "/big" => Response::new(200, vec![7u8; 4096]),
            "/liar" => {
                let mut r = Response::new(200, vec![7u8; 10]);
                r.content_length = Some(1 << 40);
                r
            }
            "/flaky.wav" if n.is_multiple_of(2) => Response::new(503, "busy"),
            "/flaky.wav" => Response::new(200, wav.clone()),
            "/always-503" => Response::new(503, "down"),
            "/slow" => {
                let mut r = Response::new(200, wav.clone());
                r.delay = Duration::from_secs(5);
                r
            }
            "/to-local" => Response::new(302, "").header("Location", "/a.wav"),
            "/to-private" => Response::new(302, "").header("Location", "http://10.0.0.7/a.wav"),
            "/to-metadata" => Response::new(301, "").header("Location", "http://169.254.169.254/latest/meta-data/"),
            "/to-evil-name" => Response::new(307, "").header("Location", "http://evil.example/a.wav"),
            "/to-ftp" => Response::new(302, "").header("Location", "ftp://files.example/a.wav"),
            "/loop" => Response::new(302, "").header("Location", "/loop"),
            "/hang-up" => Response::hang_up(),
            _ => Response::new(404, ""),
        }
    }))
    .await;
    let gate = Arc::new(LoopbackOnly::default());
    let port = server.port;
    let resolver = TableResolver::new(&[
        ("media.example", &format!("127.0.0.1:{port}")),
        ("evil.example", "10.0.0.5:0"),
        ("meta.example", "169.254.169.254:0"),
        ("mixed.example", "93.184.216.34:0"),
        ("mixed.example", "192.168.0.9:0"),
        ("nat64.example", "[64:ff9b::a9fe:a9fe]:0"),
    ]);
    let policy = UrlPolicy::from_allow_list(&format!("127.0.0.1:{port},media.example:{port}")).unwrap();
    let downloader = Downloader { resolver: resolver.clone(), gate: gate.clone(), policy, limits };
    Setup { server, gate, resolver, downloader, dir: tempfile::tempdir().unwrap() }
}

impl Setup {
    async fn fetch(&self, url: &str) -> Result<u64, String> {
        let dest = self.dir.path().join("audio");
        self.downloader.fetch(url, &dest).await.map(|d| d.bytes)
    }

    /// Every connection attempt was to loopback (nothing else was even tried).
    fn only_loopback_attempted(&self) {
        for (host, addrs) in self.gate.attempts.lock().unwrap().iter() {
            assert!(addrs.iter().all(|a| a.ip().is_loopback()), "attempted {host} {addrs:?}");
        }
    }
}

#[tokio::test]
async fn audio_is_fetched_from_the_allowed_server_by_address_and_by_name() {
    let s = setup(DownloadLimits::default()).await;
    let want = std::fs::metadata(speech("spk1_snt1.wav")).unwrap().len();
    assert_eq!(s.fetch(&s.server.url("/a.wav")).await.unwrap(), want);
    let named = format!("http://media.example:{}/a.wav", s.server.port);
    assert_eq!(s.fetch(&named).await.unwrap(), want);
    assert_eq!(std::fs::read(s.dir.path().join("audio")).unwrap(), std::fs::read(speech("spk1_snt1.wav")).unwrap());
    // A redirect on the same server is followed.
    assert_eq!(s.fetch(&s.server.url("/to-local")).await.unwrap(), want);
    s.only_loopback_attempted();
}

#[tokio::test]
async fn private_and_metadata_targets_are_refused_before_any_connection() {
    let s = setup(DownloadLimits::default()).await;
    let other_port = if s.server.port == 65535 { 65534 } else { s.server.port + 1 };
    for (url, why) in [
        (format!("http://127.0.0.1:{other_port}/a.wav"), "loopback"),
        ("http://localhost:9/a.wav".to_string(), "resolve"),
        ("http://169.254.169.254/latest/meta-data/".to_string(), "link-local"),
        ("http://[::1]:8080/a.wav".to_string(), "loopback"),
        ("http://10.1.2.3/a.wav".to_string(), "private"),
        ("http://evil.example/a.wav".to_string(), "10.0.0.5"),
        ("http://meta.example/".to_string(), "169.254.169.254"),
        ("http://mixed.example/a.wav".to_string(), "192.168.0.9"),
        ("ftp://media.example/a.wav".to_string(), "ftp"),
        ("file:///etc/passwd".to_string(), "file"),
        // IPv6 that carries a non-public IPv4 address, and IPv6 ranges that are not global.
        ("http://[::a9fe:a9fe]/latest/meta-data/".to_string(), "link-local"),
        ("http://[::7f00:1]:8080/".to_string(), "loopback"),
        ("http://[64:ff9b::a9fe:a9fe]/".to_string(), "link-local"),
        ("http://[2002:a9fe:a9fe::1]/".to_string(), "link-local"),
        ("http://[::ffff:0:a9fe:a9fe]/".to_string(), "link-local"),
        ("http://[fec0::1]/".to_string(), "site-local"),
        ("http://[2001:db8::1]/".to_string(), "documentation"),
        ("http://nat64.example/".to_string(), "64:ff9b::a9fe:a9fe"),
    ] {
        let before = s.gate.attempts.lock().unwrap().len();
        let e = s.fetch(&url).await.unwrap_err();
        assert!(e.contains("refused") && e.contains(why), "{url}: {e}");
        assert_eq!(s.gate.attempts.lock().unwrap().len(), before, "{url}: a connection was attempted");
    }
    assert!(s.server.requests().is_empty(), "the server saw {:?}", s.server.requests());
}

#[tokio::test]
async fn redirects_are_checked_hop_by_hop() {
    let s = setup(DownloadLimits::default()).await;
    for (path, why) in [
        ("/to-private", "10.0.0.7"),
        ("/to-metadata", "169.254.169.254"),
        ("/to-evil-name", "10.0.0.5"),
        ("/to-ftp", "ftp"),
    ] {
        let e = s.fetch(&s.server.url(path)).await.unwrap_err();
        assert!(e.contains("refused") && e.contains(why), "{path}: {e}");
    }
    // Only the first hops (on the test server) were ever connected to.
    s.only_loopback_attempted();
    assert!(s.resolver.lookups.lock().unwrap().iter().all(|h| h == "evil.example"));
    let e = s.fetch(&s.server.url("/loop")).await.unwrap_err();
    assert!(e.contains("redirects"), "{e}");
}

#[tokio::test]
async fn error_pages_empty_and_oversize_bodies_are_not_audio() {
    let s = setup(DownloadLimits { max_bytes: 1000, timeout: Duration::from_secs(30) }).await;
    let e = s.fetch(&s.server.url("/missing.wav")).await.unwrap_err();
    assert!(e.contains("HTTP 404") && e.contains("/missing.wav"), "{e}");
    let e = s.fetch(&s.server.url("/page")).await.unwrap_err();
    assert!(e.contains("HTML page"), "{e}");
    let e = s.fetch(&s.server.url("/typed-html")).await.unwrap_err();
    assert!(e.contains("text/html"), "{e}");
    let e = s.fetch(&s.server.url("/empty")).await.unwrap_err();
    assert!(e.contains("empty"), "{e}");
    let e = s.fetch(&s.server.url("/big")).await.unwrap_err();
    assert!(e.contains("MAX_DOWNLOAD_BYTES"), "{e}");
    let e = s.fetch(&s.server.url("/liar")).await.unwrap_err();
    assert!(e.contains("MAX_DOWNLOAD_BYTES"), "{e}");
}

#[tokio::test]
async fn server_errors_are_retried_and_a_stalled_server_times_out() {
    let s = setup(DownloadLimits { max_bytes: 1 << 30, timeout: Duration::from_secs(2) }).await;
    assert!(s.fetch(&s.server.url("/flaky.wav")).await.is_ok());
    let flaky = s.server.requests().iter().filter(|r| r.path() == "/flaky.wav").count();
    assert_eq!(flaky, 2, "one 503, then the retry");
    let e = s.fetch(&s.server.url("/always-503")).await.unwrap_err();
    assert!(e.contains("HTTP 503"), "{e}");
    let tries = s.server.requests().iter().filter(|r| r.path() == "/always-503").count();
    assert_eq!(tries, scribe_worker::download::ATTEMPTS);
    let e = s.fetch(&s.server.url("/slow")).await.unwrap_err();
    assert!(e.contains("timed out"), "{e}");
}

/// A presigned-looking query and a long path: what every error below must neither show nor echo.
const SECRET: &str = "X-Amz-Signature=topsecret0123456789";

#[tokio::test]
async fn secrets_in_the_query_never_reach_an_error_whatever_failed() {
    // A closed port the policy allows, next to the test server.
    let closed = common::free_port();
    let mut s = setup(DownloadLimits { max_bytes: 1 << 30, timeout: Duration::from_secs(2) }).await;
    s.downloader.policy =
        UrlPolicy::from_allow_list(&format!("127.0.0.1:{},127.0.0.1:{closed}", s.server.port)).unwrap();
    let long_path = "p".repeat(200_000);
    let urls = [
        format!("http://127.0.0.1:{closed}/a.wav?{SECRET}"),
        format!("{}?{SECRET}", s.server.url("/missing.wav")),
        format!("{}?{SECRET}", s.server.url("/always-503")),
        format!("{}?{SECRET}", s.server.url("/slow")),
        format!("{}?{SECRET}", s.server.url("/hang-up")),
        format!("{}?{SECRET}", s.server.url(&format!("/{long_path}"))),
        format!("http://nowhere.example/a.wav?{SECRET}"),
        format!("http://user:{SECRET}@10.0.0.1/a.wav?{SECRET}"),
    ];
    for url in &urls {
        let e = s.fetch(url).await.unwrap_err();
        assert!(!e.contains("topsecret"), "{e}");
        assert!(e.len() < 2000, "{} characters: {}", e.len(), &e[..200]);
    }
}
