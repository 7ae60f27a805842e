//! Frame arithmetic of SincNet's conv / pool stack (pyannote.audio `utils/receptive_field.py`,
//! `models/blocks/sincnet.py` `num_frames` / `receptive_field_size` / `receptive_field_center`).
//! Every layer has padding 0 and dilation 1, so a layer is its kernel and stride.

/// One conv or pool layer: `(kernel_size, stride)`.
pub type Layer = (usize, usize);

/// SincNet's layers in order: sinc conv (251, `stride`), pool 3, conv 5, pool 3, conv 5, pool 3.
pub fn sincnet_layers(stride: usize) -> [Layer; 6] {
    [(251, stride), (3, 3), (5, 1), (3, 3), (5, 1), (3, 3)]
}

/// Output frames for `num_samples` input samples (`multi_conv_num_frames`); 0 when the input is
/// shorter than the receptive field.
pub fn num_frames(layers: &[Layer], num_samples: usize) -> usize {
    layers.iter().fold(num_samples, |n, &(k, s)| if n < k { 0 } else { 1 + (n - k) / s })
}

/// Input samples seen by `num_frames` consecutive output frames (`multi_conv_receptive_field_size`).
pub fn receptive_field_size(layers: &[Layer], num_frames: usize) -> usize {
    layers.iter().rev().fold(num_frames, |n, &(k, s)| k + (n - 1) * s)
}

/// Input sample at the centre of output frame `frame`'s receptive field
/// (`multi_conv_receptive_field_center`).
pub fn receptive_field_center(layers: &[Layer], frame: usize) -> usize {
    layers.iter().rev().fold(frame, |f, &(k, s)| f * s + (k - 1) / 2)
}

/// The model's output frames in seconds (pyannote.audio `Model.receptive_field`): frame `i`
/// covers `[start + i·step, start + i·step + duration]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameWindow {
    pub start: f64,
    pub duration: f64,
    pub step: f64,
}

impl FrameWindow {
    pub fn of(layers: &[Layer], sample_rate: usize) -> Self {
        let size = receptive_field_size(layers, 1);
        let step = receptive_field_size(layers, 2) - size;
        let start = receptive_field_center(layers, 0) as f64 - (size as f64 - 1.0) / 2.0;
        let sr = sample_rate as f64;
        FrameWindow { start: start / sr, duration: size as f64 / sr, step: step as f64 / sr }
    }

    /// Middle of frame `i` (the time WhisperX's `Binarize` stamps on it).
    pub fn middle(&self, i: usize) -> f64 {
        self.start + i as f64 * self.step + self.duration / 2.0
    }

    /// Index of the frame whose middle is closest to `t` (pyannote.core
    /// `SlidingWindow.closest_frame`: `rint((t − start − duration/2) / step)`).
    pub fn closest_frame(&self, t: f64) -> i64 {
        round_half_even((t - self.start - self.duration / 2.0) / self.step)
    }
}

/// NumPy's `rint`: round to nearest, ties to even.
pub fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && (r as i64) % 2 != 0 {
        (r - x.signum()) as i64
    } else {
        r as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The numbers pyannote.audio prints for WhisperX's VAD checkpoint (SincNet stride 10):
    // `model.num_frames(80000)`, `receptive_field_size(1)` and `(2)`, `receptive_field_center(0)`.
    #[test]
    fn a_five_second_window_has_293_frames_of_270_samples_seeing_991() {
        let layers = sincnet_layers(10);
        assert_eq!(num_frames(&layers, 80_000), 293);
        assert_eq!(receptive_field_size(&layers, 1), 991);
        assert_eq!(receptive_field_size(&layers, 2), 991 + 270);
        assert_eq!(receptive_field_center(&layers, 0), 495);
        let w = FrameWindow::of(&layers, 16_000);
        assert_eq!(w.start, 0.0);
        assert!((w.step - 0.016875).abs() < 1e-15 && (w.duration - 991.0 / 16000.0).abs() < 1e-15);
    }

    #[test]
    fn too_short_an_input_has_no_frames() {
        let layers = sincnet_layers(10);
        assert_eq!(num_frames(&layers, 0), 0);
        assert_eq!(num_frames(&layers, 250), 0);
        assert_eq!(num_frames(&layers, 991), 1);
        assert_eq!(num_frames(&layers, 990), 0);
    }

    #[test]
    fn closest_frame_rounds_half_to_even_like_numpy_rint() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(-0.5), 0);
        assert_eq!(round_half_even(-1.5), -2);
        assert_eq!(round_half_even(2.4), 2);
        let w = FrameWindow { start: 0.0, duration: 0.1, step: 0.1 };
        assert_eq!(w.closest_frame(0.05), 0);
        assert_eq!(w.closest_frame(0.26), 2);
    }
}
