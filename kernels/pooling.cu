// Statistics pooling over time (pyannote's StatsPool): one block per (sample, channel) row of
// x[B, C, T]; y[b] = [means of the C channels, their standard deviations]. Without weights the
// standard deviation is unbiased (torch.std); with weights w[B, T]: v1 = Σw + 1e-8,
// mean = Σw·x / v1, var = Σw·(x − mean)² / (v1 − Σw² / v1 + 1e-8). CPU reference:
// engine/backend/cpu/pooling.rs.
#include "common.cuh"

#define STATS_EPS 1e-8f

extern "C" __global__ void stats_pool(const float* __restrict__ x, const float* __restrict__ w,
                                      float* __restrict__ y, int channels, int time) {
    __shared__ float scratch[WARP];
    const int row = blockIdx.x;
    const int b = row / channels, c = row % channels;
    const float* xr = x + (i64)row * time;
    const float* wr = w ? w + (i64)b * time : 0;
    float sw = 0.0f, sww = 0.0f, swx = 0.0f;
    for (int t = threadIdx.x; t < time; t += blockDim.x) {
        const float wt = wr ? wr[t] : 1.0f;
        sw += wt;
        sww += wt * wt;
        swx += wt * xr[t];
    }
    sw = block_sum(sw, scratch);
    sww = block_sum(sww, scratch);
    swx = block_sum(swx, scratch);
    float mean, denom;
    if (wr) {
        const float v1 = sw + STATS_EPS;
        mean = swx / v1;
        denom = v1 - sww / v1 + STATS_EPS;
    } else {
        mean = swx / (float)time;
        denom = (float)(time - 1);
    }
    float ss = 0.0f;
    for (int t = threadIdx.x; t < time; t += blockDim.x) {
        const float d = xr[t] - mean;
        ss += (wr ? wr[t] : 1.0f) * d * d;
    }
    ss = block_sum(ss, scratch);
    if (threadIdx.x == 0) {
        y[(i64)b * 2 * channels + c] = mean;
        y[(i64)b * 2 * channels + channels + c] = sqrtf(ss / denom);
    }
}
