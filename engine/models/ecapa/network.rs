//! `ECAPA_TDNN.forward(x, lengths)` (speechbrain 1.1.2 `lobes/models/ECAPA_TDNN.py`):
//! `blocks.0` (a `TDNNBlock`), the SE-Res2Net blocks `blocks.1..`, `mfa` (a `TDNNBlock` on the
//! SE-Res2Net outputs concatenated), `asp` (attentive statistics pooling), `asp_bn` (a batch norm
//! of the pooled vector) and `fc` (a 1×1 conv to `lin_neurons`).

use crate::backend::{Device, Tensor};
use crate::error::Result;
use crate::models::campplus::norm::BatchNorm;
use crate::weights::WeightStore;

use super::config::EcapaConfig;
use super::pooling::{AttentiveStatisticsPooling, FrameMask};
use super::res2net::SeRes2NetBlock;
use super::tdnn::{PointwiseConv, TdnnBlock};

pub struct Network {
    first: TdnnBlock,
    se_blocks: Vec<SeRes2NetBlock>,
    mfa: TdnnBlock,
    asp: AttentiveStatisticsPooling,
    asp_bn: BatchNorm,
    fc: PointwiseConv,
}

impl Network {
    /// Every tensor by its state-dict name, its shape checked against `c`.
    pub fn load(dev: &Device, store: &dyn WeightStore, c: &EcapaConfig) -> Result<Self> {
        let n = c.channels.len();
        let first = TdnnBlock::load(
            dev,
            store,
            "blocks.0",
            (c.input_size, c.channels[0], c.kernel_sizes[0]),
            (c.dilations[0], c.groups[0]),
        )?;
        let se_blocks = (1..n - 1).map(|i| SeRes2NetBlock::load(dev, store, i, c)).collect::<Result<_>>()?;
        let mfa = TdnnBlock::load(
            dev,
            store,
            "mfa",
            (c.mfa_in(), c.mfa_out(), c.kernel_sizes[n - 1]),
            (c.dilations[n - 1], c.groups[n - 1]),
        )?;
        Ok(Network {
            first,
            se_blocks,
            mfa,
            asp: AttentiveStatisticsPooling::load(dev, store, "asp", c)?,
            asp_bn: BatchNorm::load(dev, store, "asp_bn.norm", 2 * c.mfa_out())?,
            fc: PointwiseConv::load(dev, store, "fc", (2 * c.mfa_out(), c.lin_neurons))?,
        })
    }

    /// `features[B, input_size, T]` (mean-normalised fbank, channels first) → `[B, lin_neurons]`.
    pub fn forward(&self, dev: &Device, features: &Tensor, mask: &FrameMask) -> Result<Tensor> {
        let mut x = self.first.forward(dev, features)?;
        let mut outputs = Vec::with_capacity(self.se_blocks.len());
        for block in &self.se_blocks {
            x = block.forward(dev, &x, mask)?;
            outputs.push(x.clone());
        }
        let x = self.mfa.forward(dev, &dev.concat(&outputs.iter().collect::<Vec<_>>(), 1)?)?;
        let pooled = self.asp.forward(dev, &x, mask)?;
        let pooled = self.asp_bn.forward(dev, &pooled)?;
        self.fc.forward(dev, &pooled, None)
    }
}
