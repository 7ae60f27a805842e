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

// Overlapping windows of x[C, T], each scaled and shifted, their magnitudes max-pooled over `pool` frames:
// y[w, c, j] = max_{i < pool} |x[c, w*hop + j*pool + i] * scale[w] + shift[w, c]| (y is [W, C, pooled]).
// CPU reference: engine/backend/cpu/conv.rs windows_abs_max_pool.
extern "C" __global__ void windows_abs_max_pool(const float* __restrict__ x, const float* __restrict__ scale,
                                                const float* __restrict__ shift, float* __restrict__ y, i64 n,
                                                int channels, i64 time, i64 hop, int pooled, int pool) {
    GRID_STRIDE_LOOP(i, n) {
        const int j = (int)(i % pooled);
        const i64 row = i / pooled;  // w * channels + c
        const int c = (int)(row % channels);
        const i64 w = row / channels;
        const float* src = x + c * time + w * hop + (i64)j * pool;
        const float a = scale[w], b = shift[row];
        float m = NEG_INF;
        // Rounded product then sum (no fused multiply-add): the CPU reference's rounding.
        for (int k = 0; k < pool; ++k) m = fmaxf(m, fabsf(__fadd_rn(__fmul_rn(src[k], a), b)));
        y[i] = m;
    }
}

// Conv2d's column matrix: cols[b, (ci*KH + kh)*KW + kw, oh*W_out + ow] =
// x[b, ci, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw] (0 outside the input). CPU reference:
// engine/backend/cpu/conv.rs conv2d.
extern "C" __global__ void im2col2d(const float* __restrict__ x, float* __restrict__ cols, i64 n, int height,
                                    int width, int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_h,
                                    int pad_w, int dilation_h, int dilation_w, int h_out, int w_out) {
    const i64 plane = (i64)h_out * w_out;
    GRID_STRIDE_LOOP(i, n) {
        const int p = (int)(i % plane);
        const int oh = p / w_out, ow = p % w_out;
        const i64 r = i / plane;  // (bc * KH + kh) * KW + kw
        const int kw = (int)(r % kernel_w);
        const int kh = (int)((r / kernel_w) % kernel_h);
        const i64 bc = r / ((i64)kernel_w * kernel_h);  // b * channels + ci
        const int ih = oh * stride_h - pad_h + kh * dilation_h;
        const int iw = ow * stride_w - pad_w + kw * dilation_w;
        cols[i] = (ih >= 0 && ih < height && iw >= 0 && iw < width) ? x[(bc * height + ih) * width + iw] : 0.0f;
    }
}
