// nn.GroupNorm / nn.InstanceNorm1d (groups == channels) on [B, C, T], and inference-mode
// nn.BatchNorm1d. One block per (sample, group); statistics over (C/groups)·T values.
// CPU reference: engine/backend/cpu/norm.rs.
#include "common.cuh"

// gamma/beta may be null (no affine).
extern "C" __global__ void group_norm(const float* __restrict__ x, const float* __restrict__ gamma,
                                      const float* __restrict__ beta, float* __restrict__ y, int channels, int time,
                                      int groups, float eps) {
    __shared__ float scratch[WARP];
    const int per_group = channels / groups;
    const int sample = blockIdx.x / groups, group = blockIdx.x % groups;
    const i64 base = ((i64)sample * channels + (i64)group * per_group) * time;
    const i64 count = (i64)per_group * time;
    float s = 0.0f;
    for (i64 i = threadIdx.x; i < count; i += blockDim.x) s += x[base + i];
    const float mean = block_sum(s, scratch) / (float)count;
    float v = 0.0f;
    for (i64 i = threadIdx.x; i < count; i += blockDim.x) {
        const float d = x[base + i] - mean;
        v += d * d;
    }
    const float inv = rsqrtf(block_sum(v, scratch) / (float)count + eps);
    for (i64 i = threadIdx.x; i < count; i += blockDim.x) {
        const int c = group * per_group + (int)(i / time);
        float r = (x[base + i] - mean) * inv;
        if (gamma) r *= gamma[c];
        if (beta) r += beta[c];
        y[base + i] = r;
    }
}

// x is [B, C, T] (time = 1 for [B, C]); relu != 0 clamps the result at 0 (NaN stays NaN).
extern "C" __global__ void batch_norm(const float* __restrict__ x, const float* __restrict__ mean,
                                      const float* __restrict__ var, const float* __restrict__ gamma,
                                      const float* __restrict__ beta, float* __restrict__ y, i64 n, int channels,
                                      int time, float eps, int relu) {
    GRID_STRIDE_LOOP(i, n) {
        const int c = (int)((i / time) % channels);
        const float r = (x[i] - mean[c]) * rsqrtf(var[c] + eps) * gamma[c] + beta[c];
        y[i] = (relu && r < 0.0f) ? 0.0f : r;
    }
}
