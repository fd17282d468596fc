// Stage 2 (SPEC.md §4-§5): one block per (batch, query head, tile) runs the stratified cascade
// and writes the tile's slots in post-order at its fixed offset j * S_tile, plus the inverse
// table (a last, shorter tile selects min(m, candidates) per level; a small kernel appends the
// tail's level-0 tokens, SPEC.md §2). No sort and no atomics:
//  - exact top-m/2 by a bitwise radix select on unique 64-bit keys (score order bits, then the
//    candidate's position reversed, so ties go to the smaller index and NaN ranks first, the
//    order of ranks_before in src/cpu/select.cpp); each bit is one block-wide count;
//  - the selected entries are compacted in index order with block scans;
//  - post-order slots come from subtree sizes (bottom-up) and subtree starts (top-down).
// The causal rule (SPEC.md §12) replaces the radix selects: the block computes the causal
// scores of a level's candidates into shared memory, then one thread decides them in index
// order (the rule is sequential by definition); compaction and emission are shared.
#include <cmath>

#include "cuda/common.cuh"

namespace lighthouse::cuda {
namespace {

constexpr unsigned kFull = 0xffffffffu;

// Monotone map of the selection order of one score onto unsigned integers: NaN highest, -0 == +0.
__device__ __forceinline__ uint32_t order_bits(float s) {
  if (isnan(s)) return 0xffffffffu;
  if (s == 0.0f) return 0x80000000u;
  const uint32_t b = __float_as_uint(s);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Larger key ranks first; u is the candidate's position in index order.
__device__ __forceinline__ uint64_t rank_key(float s, int u) {
  return (static_cast<uint64_t>(order_bits(s)) << 32) | (0xffffffffu - static_cast<uint32_t>(u));
}

// Block-wide primitives; each has exactly one __syncthreads and alternates the two halves of
// `scratch` ([2][32] ints), so consecutive calls never overwrite a half still being read.
struct BlockSync {
  int* scratch;
  int parity = 0;

  __device__ int sum(int v) {
    v = static_cast<int>(__reduce_add_sync(kFull, static_cast<unsigned>(v)));
    int* buf = scratch + parity * 32;
    parity ^= 1;
    if ((threadIdx.x & 31) == 0) buf[threadIdx.x >> 5] = v;
    __syncthreads();
    int total = 0;
    for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) total += buf[w];
    return total;
  }

  // Exclusive prefix of v in thread order; *total receives the block's sum.
  __device__ int exclusive_scan(int v, int* total) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int incl = v;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const int t = __shfl_up_sync(kFull, incl, off);
      if (lane >= off) incl += t;
    }
    int* buf = scratch + parity * 32;
    parity ^= 1;
    if (lane == 31) buf[warp] = incl;
    __syncthreads();
    int before = 0, all = 0;
    for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) {
      const int t = buf[w];
      if (w < warp) before += t;
      all += t;
    }
    *total = all;
    return before + incl - v;
  }
};

// The smallest threshold t with exactly K active candidates of key >= t (keys are unique).
template <class Key, class Active>
__device__ uint64_t radix_select(int n, int K, const Key& key, const Active& active,
                                 BlockSync& bs) {
  int local = 0;
  for (int u = threadIdx.x; u < n; u += blockDim.x) local += active(u) ? 1 : 0;
  int cnt = bs.sum(local);  // active candidates matching the decided bits of prefix
  int krem = K;             // of which still to take
  uint64_t prefix = 0;
  for (int bit = 63; bit >= 0 && cnt > krem; --bit) {
    const uint64_t hi = ~uint64_t{0} << bit;
    const uint64_t want = prefix | (uint64_t{1} << bit);
    local = 0;
    for (int u = threadIdx.x; u < n; u += blockDim.x)
      local += (active(u) && (key(u) & hi) == want) ? 1 : 0;
    const int ones = bs.sum(local);
    if (ones >= krem) {
      prefix = want;
      cnt = ones;
    } else {
      krem -= ones;
      cnt -= ones;
    }
  }
  return prefix;
}

