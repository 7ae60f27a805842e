// a op b with b broadcast against a (NumPy rules; the host folds the shapes to at most
// MAX_RANK dimensions and passes b's strides, 0 where b is broadcast).
// CPU reference: engine/backend/cpu/elementwise.rs (binary).
#include "common.cuh"

#define MAX_RANK 6
#define OP_ADD 0
#define OP_SUB 1
#define OP_MUL 2
#define OP_DIV 3

// Must match engine/backend/cuda/elementwise.rs (BroadcastShape, #[repr(C)]).
struct BroadcastShape {
    int rank;
    int pad;
    i64 dims[MAX_RANK];
    i64 b_strides[MAX_RANK];
};

extern "C" __global__ void binary_broadcast(const float* __restrict__ a, const float* __restrict__ b,
                                            float* __restrict__ y, i64 n, int op, BroadcastShape s) {
    GRID_STRIDE_LOOP(i, n) {
        i64 rest = i, bi = 0;
        for (int d = s.rank - 1; d >= 0; --d) {
            const i64 idx = rest % s.dims[d];
            rest /= s.dims[d];
            bi += idx * s.b_strides[d];
        }
        const float x = a[i], z = b[bi];
        float r;
        switch (op) {
            case OP_ADD: r = x + z; break;
            case OP_SUB: r = x - z; break;
            case OP_MUL: r = x * z; break;
            default: r = x / z; break;
        }
        y[i] = r;
    }
}
