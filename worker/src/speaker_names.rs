//! A speaker sample's name: its `name` field, else the URL's `?name=` parameter, else its
//! `#fragment`, else the file name's stem, cut to 64 characters — then sanitised, because it
//! ends up in object keys, file names and logs.

/// Longest name kept.
pub const MAX_NAME_CHARS: usize = 64;

/// Letters, digits, spaces, `-`, `_` and `.` are kept (any script); everything else becomes
/// `_`; runs of spaces and underscores are squeezed and the ends trimmed. Empty → None.
pub fn sanitise(raw: &str) -> Option<String> {
    let mut out = String::new();
    for c in raw.chars() {
        let c = if c.is_alphanumeric() || matches!(c, '-' | '.' | ' ' | '_') { c } else { '_' };
        let squeeze = matches!(c, ' ' | '_') && out.ends_with([' ', '_']);
        if !squeeze {
            out.push(c);
        }
    }
    let trimmed: String =
        out.trim_matches(|c: char| c == ' ' || c == '_' || c == '.').chars().take(MAX_NAME_CHARS).collect();
    let trimmed = trimmed.trim_end_matches([' ', '_']).to_string();
    (!trimmed.is_empty()).then_some(trimmed)
}

/// The name of the sample at `url`, given its optional `name` field.
pub fn speaker_name(name: Option<&str>, url: &str) -> Option<String> {
    if let Some(n) = name.and_then(sanitise) {
        return Some(n);
    }
    let parsed = url::Url::parse(url).ok()?;
    if let Some(n) = parsed.query_pairs().find(|(k, _)| k == "name").and_then(|(_, v)| sanitise(&v)) {
        return Some(n);
    }
    let fragment = parsed.fragment().map(|f| {
        url::form_urlencoded::parse(format!("x={f}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    });
    if let Some(n) = fragment.as_deref().and_then(sanitise) {
        return Some(n);
    }
    let last = parsed.path_segments()?.next_back()?.to_string();
    let decoded =
        url::form_urlencoded::parse(format!("x={last}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or(last);
    let stem = decoded.rsplit_once('.').map_or(decoded.as_str(), |(s, _)| s).to_string();
    sanitise(&stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_comes_from_the_field_then_the_query_then_the_fragment_then_the_file() {
        assert_eq!(speaker_name(Some("Alice"), "https://h/x.wav?name=Bob#Carol").as_deref(), Some("Alice"));
        assert_eq!(speaker_name(None, "https://h/x.wav?name=Bob#Carol").as_deref(), Some("Bob"));
        assert_eq!(speaker_name(None, "https://h/x.wav#Carol%20Smith").as_deref(), Some("Carol Smith"));
        assert_eq!(speaker_name(None, "https://h/voices/dave_jones.mp3?sig=1").as_deref(), Some("dave_jones"));
        assert_eq!(
            speaker_name(Some("   "), "https://h/Eve.wav").as_deref(),
            Some("Eve"),
            "a blank name falls through"
        );
        assert_eq!(speaker_name(None, "https://h/").as_deref(), None);
    }

    #[test]
    fn names_are_safe_in_keys_logs_and_file_names_and_at_most_64_characters() {
        assert_eq!(sanitise("../../etc/passwd").as_deref(), Some("etc_passwd"));
        assert_eq!(sanitise("a\nb\r\nc\t<script>").as_deref(), Some("a_b_c_script"));
        assert_eq!(sanitise("Zoë Ünal  李").as_deref(), Some("Zoë Ünal 李"));
        assert_eq!(sanitise("___").as_deref(), None);
        let long = "x".repeat(200);
        assert_eq!(sanitise(&long).unwrap().chars().count(), MAX_NAME_CHARS);
        assert_eq!(speaker_name(None, &format!("https://h/{long}.wav")).unwrap().len(), MAX_NAME_CHARS);
    }
}
