//! SincNet, PyanNet's learned front end (pyannote.audio `models/blocks/sincnet.py`): an instance
//! norm of the waveform, then three conv → max-pool → instance norm → leaky ReLU stages. The
//! first conv is asteroid's parametric sinc filterbank (`ParamSincFB`): 40 band-pass filters
//! whose low and band frequencies are the learned parameters, each as a cosine (even) and a
//! sine (odd) filter — 80 filters of 251 taps, computed once at load time.

use rayon::prelude::*;

use crate::backend::{Activation, Conv1dParams, Device, Tensor};
use crate::error::{Error, Result};
use crate::models::common::layers::load;
use crate::models::common::statistics::mean_and_variance;
use crate::weights::WeightStore;

use super::receptive_field::{sincnet_layers, Layer};

/// `ParamSincFB(80, 251, …)`: filters (cos + sin halves) and taps.
pub const SINC_FILTERS: usize = 80;
pub const SINC_KERNEL_SIZE: usize = 251;
/// asteroid `ParamSincFB` `min_low_hz` / `min_band_hz` as pyannote builds it.
pub const MIN_LOW_HZ: f32 = 50.0;
pub const MIN_BAND_HZ: f32 = 50.0;
/// Channels of the two plain conv stages and their kernel (`nn.Conv1d(80, 60, 5)`, `(60, 60, 5)`).
pub const CONV_CHANNELS: usize = 60;
pub const CONV_KERNEL_SIZE: usize = 5;
/// `nn.MaxPool1d(3, stride=3)` after every conv.
pub const POOL_SIZE: usize = 3;
/// `nn.InstanceNorm1d`'s default epsilon.
pub const INSTANCE_NORM_EPS: f32 = 1e-5;
/// `F.leaky_relu`'s default negative slope.
pub const LEAKY_RELU_SLOPE: f32 = 0.01;

/// The 80 sinc filters `[80, 1, 251]` from the checkpoint's parameters (asteroid
/// `ParamSincFB.filters`): `low_hz_` and `band_hz_` `[40, 1]`, and the buffers `n_` `[1, 125]`
/// (`2π·t/sr` for the left half) and `window_` `[125]` (the left half of a Hamming window).
/// Computed in f32 in the reference's order of operations, so the taps match PyTorch's.
pub fn sinc_filters(low_hz: &[f32], band_hz: &[f32], n: &[f32], window: &[f32], sample_rate: f32) -> Vec<f32> {
    let half = n.len();
    let kernel = 2 * half + 1;
    let mut cos_filters = Vec::with_capacity(low_hz.len() * kernel);
    let mut sin_filters = Vec::with_capacity(low_hz.len() * kernel);
    for (&l, &b) in low_hz.iter().zip(band_hz) {
        let low = MIN_LOW_HZ + l.abs();
        let high = (low + MIN_BAND_HZ + b.abs()).clamp(MIN_LOW_HZ, sample_rate / 2.0);
        let band = high - low;
        let scale = 2.0 * band;
        let cos_left: Vec<f32> =
            (0..half).map(|i| (((high * n[i]).sin() - (low * n[i]).sin()) / (n[i] / 2.0)) * window[i]).collect();
        let sin_left: Vec<f32> =
            (0..half).map(|i| (((low * n[i]).cos() - (high * n[i]).cos()) / (n[i] / 2.0)) * window[i]).collect();
        // cat([left, centre, flip(left)]) for the even filter, cat([left, 0, −flip(left)]) for the odd.
        cos_filters.extend(cos_left.iter().map(|v| v / scale));
        cos_filters.push(2.0 * band / scale);
        cos_filters.extend(cos_left.iter().rev().map(|v| v / scale));
        sin_filters.extend(sin_left.iter().map(|v| v / scale));
        sin_filters.push(0.0 / scale);
        sin_filters.extend(sin_left.iter().rev().map(|v| -v / scale));
    }
    cos_filters.extend(sin_filters);
    cos_filters
}

/// An affine instance norm's `weight` and `bias`.
struct InstanceNorm {
    weight: Tensor,
    bias: Tensor,
}

impl InstanceNorm {
    fn load(dev: &Device, store: &dyn WeightStore, prefix: &str, channels: usize) -> Result<Self> {
        Ok(InstanceNorm {
            weight: load(dev, store, &format!("{prefix}.weight"), &[channels])?,
            bias: load(dev, store, &format!("{prefix}.bias"), &[channels])?,
        })
    }

    fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        dev.instance_norm(x, Some(&self.weight), Some(&self.bias), INSTANCE_NORM_EPS)
    }
}

pub struct SincNet {
    stride: usize,
    wav_norm: InstanceNorm,
    /// The waveform norm's `weight` and `bias` (one channel) on the host, for
    /// [`SincNet::forward_windows`].
    wav_affine: (f64, f64),
    /// `[80, 1, 251]`.
    filters: Tensor,
    /// Each filter's taps summed: what the filter bank makes of a constant 1.
    filter_sums: Vec<f64>,
    /// `conv1d.1` and `conv1d.2`: weight `[60, C_in, 5]`, bias `[60]`.
    convs: Vec<(Tensor, Tensor)>,
    /// `norm1d.0..2`.
    norms: Vec<InstanceNorm>,
}

impl SincNet {
    pub fn load(
        dev: &Device,
        store: &dyn WeightStore,
        prefix: &str,
        stride: usize,
        sample_rate: usize,
    ) -> Result<Self> {
        if stride == 0 {
            return Err(Error::format(store.path(), "sincnet stride is 0"));
        }
        let pairs = SINC_FILTERS / 2;
        let half = SINC_KERNEL_SIZE / 2;
        let fb = format!("{prefix}.conv1d.0.filterbank");
        let low = store.f32(&format!("{fb}.low_hz_"), &[pairs, 1])?;
        let band = store.f32(&format!("{fb}.band_hz_"), &[pairs, 1])?;
        let n = store.f32(&format!("{fb}.n_"), &[1, half])?;
        let window = store.f32(&format!("{fb}.window_"), &[half])?;
        let taps = sinc_filters(&low, &band, &n, &window, sample_rate as f32);
        let filters = dev.upload(&taps, &[SINC_FILTERS, 1, SINC_KERNEL_SIZE])?;
        let filter_sums = taps.chunks_exact(SINC_KERNEL_SIZE).map(|f| f.iter().map(|&v| v as f64).sum()).collect();
        let affine =
            |name: &str| -> Result<f64> { Ok(store.f32(&format!("{prefix}.wav_norm1d.{name}"), &[1])?[0] as f64) };
        let wav_affine = (affine("weight")?, affine("bias")?);
        let mut convs = Vec::new();
        for (i, c_in) in [(1, SINC_FILTERS), (2, CONV_CHANNELS)] {
            let p = format!("{prefix}.conv1d.{i}");
            convs.push((
                load(dev, store, &format!("{p}.weight"), &[CONV_CHANNELS, c_in, CONV_KERNEL_SIZE])?,
                load(dev, store, &format!("{p}.bias"), &[CONV_CHANNELS])?,
            ));
        }
        let norms = [SINC_FILTERS, CONV_CHANNELS, CONV_CHANNELS]
            .iter()
            .enumerate()
            .map(|(i, &c)| InstanceNorm::load(dev, store, &format!("{prefix}.norm1d.{i}"), c))
            .collect::<Result<Vec<_>>>()?;
        Ok(SincNet {
            stride,
            wav_norm: InstanceNorm::load(dev, store, &format!("{prefix}.wav_norm1d"), 1)?,
            wav_affine,
            filters,
            filter_sums,
            convs,
            norms,
        })
    }

    /// The conv / pool stack, for frame arithmetic.
    pub fn layers(&self) -> [Layer; 6] {
        sincnet_layers(self.stride)
    }

    /// `waveforms[B, 1, T]` → features `[B, 60, frames]`.
    pub fn forward(&self, dev: &Device, waveforms: &Tensor) -> Result<Tensor> {
        self.stages_after_pool(dev, self.pooled_alone(dev, waveforms)?)
    }

    /// The sinc stage's pooled magnitudes `[B, 80, T'/3]` of `waveforms[B, 1, T]`, each
    /// normalised and filtered alone. The sinc stage takes |·| before pooling (pyannote:
    /// mravanelli/SincNet#4).
    fn pooled_alone(&self, dev: &Device, waveforms: &Tensor) -> Result<Tensor> {
        let x = self.wav_norm.forward(dev, waveforms)?;
        let sinc = Conv1dParams { stride: self.stride, ..Default::default() };
        let filtered = dev.activation(&dev.conv1d(&x, &self.filters, None, sinc)?, Activation::Abs)?;
        dev.max_pool1d(&filtered, POOL_SIZE, POOL_SIZE)
    }

