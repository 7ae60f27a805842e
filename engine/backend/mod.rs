//! Device backends (in progress)
