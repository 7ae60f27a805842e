// Choosing tokens where the logits are (one block per row of logits): the decoder's masks
// (suppressed ids, ranges, and the timestamp-dominance rule), then log-softmax, argmax, top-k and
// inverse-CDF sampling, so only ids and their log-probabilities go back to the host.
// CPU reference: engine/backend/token_choice.rs (apply_mask, choose_on_host).
#include "common.cuh"

#define MAX_RANGES 8
#define MAX_TOP_K 16
#define MAX_MASK_IDS 2048
#define NO_INDEX 0x7fffffff

// Must match engine/backend/cuda/token_choice.rs (RowPlan, #[repr(C)]).
struct RowPlan {
    double uniform;  // the sampling draw in [0, 1)
    int ids_offset;  // this row's masked ids: ids[ids_offset .. ids_offset + n_ids], sorted
    int n_ids;
    int n_ranges;
    int split;  // dominance split, -1 for none
    int range_lo[MAX_RANGES];
    int range_hi[MAX_RANGES];
};

__device__ __forceinline__ bool id_listed(const unsigned int* ids, int n, int i) {
    int lo = 0, hi = n;
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if ((int)ids[mid] < i) lo = mid + 1; else hi = mid;
    }
    return lo < n && (int)ids[lo] == i;
}

// The masked logit of id i (masked_below: the dominance rule fired, so ids < split are masked).
__device__ __forceinline__ float masked_logit(const float* row, int i, const RowPlan& p, const unsigned int* ids,
                                              bool masked_below) {
    if (masked_below && i < p.split) return NEG_INF;
    for (int r = 0; r < p.n_ranges; ++r)
        if (i >= p.range_lo[r] && i < p.range_hi[r]) return NEG_INF;
    if (id_listed(ids, p.n_ids, i)) return NEG_INF;
    return row[i];
}

// The larger value wins, the lower index on ties; NaN never wins.
__device__ __forceinline__ void better(float& v, int& i, float ov, int oi) {
    if (ov > v || (ov == v && oi < i)) {
        v = ov;
        i = oi;
    }
}

// Block-wide (value, index) maximum; every thread gets it. sv/si hold WARP entries.
__device__ __forceinline__ void block_argmax(float& v, int& idx, float* sv, int* si) {
    for (int o = WARP / 2; o > 0; o >>= 1)
        better(v, idx, __shfl_xor_sync(FULL_MASK, v, o), __shfl_xor_sync(FULL_MASK, idx, o));
    const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = (blockDim.x + WARP - 1) / WARP;
    __syncthreads();
    if (lane == 0) {
        sv[warp] = v;
        si[warp] = idx;
    }
    __syncthreads();
    v = lane < warps ? sv[lane] : NEG_INF;
    idx = lane < warps ? si[lane] : NO_INDEX;
    for (int o = WARP / 2; o > 0; o >>= 1)
        better(v, idx, __shfl_xor_sync(FULL_MASK, v, o), __shfl_xor_sync(FULL_MASK, idx, o));
}

// max + log(sum(exp(x - max))) of the values this block's threads hold partial sums of.
__device__ __forceinline__ float finish_logsumexp(float m, float s) { return m == NEG_INF ? NEG_INF : m + logf(s); }

