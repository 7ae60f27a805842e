//! ECAPA-TDNN's options, with SpeechBrain's names and defaults, read from a model directory's
//! `hyperparams.yaml`: `compute_features` (`speechbrain.lobes.features.Fbank`), `mean_var_norm`
//! (`speechbrain.processing.features.InputNormalization`) and `embedding_model`
//! (`speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN`). Options that change what is computed and
//! that Scribe does not implement (deltas, context windows, non-triangular filters, global or
//! standard-deviation normalisation, other activations) are errors naming the field.
//!
//! Source: speechbrain 1.1.2 `lobes/features.py` (`Fbank.__init__`), `processing/features.py`
//! (`STFT`, `Filterbank`, `InputNormalization`), `lobes/models/ECAPA_TDNN.py`
//! (`ECAPA_TDNN.__init__`), `nnet/CNN.py` (`Conv1d`, `get_padding_elem`).

use std::path::Path;

use crate::error::{Error, Result};

use super::hyperparams::{Block, Hyperparams};

/// The file holding the options in a SpeechBrain model directory.
pub const HYPERPARAMS_FILE: &str = "hyperparams.yaml";

/// The classes of the three blocks Scribe reads, as their `!new:` tags name them.
pub const FBANK_CLASS: &str = "speechbrain.lobes.features.Fbank";
pub const NORM_CLASS: &str = "speechbrain.processing.features.InputNormalization";
pub const ECAPA_CLASS: &str = "speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN";
/// The blocks' names in the published `hyperparams.yaml` (`modules`).
pub const FBANK_BLOCK: &str = "compute_features";
pub const NORM_BLOCK: &str = "mean_var_norm";
pub const ECAPA_BLOCK: &str = "embedding_model";

/// The sample rate Scribe feeds every model (and the published model's).
pub const SAMPLE_RATE: usize = 16000;

/// `nn.BatchNorm1d`'s default epsilon (SpeechBrain's `BatchNorm1d(eps=1e-05)`), every norm.
pub const BATCH_NORM_EPS: f32 = 1e-5;
/// `AttentiveStatisticsPooling.eps`: the variance is clamped here before its square root.
pub const ASP_EPS: f32 = 1e-12;

/// `Fbank`'s options (the STFT and filterbank ones it passes on).
#[derive(Clone, Debug, PartialEq)]
pub struct FbankConfig {
    pub sample_rate: usize,
    /// FFT size (`n_fft`, 400).
    pub n_fft: usize,
    /// Mel filters (`Fbank`'s default is 40; the published model sets 80).
    pub n_mels: usize,
    /// Lowest and highest filter edge in Hz (`f_max` None → `sample_rate // 2`).
    pub f_min: f64,
    pub f_max: f64,
    /// Window and hop in milliseconds (`win_length` 25, `hop_length` 10).
    pub win_length: f64,
    pub hop_length: f64,
}

impl Default for FbankConfig {
    /// `Fbank()`.
    fn default() -> Self {
        FbankConfig {
            sample_rate: SAMPLE_RATE,
            n_fft: 400,
            n_mels: 40,
            f_min: 0.0,
            f_max: (SAMPLE_RATE / 2) as f64,
            win_length: 25.0,
            hop_length: 10.0,
        }
    }
}

/// Python's `int(round(x))` (ties to even).
fn py_round(x: f64) -> usize {
    x.round_ties_even().max(0.0) as usize
}

impl FbankConfig {
    /// `STFT.win_length` in samples: `int(round(sample_rate / 1000 · win_length))` (400).
    pub fn win_samples(&self) -> usize {
        py_round(self.sample_rate as f64 / 1000.0 * self.win_length)
    }

    /// `STFT.hop_length` in samples (160).
    pub fn hop_samples(&self) -> usize {
        py_round(self.sample_rate as f64 / 1000.0 * self.hop_length)
    }

    /// STFT frames of `samples` samples (`center=True`, `n_fft // 2` padding on both sides):
    /// `1 + samples // hop` for an even `n_fft`.
    pub fn frames(&self, samples: usize) -> usize {
        1 + (samples + 2 * (self.n_fft / 2)).saturating_sub(self.n_fft) / self.hop_samples()
    }

