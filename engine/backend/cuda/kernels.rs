//! Every kernel function of kernels/*.cu, loaded into the context once at start-up.

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction};

use super::compile::{self, Origin};

pub struct Kernels {
    functions: HashMap<String, CudaFunction>,
    /// How each file's module was obtained, for the start-up log.
    pub origins: Vec<(&'static str, Origin)>,
}

impl Kernels {
    /// Load every kernel file for a GPU of compute capability `arch`.
    pub fn load(ctx: &Arc<CudaContext>, arch: (i32, i32)) -> Result<Self, String> {
        let mut functions = HashMap::new();
        let mut origins = Vec::new();
        for kernel in compile::kernel_sources() {
            let (image, origin) = compile::module_image(&kernel, arch)?;
            let module = ctx
                .load_module(image)
                .map_err(|e| format!("kernels/{}.cu: the driver refused the module: {e}", kernel.name))?;
            for name in entry_names(&kernel.source) {
                let f = module
                    .load_function(&name)
                    .map_err(|e| format!("kernels/{}.cu: kernel `{name}` not found in the module: {e}", kernel.name))?;
                functions.insert(name, f);
            }
            origins.push((kernel.name, origin));
        }
        Ok(Kernels { functions, origins })
    }

    pub fn get(&self, name: &str) -> Option<&CudaFunction> {
        self.functions.get(name)
    }
}

/// Names of the `extern "C" __global__ void name(` functions of a source file.
pub fn entry_names(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("__global__ void ") {
        rest = &rest[at + "__global__ void ".len()..];
        // `__global__ void __launch_bounds__(..) name(`
        if let Some(after) = rest.strip_prefix("__launch_bounds__(") {
            rest = after.split_once(')').map_or("", |(_, r)| r.trim_start());
        }
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_found_in_every_kernel_file() {
        let all: Vec<String> = compile::kernel_sources().iter().flat_map(|k| entry_names(&k.source)).collect();
        for expected in ["attention", "layer_norm", "softmax_rows", "cast_f32_to_f16", "argmax_rows", "im2col"] {
            assert!(all.iter().any(|n| n == expected), "{expected} missing from {all:?}");
        }
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len(), "two kernel files define the same function: {all:?}");
    }
}
