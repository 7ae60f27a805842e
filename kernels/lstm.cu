// One nn.LSTM time step after the two GEMMs: gates = x_t·W_ihᵀ + b_ih (precomputed for every
// step, gx [B, T, 4H]) + h·W_hhᵀ + b_hh (gh [B, 4H]); gate order i, f, g, o as PyTorch.
// Updates c and h in place and writes h to out[b, t, :]. CPU reference: engine/backend/cpu/lstm.rs.
#include "common.cuh"

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

extern "C" __global__ void lstm_cell(const float* __restrict__ gx, const float* __restrict__ gh, float* __restrict__ c,
                                     float* __restrict__ h, float* __restrict__ out, int batch, int steps, int hidden,
                                     int t) {
    GRID_STRIDE_LOOP(i, (i64)batch * hidden) {
        const i64 b = i / hidden;
        const int j = (int)(i % hidden);
        const float* x = gx + (b * steps + t) * 4 * hidden;
        const float* r = gh + b * 4 * hidden;
        const float ig = sigmoid(x[j] + r[j]);
        const float fg = sigmoid(x[hidden + j] + r[hidden + j]);
        const float gg = tanhf(x[2 * hidden + j] + r[2 * hidden + j]);
        const float og = sigmoid(x[3 * hidden + j] + r[3 * hidden + j]);
        const float cn = fg * c[i] + ig * gg;
        c[i] = cn;
        const float hn = og * tanhf(cn);
        h[i] = hn;
        out[(b * steps + t) * hidden + j] = hn;
    }
}