    /// Frequency bins of the one-sided spectrum, `n_fft // 2 + 1` (201).
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    fn check(&self, block: &Block) -> Result<()> {
        if self.sample_rate != SAMPLE_RATE {
            return Err(
                block.invalid("sample_rate", format!("{} Hz: Scribe embeds {SAMPLE_RATE} Hz audio", self.sample_rate))
            );
        }
        if self.n_fft < 2 || self.n_mels == 0 {
            return Err(
                block.invalid("n_fft", format!("n_fft {} and n_mels {} must be ≥ 2 and ≥ 1", self.n_fft, self.n_mels))
            );
        }
        if !(0.0 <= self.f_min && self.f_min < self.f_max) {
            return Err(
                block.invalid("f_min", format!("needs 0 ≤ f_min < f_max, found {} and {}", self.f_min, self.f_max))
            );
        }
        let (win, hop) = (self.win_samples(), self.hop_samples());
        if win == 0 || win > self.n_fft {
            return Err(
                block.invalid("win_length", format!("{win} samples: torch.stft needs 1..=n_fft ({})", self.n_fft))
            );
        }
        if hop == 0 {
            return Err(block.invalid("hop_length", "rounds to 0 samples"));
        }
        Ok(())
    }
}

/// `ECAPA_TDNN`'s options.
#[derive(Clone, Debug, PartialEq)]
pub struct EcapaConfig {
    /// The front end (`compute_features`).
    pub fbank: FbankConfig,
    /// `input_size`: mel bins in (equals `fbank.n_mels`).
    pub input_size: usize,
    /// Output channels of `blocks.0`, the SE-Res2Net blocks and `mfa` (the last).
    pub channels: Vec<usize>,
    pub kernel_sizes: Vec<usize>,
    pub dilations: Vec<usize>,
    /// Conv groups of `blocks.0`, each SE-Res2Net block's `tdnn1`/`tdnn2`, and `mfa`.
    pub groups: Vec<usize>,
    pub attention_channels: usize,
    pub res2net_scale: usize,
    pub se_channels: usize,
    pub global_context: bool,
    /// The embedding's size.
    pub lin_neurons: usize,
}

impl Default for EcapaConfig {
    /// `ECAPA_TDNN(80)` with `Fbank(n_mels=80)`.
    fn default() -> Self {
        EcapaConfig {
            fbank: FbankConfig { n_mels: 80, ..FbankConfig::default() },
            input_size: 80,
            channels: vec![512, 512, 512, 512, 1536],
            kernel_sizes: vec![5, 3, 3, 3, 1],
            dilations: vec![1, 2, 3, 4, 1],
            groups: vec![1; 5],
            attention_channels: 128,
            res2net_scale: 8,
            se_channels: 128,
            global_context: true,
            lin_neurons: 192,
        }
    }
}

