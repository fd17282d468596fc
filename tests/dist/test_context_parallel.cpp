// The context-parallel Lighthouse op over 2 and 4 in-process Gloo ranks equals the
// single-device op on the same inputs, for both selection rules (the causal one with the
// previous chunk's halo, SPEC.md §10): output and gradients (fp32, 1e-5 relative) and the slot
// tables (each chunk's plan, renumbered globally, is its slice of the single-device plan).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "dist/context_parallel.h"
#include "dist/cp_layout.h"
#include "dist/launch.h"
#include "dist/ranks.h"

namespace lighthouse::dist {
namespace {

Config tiny(int64_t levels, int64_t pool, int64_t topk,
            Selection selection = Selection::Stratified) {
  Config c;
  c.levels = levels;
  c.pool = pool;
  c.topk = topk;
  c.tile_topk = 4;
  c.selection = selection;
  return c;
}

void check_cp(int W, const Config& cfg, int64_t N) {
  at::manual_seed(7 + W + N);
  const int64_t B = 2, H = 4, Hkv = 2, D = 8;
  const at::Tensor q = torch::randn({B, N, H, D}), k = torch::randn({B, N, Hkv, D}),
                   v = torch::randn({B, N, Hkv, D}), dout = torch::randn({B, N, H, D});
  const at::Tensor qr = q.clone().requires_grad_(), kr = k.clone().requires_grad_(),
                   vr = v.clone().requires_grad_();
  const at::Tensor ref = attention(qr, kr, vr, cfg);  // [B, N, H, D]
  ref.backward(dout);
  const Plan whole = plan(q, k, cfg);  // [B, H, S]
  const int64_t n = N / (2 * W), Sc = whole.slots.size(2) / (2 * W);

  std::vector<at::Tensor> o(W), dq(W), dk(W), dv(W), slots(W);
  run_ranks(W, [&](Group& g) {
    const int r = g.rank();
    at::Tensor ql = cp_shard(q, 1, r, W).requires_grad_(),
               kl = cp_shard(k, 1, r, W).requires_grad_(),
               vl = cp_shard(v, 1, r, W).requires_grad_();
    Plan local;
    at::Tensor ol = cp_attention(g, ql, kl, vl, cfg, &local);  // [B, 2n, H, D]
    ol.backward(cp_shard(dout, 1, r, W));
    o[r] = ol.detach();
    dq[r] = ql.grad();
    dk[r] = kl.grad();
    dv[r] = vl.grad();
    slots[r] = local.slots;  // [2B, H, Sc]
  });
  const std::string what = std::to_string(W) + " ranks, N = " + std::to_string(N);
  EXPECT_LE(rel_err(cp_unshard(o, 1), ref.detach()), 1e-5) << what << ": output";
  EXPECT_LE(rel_err(cp_unshard(dq, 1), qr.grad()), 1e-5) << what << ": dq";
  EXPECT_LE(rel_err(cp_unshard(dk, 1), kr.grad()), 1e-5) << what << ": dk";
  EXPECT_LE(rel_err(cp_unshard(dv, 1), vr.grad()), 1e-5) << what << ": dv";
  for (int r = 0; r < W; ++r)
    for (int half = 0; half < 2; ++half) {
      const int64_t c = cp_chunk(r, W, half);
      ASSERT_EQ(slots[r].size(2), Sc) << what;
      const at::Tensor mine = global_slots(slots[r].narrow(0, half * B, B), c, n, W, cfg);
      EXPECT_TRUE(torch::equal(mine, whole.slots.narrow(2, c * Sc, Sc)))
          << what << ": slots of chunk " << c;
    }
}

TEST(ContextParallel, TwoRanksEqualTheSingleDeviceOp) {
  check_cp(2, tiny(3, 2, 32), 128);  // 4 chunks of 2 tiles of 16 positions
  check_cp(2, tiny(2, 4, 16), 64);   // 4 chunks of 1 tile of 16 positions
}

TEST(ContextParallel, FourRanksEqualTheSingleDeviceOp) {
  check_cp(4, tiny(3, 2, 32), 128);  // 8 chunks of 1 tile
}

// The causal rule (SPEC.md §12) with C = 16 > m = 4 coarsest entries per tile, so it decides
// at every level (a tile of at most m entries would take all of them) and the first entry's
// causal score, which reads the previous chunk's last window through the halo, moves the
// running means that later decisions compare with. GQA, B = 2.
TEST(ContextParallel, CausalSelectionTwoRanksEqualsTheSingleDeviceOp) {
  check_cp(2, tiny(3, 2, 16, Selection::Causal), 256);  // 4 chunks of 1 tile of 64 positions
  check_cp(2, tiny(2, 4, 32, Selection::Causal), 512);  // 4 chunks of 2 tiles of 64 positions
}

TEST(ContextParallel, CausalSelectionFourRanksEqualsTheSingleDeviceOp) {
  check_cp(4, tiny(3, 2, 32, Selection::Causal), 512);  // 8 chunks of 1 tile of 64 positions
}

TEST(ContextParallel, ConfigurationsThatAreNotChunkLocalAreRejectedByName) {
  const Config ok = tiny(3, 2, 32);
  EXPECT_EQ(check_context_parallel(ok, 128, 2), "");
  EXPECT_EQ(check_context_parallel(ok, 128, 4), "");
  Config c = ok;
  c.scorer = Scorer::Dilated;
  EXPECT_EQ(check_context_parallel(c, 128, 2).rfind("scorer:", 0), 0u);
  c = ok;
  c.selection = Selection::Causal;  // served with the halo (SPEC.md §10)
  EXPECT_EQ(check_context_parallel(c, 128, 2), "");
  const std::string tiles = check_context_parallel(ok, 128, 3);  // 8 tiles into 6 chunks
  EXPECT_EQ(tiles.rfind("topk:", 0), 0u) << tiles;
  EXPECT_NE(tiles.find("multiple of 6"), std::string::npos) << tiles;
  EXPECT_NE(check_context_parallel(ok, 120, 2), "");  // N not a multiple of p^c x T
  EXPECT_EQ(check_context_parallel(ok, 128, 0).rfind("dist.cp:", 0), 0u);
  run_ranks(3, [&](Group& g) {
    const at::Tensor q = torch::randn({1, 2 * 128 / 6, 2, 4});
    try {
      cp_attention(g, q, q, q, ok);
      ADD_FAILURE() << "no error";
    } catch (const c10::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("cp_attention: topk:"), std::string::npos) << e.what();
    }
  });
}

}  // namespace
}  // namespace lighthouse::dist

