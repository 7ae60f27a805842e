// Layout ops: permute, strided 2-D copies (slice and concat), row gathers (beam reordering).
// CPU reference: engine/backend/cpu/layout.rs.
#include "common.cuh"

#define MAX_RANK 6

// Must match engine/backend/cuda/layout.rs (PermuteShape, #[repr(C)]).
struct PermuteShape {
    int rank;
    int pad;
    i64 out_dims[MAX_RANK];
    i64 in_strides[MAX_RANK];  // stride in the input of each output dimension
};

extern "C" __global__ void permute(const float* __restrict__ x, float* __restrict__ y, i64 n, PermuteShape s) {
    GRID_STRIDE_LOOP(i, n) {
        i64 rest = i, src = 0;
        for (int d = s.rank - 1; d >= 0; --d) {
            src += (rest % s.out_dims[d]) * s.in_strides[d];
            rest /= s.out_dims[d];
        }
        y[i] = x[src];
    }
}

// dst[dst_offset + r*dst_stride + c] = src[src_offset + r*src_stride + c], r < rows, c < cols.
extern "C" __global__ void copy_2d(const float* __restrict__ src, float* __restrict__ dst, i64 rows, i64 cols,
                                   i64 src_stride, i64 dst_stride, i64 src_offset, i64 dst_offset) {
    GRID_STRIDE_LOOP(i, rows * cols) {
        const i64 r = i / cols, c = i % cols;
        dst[dst_offset + r * dst_stride + c] = src[src_offset + r * src_stride + c];
    }
}

// dst[r, :] = src[indices[r], :].
extern "C" __global__ void gather_rows(const float* __restrict__ src, const unsigned int* __restrict__ indices,
                                       float* __restrict__ dst, i64 n, i64 row_len) {
    GRID_STRIDE_LOOP(i, n) { dst[i] = src[(i64)indices[i / row_len] * row_len + i % row_len]; }
}

// gather_rows of f16 values (attention's keys and values kept in half precision), copied as bits.
extern "C" __global__ void gather_rows_f16(const half_bits* __restrict__ src, const unsigned int* __restrict__ indices,
                                           half_bits* __restrict__ dst, i64 n, i64 row_len) {
    GRID_STRIDE_LOOP(i, n) { dst[i] = src[(i64)indices[i / row_len] * row_len + i % row_len]; }
}

// y[r] = cache[sources[r]] (old_run values) followed by new[r] (new_run values): a beam search's
// reordered self-attention cache grown by a step. CPU reference: engine/backend/cpu/layout.rs
// gather_append.
extern "C" __global__ void gather_append(const float* __restrict__ cache, const unsigned int* __restrict__ sources,
                                         const float* __restrict__ fresh, float* __restrict__ dst, i64 n,
                                         i64 old_run, i64 new_run) {
    GRID_STRIDE_LOOP(i, n) {
        const i64 run = old_run + new_run;
        const i64 r = i / run, j = i % run;
        dst[i] = j < old_run ? cache[(i64)sources[r] * old_run + j] : fresh[r * new_run + (j - old_run)];
    }
}

// y[o, j, k] for x[o, len, k] padded along its middle dimension by `before` values (to `out_len`):
// `value` outside, or (reflect) the values mirrored about the edge without repeating it. CPU
// reference: engine/backend/cpu/layout.rs pad.
extern "C" __global__ void pad_dim(const float* __restrict__ x, float* __restrict__ y, i64 n, int len, int before,
                                   int out_len, i64 inner, int reflect, float value) {
    GRID_STRIDE_LOOP(i, n) {
        const i64 k = i % inner;
        const i64 r = i / inner;
        const int j = (int)(r % out_len);
        const i64 o = r / out_len;
        int at = j - before;
        if (reflect) {
            if (at < 0) at = -at;
            else if (at > len - 1) at = 2 * (len - 1) - at;
        } else if (at < 0 || at >= len) {
            y[i] = value;
            continue;
        }
        y[i] = x[(o * len + at) * inner + k];
    }
}
