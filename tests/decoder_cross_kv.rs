//! The decoder's cross-attention keys and values kept in f16 (`Decoder::keep_cross_kv_float16`,
//! every compute type but float32): each window's keys and values are rounded once, the steps
//! read them at half the bytes. The logits stay those of f32 keys and values within the
//! rounding's reach and choose the same tokens; retiring an audio keeps the survivor's rows in
//! f16; the word-timing path (cross-attention scores of chosen heads) reads them too
//! (tiny.en, on jfk.flac).

mod common;

use common::{model_dir, speech};
use scribe::audio::{load_audio, log_mel_window};
use scribe::backend::{Device, Tensor};
use scribe::models::whisper::decoder::LogitPositions;
use scribe::models::whisper::{Task, Whisper};

/// How far f16 keys and values may move a logit or a score: a rounding of 2⁻¹¹ relative on each
/// key and value, through four layers (the logits are about ±20; measured: 0.002 for the logits,
/// 0.004 for the scores).
const F16_ATOL: f32 = 0.01;
/// The survivor of two audios against its state alone: the same rows through other batch
/// sizes and a prompt pass split in two (other schedules, other sums).
const SAME_ATOL: f32 = 2e-3;

struct Fixture {
    model: Whisper,
    /// `[1, 1500, 384]` encoder output of jfk.flac's 11 s.
    features: Tensor,
    /// The start of the transcript: " And so my fellow Americans".
    tokens: Vec<u32>,
}

fn fixture() -> Option<Fixture> {
    let dir = model_dir("tiny.en")?;
    let model = Whisper::load(&dir, Device::cpu()).unwrap();
    let audio = load_audio(&speech("jfk.flac")).unwrap();
    let mel = log_mel_window(&audio[..audio.len().min(480_000)], model.config.num_mel_bins).unwrap();
    let features = model.encode(&mel.data, 1).unwrap();
    let sot = model.tokenizer.sot_sequence(Some("en"), Task::Transcribe).unwrap();
    let text = model.tokenizer.encode(" And so my fellow Americans").unwrap();
    Some(Fixture { model, features, tokens: [sot, text].concat() })
}

/// Every position's logits of `rows` fed to a fresh state over `features` (`group` rows an audio).
fn logits(model: &Whisper, features: &Tensor, group: usize, rows: &[Vec<u32>]) -> Vec<f32> {
    let dev = &model.device;
    let mut state = model.decoder.start(dev, features, group).unwrap();
    let out = model.decoder.forward(dev, rows, &mut state, LogitPositions::All).unwrap();
    dev.download(&out).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn argmax_rows(x: &[f32], width: usize) -> Vec<usize> {
    x.chunks_exact(width)
        .map(|r| r.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0)
        .collect()
}

#[test]
fn half_precision_cross_attention_keeps_the_logits_and_the_tokens() {
    let Some(mut f) = fixture() else { return };
    let vocab = f.model.config.vocab_size;
    let rows = vec![f.tokens.clone()];
    assert_eq!(f.model.cross_kv_dtype(), "float32");
    let full = logits(&f.model, &f.features, 1, &rows);
    f.model.decoder.keep_cross_kv_float16(true);
    assert_eq!(f.model.cross_kv_dtype(), "float16");
    let half = logits(&f.model, &f.features, 1, &rows);
    let d = max_abs_diff(&full, &half);
    assert!(d <= F16_ATOL, "f16 keys and values moved a logit by {d}");
    // The rounding took: the logits are not the f32 ones.
    assert!(d > 0.0, "f16 keys and values gave the f32 logits bit for bit");
    assert_eq!(argmax_rows(&full, vocab), argmax_rows(&half, vocab), "another token chosen");
}

/// Two audios, the first retired: the survivor's f16 rows give its logits alone.
#[test]
fn retiring_an_audio_keeps_the_survivors_half_precision_rows() {
    let Some(mut f) = fixture() else { return };
    f.model.decoder.keep_cross_kv_float16(true);
    let dev = f.model.device.clone();
    // A second audio: the same features scaled, so the two rows differ.
    let other = dev.scale(&f.features, 0.5).unwrap();
    let two = dev.concat(&[&other, &f.features], 0).unwrap();
    let (prefix, last) = f.tokens.split_at(f.tokens.len() - 1);
    let mut state = f.model.decoder.start(&dev, &two, 1).unwrap();
    f.model.decoder.forward(&dev, &[prefix.to_vec(), prefix.to_vec()], &mut state, LogitPositions::Last).unwrap();
    state.retain_audios(&dev, &[false, true]).unwrap();
    assert_eq!(state.cross_kv_dtype(), "float16", "retiring an audio widened the survivor's rows");
    let got = dev
        .download(&f.model.decoder.forward(&dev, &[last.to_vec()], &mut state, LogitPositions::Last).unwrap())
        .unwrap();
    let vocab = f.model.config.vocab_size;
    let alone = logits(&f.model, &f.features, 1, &[f.tokens.clone()]);
    let want = &alone[alone.len() - vocab..];
    let d = max_abs_diff(&got, want);
    assert!(d <= SAME_ATOL, "the survivor's logits differ from its own by {d}");
    let scaled = logits(&f.model, &other, 1, &[f.tokens.clone()]);
    assert!(
        max_abs_diff(&got, &scaled[scaled.len() - vocab..]) > 100.0 * SAME_ATOL,
        "the retired audio's rows were kept"
    );
}

/// The word-timing path's cross-attention scores read f16 keys as their widened values.
#[test]
fn captured_cross_attention_scores_read_half_precision_keys() {
    let Some(mut f) = fixture() else { return };
    let heads = f.model.alignment_heads();
    let capture = |model: &Whisper| {
        let dev = &model.device;
        let mut state = model.decoder.start(dev, &f.features, 1).unwrap();
        let mut captured: Vec<((usize, usize), Vec<f32>)> = heads.iter().map(|&h| (h, Vec::new())).collect();
        model
            .decoder
            .forward_capturing(dev, &[f.tokens.clone()], &mut state, LogitPositions::Last, &mut captured)
            .unwrap();
        captured.into_iter().flat_map(|(_, v)| v).collect::<Vec<f32>>()
    };
    let full = capture(&f.model);
    f.model.decoder.keep_cross_kv_float16(true);
    let half = capture(&f.model);
    assert_eq!(full.len(), heads.len() * f.tokens.len() * f.features.dim(1));
    let d = max_abs_diff(&full, &half);
    assert!(d <= F16_ATOL && d > 0.0, "f16 keys moved a captured score by {d}");
}
