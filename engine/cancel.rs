//! Stopping a run that is under way. A [`Cancel`] token is handed to every loop that takes time
//! — audio decoding, VAD windows, encoder batches, decoder steps — and each checks it before its
//! next unit of work: once cancelled, the batch or step in flight finishes and nothing after it
//! starts; the run returns [`Error::Cancelled`]. Clones share one flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

#[derive(Clone, Debug, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    /// The flags of the tokens this one was [`linked`](Cancel::linked) to, and theirs: each
    /// cancels this one too.
    parents: Vec<Arc<AtomicBool>>,
}

impl Cancel {
    /// A token nobody has cancelled.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// A token of its own that this one's cancelling cancels as well, but not the other way:
    /// a part of a run that the rest of the run may stop (diarization alongside a
    /// transcription that failed).
    pub fn linked(&self) -> Cancel {
        let parents = self.parents.iter().cloned().chain([self.flag.clone()]).collect();
        Cancel { flag: Arc::default(), parents }
    }

    /// Stop the run at its next check (idempotent; any clone may call it, from any thread).
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst) || self.parents.iter().any(|p| p.load(Ordering::SeqCst))
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

    #[test]
    fn a_linked_token_stops_with_its_parent_but_not_the_parent_with_it() {
        let parent = Cancel::new();
        let part = parent.linked();
        part.cancel();
        assert!(part.is_cancelled());
        assert!(!parent.is_cancelled(), "cancelling the part leaves the run");
        let part = parent.linked();
        let clone = part.clone();
        parent.cancel();
        assert!(part.is_cancelled() && clone.is_cancelled(), "cancelling the run stops its parts");
        let run = Cancel::new();
        let part_of_part = run.linked().linked();
        run.cancel();
        assert!(part_of_part.is_cancelled(), "a part of a part stops with the run");
    }
}
