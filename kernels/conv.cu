// Conv1d as im2col + a cuBLAS GEMM (the column matrix of Whisper's stem is a few MB), and
// max-pool. CPU reference: engine/backend/cpu/conv.rs.
#include "common.cuh"

// cols[b, ci*K + kk, to] = x[b, ci, to*stride - pad + kk*dilation] (0 outside the input).
extern "C" __global__ void im2col(const float* __restrict__ x, float* __restrict__ cols, i64 n, int channels, int time,
                                  int kernel, int stride, int padding, int dilation, int time_out) {
    GRID_STRIDE_LOOP(i, n) {
        const int to = (int)(i % time_out);
        const i64 r = i / time_out;
        const int kk = (int)(r % kernel);
        const i64 bc = r / kernel;  // b * channels + ci
        const int ti = to * stride - padding + kk * dilation;
        cols[i] = (ti >= 0 && ti < time) ? x[bc * time + ti] : 0.0f;
    }
}

// y[row, i] = max(x[row, i*stride .. i*stride + kernel]) over rows of x[B*C, T].
extern "C" __global__ void max_pool1d(const float* __restrict__ x, float* __restrict__ y, i64 n, int time, int kernel,
                                      int stride, int time_out) {
    GRID_STRIDE_LOOP(i, n) {
        const i64 r = i / time_out;
        const int start = (int)(i % time_out) * stride;
        float m = NEG_INF;
        for (int j = 0; j < kernel; ++j) m = fmaxf(m, x[r * time + start + j]);
        y[i] = m;
    }
}