impl EcapaConfig {
    /// `dir/hyperparams.yaml`'s options.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join(HYPERPARAMS_FILE);
        if !path.is_file() {
            return Err(Error::format(
                dir,
                format!("no {HYPERPARAMS_FILE} in this directory (a SpeechBrain model directory holds one)"),
            ));
        }
        Self::from_hyperparams(&Hyperparams::open(&path)?)
    }

    /// The options of a parsed `hyperparams.yaml`.
    pub fn from_hyperparams(hp: &Hyperparams) -> Result<Self> {
        let fbank = read_fbank(&hp.required_block(FBANK_BLOCK, FBANK_CLASS)?)?;
        check_norm(&hp.required_block(NORM_BLOCK, NORM_CLASS)?)?;
        let b = hp.required_block(ECAPA_BLOCK, ECAPA_CLASS)?;
        b.only(&[
            "input_size",
            "device",
            "lin_neurons",
            "activation",
            "channels",
            "kernel_sizes",
            "dilations",
            "attention_channels",
            "res2net_scale",
            "se_channels",
            "global_context",
            "groups",
            "dropout",
        ])?;
        let d = EcapaConfig::default();
        let input_size = b.usize("input_size", 0)?;
        if input_size == 0 {
            return Err(b.invalid("input_size", "missing or 0 (ECAPA_TDNN's first argument, the mel bins)"));
        }
        if input_size != fbank.n_mels {
            return Err(
                b.invalid("input_size", format!("{input_size}, but {FBANK_BLOCK} gives {} mel bins", fbank.n_mels))
            );
        }
        match b.tag("activation")? {
            None if b.str("activation", "").is_ok_and(|s| s.is_empty()) => {}
            Some(tag) if tag == "!name:torch.nn.ReLU" => {}
            _ => return Err(b.invalid("activation", "only torch.nn.ReLU (the default) is supported")),
        }
        let channels = b.usize_list("channels", &d.channels)?;
        let n = channels.len();
        let c = EcapaConfig {
            fbank,
            input_size,
            kernel_sizes: b.usize_list("kernel_sizes", &d.kernel_sizes)?,
            dilations: b.usize_list("dilations", &d.dilations)?,
            groups: b.usize_list("groups", &vec![1; n])?,
            channels,
            attention_channels: b.usize("attention_channels", d.attention_channels)?,
            res2net_scale: b.usize("res2net_scale", d.res2net_scale)?,
            se_channels: b.usize("se_channels", d.se_channels)?,
            global_context: b.bool("global_context", d.global_context)?,
            lin_neurons: b.usize("lin_neurons", d.lin_neurons)?,
        };
        c.check().map_err(|(key, what)| b.invalid(key, what))?;
        Ok(c)
    }

    /// What `ECAPA_TDNN.__init__` asserts, and what its forward needs to run: the key at fault
    /// and why.
    fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        let n = self.channels.len();
        if n < 3 {
            return Err((
                "channels",
                format!("{:?}: needs blocks.0, at least one SE-Res2Net block and mfa", self.channels),
            ));
        }
        for (key, len) in [("kernel_sizes", self.kernel_sizes.len()), ("dilations", self.dilations.len())] {
            if len != n {
                return Err((key, format!("has {len} entries, channels {n}")));
            }
        }
        if self.groups.len() < n {
            return Err(("groups", format!("has {} entries, channels {n}", self.groups.len())));
        }
        if let Some(k) = self.kernel_sizes.iter().find(|&&k| k == 0 || k % 2 == 0) {
            return Err(("kernel_sizes", format!("{k}: \"same\" padding needs odd kernel sizes")));
        }
        if self.channels.contains(&0) || self.dilations.contains(&0) || self.groups.contains(&0) {
            return Err(("channels", "channels, dilations and groups must be ≥ 1".into()));
        }
        let se_width = self.channels[n - 2];
        if self.channels[1..n - 1].iter().any(|&c| c != se_width) {
            return Err((
                "channels",
                format!(
                    "{:?}: mfa takes channels[-2] × {} inputs, so every SE-Res2Net block needs {se_width}",
                    self.channels,
                    n - 2
                ),
            ));
        }
        if self.res2net_scale < 2 || !se_width.is_multiple_of(self.res2net_scale) {
            return Err(("res2net_scale", format!("{}: must be ≥ 2 and divide {se_width}", self.res2net_scale)));
        }
        let convs = [(self.input_size, self.channels[0], self.groups[0])]
            .into_iter()
            .chain((1..n - 1).flat_map(|i| {
                [
                    (self.channels[i - 1], self.channels[i], self.groups[i]),
                    (self.channels[i], self.channels[i], self.groups[i]),
                ]
            }))
            .chain([(self.mfa_in(), self.channels[n - 1], self.groups[n - 1])]);
        for (c_in, c_out, g) in convs {
            if !c_in.is_multiple_of(g) || !c_out.is_multiple_of(g) {
                return Err(("groups", format!("{g} groups do not divide a conv of {c_in} → {c_out} channels")));
            }
        }
        if self.attention_channels == 0 || self.se_channels == 0 || self.lin_neurons == 0 {
            return Err(("attention_channels", "attention_channels, se_channels and lin_neurons must be ≥ 1".into()));
        }
        Ok(())
    }

    /// Number of SE-Res2Net blocks (`blocks.1` ..).
    pub fn se_blocks(&self) -> usize {
        self.channels.len() - 2
    }

    /// `mfa`'s input channels: the SE-Res2Net blocks' outputs concatenated.
    pub fn mfa_in(&self) -> usize {
        self.channels[self.channels.len() - 2] * self.se_blocks()
    }

    /// `mfa`'s (and the pooling's) channels.
    pub fn mfa_out(&self) -> usize {
        self.channels[self.channels.len() - 1]
    }

    /// "Same" padding of a conv (`get_padding_elem` with stride 1): `dilation · (kernel − 1) / 2`
    /// on each side, reflected.
    pub fn same_padding(kernel: usize, dilation: usize) -> usize {
        dilation * (kernel - 1) / 2
    }

    /// The widest reflect padding of any conv (4 in the published model: kernel 3, dilation 4).
    pub fn max_padding(&self) -> usize {
        self.kernel_sizes.iter().zip(&self.dilations).map(|(&k, &d)| Self::same_padding(k, d)).max().unwrap_or(0)
    }

    /// The fewest samples the model embeds: reflect padding needs more frames than it pads
    /// (`F.pad(mode="reflect")` raises otherwise), so `max_padding + 1` frames, i.e.
    /// `max_padding · hop` samples (640 for the published model, as SpeechBrain's own model
    /// accepts it: tests/reference/make_ecapa_reference.py's `min_num_samples`).
    pub fn min_num_samples(&self) -> usize {
        (self.max_padding() * self.fbank.hop_samples()).max(1)
    }
}