namespace lighthouse::dist {
namespace {

// torchrun's workers connect to the agent's store under the attempt's prefix; the in-process
// and local launches host theirs the same way (HostedStore), so no rank binds a port that
// another process could have taken after it was found free.
TEST(Rendezvous, AgentStoreIsReadFromTheEnvironmentAndAHostedStoreHoldsItsPort) {
  ::setenv("RANK", "0", 1);
  ::setenv("WORLD_SIZE", "1", 1);
  ::setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);
  ::setenv("TORCHELASTIC_RESTART_COUNT", "2", 1);
  const LaunchEnv e = launch_env();
  ::setenv("TORCHELASTIC_USE_AGENT_STORE", "False", 1);
  const LaunchEnv own = launch_env();
  for (const char* v : {"RANK", "WORLD_SIZE", "TORCHELASTIC_USE_AGENT_STORE",
                        "TORCHELASTIC_RESTART_COUNT"})
    ::unsetenv(v);
  EXPECT_TRUE(e.agent_store);
  EXPECT_EQ(e.restart_count, 2);
  EXPECT_FALSE(own.agent_store);

  const HostedStore store;
  ASSERT_GT(store.port(), 0);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(store.port()));
  EXPECT_NE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << "port " << store.port();
  ::close(fd);
  run_ranks(2, [](Group& g) {
    std::vector<at::Tensor> t{torch::ones({3}) * (g.rank() + 1)};
    g.all_reduce_sum(t, "test");
    EXPECT_TRUE(torch::equal(t[0], torch::full({3}, 3.0f)));
  });
}

// Gloo connects the full mesh as the group is built; when one rank's connection fails, every
// rank connects again (the hook fails rank 1's first attempt after it succeeded), and when all
// attempts fail each rank's error names the failing rank.
TEST(Rendezvous, AFailedGlooConnectionIsRetriedByEveryRank) {
  ::setenv("LIGHTHOUSE_FAULT_GLOO_INIT", "1:1", 1);
  testing::internal::CaptureStderr();
  run_ranks(3, [](Group& g) {
    std::vector<at::Tensor> t{torch::ones({3}) * (g.rank() + 1)};
    g.all_reduce_sum(t, "test");
    EXPECT_TRUE(torch::equal(t[0], torch::full({3}, 6.0f)));
  });
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("rank 2 of 3: Gloo connection attempt 1 of 3 failed on rank 1: "
                     "LIGHTHOUSE_FAULT_GLOO_INIT; connecting again"),
            std::string::npos)
      << log;

  ::setenv("LIGHTHOUSE_FAULT_GLOO_INIT", "1:3", 1);
  testing::internal::CaptureStderr();
  try {
    run_ranks(2, [](Group&) { ADD_FAILURE() << "the group was built"; });
    ADD_FAILURE() << "no error";
  } catch (const DistError& e) {
    EXPECT_NE(std::string(e.what()).find("dist: rank 0 of 2: init failed"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("Gloo could not connect in 3 attempts; last failure on "
                                         "rank 1: LIGHTHOUSE_FAULT_GLOO_INIT"),
              std::string::npos)
        << e.what();
  }
  testing::internal::GetCapturedStderr();
  ::unsetenv("LIGHTHOUSE_FAULT_GLOO_INIT");
}

}  // namespace
}  // namespace lighthouse::dist
