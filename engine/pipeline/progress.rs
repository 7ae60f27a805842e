//! What a run reports as it goes: one [`Progress`] type for every stage (the CLI's progress bar,
//! the worker's progress updates) and one [`Timings`] type (`debug: true`, the CLI's log).

use serde::Serialize;

/// The stages of a run, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Decoding the file into the audio store.
    Audio,
    VoiceActivity,
    Transcription,
    WordTimes,
    Diarization,
    SpeakerNames,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Audio => "audio",
            Stage::VoiceActivity => "voice_activity",
            Stage::Transcription => "transcription",
            Stage::WordTimes => "word_times",
            Stage::Diarization => "diarization",
            Stage::SpeakerNames => "speaker_names",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What `done` and `total` count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Seconds of audio.
    Seconds,
    /// Speech chunks (batched transcription; tails decoded again add to the total).
    Chunks,
    /// Transcript segments (word alignment).
    Segments,
    /// Speaker samples enrolled (speaker names).
    Samples,
}

/// Where a stage is: `done` of `total` (`total` 0: not known yet).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub stage: Stage,
    pub done: f64,
    pub total: f64,
    pub unit: Unit,
}

impl Progress {
    /// Whole percent done, 0 while the total is unknown.
    pub fn percent(&self) -> u32 {
        if self.total > 0.0 {
            ((self.done / self.total).clamp(0.0, 1.0) * 100.0).floor() as u32
        } else {
            0
        }
    }
}

/// Wall time of each stage that ran, in order, seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timings {
    pub stages: Vec<(Stage, f64)>,
}

impl Timings {
    pub fn add(&mut self, stage: Stage, seconds: f64) {
        self.stages.push((stage, seconds));
    }

    /// Seconds spent in `stage` (0 when it did not run).
    pub fn of(&self, stage: Stage) -> f64 {
        self.stages.iter().filter(|(s, _)| *s == stage).map(|(_, t)| t).sum()
    }

    pub fn total(&self) -> f64 {
        self.stages.iter().map(|(_, t)| t).sum()
    }

    /// `{"audio_s": …, "voice_activity_s": …, …}` for results and logs.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let round = |t: f64| (t * 1000.0).round() / 1000.0;
        self.stages.iter().map(|(s, t)| (format!("{}_s", s.name()), serde_json::json!(round(*t)))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_whole_and_bounded_and_timings_name_their_stages() {
        let p = |done, total| Progress { stage: Stage::Transcription, done, total, unit: Unit::Chunks };
        assert_eq!(p(1.0, 3.0).percent(), 33);
        assert_eq!(p(5.0, 3.0).percent(), 100);
        assert_eq!(p(1.0, 0.0).percent(), 0);
        let mut t = Timings::default();
        t.add(Stage::Audio, 0.5);
        t.add(Stage::VoiceActivity, 1.25);
        assert_eq!(t.of(Stage::VoiceActivity), 1.25);
        assert_eq!(t.total(), 1.75);
        assert_eq!(
            serde_json::Value::Object(t.to_json()),
            serde_json::json!({"audio_s": 0.5, "voice_activity_s": 1.25})
        );
    }
}