/// `compute_features`' options; what Scribe does not compute is refused.
fn read_fbank(b: &Block) -> Result<FbankConfig> {
    b.only(&[
        "deltas",
        "context",
        "requires_grad",
        "sample_rate",
        "f_min",
        "f_max",
        "n_fft",
        "n_mels",
        "filter_shape",
        "param_change_factor",
        "param_rand_factor",
        "left_frames",
        "right_frames",
        "win_length",
        "hop_length",
    ])?;
    for key in ["deltas", "context", "requires_grad"] {
        if b.bool(key, false)? {
            return Err(b.invalid(key, "True is not supported (the published model uses False)"));
        }
    }
    let shape = b.str("filter_shape", "triangular")?;
    if shape != "triangular" {
        return Err(b.invalid("filter_shape", format!("`{shape}`: only triangular filters are supported")));
    }
    let d = FbankConfig::default();
    let sample_rate = b.usize("sample_rate", d.sample_rate)?;
    let c = FbankConfig {
        sample_rate,
        n_fft: b.usize("n_fft", d.n_fft)?,
        n_mels: b.usize("n_mels", d.n_mels)?,
        f_min: b.f64("f_min", d.f_min)?,
        f_max: b.f64_or_none("f_max")?.unwrap_or((sample_rate / 2) as f64),
        win_length: b.f64("win_length", d.win_length)?,
        hop_length: b.f64("hop_length", d.hop_length)?,
    };
    c.check(b)?;
    Ok(c)
}

