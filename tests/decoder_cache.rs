//! The decoder's self-attention cache under a beam search's reorderings: `DecoderState::reorder`
//! only records the sources and the next step gathers the rows as it appends to them
//! (`gather_append`), `retain_audios` applies a pending reordering itself. Whatever the
//! sequence of reorders and retains, the next step's logits must be those of a fresh state fed
//! each surviving row's whole history (tiny.en, on jfk.flac).

mod common;

use common::{model_dir, speech};
use scribe::audio::{load_audio, log_mel_window};
use scribe::models::whisper::decoder::LogitPositions;
use scribe::models::whisper::{Task, Whisper};

/// Incremental steps against one pass over the whole history: other kernels, other sums.
const ATOL: f32 = 2e-3;

struct Fixture {
    model: Whisper,
    /// `[1, 1500, 384]` encoder output of jfk.flac's 11 s.
    features: scribe::backend::Tensor,
    sot: Vec<u32>,
}

fn fixture() -> Option<Fixture> {
    let dir = model_dir("tiny.en")?;
    let model = Whisper::load(&dir, scribe::backend::Device::cpu()).unwrap();
    let audio = load_audio(&speech("jfk.flac")).unwrap();
    let mel = log_mel_window(&audio[..audio.len().min(480_000)], model.config.num_mel_bins).unwrap();
    let features = model.encode(&mel.data, 1).unwrap();
    let sot = model.tokenizer.sot_sequence(Some("en"), Task::Transcribe).unwrap();
    Some(Fixture { model, features, sot })
}

/// The last position's logits of a fresh state (one audio per `features` row, `group` rows
/// each) fed `histories` whole.
fn fresh(f: &Fixture, features: &scribe::backend::Tensor, group: usize, histories: &[Vec<u32>]) -> Vec<f32> {
    let dev = &f.model.device;
    let mut state = f.model.decoder.start(dev, features, group).unwrap();
    let logits = f.model.decoder.forward(dev, histories, &mut state, LogitPositions::Last).unwrap();
    dev.download(&logits).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Three rows that differ (" And", " So", " Ask"), two reorders before the next step: row `i`
/// continues the history of `first[second[i]]`, not of `second[first[i]]`.
#[test]
fn two_reorders_before_a_step_compose() {
    let Some(f) = fixture() else { return };
    let (dev, tok) = (&f.model.device, &f.model.tokenizer);
    let words: Vec<u32> = [" And", " So", " Ask"].iter().map(|w| tok.encode(w).unwrap()[0]).collect();
    let rows: Vec<Vec<u32>> = words.iter().map(|&w| [f.sot.clone(), vec![w]].concat()).collect();
    let mut state = f.model.decoder.start(dev, &f.features, 3).unwrap();
    f.model.decoder.forward(dev, &rows, &mut state, LogitPositions::Last).unwrap();
    let (first, second) = ([2usize, 0, 2], [1usize, 1, 0]);
    state.reorder(&first).unwrap();
    state.reorder(&second).unwrap();
    let next = tok.encode(" my").unwrap()[0];
    let got = dev
        .download(&f.model.decoder.forward(dev, &vec![vec![next]; 3], &mut state, LogitPositions::Last).unwrap())
        .unwrap();
    let history = |order: [usize; 3]| -> Vec<Vec<u32>> {
        order.iter().map(|&r| [rows[r].clone(), vec![next]].concat()).collect()
    };
    let want = fresh(&f, &f.features, 3, &history([first[second[0]], first[second[1]], first[second[2]]]));
    let d = max_abs_diff(&got, &want);
    assert!(d <= ATOL, "logits after two reorders differ from the rows' histories by {d}");
    // The test can tell: the other order of composition gives other rows.
    let wrong = fresh(&f, &f.features, 3, &history([second[first[0]], second[first[1]], second[first[2]]]));
    assert!(max_abs_diff(&got, &wrong) > 100.0 * ATOL, "the two orders of composition are indistinguishable");
}

/// Two audios of two rows: a reorder, then the first audio retired, then a step; the survivor's
/// rows are its reordered histories.
#[test]
fn a_retain_after_a_reorder_keeps_the_reordered_rows() {
    let Some(f) = fixture() else { return };
    let (dev, tok) = (&f.model.device, &f.model.tokenizer);
    let two = dev.concat(&[&f.features, &f.features], 0).unwrap();
    let words: Vec<u32> = [" And", " So", " Ask", " We"].iter().map(|w| tok.encode(w).unwrap()[0]).collect();
    let rows: Vec<Vec<u32>> = words.iter().map(|&w| [f.sot.clone(), vec![w]].concat()).collect();
    let mut state = f.model.decoder.start(dev, &two, 2).unwrap();
    f.model.decoder.forward(dev, &rows, &mut state, LogitPositions::Last).unwrap();
    // Within each audio: audio 0 keeps [1, 1], audio 1 swaps its rows.
    state.reorder(&[1, 1, 3, 2]).unwrap();
    state.retain_audios(dev, &[false, true]).unwrap();
    let next = tok.encode(" my").unwrap()[0];
    let got = dev
        .download(&f.model.decoder.forward(dev, &vec![vec![next]; 2], &mut state, LogitPositions::Last).unwrap())
        .unwrap();
    let history: Vec<Vec<u32>> = [3usize, 2].iter().map(|&r| [rows[r].clone(), vec![next]].concat()).collect();
    let want = fresh(&f, &f.features, 2, &history);
    let d = max_abs_diff(&got, &want);
    assert!(d <= ATOL, "logits after a reorder and a retain differ from the rows' histories by {d}");
    let unswapped: Vec<Vec<u32>> = [2usize, 3].iter().map(|&r| [rows[r].clone(), vec![next]].concat()).collect();
    assert!(max_abs_diff(&got, &fresh(&f, &f.features, 2, &unswapped)) > 100.0 * ATOL, "the swap is invisible");
}