// Causal score of entry (l, i), SPEC.md §12 (the same expression as src/cpu/select.cpp); the
// window before entry 0 is the halo's (prev [L-1], SPEC.md §10), or none when prev is null.
__device__ __forceinline__ float causal_score(const float* s, const float* prev_s,
                                              const Geometry& geo, int l, int64_t i) {
  const float first = __ldg(s + (i << (l * geo.log2p)));
  if (i == 0 && prev_s == nullptr) return first;
  const float prev = i == 0 ? __ldg(prev_s + l - 1) : __ldg(s + geo.level_offset[l] + i - 1);
  if (isnan(first) || isnan(prev)) return __int_as_float(0x7fc00000);
  return prev > first ? prev : first;
}

__device__ __forceinline__ bool causal_beats(float a, int r, double sum) {
  return isnan(a) | (__dmul_rn(static_cast<double>(a), static_cast<double>(r)) > sum);
}

// Candidates whose causal scores one chunk of shared memory holds.
constexpr int kCausalChunk = 2048;

// Ints of shared memory before the causal scores: the cascade's tables (sel, size, start: c m
// each; pos: (c - 1) m p), rounded up to 4 so that the scores load as float4.
__host__ __device__ constexpr int64_t causal_scores_offset(int64_t c, int64_t m, int64_t p) {
  return (3 * c * m + (c - 1) * m * p + 3) / 4 * 4;
}

// The causal decisions of one level, made by one thread over chunks of candidates. The rule's
// counters are held as the three distances that its conditions compare with zero, so a step is
// a few integer operations with no branch and no multiply (the same decisions as the if / elif
// chain of SPEC.md §12: tq < h follows from tq n < h (r + 1) since r < n):
//   slack = (n - r) - (beta - taken)   a take is forced at 0
//   dq = h (r + 1) - tq n, dk = h (r + 1) - tk n   a half is not ahead of its pace while > 0
struct CausalRule {
  int n, half, r = 0, slack;
  int64_t dq, dk;
  double sum_q = 0.0, sum_k = 0.0;

  __device__ CausalRule(int n_, int beta, int half_)
      : n(n_), half(half_), slack(n_ - beta), dq(half_), dk(half_) {}

  // Decides candidate r with causal scores a (q) and b (k); true when taken.
  __device__ __forceinline__ bool step(float a, float b) {
    const bool forced = slack == 0;
    const bool q_ok = (dq > 0) & causal_beats(a, r, sum_q);
    const bool k_ok = (dk > 0) & causal_beats(b, r, sum_k);
    const bool take = forced | q_ok | k_ok;
    dq += half - ((!forced & q_ok) ? n : 0);
    dk += half - ((!forced & !q_ok & k_ok) ? n : 0);
    slack += take ? 0 : -1;
    sum_q = __dadd_rn(sum_q, static_cast<double>(a));
    sum_k = __dadd_rn(sum_k, static_cast<double>(b));
    ++r;
    return take;
  }

  // The next count candidates, scores cq[0..count) and ck[0..count) (16-byte aligned);
  // flag[u] = taken. Groups of 32 are loaded into registers first, so no load waits behind
  // the flag stores.
  __device__ void decide(const float* __restrict__ cq, const float* __restrict__ ck, int count,
                         char* __restrict__ flag) {
    constexpr int kGroup = 32;
    int i = 0;
    for (; i + kGroup <= count; i += kGroup) {
      float4 a[kGroup / 4], b[kGroup / 4];
#pragma unroll
      for (int u = 0; u < kGroup / 4; ++u) {
        a[u] = reinterpret_cast<const float4*>(cq + i)[u];
        b[u] = reinterpret_cast<const float4*>(ck + i)[u];
      }
      uint32_t mask = 0;
#pragma unroll
      for (int u = 0; u < kGroup / 4; ++u) {
        mask |= static_cast<uint32_t>(step(a[u].x, b[u].x)) << (4 * u);
        mask |= static_cast<uint32_t>(step(a[u].y, b[u].y)) << (4 * u + 1);
        mask |= static_cast<uint32_t>(step(a[u].z, b[u].z)) << (4 * u + 2);
        mask |= static_cast<uint32_t>(step(a[u].w, b[u].w)) << (4 * u + 3);
      }
#pragma unroll
      for (int u = 0; u < kGroup; ++u) flag[i + u] = static_cast<char>((mask >> u) & 1u);
    }
    for (; i < count; ++i) flag[i] = step(cq[i], ck[i]) ? 1 : 0;
  }
};