// out_ids / out_logprobs per row, k + 2 slots: [0] argmax, [1 .. k] top-k, [k + 1] sample.
// blockDim.x must be ROW_THREADS (the sampling pass keeps one partial sum per thread).
extern "C" __global__ void token_choice(const float* __restrict__ logits, int vocab, const RowPlan* __restrict__ plans,
                                        const unsigned int* __restrict__ ids, int k, float temperature,
                                        unsigned int* __restrict__ out_ids, float* __restrict__ out_logprobs) {
    __shared__ float scratch[WARP];
    __shared__ float sv[WARP];
    __shared__ int si[WARP];
    __shared__ unsigned int s_ids[MAX_MASK_IDS];
    __shared__ int chosen[MAX_TOP_K];
    __shared__ double chunk_weight[ROW_THREADS];

    const RowPlan p = plans[blockIdx.x];
    const float* row = logits + (i64)blockIdx.x * vocab;
    for (int j = threadIdx.x; j < p.n_ids; j += blockDim.x) s_ids[j] = ids[p.ids_offset + j];
    __syncthreads();

    // decoding.py ApplyTimestampRules: "if sum of probability over timestamps is above any
    // other token, sample timestamp" -- computed on log-probabilities, as the reference does.
    bool masked_below = false;
    if (p.split >= 0) {
        float m = NEG_INF;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) m = fmaxf(m, masked_logit(row, i, p, s_ids, false));
        m = block_max(m, scratch);
        float s = 0.0f;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) s += expf(masked_logit(row, i, p, s_ids, false) - m);
        const float lse_all = finish_logsumexp(m, block_sum(s, scratch));
        float m_above = NEG_INF, m_below = NEG_INF;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
            const float lp = masked_logit(row, i, p, s_ids, false) - lse_all;
            if (i >= p.split) m_above = fmaxf(m_above, lp); else m_below = fmaxf(m_below, lp);
        }
        m_above = block_max(m_above, scratch);
        m_below = block_max(m_below, scratch);
        float s_above = 0.0f;
        for (int i = p.split + threadIdx.x; i < vocab; i += blockDim.x)
            s_above += expf(masked_logit(row, i, p, s_ids, false) - lse_all - m_above);
        const float dominant = finish_logsumexp(m_above, block_sum(s_above, scratch));
        masked_below = dominant > m_below;
    }

    // log-softmax of the final masked row.
    float m = NEG_INF;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) m = fmaxf(m, masked_logit(row, i, p, s_ids, masked_below));
    m = block_max(m, scratch);
    float s = 0.0f;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) s += expf(masked_logit(row, i, p, s_ids, masked_below) - m);
    const float lse = finish_logsumexp(m, block_sum(s, scratch));

    unsigned int* oid = out_ids + (i64)blockIdx.x * (k + 2);
    float* olp = out_logprobs + (i64)blockIdx.x * (k + 2);

    // Argmax of the masked logits (torch.argmax: the first maximum).
    float bv = NEG_INF;
    int bi = NO_INDEX;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) better(bv, bi, masked_logit(row, i, p, s_ids, masked_below), i);
    block_argmax(bv, bi, sv, si);
    const int best = bi == NO_INDEX ? 0 : bi;
    if (threadIdx.x == 0) {
        oid[0] = (unsigned int)best;
        olp[0] = masked_logit(row, best, p, s_ids, masked_below) - lse;
    }

    // Top-k by log-probability (torch.topk: ties by lower index), one block argmax per rank.
    for (int r = 0; r < k; ++r) {
        float v = NEG_INF;
        int idx = NO_INDEX;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
            bool taken = false;
            for (int q = 0; q < r; ++q) taken |= chosen[q] == i;
            if (!taken) better(v, idx, masked_logit(row, i, p, s_ids, masked_below) - lse, i);
        }
        block_argmax(v, idx, sv, si);
        if (threadIdx.x == 0) {
            chosen[r] = idx;
            oid[1 + r] = (unsigned int)idx;
            olp[1 + r] = v;
        }
        __syncthreads();
    }

    // Categorical(logits / temperature) by inverse CDF over ids in order: each thread owns a
    // contiguous chunk, thread 0 walks the chunk totals, then the chunk holding the draw.
    if (temperature > 0.0f) {
        const float m_scaled = m / temperature;
        const int chunk = (vocab + blockDim.x - 1) / blockDim.x;
        const int lo = threadIdx.x * chunk, hi = min(vocab, lo + chunk);
        double w = 0.0;
        for (int i = lo; i < hi; ++i) w += exp((double)(masked_logit(row, i, p, s_ids, masked_below) / temperature - m_scaled));
        chunk_weight[threadIdx.x] = w;
        __syncthreads();
        if (threadIdx.x == 0) {
            double total = 0.0;
            for (int t = 0; t < blockDim.x; ++t) total += chunk_weight[t];
            double target = p.uniform * total;
            int picked = -1;
            for (int t = 0; t < blockDim.x && picked < 0; ++t) {
                if (target < chunk_weight[t]) {
                    for (int i = t * chunk; i < min(vocab, (t + 1) * chunk); ++i) {
                        const double wi = exp((double)(masked_logit(row, i, p, s_ids, masked_below) / temperature - m_scaled));
                        if (target < wi) {
                            picked = i;
                            break;
                        }
                        target -= wi;
                    }
                    if (picked < 0) picked = best;  // rounding left the draw past the chunk's last id
                } else {
                    target -= chunk_weight[t];
                }
            }
            if (picked < 0) picked = best;
            oid[k + 1] = (unsigned int)picked;
            olp[k + 1] = masked_logit(row, picked, p, s_ids, masked_below) - lse;
        }
    }
}
