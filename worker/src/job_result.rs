//! A job's output: `{language, duration, segments_count, words_count, artifacts?, preview?,
//! speakers?, warnings, timings?}`, as `schema/job-result.schema.json` describes it. Without object storage
//! the transcript travels inline as a bounded preview (the platform refuses large results); with
//! it, the artifacts' keys and presigned URLs (a failed upload falls back to the preview).

use serde::Serialize;
use serde_json::{Map, Value};

use scribe::output::Segment;
use scribe::pipeline::FileTranscript;

use std::collections::BTreeMap;

use crate::storage::Artifact;

/// Segments in an inline preview.
pub const PREVIEW_SEGMENTS: usize = 50;

/// Per-stage wall times, seconds (`debug: true`): the download, the pipeline's stages, the
/// upload and the whole job.
pub fn timings(download_s: f64, file: &FileTranscript, upload_s: f64, total_s: f64) -> Value {
    let round = |t: f64| (t * 1000.0).round() / 1000.0;
    let mut out = Map::new();
    out.insert("download_s".into(), round(download_s).into());
    out.extend(file.timings.to_json());
    out.insert("upload_s".into(), round(upload_s).into());
    out.insert("total_s".into(), round(total_s).into());
    Value::Object(out)
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
    /// Speaker verification's table.
    #[serde(skip_serializing_if = "Option::is_none")]
    speakers: Option<&'a [scribe::output::result::SpeakerIdentity]>,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timings: Option<Value>,
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
    timings: Option<Value>,
) -> Result<Value, String> {
    let t = &file.transcript;
    let result = JobResult {
        language: &t.language,
        duration: ms(file.duration),
        segments_count: t.segments.len(),
        words_count: t.segments.iter().map(|s| s.words.len()).sum(),
        artifacts,
        preview: artifacts.is_none().then(|| preview(&t.segments)),
        speakers: t.speakers.as_deref(),
        warnings,
        timings,
    };
    serde_json::to_value(result).map_err(|e| format!("cannot serialise the result: {e}"))
}