struct Tile {
  const float* sq;   // [P] this query head
  const float* sk;   // [P] its KV head
  const float* prev_q;  // [L-1] halo of this query head, or null (SPEC.md §10)
  const float* prev_k;  // [L-1] halo of its KV head, or null
  int64_t* slots;    // [S] this head
  int64_t* inverse;  // [P] this head
  int64_t base;      // first slot of the tile
  int64_t start_c;   // first coarsest entry of the tile
  int m, p, log2p, c, C;
  int* sel;    // [c][m]       selected level-local indices per level 1..c, ascending
  int* size;   // [c][m]       subtree sizes of the selected entries
  int* start;  // [c][m]       subtree starts (relative to base) of the selected entries
  int* pos;    // [c-1][m*p]   levels 1..c-1: candidate u's rank in sel, or -1
  float* cq;   // causal only: [chunk] causal q scores of a chunk of the level's candidates
  float* ck;   // causal only: [chunk] causal k scores
  char* flag;  // causal only: [C + m*p] taken flags, level c first, then the current level

  __device__ int* sel_at(int l) const { return sel + (l - 1) * m; }
  __device__ int* size_at(int l) const { return size + (l - 1) * m; }
  __device__ int* start_at(int l) const { return start + (l - 1) * m; }
  __device__ int* pos_at(int l) const { return pos + (l - 1) * m * p; }

  // Level-local index of candidate u at level l (coarsest: the tile's entries; below: the
  // children of the selected entries of level l + 1, in index order).
  __device__ int64_t cand(int l, int u) const {
    return l == c ? start_c + u : static_cast<int64_t>(sel_at(l + 1)[u >> log2p]) * p + (u & (p - 1));
  }

  __device__ void emit(int64_t e, int64_t slot) const {
    slots[slot] = e;
    inverse[e] = slot;
  }
};

