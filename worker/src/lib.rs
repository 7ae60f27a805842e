//! Scribe's RunPod serverless worker, in Rust with no Python SDK: the job's input checked
//! (`job_input`), its audio downloaded behind an address guard (`download`, `url_guard`),
//! transcribed with models loaded once (`models`, `job`), and its result shaped for the
//! platform (`job_result`); configuration comes from the environment (`settings`). On the platform, `job_loop` takes
//! jobs from the webhooks `runpod` reads, with `backoff` between failures.
pub mod backoff;
pub mod download;
pub mod job;
pub mod job_input;
pub mod job_loop;
pub mod job_result;
pub mod local_api;
pub mod models;
pub mod redact;
pub mod runpod;
pub mod sample_cache;
pub mod settings;
pub mod speaker_names;
pub mod startup;
pub mod storage;
pub mod test_input;
pub mod url_guard;
