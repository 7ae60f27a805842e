//! Watching the ops a [`Device`](super::Device) runs, whatever its backend: every op is reported
//! to the device's observers before and after it runs. Profiling (`SCRIBE_PROFILE=1`,
//! [`super::profile`]) and the tests' counting of forward passes and downloads are observers.

use std::time::Duration;

use super::Tensor;

/// One op call as observers see it.
#[derive(Clone, Copy, Debug)]
pub struct OpCall<'a> {
    /// The op's name (the [`Device`](super::Device) method's).
    pub op: &'static str,
    /// The tensors it reads, in argument order (optional ones left out when absent).
    pub inputs: &'a [&'a Tensor],
    /// Its size arguments, as the op lists them: `embedding_with_positions` gives
    /// `[ids, seq_len, offset]`; `download` gives `[elements]`.
    pub sizes: &'a [usize],
}

/// Told of every op of the devices it is attached to.
pub trait OpObserver: Send + Sync {
    fn before(&self, _call: &OpCall<'_>) {}

    /// After the op, with its wall time: launch time only, unless [`OpObserver::timed`] asks the
    /// device to wait for the op to finish first.
    fn after(&self, _call: &OpCall<'_>, _elapsed: Duration) {}

    /// Whether [`OpObserver::after`]'s time must cover the device's work (the device
    /// synchronises after each op: slower, but every op's time is its own).
    fn timed(&self) -> bool {
        false
    }
}
