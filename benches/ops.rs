//! The CPU's hot ops at the shapes the default models give them (`SCRIBE_PROFILE=1` on a
//! diarized transcription: the LSTMs, conv1d, the decoder's skinny products, conv2d and the
//! encoder's GEMMs take about 80 % of the time inside ops), each with its throughput in FLOP
//! (criterion's "elem/s" is FLOP/s): the baseline for int8/bf16 work, against this CPU's f32 peak
//! of about 115 GFLOP/s per core.
//!
//!     cargo bench --bench ops
//!
//! Random inputs and weights (the time does not depend on the values); no model needed.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use scribe::backend::{Conv1dParams, Conv2dParams, Device, Tensor};
use scribe::models::common::layers::round_conv_bfloat16;

/// Deterministic values in [-0.5, 0.5).
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| (((i + seed) * 2654435761usize) % 1000) as f32 / 1000.0 - 0.5).collect()
}

fn upload(dev: &Device, shape: &[usize], seed: usize) -> Tensor {
    dev.upload(&values(shape.iter().product(), seed), shape).unwrap()
}

fn upload_f16(dev: &Device, shape: &[usize], seed: usize) -> Tensor {
    let v: Vec<half::f16> = values(shape.iter().product(), seed).into_iter().map(half::f16::from_f32).collect();
    dev.upload_f16(&v, shape).unwrap()
}

fn config(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("ops");
    g.sample_size(10).warm_up_time(std::time::Duration::from_millis(500));
    g
}

/// One direction of one layer of the VAD's BiLSTM (pyannote segmentation, WhisperX's VAD and
/// segmentation-3.0 alike: hidden 128): a batch of 32 windows of 293 frames (5 s), input 60
/// (the first layer) and 256 (the others).
fn lstm(c: &mut Criterion) {
    let dev = Device::cpu();
    let mut g = config(c);
    let (b, t, h) = (32, 293, 128);
    for input in [60, 256] {
        let x = upload(&dev, &[b, t, input], 1);
        let w_ih = upload(&dev, &[4 * h, input], 2);
        let w_hh = upload(&dev, &[4 * h, h], 3);
        let (b_ih, b_hh) = (upload(&dev, &[4 * h], 4), upload(&dev, &[4 * h], 5));
        g.throughput(Throughput::Elements((2 * b * t * (input + h) * 4 * h) as u64));
        g.bench_function(format!("lstm B{b} T{t} in{input} H{h}"), |bench| {
            bench.iter(|| dev.lstm(&x, &w_ih, &w_hh, &b_ih, &b_hh, false).unwrap())
        });
        // `segmentation_compute_type=bfloat16`: both weights rounded (where the CPU has AVX-512 BF16).
        let (w_ih16, w_hh16) = (dev.round_bfloat16(&w_ih).unwrap(), dev.round_bfloat16(&w_hh).unwrap());
        g.bench_function(format!("lstm B{b} T{t} in{input} H{h} {}", w_hh16.dtype()), |bench| {
            bench.iter(|| dev.lstm(&x, &w_ih16, &w_hh16, &b_ih, &b_hh, false).unwrap())
        });
        // Its input projection alone (one GEMM for every step).
        let rows = x.reshape(&[b * t, input]).unwrap();
        g.throughput(Throughput::Elements((2 * b * t * input * 4 * h) as u64));
        // Where the rounding did not take (no AVX-512 BF16, or `SCRIBE_SIMD` below avx512), one row.
        let rounded = (w_ih16.dtype() != w_ih.dtype()).then_some(&w_ih16);
        for w in std::iter::once(&w_ih).chain(rounded) {
            g.bench_function(
                format!("linear lstm input [{}, {input}] x [{}, {input}] {}", b * t, 4 * h, w.dtype()),
                |bench| bench.iter(|| dev.linear(&rows, w, None).unwrap()),
            );
        }
    }
}

