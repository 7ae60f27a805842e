// Reductions over the last dimension and argmax, one block per row.
// CPU reference: engine/backend/cpu/layout.rs (reduce, argmax).
#include "common.cuh"

// Codes shared with engine/backend/cuda/layout.rs.
#define RED_SUM 0
#define RED_MEAN 1
#define RED_MAX 2
#define RED_STD 3

extern "C" __global__ void reduce_rows(const float* __restrict__ x, float* __restrict__ y, int cols, int op) {
    __shared__ float scratch[WARP];
    const float* row = x + (i64)blockIdx.x * cols;
    if (op == RED_MAX) {
        float m = NEG_INF;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, row[c]);
        m = block_max(m, scratch);
        if (threadIdx.x == 0) y[blockIdx.x] = m;
        return;
    }
    float s = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += row[c];
    s = block_sum(s, scratch);
    if (op == RED_SUM) {
        if (threadIdx.x == 0) y[blockIdx.x] = s;
        return;
    }
    const float mean = s / cols;
    if (op == RED_MEAN) {
        if (threadIdx.x == 0) y[blockIdx.x] = mean;
        return;
    }
    float v = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        const float d = row[c] - mean;
        v += d * d;
    }
    v = block_sum(v, scratch);
    if (threadIdx.x == 0) y[blockIdx.x] = sqrtf(v / cols);
}

// (value, index) pair that wins: the larger value, the smaller index on ties; NaN never wins.
__device__ __forceinline__ void better(float& v, int& i, float ov, int oi) {
    if (ov > v || (ov == v && oi < i)) {
        v = ov;
        i = oi;
    }
}

// First index of each row's maximum, as torch.argmax.
extern "C" __global__ void argmax_rows(const float* __restrict__ x, unsigned int* __restrict__ out, int cols) {
    __shared__ float sv[WARP];
    __shared__ int si[WARP];
    const float* row = x + (i64)blockIdx.x * cols;
    float v = NEG_INF;
    int idx = 0x7fffffff;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) better(v, idx, row[c], c);
    for (int o = WARP / 2; o > 0; o >>= 1) better(v, idx, __shfl_xor_sync(FULL_MASK, v, o), __shfl_xor_sync(FULL_MASK, idx, o));
    const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = (blockDim.x + WARP - 1) / WARP;
    if (lane == 0) {
        sv[warp] = v;
        si[warp] = idx;
    }
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? sv[lane] : NEG_INF;
        idx = lane < warps ? si[lane] : 0x7fffffff;
        for (int o = WARP / 2; o > 0; o >>= 1)
            better(v, idx, __shfl_xor_sync(FULL_MASK, v, o), __shfl_xor_sync(FULL_MASK, idx, o));
        // A row of NaN/-inf only: index 0, as the CPU reference.
        if (lane == 0) out[blockIdx.x] = idx == 0x7fffffff ? 0u : (unsigned int)idx;
    }
}
