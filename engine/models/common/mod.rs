//! Building blocks shared by the model families: layers that load themselves from a
//! checkpoint by their reference names and run on any [`Device`].
pub mod checkpoint;
pub mod compute_type;
pub mod layers;
pub mod statistics;
