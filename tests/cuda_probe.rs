//! With the `cuda` (or `cuda13`) feature: the CUDA probe never panics, names what is missing on a
//! machine without a GPU, and `auto` falls back to the CPU while an explicit `cuda` is an error
//! carrying the probe's reason; on a GPU, both pick CUDA. Without the feature this file is empty.
#![cfg(feature = "cuda-backend")]

use scribe::backend::cuda::probe;
use scribe::backend::{Device, DeviceRequest};

#[test]
fn probe_reports_without_panicking_and_selection_follows_it() {
    let found = std::panic::catch_unwind(probe).expect("the CUDA probe panicked");
    match &found {
        Err(reason) => {
            eprintln!("no CUDA device ({reason}): checking the CPU fallback");
            assert!(
                ["libcuda", "libnvrtc", "libcublas", "driver", "GPU"].iter().any(|w| reason.contains(w)),
                "the reason should name the missing piece: {reason}"
            );
        }
        Ok(p) => {
            eprintln!("CUDA device: {p:?}");
            assert!(p.device_count >= 1 && p.compute_capability.0 >= 3, "{p:?}");
        }
    }
    let auto = Device::select(DeviceRequest::Auto).expect("auto always has a device");
    match &found {
        Err(reason) => {
            assert_eq!(auto.name(), "cpu");
            let err = Device::select(DeviceRequest::Cuda).expect_err("cuda without CUDA is refused").to_string();
            assert!(err.contains(reason.as_str()), "{err}");
        }
        Ok(_) => {
            // A usable GPU whose kernels pass the self-check is picked by auto and by cuda.
            assert_eq!(auto.name(), "cuda", "auto did not pick the GPU");
            assert_eq!(Device::select(DeviceRequest::Cuda).unwrap().name(), "cuda");
        }
    }
}
