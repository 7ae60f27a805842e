//! Parameters shared by every backend's ops.

/// Pointwise nonlinearities.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// Exact GELU, `x·Φ(x)` with erf (Whisper, wav2vec2 — never the tanh approximation).
    Gelu,
    Relu,
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    Exp,
    /// Natural log of `max(x, floor)`.
    Log {
        floor: f32,
    },
    Sqrt,
    Abs,
}

/// Binary elementwise ops (b broadcast against a).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// Reductions over the last dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Mean,
    Max,
    /// Population standard deviation (divide by N).
    Std,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dParams {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub groups: usize,
}

impl Default for Conv1dParams {
    fn default() -> Self {
        Conv1dParams { stride: 1, padding: 0, dilation: 1, groups: 1 }
    }
}

impl Conv1dParams {
    /// Output length of a conv over `t` input frames with kernel size `k`.
    pub fn out_len(&self, t: usize, k: usize) -> usize {
        let span = self.dilation * (k.saturating_sub(1)) + 1;
        let padded = t + 2 * self.padding;
        if padded < span {
            0
        } else {
            (padded - span) / self.stride + 1
        }
    }
}

/// `nn.Conv2d` parameters, (height, width) pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams { stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1 }
    }
}

impl Conv2dParams {
    /// Output (height, width) of a conv over `(h, w)` with kernel `(kh, kw)`.
    pub fn out_size(&self, (h, w): (usize, usize), (kh, kw): (usize, usize)) -> (usize, usize) {
        let along = |n: usize, k: usize, stride: usize, padding: usize, dilation: usize| {
            Conv1dParams { stride, padding, dilation, groups: 1 }.out_len(n, k)
        };
        (
            along(h, kh, self.stride.0, self.padding.0, self.dilation.0),
            along(w, kw, self.stride.1, self.padding.1, self.dilation.1),
        )
    }
}

/// What padding holds (`F.pad` modes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Padding {
    /// This value everywhere.
    Constant(f32),
    /// The values mirrored about the edge, the edge not repeated: `[a b c]` padded by 2 on each
    /// side is `c b [a b c] b a`.
    Reflect,
}