/// conv1d: SincNet's three convs on a VAD batch (32 windows of 5 s; the first is the sinc
/// filter bank, stride 10), and CAM++'s D-TDNN: a 1×1 bottleneck and a dilated k=3 conv over a
/// 15 s chunk (750 frames after the stride-2 TDNN).
fn conv1d(c: &mut Criterion) {
    let dev = Device::cpu();
    let mut g = config(c);
    // (name, batch, c_in, t_in, c_out, kernel, stride, dilation, padding)
    let cases = [
        ("sincnet filters", 32, 1, 80_000, 80, 251, 10, 1, 0),
        // The filter bank over the stretches of the VAD's batches (one pass a stretch): 32
        // windows 0.5 s apart (20.5 s), and every fifth window of the coarse pass (82.5 s).
        ("sincnet filters, 32 windows' stretch", 1, 1, 328_000, 80, 251, 10, 1, 0),
        ("sincnet filters, coarse stretch", 1, 1, 1_320_000, 80, 251, 10, 1, 0),
        // wav2vec2's first conv (one input channel, stride 5) over 10 s.
        ("wav2vec2 conv0", 1, 1, 160_000, 512, 10, 5, 1, 0),
        ("sincnet conv2", 32, 80, 2658, 60, 5, 1, 1, 0),
        ("sincnet conv3", 32, 60, 884, 60, 5, 1, 1, 0),
        ("cam++ 1x1", 1, 512, 750, 128, 1, 1, 1, 0),
        ("cam++ k3 d2", 1, 128, 750, 32, 3, 1, 2, 2),
    ];
    for (name, batch, c_in, t_in, c_out, kernel, stride, dilation, padding) in cases {
        let x = upload(&dev, &[batch, c_in, t_in], 1);
        let w = upload(&dev, &[c_out, c_in, kernel], 2);
        let bias = upload(&dev, &[c_out], 3);
        let p = Conv1dParams { stride, padding, dilation, groups: 1 };
        let t_out = (t_in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
        g.throughput(Throughput::Elements((2 * batch * c_out * t_out * c_in * kernel) as u64));
        g.bench_function(format!("conv1d {name} [{batch}, {c_in}, {t_in}] -> {c_out} k{kernel}"), |bench| {
            bench.iter(|| dev.conv1d(&x, &w, Some(&bias), p).unwrap())
        });
        // The weight in bf16 (`embedding_compute_type` default where the CPU has AVX-512 BF16).
        let wb = round_conv_bfloat16(&dev, &w).unwrap();
        g.bench_function(
            format!("conv1d {name} [{batch}, {c_in}, {t_in}] -> {c_out} k{kernel} {}", wb.dtype()),
            |bench| bench.iter(|| dev.conv1d(&x, &wb, Some(&bias), p).unwrap()),
        );
    }
}

/// conv2d: CAM++'s FCM residual blocks, 32 channels, 3×3, on 40 frequency bins × 1500 frames.
fn conv2d(c: &mut Criterion) {
    let dev = Device::cpu();
    let mut g = config(c);
    let (ch, f, t) = (32, 40, 1500);
    let x = upload(&dev, &[1, ch, f, t], 1);
    let w = upload(&dev, &[ch, ch, 3, 3], 2);
    let p = Conv2dParams { stride: (1, 1), padding: (1, 1), ..Default::default() };
    g.throughput(Throughput::Elements((2 * ch * ch * 9 * f * t) as u64));
    g.bench_function(format!("conv2d cam++ fcm [1, {ch}, {f}, {t}] 3x3"), |bench| {
        bench.iter(|| dev.conv2d(&x, &w, None, p).unwrap())
    });
    let wb = round_conv_bfloat16(&dev, &w).unwrap();
    g.bench_function(format!("conv2d cam++ fcm [1, {ch}, {f}, {t}] 3x3 {}", wb.dtype()), |bench| {
        bench.iter(|| dev.conv2d(&x, &wb, None, p).unwrap())
    });
    // The residual blocks' 1×1 shortcuts that halve the frequency bins (stride (2, 1)).
    let w1 = upload(&dev, &[ch, ch, 1, 1], 3);
    let p1 = Conv2dParams { stride: (2, 1), ..Default::default() };
    g.throughput(Throughput::Elements((2 * ch * ch * (f / 2) * t) as u64));
    let w1b = round_conv_bfloat16(&dev, &w1).unwrap();
    // One row where the rounding did not take.
    let rounded = (w1b.dtype() != w1.dtype()).then_some(w1b);
    for w1 in std::iter::once(w1.clone()).chain(rounded) {
        g.bench_function(
            format!("conv2d cam++ fcm shortcut [1, {ch}, {f}, {t}] 1x1 stride 2 {}", w1.dtype()),
            |bench| bench.iter(|| dev.conv2d(&x, &w1, None, p1).unwrap()),
        );
    }
}

/// tiny.en's products with its f16 weights, and in int8: the encoder's MLP GEMM (one 30 s window: 1500 rows)
/// and the decoder's skinny products for 5 beams (the MLP and the 51,864-token logits).
fn linear(c: &mut Criterion) {
    let dev = Device::cpu();
    let mut g = config(c);
    for (name, rows, d_in, d_out) in [
        ("encoder mlp", 1500, 384, 1536),
        ("decoder mlp, 5 beams", 5, 384, 1536),
        ("logits, 5 beams", 5, 384, 51_864),
        ("logits, 8 chunks x 5 beams", 40, 384, 51_864),
        ("logits, 7 chunks x 5 beams", 35, 384, 51_864),
        ("logits, 2 chunks x 5 beams", 10, 384, 51_864),
        ("logits, 3 chunks x 6 beams", 18, 384, 51_864),
        ("decoder projection, 8 chunks x 5 beams", 40, 384, 384),
        ("decoder mlp, 8 chunks x 5 beams", 40, 384, 1536),
        ("decoder projection, 7 chunks x 5 beams", 35, 384, 384),
        ("decoder mlp, 7 chunks x 5 beams", 35, 384, 1536),
        ("decoder mlp out, 7 chunks x 5 beams", 35, 1536, 384),
    ] {
        let x = upload(&dev, &[rows, d_in], 1);
        let w = upload_f16(&dev, &[d_out, d_in], 2);
        // `compute_type=int8`: the same weight quantised per channel (where the CPU has VNNI).
        let w8 = dev.quantize_int8(&w).unwrap();
        // `compute_type=default` (on CPUs with AVX-512 BF16) rounds the encoder's, `bfloat16` the
        // decoder's too.
        let wb = dev.round_bfloat16(&w).unwrap();
        g.throughput(Throughput::Elements((2 * rows * d_in * d_out) as u64));
        g.bench_function(format!("linear {name} [{rows}, {d_in}] x [{d_out}, {d_in}] f16"), |bench| {
            bench.iter(|| dev.linear(&x, &w, None).unwrap())
        });
        // The decoder's weights as it loads them: in column panels where the CPU has AVX-512, or
        // AVX2 with F16C.
        let wp = dev.pack_for_few_rows(&w).unwrap();
        if rows <= 64 && !std::sync::Arc::ptr_eq(wp.storage(), w.storage()) {
            g.bench_function(format!("linear {name} [{rows}, {d_in}] x [{d_out}, {d_in}] f16 panels"), |bench| {
                bench.iter(|| dev.linear(&x, &wp, None).unwrap())
            });
        }
        g.bench_function(format!("linear {name} [{rows}, {d_in}] x [{d_out}, {d_in}] {}", w8.dtype()), |bench| {
            bench.iter(|| dev.linear(&x, &w8, None).unwrap())
        });
        // (Unless neither took: then both are the f16 weight, benched once.)
        if rows > 5 && wb.dtype() != w8.dtype() {
            g.bench_function(format!("linear {name} [{rows}, {d_in}] x [{d_out}, {d_in}] {}", wb.dtype()), |bench| {
                bench.iter(|| dev.linear(&x, &wb, None).unwrap())
            });
        }
    }
}

/// tiny.en's encoder self-attention (6 heads of 64 over 1500 frames) for a batch of 8 chunks,
/// and a decoder step's cross-attention (5 beams of each of 8 chunks reading their chunk's
/// keys). FLOP: Q·Kᵀ and P·V.
fn attention(c: &mut Criterion) {
    // As the binaries run: the score blocks are reused, not mapped and faulted in each time.
    scribe::allocator::keep_large_blocks();
    let dev = Device::cpu();
    let mut g = config(c);
    let (b, t, d, heads) = (8, 1500, 384, 6);
    let (k, v) = (upload(&dev, &[b, t, d], 2), upload(&dev, &[b, t, d], 3));
    let q = upload(&dev, &[b, t, d], 1);
    g.throughput(Throughput::Elements((2 * 2 * b * t * t * d) as u64));
    g.bench_function(format!("attention [{b}, {t}, {d}] h{heads}"), |bench| {
        bench.iter(|| dev.attention(&q, &k, &v, heads, false).unwrap())
    });
    // `compute_type=default` on a CPU with AVX-512 BF16: both products on bf16 operands.
    g.bench_function(format!("attention [{b}, {t}, {d}] h{heads} bf16"), |bench| {
        bench.iter(|| dev.attention_bf16(&q, &k, &v, heads, false).unwrap())
    });
    let beams = 5;
    let q = upload(&dev, &[b * beams, 1, d], 4);
    g.throughput(Throughput::Elements((2 * 2 * b * beams * t * d) as u64));
    g.bench_function(format!("attention step [{}, 1, {d}] over [{b}, {t}, {d}] h{heads}", b * beams), |bench| {
        bench.iter(|| dev.attention(&q, &k, &v, heads, false).unwrap())
    });
    // The same step over keys and values kept in f16 (every compute type but float32).
    let (k16, v16) = (dev.to_float16(&k).unwrap(), dev.to_float16(&v).unwrap());
    g.bench_function(
        format!("attention step [{}, 1, {d}] over [{b}, {t}, {d}] h{heads} f16 k/v", b * beams),
        |bench| bench.iter(|| dev.attention(&q, &k16, &v16, heads, false).unwrap()),
    );
    // A whole step's cross-attention as the batched long file decodes it: tiny.en's 4 layers,
    // each over its own keys and values of 7 chunks (64 MB in f16, twice the L3 of this CPU:
    // read from memory every step, unlike the row above, whose 18 MB stay cached).
    let (chunks, layers) = (7, 4);
    let layer_kv: Vec<_> = (0..layers)
        .map(|l| {
            let k = upload(&dev, &[chunks, t, d], 10 + 2 * l);
            let v = upload(&dev, &[chunks, t, d], 11 + 2 * l);
            (dev.to_float16(&k).unwrap(), dev.to_float16(&v).unwrap())
        })
        .collect();
    let q = upload(&dev, &[chunks * beams, 1, d], 4);
    g.throughput(Throughput::Elements((layers * 2 * 2 * chunks * beams * t * d) as u64));
    g.bench_function(
        format!(
            "attention step, {layers} layers [{}, 1, {d}] over [{chunks}, {t}, {d}] h{heads} f16 k/v",
            chunks * beams
        ),
        |bench| {
            bench.iter(|| {
                for (k, v) in &layer_kv {
                    dev.attention(&q, k, v, heads, false).unwrap();
                }
            })
        },
    );
}

/// A decoder step's token choice over 8 chunks × 5 beams of Whisper's logits: masked
/// log-softmax, argmax and top 6 per row, without (batched, no timestamps) and with (sequential)
/// the timestamp rule's dominance test. Elements: logits read.
fn choose_tokens(c: &mut Criterion) {
    use scribe::backend::token_choice::RowMask;
    let dev = Device::cpu();
    let mut g = config(c);
    let (rows, vocab, k) = (40, 51864, 6);
    // Logits spread as a model's are (a few ids far above the rest), not all within one.
    let logits: Vec<f32> =
        values(rows * vocab, 5).iter().enumerate().map(|(i, v)| v * 20.0 + (i % 97) as f32 * 0.1).collect();
    let logits = dev.upload(&logits, &[rows, vocab]).unwrap();
    let suppress =
        RowMask { ids: (0..90).map(|i| i * 500).collect(), ranges: vec![(50257, 50363)], dominance_split: None };
    g.throughput(Throughput::Elements((rows * vocab) as u64));
    for (name, split) in [("", None), (" timestamps", Some(50364))] {
        let masks = vec![RowMask { dominance_split: split, ..suppress.clone() }; rows];
        g.bench_function(format!("choose_tokens [{rows}, {vocab}] top {k}{name}"), |bench| {
            bench.iter(|| dev.choose_tokens(&logits, &masks, k, None).unwrap())
        });
    }
}

criterion_group!(benches, lstm, conv1d, conv2d, linear, attention, choose_tokens);
criterion_main!(benches);
