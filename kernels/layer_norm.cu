// Layer norm over the last dimension, one block per row: mean, then the variance of the
// centred values (two passes; the row stays in L1/L2). CPU reference: engine/backend/cpu/norm.rs.
#include "common.cuh"

extern "C" __global__ void layer_norm(const float* __restrict__ x, const float* __restrict__ gamma,
                                      const float* __restrict__ beta, float* __restrict__ y, int cols, float eps) {
    __shared__ float scratch[WARP];
    const float* row = x + (i64)blockIdx.x * cols;
    float* out = y + (i64)blockIdx.x * cols;
    float s = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += row[c];
    const float mean = block_sum(s, scratch) / cols;
    float v = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        const float d = row[c] - mean;
        v += d * d;
    }
    const float inv = rsqrtf(block_sum(v, scratch) / cols + eps);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[c] = (row[c] - mean) * inv * gamma[c] + beta[c];
}
