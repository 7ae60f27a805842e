//! `--test_input JSON` (or `./test_input.json`): run one job locally, as the SDK's local test
//! mode does, and print what the platform would receive.

use serde_json::Value;

/// The job a test input describes: `{"input": {...}}` with an optional `id`.
pub fn parse_test_input(text: &str) -> Result<(String, Value), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("test input is not JSON: {e}"))?;
    let Value::Object(map) = &v else { return Err("test input should be a JSON object with an `input`".into()) };
    let input = map.get("input").cloned().ok_or("test input has no `input` field")?;
    let id = map.get("id").and_then(Value::as_str).unwrap_or("local_test").to_string();
    Ok((id, input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_input_needs_an_input_object() {
        let (id, input) = parse_test_input(r#"{"input": {"audio_file": "https://a/b.wav"}}"#).unwrap();
        assert_eq!((id.as_str(), input["audio_file"].as_str()), ("local_test", Some("https://a/b.wav")));
        let (id, _) = parse_test_input(r#"{"id": "j1", "input": {}}"#).unwrap();
        assert_eq!(id, "j1");
        assert!(parse_test_input("{").unwrap_err().contains("not JSON"));
        assert!(parse_test_input("[]").unwrap_err().contains("object"));
        assert!(parse_test_input("{}").unwrap_err().contains("no `input`"));
    }
}
