// Softmax and log-softmax over the last dimension, one block per row (max, then the sum of
// exponentials, then the write). CPU reference: engine/backend/cpu/softmax.rs.
#include "common.cuh"

extern "C" __global__ void softmax_rows(const float* __restrict__ x, float* __restrict__ y, int cols, int log_output) {
    __shared__ float scratch[WARP];
    const float* row = x + (i64)blockIdx.x * cols;
    float* out = y + (i64)blockIdx.x * cols;
    float m = NEG_INF;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, row[c]);
    m = block_max(m, scratch);
    if (m == NEG_INF && !log_output) {
        // Every entry masked: zeros, as the CPU reference (log-softmax stays -inf - -inf = NaN there too).
        for (int c = threadIdx.x; c < cols; c += blockDim.x) out[c] = 0.0f;
        return;
    }
    float s = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += expf(row[c] - m);
    s = block_sum(s, scratch);
    if (log_output) {
        const float lse = m + logf(s);
        for (int c = threadIdx.x; c < cols; c += blockDim.x) out[c] = row[c] - lse;
    } else {
        const float inv = 1.0f / s;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) out[c] = expf(row[c] - m) * inv;
    }
}