    /// The features of `count` windows of `window` samples, `hop` apart, from `stretch` (zero
    /// beyond its end): what [`SincNet::forward`] gives for those windows stacked, with the
    /// filter bank run once over the stretch instead of once a window (pyannote's sliding
    /// windows overlap ten times). The waveform's instance norm is an affine map per window
    /// (`a·x + b`, `a = γ/√(var + ε)`, `b = β − a·mean`), so it moves past the linear,
    /// bias-free filter bank: `conv(a·x + b) = a·conv(x) + b·Σ taps`, each window's share of
    /// the stretch's filter output scaled and shifted by its own statistics
    /// ([`Device::windows_abs_max_pool`], which also takes the sinc stage's `|·|` and first pool
    /// in the same pass). Where `hop` is not a whole number of filter strides the
    /// windows' outputs do not line up with the stretch's, and each window is filtered alone.
    pub fn forward_windows(
        &self,
        dev: &Device,
        stretch: &[f32],
        count: usize,
        hop: usize,
        window: usize,
    ) -> Result<Tensor> {
        if count < 2 || !hop.is_multiple_of(self.stride) || window < SINC_KERNEL_SIZE {
            let samples = padded_span(stretch, count, hop, window);
            let mut batch = vec![0.0f32; count * window];
            for (w, out) in batch.chunks_exact_mut(window.max(1)).enumerate() {
                out.copy_from_slice(&samples[w * hop..w * hop + window]);
            }
            return self.forward(dev, &dev.upload(&batch, &[count, 1, window])?);
        }
        self.stages_after_pool(dev, self.pooled_windows(dev, stretch, count, hop, window)?)
    }

    /// [`SincNet::forward_windows`] of several spans of windows in one batch: span `s` is
    /// `spans[s].count` windows `hop` apart from the stretch `spans[s].stretch`, of which the
    /// batch takes those at `spans[s].keep` (in order). Each span's filter bank runs once over
    /// its stretch, so windows a few hops apart share it even where the ones between them are
    /// not wanted (those are pooled and dropped: the conv over their samples is computed
    /// anyway, and pooling costs little next to the layers after it).
    pub fn forward_window_spans(
        &self,
        dev: &Device,
        spans: &[WindowSpan],
        hop: usize,
        window: usize,
    ) -> Result<Tensor> {
        let mut pooled = Vec::with_capacity(spans.len());
        for span in spans {
            let samples = padded_span(span.stretch, span.count, hop, window);
            if span.count > 1 && hop.is_multiple_of(self.stride) && window >= SINC_KERNEL_SIZE {
                let all = self.pooled_windows(dev, &samples, span.count, hop, window)?;
                let every = span.keep.len() == span.count && span.keep.iter().enumerate().all(|(i, &k)| i == k);
                pooled.push(if every { all } else { dev.index_select(&all, &span.keep)? });
            } else {
                // As `forward_windows` takes them: each window filtered alone.
                for &w in &span.keep {
                    let x = dev.upload(&samples[w * hop..w * hop + window], &[1, 1, window])?;
                    pooled.push(self.pooled_alone(dev, &x)?);
                }
            }
        }
        let pooled = match pooled.len() {
            1 => pooled.pop().expect("one span"),
            _ => dev.concat(&pooled.iter().collect::<Vec<_>>(), 0)?,
        };
        self.stages_after_pool(dev, pooled)
    }

    /// The sinc stage's pooled magnitudes `[count, 80, frames]` of `count` windows, `hop` apart
    /// (a whole number of filter strides when `count > 1`), from `stretch` (zero beyond its
    /// end): the filter bank over the stretch, then each window's instance norm as an affine map
    /// on its share.
    fn pooled_windows(&self, dev: &Device, stretch: &[f32], count: usize, hop: usize, window: usize) -> Result<Tensor> {
        let samples = padded_span(stretch, count, hop, window);
        let span = samples.len();
        let (gamma, beta) = self.wav_affine;
        let per_window: Vec<(f32, Vec<f32>)> = (0..count)
            .into_par_iter()
            .map(|w| {
                // The statistics as the instance norm computes them (f64, biased variance).
                let (mean, var) = mean_and_variance(&samples[w * hop..w * hop + window]);
                let a = gamma / (var + INSTANCE_NORM_EPS as f64).sqrt();
                let b = beta - a * mean;
                (a as f32, self.filter_sums.iter().map(|&s| (b * s) as f32).collect())
            })
            .collect();
        let scale: Vec<f32> = per_window.iter().map(|(a, _)| *a).collect();
        let shift: Vec<f32> = per_window.into_iter().flat_map(|(_, s)| s).collect();
        let sinc = Conv1dParams { stride: self.stride, ..Default::default() };
        let filtered = dev.conv1d(&dev.upload(&samples, &[1, 1, span])?, &self.filters, None, sinc)?;
        let filtered = filtered.reshape(&[SINC_FILTERS, filtered.dim(2)])?;
        let frames = (window - SINC_KERNEL_SIZE) / self.stride + 1;
        dev.windows_abs_max_pool(
            &filtered,
            hop / self.stride,
            frames,
            &dev.upload(&scale, &[count])?,
            &dev.upload(&shift, &[count, SINC_FILTERS])?,
            POOL_SIZE,
        )
    }

