//! Secrets and sizes out of messages. A URL as it may appear in a log line, an error or a result
//! has no credentials, query or fragment (a presigned URL's query is a secret) and is at most
//! [`MAX_URL_CHARS`] long; free text that may hold URLs (a library's error, a job's JSON) has
//! every URL in it redacted and is at most [`MAX_MESSAGE_CHARS`] long. A 2 MB URL never comes
//! back as a 2 MB error.

use reqwest::Url;

/// Longest URL shown; a longer path is cut.
pub const MAX_URL_CHARS: usize = 160;
/// Longest message (a job's error, a log line's free text).
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// A URL as it may appear in logs and errors: scheme, host, port and path, nothing else, cut to
/// [`MAX_URL_CHARS`].
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            bounded(&format!("{}://{host}{port}{}", u.scheme(), u.path()), MAX_URL_CHARS)
        }
        Err(_) => "<malformed URL>".into(),
    }
}

/// `text` cut to `max` characters, saying how much was left out.
pub fn bounded(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}… ({} more characters)", total - max)
}

/// Whether `c` ends a URL inside free text.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | '\\' | ')' | ']' | '}' | ',')
}

/// `text` with every `http://` / `https://` URL in it redacted.
pub fn scrub(text: &str) -> String {
    // ASCII lower-casing keeps byte offsets, so positions found in `lower` index `text`.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_CHARS * 2));
    let mut done = 0;
    while let Some(at) = [lower[done..].find("http://"), lower[done..].find("https://")].into_iter().flatten().min() {
        let start = done + at;
        out.push_str(&text[done..start]);
        let len = text[start..].find(ends_url).unwrap_or(text.len() - start);
        out.push_str(&redact(&text[start..start + len]));
        done = start + len;
    }
    out.push_str(&text[done..]);
    out
}

/// What a message may show: URLs redacted, length bounded.
pub fn safe_message(text: &str) -> String {
    bounded(&scrub(text), MAX_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_messages_lose_their_query_and_credentials() {
        assert_eq!(
            redact("https://user:pw@bucket.example.com:8443/a/b.mp3?X-Amz-Signature=secret#frag"),
            "https://bucket.example.com:8443/a/b.mp3"
        );
        assert_eq!(redact("not a url"), "<malformed URL>");
    }

    #[test]
    fn long_urls_and_messages_are_cut() {
        let long = format!("https://h.example/{}?sig=secret", "a".repeat(2_000_000));
        let shown = redact(&long);
        assert!(shown.chars().count() < MAX_URL_CHARS + 40, "{}", shown.len());
        assert!(shown.starts_with("https://h.example/aaa") && shown.ends_with("more characters)"), "{shown}");
        let message = safe_message(&format!("error sending request for url ({long}): connection refused"));
        assert!(message.len() < MAX_MESSAGE_CHARS * 2 && !message.contains("secret"), "{}", message.len());
        assert!(message.ends_with("): connection refused"), "{message}");
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("éééé", 2), "éé… (2 more characters)");
    }

    #[test]
    fn every_url_in_free_text_is_redacted() {
        let text = r#"job {"id": 1, "input": {"audio_file": "HTTPS://b.example/x.wav?X-Amz-Signature=s1"}} and http://c.example/y?token=s2, done"#;
        let out = scrub(text);
        assert!(!out.contains("s1") && !out.contains("s2"), "{out}");
        assert!(out.contains("https://b.example/x.wav") && out.contains("http://c.example/y, done"), "{out}");
        assert_eq!(scrub("no links here"), "no links here");
    }
}
