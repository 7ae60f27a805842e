// Pointwise activations, alone or fused with the bias of the GEMM before them (one pass over
// the GEMM output instead of two). CPU reference: engine/backend/cpu/elementwise.rs.
#include "common.cuh"

// Codes shared with engine/backend/cuda/elementwise.rs (ActivationCode).
#define ACT_IDENTITY 0
#define ACT_GELU 1
#define ACT_RELU 2
#define ACT_LEAKY_RELU 3
#define ACT_SIGMOID 4
#define ACT_TANH 5
#define ACT_EXP 6
#define ACT_LOG 7
#define ACT_SQRT 8
#define ACT_ABS 9

// M_SQRT1_2 of the reference's erf GELU: x * 0.5 * (1 + erf(x / sqrt(2))).
#define SQRT1_2 0.70710678118654752440f

__device__ __forceinline__ float activate(float x, int op, float param) {
    switch (op) {
        case ACT_GELU: return 0.5f * x * (1.0f + erff(x * SQRT1_2));
        case ACT_RELU: return fmaxf(x, 0.0f);
        case ACT_LEAKY_RELU: return x >= 0.0f ? x : x * param;
        case ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
        case ACT_TANH: return tanhf(x);
        case ACT_EXP: return expf(x);
        case ACT_LOG: return logf(fmaxf(x, param));
        case ACT_SQRT: return sqrtf(x);
        case ACT_ABS: return fabsf(x);
        default: return x;
    }
}

extern "C" __global__ void activation(const float* __restrict__ x, float* __restrict__ y, i64 n, int op, float param) {
    GRID_STRIDE_LOOP(i, n) { y[i] = activate(x[i], op, param); }
}

// y[r, c] = act(x[r, c] + bias[c]) over rows of `cols` (in place allowed: y == x).
extern "C" __global__ void bias_activation(const float* x, const float* __restrict__ bias, float* y, i64 n, int cols,
                                           int op, float param) {
    GRID_STRIDE_LOOP(i, n) { y[i] = activate(x[i] + bias[i % cols], op, param); }
}

// y[r, c] = x[r, c] + bias[c] + residual[r, c] (bias may be null): a linear layer's bias and the
// block's skip connection in one pass over the GEMM output; in place allowed (y == x).
extern "C" __global__ void bias_residual(const float* x, const float* __restrict__ bias,
                                         const float* __restrict__ residual, float* y, i64 n, int cols) {
    GRID_STRIDE_LOOP(i, n) { y[i] = residual[i] + (x[i] + (bias ? bias[i % cols] : 0.0f)); }
}

// y[b, c, t] = x[b, c, t] + bias[c] on channels-first data (conv outputs); in place allowed.
extern "C" __global__ void bias_channels(const float* x, const float* __restrict__ bias, float* y, i64 n, int channels,
                                         int time) {
    GRID_STRIDE_LOOP(i, n) { y[i] = x[i] + bias[(i / time) % channels]; }
}

extern "C" __global__ void scale(const float* __restrict__ x, float* __restrict__ y, i64 n, float s) {
    GRID_STRIDE_LOOP(i, n) { y[i] = x[i] * s; }
}
