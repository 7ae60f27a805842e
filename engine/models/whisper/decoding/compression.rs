//! openai/whisper utils.py `compression_ratio`: UTF-8 length over zlib-compressed length.
//! Repetitive (hallucinated) text compresses well; transcribe.py falls back to a higher
//! temperature above `compression_ratio_threshold` (2.4). Uses C zlib at its default level,
//! as Python's `zlib.compress` does, so ratios match byte for byte.

use std::io::Write;

pub fn compression_ratio(text: &str) -> f64 {
    let bytes = text.as_bytes();
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let compressed = enc.write_all(bytes).and_then(|_| enc.finish()).unwrap_or_default();
    if compressed.is_empty() {
        return 0.0;
    }
    bytes.len() as f64 / compressed.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_zlib() {
        // python3 -c "import zlib; t=b'hello hello hello hello'; print(len(t)/len(zlib.compress(t)))"
        let t = "hello hello hello hello";
        assert!((compression_ratio(t) - 23.0 / 16.0).abs() < 1e-12, "{}", compression_ratio(t));
        // Repetitive text crosses the 2.4 threshold; ordinary text does not.
        assert!(compression_ratio(&"I'm sorry. ".repeat(20)) > 2.4);
        assert!(compression_ratio("And so my fellow Americans ask not what your country can do for you") < 2.4);
    }
}
