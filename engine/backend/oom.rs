//! Out-of-GPU-memory recovery for batched work: run `items` in chunks of at most `batch`; when a
//! chunk runs out of device memory, halve the chunk size and retry it. A chunk of one that still
//! does not fit is the error.

use crate::error::{Error, Result};

/// Run `run(start, len)` over `0..items` in chunks, halving the chunk size on
/// [`Error::DeviceOutOfMemory`]. Returns each chunk's result in order and the chunk size that fit.
pub fn halve_on_oom<T>(
    items: usize,
    batch: usize,
    mut run: impl FnMut(usize, usize) -> Result<T>,
) -> Result<(Vec<T>, usize)> {
    let mut size = batch.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start < items {
        let len = size.min(items - start);
        match run(start, len) {
            Ok(v) => {
                out.push(v);
                start += len;
            }
            Err(Error::DeviceOutOfMemory(what)) if len > 1 => {
                size = len / 2;
                tracing::warn!("out of GPU memory in {what} with a batch of {len}; retrying with {size}");
            }
            Err(e) => return Err(e),
        }
    }
    Ok((out, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oom_halves_the_batch_and_every_item_runs_once() {
        // A device that fits at most 3 items at a time.
        let mut seen = Vec::new();
        let (chunks, size) = halve_on_oom(10, 16, |start, len| {
            if len > 3 {
                return Err(Error::DeviceOutOfMemory("encoder".into()));
            }
            seen.extend(start..start + len);
            Ok(len)
        })
        .unwrap();
        assert_eq!(size, 2, "16 → 8 → 4 → 2");
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(chunks.iter().sum::<usize>(), 10);
    }

    #[test]
    fn a_single_item_that_does_not_fit_and_other_errors_are_returned() {
        let err = halve_on_oom(3, 4, |_, _| -> Result<()> { Err(Error::DeviceOutOfMemory("x".into())) }).unwrap_err();
        assert!(matches!(err, Error::DeviceOutOfMemory(_)));
        let mut calls = 0;
        let err = halve_on_oom(3, 4, |_, _| -> Result<()> {
            calls += 1;
            Err(Error::Other("bad".into()))
        })
        .unwrap_err();
        assert!(matches!(err, Error::Other(_)) && calls == 1, "other errors are not retried");
    }
}
