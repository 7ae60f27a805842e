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

// Token embeddings plus positions: ids are rows of seq_len tokens at positions
// offset .. offset + seq_len of pos[P, dim] (Whisper's decoder input in one pass).
extern "C" __global__ void embedding_positions_f32(const unsigned int* __restrict__ ids, const float* __restrict__ table,
                                                   const float* __restrict__ pos, float* __restrict__ out, i64 n, int dim,
                                                   int seq_len, int offset) {
    GRID_STRIDE_LOOP(i, n) {
        const i64 tok = i / dim;
        const int c = (int)(i % dim);
        out[i] = table[(i64)ids[tok] * dim + c] + pos[(i64)(offset + (int)(tok % seq_len)) * dim + c];
    }
}

extern "C" __global__ void embedding_positions_f16(const unsigned int* __restrict__ ids,
                                                   const half_bits* __restrict__ table, const float* __restrict__ pos,
                                                   float* __restrict__ out, i64 n, int dim, int seq_len, int offset) {
    GRID_STRIDE_LOOP(i, n) {
        const i64 tok = i / dim;
        const int c = (int)(i % dim);
        out[i] = h2f(table[(i64)ids[tok] * dim + c]) + pos[(i64)(offset + (int)(tok % seq_len)) * dim + c];
    }
}
