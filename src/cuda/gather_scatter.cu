// The launchers of the data-movement kernels of gather_scatter.cuh in their shipped forms.
#include <type_traits>

#include "cuda/gather_scatter.cuh"

namespace lighthouse::cuda {
namespace {

// Calls f(std::integral_constant<int, L>) for the runtime L in [2, kMaxScatterLevels].
template <int L = 2, typename F>
cudaError_t dispatch_levels(int levels, F&& f) {
  if constexpr (L > kMaxScatterLevels) {
    return cudaErrorInvalidValue;
  } else {
    if (levels == L) return f(std::integral_constant<int, L>{});
    return dispatch_levels<L + 1>(levels, f);
  }
}

bool bad_dim(int64_t D) { return D % kPack != 0 || D <= 0 || D > kMaxDim; }

// The kernels that look slots up through the inverse hold them as 32-bit ints.
bool bad_slots(int64_t S) { return S >= (int64_t{1} << 31); }

}  // namespace

cudaError_t launch_gather(const GatherParams& prm, cudaStream_t stream) {
  if (bad_dim(prm.D)) return cudaErrorInvalidValue;
  const Lanes ln = lanes_for(prm.D);
  return dispatch_dtype(prm.dtype, [&](auto tag) {
    gather_kernel<decltype(tag)><<<grid3(prm.S, ln, prm.H, prm.B), kThreads, 0, stream>>>(prm, ln);
    return launched();
  });
}

cudaError_t launch_scatter(const ScatterParams& prm, cudaStream_t stream) {
  if (bad_dim(prm.D) || bad_slots(prm.S)) return cudaErrorInvalidValue;
  const Lanes ln = lanes_for(prm.D);
  const dim3 grid = grid3(((prm.geo.N >> prm.geo.log2p) + 1) * prm.H, ln, 1, prm.B);
  return dispatch_dtype(prm.dtype, [&](auto tag) {
    return dispatch_levels(prm.geo.L, [&](auto levels) {
      scatter_kernel<decltype(tag), levels()><<<grid, kThreads, 0, stream>>>(prm, ln);
      return launched();
    });
  });
}

cudaError_t launch_scatter_backward(const ScatterBackwardParams& prm, cudaStream_t stream) {
  if (bad_dim(prm.D)) return cudaErrorInvalidValue;
  const Lanes ln = lanes_for(prm.D);
  return dispatch_dtype(prm.dtype, [&](auto tag) {
    scatter_backward_kernel<decltype(tag)>
        <<<grid3(prm.S, ln, prm.H, prm.B), kThreads, 0, stream>>>(prm, ln);
    return launched();
  });
}

cudaError_t launch_gather_backward(const GatherBackwardParams& prm, cudaStream_t stream) {
  if (bad_dim(prm.D) || bad_slots(prm.S)) return cudaErrorInvalidValue;
  const Lanes ln = lanes_for(prm.D);
  const int64_t windows = (prm.geo.N + prm.geo.p - 1) >> prm.geo.log2p;
  const dim3 grid = grid3(windows * prm.Hx, ln, 1, prm.B);
  const bool fused = prm.grad_q != nullptr;
  if (fused != (prm.dq != nullptr) || fused != (prm.grad2 != nullptr) ||
      fused != (prm.dx2 != nullptr))
    return cudaErrorInvalidValue;  // the fused form needs all four of its pointers
  return dispatch_dtype(prm.dtype, [&](auto tag) {
    return dispatch_levels(prm.geo.L, [&](auto levels) {
      using T = decltype(tag);
      constexpr int L = levels();
      const bool group1 = prm.H == prm.Hx;
      if (fused && group1)
        gather_backward_kernel<T, L, true, true><<<grid, kThreads, 0, stream>>>(prm, ln);
      else if (fused)
        gather_backward_kernel<T, L, true, false><<<grid, kThreads, 0, stream>>>(prm, ln);
      else if (group1)
        gather_backward_kernel<T, L, false, true><<<grid, kThreads, 0, stream>>>(prm, ln);
      else
        gather_backward_kernel<T, L, false, false><<<grid, kThreads, 0, stream>>>(prm, ln);
      return launched();
    });
  });
}

}  // namespace lighthouse::cuda
