// Embedding lookup from an f32 or f16 table. CPU reference: engine/backend/cpu/layout.rs.
#include "common.cuh"

extern "C" __global__ void embedding_f32(const unsigned int* __restrict__ ids, const float* __restrict__ table,
                                         float* __restrict__ out, i64 n, int dim) {
    GRID_STRIDE_LOOP(i, n) { out[i] = table[(i64)ids[i / dim] * dim + i % dim]; }
}

extern "C" __global__ void embedding_f16(const unsigned int* __restrict__ ids, const half_bits* __restrict__ table,
                                         float* __restrict__ out, i64 n, int dim) {
    GRID_STRIDE_LOOP(i, n) { out[i] = h2f(table[(i64)ids[i / dim] * dim + i % dim]); }
}