    /// From the sinc stage's pooled magnitudes `[B, 80, T'/3]` on.
    fn stages_after_pool(&self, dev: &Device, pooled: Tensor) -> Result<Tensor> {
        let mut x = pooled;
        for stage in 0..3 {
            if stage > 0 {
                let (w, b) = &self.convs[stage - 1];
                x = dev.conv1d(&x, w, Some(b), Conv1dParams::default())?;
                x = dev.max_pool1d(&x, POOL_SIZE, POOL_SIZE)?;
            }
            x = self.norms[stage].forward(dev, &x)?;
            x = dev.activation(&x, Activation::LeakyRelu(LEAKY_RELU_SLOPE))?;
        }
        Ok(x)
    }
}

/// Windows `hop` apart over a stretch of samples, of which a batch takes some
/// ([`SincNet::forward_window_spans`]).
pub struct WindowSpan<'a> {
    /// Samples from the first window's start (zero past the end).
    pub stretch: &'a [f32],
    /// Windows in the span.
    pub count: usize,
    /// The windows wanted, by place in the span, ascending.
    pub keep: Vec<usize>,
}

/// The samples `count` windows of `window`, `hop` apart, read from `stretch`: its first
/// `(count − 1)·hop + window`, zero-padded past its end.
fn padded_span(stretch: &[f32], count: usize, hop: usize, window: usize) -> Vec<f32> {
    let span = count.saturating_sub(1) * hop + window;
    let mut samples = stretch[..span.min(stretch.len())].to_vec();
    samples.resize(span, 0.0);
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    /// asteroid's initialisation (mel-spaced bands) with its buffers, in f64 for the check.
    fn buffers() -> (Vec<f32>, Vec<f32>) {
        let half = SINC_KERNEL_SIZE / 2;
        let n: Vec<f32> =
            (0..half).map(|i| (2.0 * std::f64::consts::PI * (i as f64 - half as f64) / 16000.0) as f32).collect();
        let m = SINC_KERNEL_SIZE as f64 - 1.0;
        let window: Vec<f32> =
            (0..half).map(|i| (0.54 - 0.46 * (2.0 * std::f64::consts::PI * i as f64 / m).cos()) as f32).collect();
        (n, window)
    }

    #[test]
    fn cosine_filters_are_symmetric_sine_filters_antisymmetric_and_centres_are_one_and_zero() {
        let (n, window) = buffers();
        let low = [100.0f32, 1000.0, -300.0];
        let band = [200.0f32, 50.0, 10_000.0];
        let taps = sinc_filters(&low, &band, &n, &window, 16000.0);
        let k = SINC_KERNEL_SIZE;
        assert_eq!(taps.len(), 2 * low.len() * k);
        for f in 0..2 * low.len() {
            let row = &taps[f * k..(f + 1) * k];
            let odd = f >= low.len();
            for i in 0..k / 2 {
                let mirrored = if odd { -row[k - 1 - i] } else { row[k - 1 - i] };
                assert_eq!(row[i], mirrored, "filter {f} tap {i}");
            }
            // Centre tap: 2·band / (2·band) = 1 for the even filters, 0 for the odd ones.
            assert_eq!(row[k / 2], if odd { 0.0 } else { 1.0 });
        }
    }

    #[test]
    fn the_band_is_clamped_to_nyquist_and_frequencies_use_absolute_values() {
        let (n, window) = buffers();
        // low −300 → 50 + 300 = 350 Hz; its band 10 kHz is clamped at 8 kHz, so band = 7650 Hz.
        // The even filter's taps are then sin terms of the clamped edges, which an unclamped
        // band would change.
        let a = sinc_filters(&[-300.0], &[10_000.0], &n, &window, 16000.0);
        let b = sinc_filters(&[300.0], &[7600.0], &n, &window, 16000.0);
        assert_eq!(a, b);
    }
}
