// fp16 <-> f32 casts: activations go to half precision just before a tensor-core GEMM.
// CPU reference: engine/backend/cpu/math.rs (f16_to_f32) and half::f16::from_f32.
#include "common.cuh"

extern "C" __global__ void cast_f32_to_f16(const float* __restrict__ x, half_bits* __restrict__ y, i64 n) {
    GRID_STRIDE_LOOP(i, n) { y[i] = f2h(x[i]); }
}

extern "C" __global__ void cast_f16_to_f32(const half_bits* __restrict__ x, float* __restrict__ y, i64 n) {
    GRID_STRIDE_LOOP(i, n) { y[i] = h2f(x[i]); }
}