/// `mean_var_norm` must be the sentence mean normalisation the published model uses.
fn check_norm(b: &Block) -> Result<()> {
    b.only(&[
        "mean_norm",
        "std_norm",
        "norm_type",
        "avg_factor",
        "length_dim",
        "update_until_epoch",
        "avoid_padding_norm",
        "epsilon",
        "device",
    ])?;
    let norm_type = b.str("norm_type", "global")?;
    if norm_type != "sentence" {
        return Err(b.invalid("norm_type", format!("`{norm_type}`: only `sentence` is supported")));
    }
    if !b.bool("mean_norm", true)? {
        return Err(b.invalid("mean_norm", "False is not supported"));
    }
    // `InputNormalization`'s default is True; the published model sets False.
    if b.bool("std_norm", true)? {
        return Err(b.invalid("std_norm", "True is not supported (the published model uses False)"));
    }
    if b.bool("avoid_padding_norm", false)? {
        return Err(b.invalid("avoid_padding_norm", "True is not supported"));
    }
    if b.usize("length_dim", 1)? != 1 {
        return Err(b.invalid("length_dim", "only 1 (time) is supported"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocks of the published `speechbrain/spkrec-ecapa-voxceleb` hyperparams.yaml that
    /// Scribe reads (tests/reference/data/ecapa/real_hyperparams.yaml holds the whole file).
    const PUBLISHED: &str = "\
n_mels: 80
pretrained_path: speechbrain/spkrec-ecapa-voxceleb
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [1024, 1024, 1024, 1024, 3072]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 128
    lin_neurons: 192
";

    fn parse(text: &str) -> Result<EcapaConfig> {
        EcapaConfig::from_hyperparams(&Hyperparams::parse(text, Path::new("hyperparams.yaml"))?)
    }

    #[test]
    fn the_published_options() {
        let c = parse(PUBLISHED).unwrap();
        assert_eq!(c.fbank, FbankConfig { n_mels: 80, ..FbankConfig::default() });
        assert_eq!((c.fbank.win_samples(), c.fbank.hop_samples(), c.fbank.bins()), (400, 160, 201));
        assert_eq!(c.channels, [1024, 1024, 1024, 1024, 3072]);
        assert_eq!((c.res2net_scale, c.se_channels, c.global_context, c.lin_neurons), (8, 128, true, 192));
        assert_eq!((c.mfa_in(), c.mfa_out(), c.se_blocks()), (3072, 3072, 3));
        assert_eq!(c.groups, [1; 5]);
        assert_eq!(c.max_padding(), 4);
        assert_eq!(c.min_num_samples(), 640);
        // 1 s: 101 frames; 640 samples: 5 frames, one more than the widest padding.
        assert_eq!((c.fbank.frames(16000), c.fbank.frames(640), c.fbank.frames(639)), (101, 5, 4));
    }

    #[test]
    fn what_is_not_implemented_is_refused_by_name() {
        for (from, to, field) in [
            ("    std_norm: False", "    std_norm: True", "mean_var_norm.std_norm"),
            ("norm_type: sentence", "norm_type: global", "mean_var_norm.norm_type"),
            ("    n_mels: !ref <n_mels>", "    n_mels: !ref <n_mels>\n    deltas: True", "compute_features.deltas"),
            ("    n_mels: !ref <n_mels>", "    n_mels: 40", "embedding_model.input_size"),
            (
                "    lin_neurons: 192",
                "    lin_neurons: 192\n    activation: !name:torch.nn.LeakyReLU",
                "embedding_model.activation",
            ),
            ("    lin_neurons: 192", "    lin_neurons: 192\n    res2net_scale: 7", "embedding_model.res2net_scale"),
            ("kernel_sizes: [5, 3, 3, 3, 1]", "kernel_sizes: [5, 3, 4, 3, 1]", "embedding_model.kernel_sizes"),
            ("dilations: [1, 2, 3, 4, 1]", "dilations: [1, 2, 3, 4]", "embedding_model.dilations"),
            ("[1024, 1024, 1024, 1024, 3072]", "[1024, 1024, 512, 1024, 3072]", "embedding_model.channels"),
            ("    lin_neurons: 192", "    lin_neurons: 192\n    frobnicate: 1", "embedding_model.frobnicate"),
            (
                "    n_mels: !ref <n_mels>",
                "    n_mels: !ref <n_mels>\n    sample_rate: 8000",
                "compute_features.sample_rate",
            ),
        ] {
            assert!(PUBLISHED.contains(from), "{from}");
            let err =
                parse(&PUBLISHED.replacen(from, to, 1)).err().unwrap_or_else(|| panic!("{to} accepted")).to_string();
            assert!(err.contains("hyperparams.yaml") && err.contains(field), "{to}: {err}");
        }
        let err = parse("n_mels: 80\n").err().unwrap().to_string();
        assert!(err.contains("compute_features") && err.contains("missing"), "{err}");
    }

    #[test]
    fn defaults_are_speechbrains() {
        let text = "\
compute_features: !new:speechbrain.lobes.features.Fbank
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: 40
    activation: !name:torch.nn.ReLU
    f_max: null
";
        // `f_max` belongs to the front end, not the model.
        assert!(parse(text).err().unwrap().to_string().contains("embedding_model.f_max"));
        let c = parse(&text.replace("    f_max: null\n", "")).unwrap();
        assert_eq!(c.fbank, FbankConfig::default());
        let want = EcapaConfig { fbank: FbankConfig::default(), input_size: 40, ..EcapaConfig::default() };
        assert_eq!(c, want);
        let c = parse(&text.replace("    f_max: null\n", "").replace(
            "compute_features: !new:speechbrain.lobes.features.Fbank\n",
            "compute_features: !new:speechbrain.lobes.features.Fbank\n    f_max: null\n    win_length: 20\n",
        ))
        .unwrap();
        assert_eq!((c.fbank.f_max, c.fbank.win_samples()), (8000.0, 320));
    }
}
