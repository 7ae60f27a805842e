//! A job's output: `{language, duration, segments_count, words_count, artifacts?, preview?,
//! warnings, timings?}`, as `schema/job-result.schema.json` describes it. Without object storage
//! the transcript travels inline as a bounded preview (the platform refuses large results); with
//! it, the artifacts' keys and presigned URLs (a failed upload falls back to the preview).

use serde::Serialize;
use serde_json::Value;

use scribe::output::Segment;
use scribe::pipeline::file::FileTranscript;

use std::collections::BTreeMap;

use crate::storage::Artifact;

/// Segments in an inline preview.
pub const PREVIEW_SEGMENTS: usize = 50;

/// Per-stage wall times, seconds (`debug: true`).
#[derive(Clone, Debug, Serialize)]
pub struct Timings {
    pub download_s: f64,
    pub vad_s: f64,
    pub transcribe_s: f64,
    pub upload_s: f64,
    pub total_s: f64,
}

#[derive(Serialize)]
struct PreviewSegment<'a> {
    start: f64,
    end: f64,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    speaker: Option<&'a str>,
}

#[derive(Serialize)]
struct Preview<'a> {
    segments: Vec<PreviewSegment<'a>>,
    /// More segments than the preview holds.
    truncated: bool,
}

#[derive(Serialize)]
struct JobResult<'a> {
    language: &'a str,
    duration: f64,
    segments_count: usize,
    words_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifacts: Option<&'a BTreeMap<String, Artifact>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preview: Option<Preview<'a>>,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timings: Option<Timings>,
}

/// Round to milliseconds, as the subtitle formats do.
fn ms(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}

fn preview(segments: &[Segment]) -> Preview<'_> {
    Preview {
        segments: segments
            .iter()
            .take(PREVIEW_SEGMENTS)
            .map(|s| PreviewSegment {
                start: ms(s.start),
                end: ms(s.end),
                text: s.text.trim(),
                speaker: s.speaker.as_deref(),
            })
            .collect(),
        truncated: segments.len() > PREVIEW_SEGMENTS,
    }
}

/// The output of a finished job: the uploaded artifacts, or (no storage, or the upload failed)
/// the inline preview.
pub fn build_result(
    file: &FileTranscript,
    artifacts: Option<&BTreeMap<String, Artifact>>,
    warnings: Vec<String>,
    timings: Option<Timings>,
) -> Result<Value, String> {
    let t = &file.transcript;
    let result = JobResult {
        language: &t.language,
        duration: ms(file.duration),
        segments_count: t.segments.len(),
        words_count: t.segments.iter().map(|s| s.words.len()).sum(),
        artifacts,
        preview: artifacts.is_none().then(|| preview(&t.segments)),
        warnings,
        timings,
    };
    serde_json::to_value(result).map_err(|e| format!("cannot serialise the result: {e}"))
}