__global__ void __launch_bounds__(kThreads) select_kernel(SelectParams prm) {
  extern __shared__ __align__(16) int smem[];
  __shared__ int scratch[64];
  const Geometry& geo = prm.geo;
  const int64_t bh = blockIdx.x / geo.tiles, j = blockIdx.x % geo.tiles;
  const int64_t b = bh / prm.H, h = bh % prm.H;
  const int c = static_cast<int>(geo.c), m = static_cast<int>(geo.m), half = m / 2;
  Tile t;
  t.sq = prm.sq + bh * geo.P;
  const int64_t kv = b * prm.Hx + h / (prm.H / prm.Hx);
  t.sk = prm.sk + kv * geo.P;
  t.prev_q = prm.prev_sq ? prm.prev_sq + bh * (geo.L - 1) : nullptr;
  t.prev_k = prm.prev_sk ? prm.prev_sk + kv * (geo.L - 1) : nullptr;
  t.slots = prm.slots + bh * geo.S;
  t.inverse = prm.inverse + bh * geo.P;
  t.base = j * geo.S_tile;
  t.start_c = j * geo.C;
  t.m = m;
  t.log2p = geo.log2p;
  t.p = 1 << geo.log2p;
  t.c = c;
  t.C = static_cast<int>(tile_entries(geo, j));
  t.sel = smem;
  t.size = t.sel + c * m;
  t.start = t.size + c * m;
  t.pos = t.start + c * m;
  t.cq = reinterpret_cast<float*>(smem + causal_scores_offset(c, m, t.p));  // 16-byte aligned
  t.ck = t.cq + kCausalChunk;
  t.flag = reinterpret_cast<char*>(t.ck + kCausalChunk);
  BlockSync bs{scratch};

  // Cascade, coarsest level first. The thresholds of level c are kept for the emission.
  // budget[l]: entries selected at level l, min(m, candidates); all of them when <= m (a
  // short tile), which thresholds of 0 express for the stratified rule.
  int budget[kMaxLevels] = {};
  uint64_t tq_c = 0, tk_c = 0;
  for (int l = c; l >= 1; --l) {
    const int n = l == c ? t.C : t.p * budget[l + 1];
    budget[l] = n < m ? n : m;
    const float* q = t.sq + geo.level_offset[l];
    const float* k = t.sk + geo.level_offset[l];
    auto key_q = [&](int u) { return rank_key(__ldg(q + t.cand(l, u)), u); };
    auto key_k = [&](int u) { return rank_key(__ldg(k + t.cand(l, u)), u); };
    uint64_t tq = 0, tk = 0;
    char* flags = t.flag + (l == c ? 0 : t.C);
    if (prm.causal) {
      CausalRule rule(n, budget[l], half);  // state lives in thread 0
      for (int r0 = 0; r0 < n; r0 += kCausalChunk) {
        const int count = n - r0 < kCausalChunk ? n - r0 : kCausalChunk;
        for (int u = threadIdx.x; u < count; u += blockDim.x) {
          t.cq[u] = causal_score(t.sq, t.prev_q, geo, l, t.cand(l, r0 + u));
          t.ck[u] = causal_score(t.sk, t.prev_k, geo, l, t.cand(l, r0 + u));
        }
        __syncthreads();
        if (threadIdx.x == 0) rule.decide(t.cq, t.ck, count, flags + r0);
        __syncthreads();
      }
    } else if (n > m) {
      tq = radix_select(n, half, key_q, [](int) { return true; }, bs);
      tk = radix_select(n, half, key_k, [&](int u) { return key_q(u) < tq; }, bs);
    }
    if (l == c) {
      tq_c = tq;
      tk_c = tk;
    }
    auto taken = [&](int u) {
      return prm.causal ? flags[u] != 0 : (key_q(u) >= tq || key_k(u) >= tk);
    };
    int done = 0;  // selected so far, in index order
    for (int u0 = 0; u0 < n; u0 += blockDim.x) {
      const int u = u0 + threadIdx.x;
      const bool flag = u < n && taken(u);
      int chunk;
      const int rank = done + bs.exclusive_scan(flag ? 1 : 0, &chunk);
      if (flag) t.sel_at(l)[rank] = static_cast<int>(t.cand(l, u));
      if (l < c && u < n) t.pos_at(l)[u] = flag ? rank : -1;
      done += chunk;
    }
    __syncthreads();
  }

  // Subtree sizes, bottom-up: a selected level-1 entry holds its p tokens and itself.
  for (int s = threadIdx.x; s < budget[1]; s += blockDim.x) t.size_at(1)[s] = 1 + t.p;
  for (int l = 2; l <= c; ++l) {
    __syncthreads();
    for (int s = threadIdx.x; s < budget[l]; s += blockDim.x) {
      int total = 1;
      for (int ch = 0; ch < t.p; ++ch) {
        const int r = t.pos_at(l - 1)[s * t.p + ch];
        total += r >= 0 ? t.size_at(l - 1)[r] : 1;
      }
      t.size_at(l)[s] = total;
    }
  }
  __syncthreads();

  // Coarsest level: subtree starts are the running sum of subtree sizes in index order; an
  // entry's slot is the last of its subtree (post-order).
  {
    const float* q = t.sq + geo.level_offset[c];
    const float* k = t.sk + geo.level_offset[c];
    int done = 0, offset = 0;
    for (int u0 = 0; u0 < t.C; u0 += blockDim.x) {
      const int u = u0 + threadIdx.x;
      const bool flag =
          u < t.C && (prm.causal ? t.flag[u] != 0
                                 : (rank_key(__ldg(q + t.start_c + u), u) >= tq_c ||
                                    rank_key(__ldg(k + t.start_c + u), u) >= tk_c));
      int chunk_sel, chunk_size;
      const int rank = done + bs.exclusive_scan(flag ? 1 : 0, &chunk_sel);
      const int sz = u < t.C ? (flag ? t.size_at(c)[rank] : 1) : 0;
      const int st = offset + bs.exclusive_scan(sz, &chunk_size);
      if (u < t.C) t.emit(geo.level_offset[c] + t.start_c + u, t.base + st + sz - 1);
      if (flag) t.start_at(c)[rank] = st;
      done += chunk_sel;
      offset += chunk_size;
    }
  }
  // Finer levels: a child's subtree starts after its earlier siblings' subtrees.
  for (int l = c - 1; l >= 1; --l) {
    __syncthreads();
    const int* pos = t.pos_at(l);
    for (int u = threadIdx.x; u < t.p * budget[l + 1]; u += blockDim.x) {
      const int s = u >> t.log2p;
      int st = t.start_at(l + 1)[s];
      for (int v = s * t.p; v < u; ++v) st += pos[v] >= 0 ? t.size_at(l)[pos[v]] : 1;
      const int r = pos[u];
      const int sz = r >= 0 ? t.size_at(l)[r] : 1;
      t.emit(geo.level_offset[l] + t.cand(l, u), t.base + st + sz - 1);
      if (r >= 0) t.start_at(l)[r] = st;
    }
  }
  __syncthreads();
  // Level 0: the p tokens of every selected level-1 entry open its subtree.
  for (int u = threadIdx.x; u < t.p * budget[1]; u += blockDim.x) {
    const int s = u >> t.log2p, ch = u & (t.p - 1);
    t.emit(static_cast<int64_t>(t.sel_at(1)[s]) * t.p + ch, t.base + t.start_at(1)[s] + ch);
  }
}

