//! The settings that choose whether a model's products run in bfloat16 on CPUs that have bf16
//! products (`segmentation_compute_type`, `embedding_compute_type`): one list of values and one
//! reading of them.

use crate::error::{Error, Result};

/// `default` and `bfloat16` round the model's chosen weights to bf16 (where the device computes
/// bf16 products), `float32` keeps them as loaded.
pub const BF16_COMPUTE_TYPES: [&str; 3] = ["default", "bfloat16", "float32"];

/// Whether `value` of the setting `setting` asks for bf16 products; a value not in
/// [`BF16_COMPUTE_TYPES`] is an error naming the setting and the values it takes.
pub fn wants_bfloat16(setting: &str, value: &str) -> Result<bool> {
    match value {
        "default" | "bfloat16" => Ok(true),
        "float32" => Ok(false),
        other => Err(Error::Other(format!(
            "unknown {setting} `{other}` (expected one of {})",
            BF16_COMPUTE_TYPES.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_is_read_and_others_are_refused_by_name() {
        assert!(wants_bfloat16("x_compute_type", "default").unwrap());
        assert!(wants_bfloat16("x_compute_type", "bfloat16").unwrap());
        assert!(!wants_bfloat16("x_compute_type", "float32").unwrap());
        let e = wants_bfloat16("x_compute_type", "int8").unwrap_err().to_string();
        assert!(e.contains("x_compute_type `int8`") && e.contains("default, bfloat16, float32"), "{e}");
    }
}
