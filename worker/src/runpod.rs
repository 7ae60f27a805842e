//! The platform's webhook URLs, from the environment as the RunPod SDK reads them
//! (`rp_job.py`, `rp_http.py`, `rp_ping.py`): RUNPOD_WEBHOOK_GET_JOB with `$ID` = the worker
//! (pod) id, RUNPOD_WEBHOOK_POST_OUTPUT with `$RUNPOD_POD_ID` = the pod and `$ID` = the job,
//! RUNPOD_WEBHOOK_PING, and `Authorization: <RUNPOD_AI_API_KEY>` (no Bearer). The URLs already
//! hold a query (`?gpu=…`); parameters are appended with `&`.

/// The SDK's `job_in_progress` / `batch_size` take parameters and the version it pings with.
pub const RUNPOD_VERSION: &str = concat!("scribe-worker-", env!("CARGO_PKG_VERSION"));

#[derive(Clone, Debug, PartialEq)]
pub struct Endpoints {
    pub get_job: String,
    pub post_output: String,
    pub ping: Option<String>,
    pub api_key: Option<String>,
    pub pod_id: String,
}

/// `url` with `key=value` appended to its query.
pub fn add_query(url: &str, key: &str, value: &str) -> String {
    let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

impl Endpoints {
    /// None when RUNPOD_WEBHOOK_GET_JOB is not set (not on the platform).
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Option<Result<Self, String>> {
        let set = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let get_job = set("RUNPOD_WEBHOOK_GET_JOB")?;
        let pod_id = set("RUNPOD_POD_ID").unwrap_or_else(random_id);
        let Some(post_output) = set("RUNPOD_WEBHOOK_POST_OUTPUT") else {
            return Some(Err("RUNPOD_WEBHOOK_GET_JOB is set but RUNPOD_WEBHOOK_POST_OUTPUT is not".into()));
        };
        Some(Ok(Endpoints {
            get_job: get_job.replace("$ID", &pod_id),
            post_output: post_output.replace("$RUNPOD_POD_ID", &pod_id),
            ping: set("RUNPOD_WEBHOOK_PING").map(|p| p.replace("$RUNPOD_POD_ID", &pod_id)),
            api_key: set("RUNPOD_AI_API_KEY"),
            pod_id,
        }))
    }

    /// Take up to `free` jobs: the batch route when more than one slot is free.
    pub fn take_url(&self, in_progress: bool, free: usize) -> String {
        let mut url = self.get_job.clone();
        if free > 1 {
            url = url.replace("/job-take/", "/job-take-batch/");
        }
        url = add_query(&url, "job_in_progress", if in_progress { "1" } else { "0" });
        if free > 1 {
            url = add_query(&url, "batch_size", &free.to_string());
        }
        url
    }

    /// Where job `id`'s result (and progress) goes.
    pub fn result_url(&self, id: &str) -> String {
        add_query(&self.post_output.replace("$ID", id), "isStream", "false")
    }

    /// The job-stop long-poll.
    pub fn stop_url(&self) -> String {
        self.get_job.replace("/job-take-batch/", "/job-stop/").replace("/job-take/", "/job-stop/")
    }

    pub fn ping_url(&self, in_progress: &[String]) -> Option<String> {
        let mut url = add_query(self.ping.as_ref()?, "runpod_version", RUNPOD_VERSION);
        if !in_progress.is_empty() {
            url = add_query(&url, "job_id", &in_progress.join(","));
        }
        Some(url)
    }

    /// The ping that reports a failed start-up check.
    pub fn unhealthy_url(&self, check: &str, reason: &str) -> Option<String> {
        let url = self.ping_url(&[])?;
        Some(add_query(&add_query(&add_query(&url, "status", "unhealthy"), "check", check), "reason", reason))
    }
}

/// A random version-4-style id for RUNPOD_POD_ID when the platform gives none.
pub fn random_id() -> String {
    let mut x = crate::backoff::seed();
    let mut hex = String::new();
    for _ in 0..32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        hex.push(char::from_digit((x % 16) as u32, 16).unwrap());
    }
    format!("{}-{}-4{}-a{}-{}", &hex[..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn endpoints(pairs: &[(&str, &str)]) -> Option<Result<Endpoints, String>> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Endpoints::from_vars(&|k| map.get(k).cloned())
    }

    fn platform() -> Endpoints {
        endpoints(&[
            ("RUNPOD_WEBHOOK_GET_JOB", "https://api.example/v2/ep/job-take/$ID?gpu=H100"),
            ("RUNPOD_WEBHOOK_POST_OUTPUT", "https://api.example/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=H100"),
            ("RUNPOD_WEBHOOK_PING", "https://api.example/v2/ep/ping/$RUNPOD_POD_ID?gpu=H100"),
            ("RUNPOD_POD_ID", "pod7"),
            ("RUNPOD_AI_API_KEY", "k"),
        ])
        .unwrap()
        .unwrap()
    }

    #[test]
    fn ids_are_substituted_and_parameters_appended() {
        let e = platform();
        assert_eq!(e.take_url(false, 1), "https://api.example/v2/ep/job-take/pod7?gpu=H100&job_in_progress=0");
        assert_eq!(
            e.take_url(true, 3),
            "https://api.example/v2/ep/job-take-batch/pod7?gpu=H100&job_in_progress=1&batch_size=3"
        );
        assert_eq!(e.result_url("j1"), "https://api.example/v2/ep/job-done/pod7/j1?gpu=H100&isStream=false");
        assert_eq!(e.stop_url(), "https://api.example/v2/ep/job-stop/pod7?gpu=H100");
        assert_eq!(
            e.ping_url(&["a".into(), "b".into()]).unwrap(),
            format!("https://api.example/v2/ep/ping/pod7?gpu=H100&runpod_version={RUNPOD_VERSION}&job_id=a%2Cb")
        );
        let u = e.unhealthy_url("models", "no model: x y").unwrap();
        assert!(u.ends_with("&status=unhealthy&check=models&reason=no+model%3A+x+y"), "{u}");
    }

    #[test]
    fn without_the_take_url_there_is_no_job_loop_and_a_missing_post_url_is_an_error() {
        assert!(endpoints(&[]).is_none());
        assert!(endpoints(&[("RUNPOD_WEBHOOK_GET_JOB", "http://x/job-take/$ID")]).unwrap().is_err());
        let e = endpoints(&[
            ("RUNPOD_WEBHOOK_GET_JOB", "http://x/job-take/$ID"),
            ("RUNPOD_WEBHOOK_POST_OUTPUT", "http://x/d"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(e.pod_id.len(), 36, "a random id: {}", e.pod_id);
        assert!(e.get_job.ends_with(&e.pod_id));
    }
}