// The tail's level-0 tokens (SPEC.md §2) close every head's slot table, in position order.
__global__ void __launch_bounds__(kThreads) tail_kernel(SelectParams prm) {
  const Geometry& geo = prm.geo;
  for (int64_t i = global_thread(); i < prm.B * prm.H * geo.tail; i += grid_threads()) {
    const int64_t bh = i / geo.tail, u = i % geo.tail, s = geo.S - geo.tail + u;
    prm.slots[bh * geo.S + s] = geo.Nf + u;
    prm.inverse[bh * geo.P + geo.Nf + u] = s;
  }
}

}  // namespace

size_t select_shared_bytes(const SelectParams& prm) {
  const Geometry& geo = prm.geo;
  const int64_t c = geo.c, p = geo.p, m = geo.m;
  if (!prm.causal) return static_cast<size_t>(3 * c * m + (c - 1) * m * p) * sizeof(int);
  return static_cast<size_t>(causal_scores_offset(c, m, p)) * sizeof(int) +
         2 * kCausalChunk * sizeof(float) + static_cast<size_t>(geo.C + m * p);
}

cudaError_t launch_select(const SelectParams& prm, cudaStream_t stream) {
  cudaError_t err = cudaMemsetAsync(prm.inverse, 0xff,
                                    static_cast<size_t>(prm.B * prm.H * prm.geo.P) * sizeof(int64_t),
                                    stream);  // every int64 = -1: not emitted
  if (err != cudaSuccess) return err;
  const size_t smem = select_shared_bytes(prm);
  if (smem > 48 * 1024) {  // beyond the default limit: opt in (the ops layer checked the max)
    err = cudaFuncSetAttribute(select_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(smem));
    if (err != cudaSuccess) return err;
  }
  if (prm.geo.tiles > 0) {
    select_kernel<<<static_cast<unsigned>(prm.B * prm.H * prm.geo.tiles), kThreads, smem,
                    stream>>>(prm);
    err = launched();
    if (err != cudaSuccess) return err;
  }
  if (prm.geo.tail == 0) return cudaSuccess;
  tail_kernel<<<grid_for(prm.B * prm.H * prm.geo.tail), kThreads, 0, stream>>>(prm);
  return launched();
}

}  // namespace lighthouse::cuda
