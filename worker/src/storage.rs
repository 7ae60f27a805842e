//! Artifacts in S3-compatible object storage (AWS S3, Cloudflare R2, MinIO) through aws-sdk-s3:
//! the full JSON result and the srt / vtt / txt renderings of a job go to
//! `PREFIX_TRANSCRIPTS/{job_id}/result.{ext}` (path-style addressing, which R2 and MinIO want),
//! each returned with a presigned GET URL valid for PRESIGN_TTL seconds. Keys, secrets and
//! presigned URLs never reach the log.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;

/// PREFIX_TRANSCRIPTS default.
pub const DEFAULT_PREFIX: &str = "transcripts";
/// PRESIGN_TTL default, seconds.
pub const DEFAULT_PRESIGN_TTL_S: u64 = 3600;
/// Attempts per upload (the SDK's standard retry mode, with its back-off).
pub const UPLOAD_ATTEMPTS: u32 = 3;
/// One upload, all attempts included.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, PartialEq)]
pub struct StorageConfig {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub prefix: String,
    pub presign_ttl: Duration,
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No keys in debug output either.
        f.debug_struct("StorageConfig")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("presign_ttl", &self.presign_ttl)
            .finish_non_exhaustive()
    }
}

impl StorageConfig {
    /// None when no STORAGE_* variable is set; an error naming the missing ones when only some are.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let set = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let names = ["STORAGE_ENDPOINT", "STORAGE_BUCKET", "STORAGE_ACCESS_KEY", "STORAGE_SECRET_KEY"];
        let values: Vec<Option<String>> = names.iter().map(|n| set(n)).collect();
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        let missing: Vec<&str> = names.iter().zip(&values).filter(|(_, v)| v.is_none()).map(|(n, _)| *n).collect();
        if !missing.is_empty() {
            return Err(format!("object storage is half configured: {} not set", missing.join(", ")));
        }
        let ttl =
            match set("PRESIGN_TTL") {
                None => DEFAULT_PRESIGN_TTL_S,
                Some(v) => v.trim().parse().ok().filter(|t| *t > 0 && *t <= 604_800).ok_or_else(|| {
                    format!("PRESIGN_TTL={v:?}: expected seconds from 1 to 604800 (S3's 7-day limit)")
                })?,
            };
        let v: Vec<String> = values.into_iter().map(Option::unwrap).collect();
        Ok(Some(StorageConfig {
            endpoint: v[0].clone(),
            bucket: v[1].clone(),
            access_key: v[2].clone(),
            secret_key: v[3].clone(),
            region: set("STORAGE_REGION").unwrap_or_else(|| "auto".into()),
            prefix: set("PREFIX_TRANSCRIPTS").unwrap_or_else(|| DEFAULT_PREFIX.into()).trim_matches('/').to_string(),
            presign_ttl: Duration::from_secs(ttl),
        }))
    }
}

/// One uploaded artifact.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Artifact {
    pub key: String,
    pub url: String,
    pub expires_at: String,
}

pub struct Storage {
    client: aws_sdk_s3::Client,
    config: StorageConfig,
}

/// `t` as RFC 3339 UTC, seconds precision.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

impl Storage {
    pub fn new(config: StorageConfig) -> Self {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&config.endpoint)
            .region(Region::new(config.region.clone()))
            .credentials_provider(Credentials::new(&config.access_key, &config.secret_key, None, None, "scribe-env"))
            .force_path_style(true)
            // R2 and MinIO-likes do not all take the SDK's default CRC32 trailers.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(UPLOAD_ATTEMPTS))
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_timeout(UPLOAD_TIMEOUT)
                    .build(),
            )
            .build();
        Storage { client: aws_sdk_s3::Client::from_conf(conf), config }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The key of a job's artifact.
    pub fn key(&self, job_id: &str, ext: &str) -> String {
        let id = crate::job::safe_id(job_id);
        if self.config.prefix.is_empty() {
            format!("{id}/result.{ext}")
        } else {
            format!("{}/{id}/result.{ext}", self.config.prefix)
        }
    }

    /// Upload `body` as the job's `ext` artifact and presign it.
    pub async fn put(&self, job_id: &str, ext: &str, content_type: &str, body: Vec<u8>) -> Result<Artifact, String> {
        let key = self.key(job_id, ext);
        self.client
            .put_object()
            .bucket(&self.config.bucket)
            .key(&key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| format!("uploading {ext} failed: {}", DisplayErrorContext(&e)))?;
        let presigning = PresigningConfig::expires_in(self.config.presign_ttl).map_err(|e| e.to_string())?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.config.bucket)
            .key(&key)
            .presigned(presigning)
            .await
            .map_err(|e| format!("presigning {ext} failed: {}", DisplayErrorContext(&e)))?;
        Ok(Artifact {
            key,
            url: presigned.uri().to_string(),
            expires_at: rfc3339(SystemTime::now() + self.config.presign_ttl),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Option<StorageConfig>, String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        StorageConfig::from_vars(&|k| map.get(k).cloned())
    }

    #[test]
    fn storage_is_off_on_or_half_configured() {
        assert_eq!(config(&[]).unwrap(), None);
        let full = [
            ("STORAGE_ENDPOINT", "https://acc.r2.example"),
            ("STORAGE_BUCKET", "b"),
            ("STORAGE_ACCESS_KEY", "AK"),
            ("STORAGE_SECRET_KEY", "SK"),
        ];
        let c = config(&full).unwrap().unwrap();
        assert_eq!((c.prefix.as_str(), c.presign_ttl), ("transcripts", Duration::from_secs(3600)));
        let debug = format!("{c:?}");
        assert!(!debug.contains("SK") && !debug.contains("AK"), "{debug}");
        let e = config(&full[..2]).unwrap_err();
        assert!(e.contains("STORAGE_ACCESS_KEY, STORAGE_SECRET_KEY"), "{e}");
        let mut with_ttl = full.to_vec();
        with_ttl.push(("PRESIGN_TTL", "0"));
        assert!(config(&with_ttl).unwrap_err().contains("PRESIGN_TTL"));
    }

    #[test]
    fn expiry_times_are_rfc3339_utc() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
