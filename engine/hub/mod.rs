//! Hugging Face hub client and cache (in progress)
