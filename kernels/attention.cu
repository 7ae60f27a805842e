// Multi-head scaled dot-product attention, flash-style: keys and values stream through shared
// memory in tiles of KEY_TILE with an online softmax, so the Tq x Tk score matrix never exists.
// One warp per query row; a block holds blockDim.y consecutive queries of one (batch, head), which
// share every key tile. The same kernel serves the encoder (1500 x 1500) and the decoder step
// (one query against the KV cache or the encoder output).
// CPU reference: engine/backend/cpu/attention.rs.
//
// q [Bq, Tq, H*Dh]; k, v [Bq/group, Tk, H*Dh] (f32, or f16 in attention_f16kv); out [Bq, Tq, H*Dh]. Query rows share key/value rows
// in contiguous groups of `group` (the beams of one audio). causal: query i sees keys
// 0..=i + (Tk - Tq). kv_lens (null: every row has Tk keys) [Bq/group]: key/value row b has only
// its first kv_lens[b] keys, the rest being padding of a batch of different lengths; the tiles
// stop there, so a padded sequence's result is its unpadded one's.
#include "common.cuh"

#define KEY_TILE 32
// Largest head size: each lane accumulates DH_MAX / WARP output dimensions in registers.
#define DH_MAX 128
// Most warps (queries) per block, engine/backend/cuda/attention.rs QUERIES_PER_BLOCK.
#define MAX_WARPS 16

// Keys and values as stored: f32, or f16 (kept in half precision to halve their reads), widened
// as they are staged into shared memory.
__device__ __forceinline__ float kv_value(const float* p, i64 i) { return p[i]; }
__device__ __forceinline__ float kv_value(const half_bits* p, i64 i) { return h2f(p[i]); }

template <typename KV>
__device__ __forceinline__ void attention_body(const float* __restrict__ q, const KV* __restrict__ k,
                                               const KV* __restrict__ v, float* __restrict__ out, int tq, int tk,
                                               int heads, int dh, int group, int causal,
                                               const int* __restrict__ kv_lens, float scale) {
    extern __shared__ float smem[];
    const int warps = blockDim.y;
    float* ks = smem;                      // KEY_TILE x (dh + 1): padded, conflict-free column reads
    float* vs = ks + KEY_TILE * (dh + 1);  // KEY_TILE x dh
    float* qs = vs + KEY_TILE * dh;        // warps x dh, pre-scaled
    const int lane = threadIdx.x, w = threadIdx.y;
    const int h = blockIdx.y, bq = blockIdx.z, bk = bq / group;
    const int qi = blockIdx.x * warps + w;
    // Uniform per warp, so the warp-wide shuffles below always see all 32 lanes.
    const bool active = qi < tq;
    const i64 row = (i64)heads * dh;

    const float* qrow = q + ((i64)bq * tq + (active ? qi : 0)) * row + (i64)h * dh;
    for (int d = lane; d < dh; d += WARP) qs[w * dh + d] = active ? qrow[d] * scale : 0.0f;

    const int offset = tk - tq;
    const int keys = kv_lens ? min(tk, kv_lens[bk]) : tk;  // this key/value row's keys
    const int last_q = min(tq - 1, (int)blockIdx.x * warps + warps - 1);
    const int block_end = causal ? max(0, min(keys, last_q + offset + 1)) : keys;
    const int my_end = causal ? min(keys, qi + offset + 1) : keys;
    const KV* kbase = k + (i64)bk * tk * row + (i64)h * dh;
    const KV* vbase = v + (i64)bk * tk * row + (i64)h * dh;

    float m = NEG_INF, l = 0.0f;
    float acc[DH_MAX / WARP];
#pragma unroll
    for (int c = 0; c < DH_MAX / WARP; ++c) acc[c] = 0.0f;

    for (int t0 = 0; t0 < block_end; t0 += KEY_TILE) {
        const int n = min(KEY_TILE, block_end - t0);
        __syncthreads();  // the previous tile is consumed (and qs is written, on the first pass)
        for (int idx = w * WARP + lane; idx < n * dh; idx += warps * WARP) {
            const int j = idx / dh, d = idx % dh;
            ks[j * (dh + 1) + d] = kv_value(kbase, (i64)(t0 + j) * row + d);
            vs[j * dh + d] = kv_value(vbase, (i64)(t0 + j) * row + d);
        }
        __syncthreads();
        if (!active) continue;
        // Lane j scores key t0 + j.
        float s = NEG_INF;
        if (lane < n && t0 + lane < my_end) {
            float dot = 0.0f;
            for (int d = 0; d < dh; ++d) dot += qs[w * dh + d] * ks[lane * (dh + 1) + d];
            s = dot;
        }
        const float new_m = fmaxf(m, warp_max(s));
        if (new_m == NEG_INF) continue;  // nothing visible yet (warp-uniform)
        const float p = s == NEG_INF ? 0.0f : expf(s - new_m);
        const float correction = expf(m - new_m);  // 0 on the first visible tile
        l = l * correction + warp_sum(p);
#pragma unroll
        for (int c = 0; c < DH_MAX / WARP; ++c) acc[c] *= correction;
        for (int j = 0; j < n; ++j) {
            const float pj = __shfl_sync(FULL_MASK, p, j);
#pragma unroll
            for (int c = 0; c < DH_MAX / WARP; ++c) {
                const int d = lane + c * WARP;
                if (d < dh) acc[c] += pj * vs[j * dh + d];
            }
        }
        m = new_m;
    }
    if (!active) return;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    float* orow = out + ((i64)bq * tq + qi) * row + (i64)h * dh;
#pragma unroll
    for (int c = 0; c < DH_MAX / WARP; ++c) {
        const int d = lane + c * WARP;
        if (d < dh) orow[d] = acc[c] * inv;
    }
}

extern "C" __global__ void __launch_bounds__(MAX_WARPS * WARP) attention(const float* __restrict__ q, const float* __restrict__ k,
                                     const float* __restrict__ v, float* __restrict__ out, int tq, int tk, int heads,
                                     int dh, int group, int causal, const int* __restrict__ kv_lens,
                                     float scale) {
    attention_body(q, k, v, out, tq, tk, heads, dh, group, causal, kv_lens, scale);
}

// attention with keys and values in half precision (a decoder's cross-attention over the audio
// frames, rounded once per window): the same sums over the f16 values widened.
extern "C" __global__ void __launch_bounds__(MAX_WARPS * WARP) attention_f16kv(const float* __restrict__ q,
                                     const half_bits* __restrict__ k, const half_bits* __restrict__ v,
                                     float* __restrict__ out, int tq, int tk, int heads, int dh, int group, int causal,
                                     const int* __restrict__ kv_lens, float scale) {
    attention_body(q, k, v, out, tq, tk, heads, dh, group, causal, kv_lens, scale);
}
