//! Stopping a run that is under way. A [`Cancel`] token is handed to every loop that takes time
//! — audio decoding, VAD windows, encoder batches, decoder steps — and each checks it before its
//! next unit of work: once cancelled, the batch or step in flight finishes and nothing after it
//! starts; the run returns [`Error::Cancelled`]. Clones share one flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A token nobody has cancelled.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Stop the run at its next check (idempotent; any clone may call it, from any thread).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `Err(Error::Cancelled)` once cancelled: the check every loop makes before more work.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag_and_check_says_cancelled() {
        let c = Cancel::new();
        let other = c.clone();
        assert!(c.check().is_ok());
        other.cancel();
        assert!(c.is_cancelled());
        assert!(matches!(c.check(), Err(Error::Cancelled)));
        assert_eq!(c.check().unwrap_err().to_string(), "cancelled");
    }
}
