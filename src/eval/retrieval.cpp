// The retrieval test's sequences, its teacher-forced scoring by distance bucket, and its JSON
// and table (retrieval.h).
#include "eval/retrieval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace lighthouse::eval {
namespace {

std::string size_label(int64_t n) {
  if (n >= 1024 && n % 1024 == 0) return std::to_string(n / 1024) + "K";
  return std::to_string(n);
}

// The buckets of opts.edges for sequences of `context` tokens (distances stay below it).
std::vector<RetrievalBucket> make_buckets(const std::vector<int64_t>& edges, int64_t context) {
  std::vector<RetrievalBucket> out;
  int64_t lo = 0;
  for (size_t i = 0; i <= edges.size() && lo < context; ++i) {
    RetrievalBucket b;
    b.lo = lo;
    b.hi = i < edges.size() ? std::min(edges[i], context) : context;
    if (b.hi > b.lo) out.push_back(b);
    lo = b.hi;
  }
  return out;
}

void add(RetrievalBucket& b, const RetrievalBucket& q) {
  b.queries += q.queries;
  b.exact += q.exact;
  b.tokens += q.tokens;
  b.tokens_right += q.tokens_right;
  b.loss_sum += q.loss_sum;
}

}  // namespace

at::Tensor retrieval_sequence(const train::TokenStream& text, const train::NeedleConfig& c,
                              const train::NeedleIds& ids, int64_t context, uint64_t seed,
                              int64_t i, train::NeedlePlacement* placement) {
  const int64_t count = (text.size() - 1) / context;
  TORCH_CHECK(count > 0, "retrieval: the held-out text of ", text.size(),
              " tokens holds no sequence of ", context, " + 1");
  auto seq = torch::empty({context + 1}, torch::kLong);  // [N + 1]
  text.read((i % count) * context, context + 1, seq.data_ptr<int64_t>());
  train::NeedlePlacement p =
      train::inject_needles(c, ids, train::needle_seed(train::NeedleStream::Eval, seed, i),
                            seq.data_ptr<int64_t>(), context + 1);
  if (placement) *placement = std::move(p);
  return seq;
}

RetrievalScore score_retrieval(const train::TokenStream& text, const train::NeedleConfig& c,
                               const train::NeedleIds& ids, int64_t context,
                               const RetrievalOptions& opts, const RetrievalLogits& logits,
                               const std::function<void(int64_t, int64_t)>& progress) {
  TORCH_CHECK(opts.sequences > 0, "--retrieval-sequences: must be >= 1, got ", opts.sequences);
  RetrievalScore out;
  out.buckets = make_buckets(opts.edges, context);  // a distance is below the context
  out.all.hi = context;
  const int64_t batch = std::max<int64_t>(1, opts.batch_tokens / context);
  const int64_t V = c.value_length;
  for (int64_t first = 0; first < opts.sequences; first += batch) {
    const int64_t B = std::min(batch, opts.sequences - first);
    std::vector<at::Tensor> seqs;
    std::vector<train::NeedlePlacement> placements(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b)
      seqs.push_back(
          retrieval_sequence(text, c, ids, context, opts.seed, first + b, &placements[b]));
    const at::Tensor tokens = at::stack(seqs);  // [B, N + 1]
    const at::Tensor lg =
        logits(tokens.slice(1, 0, context)).to(at::kFloat).cpu();  // [B, N, vocab]
    for (int64_t b = 0; b < B; ++b) {
      for (const auto& q : placements[b].queries) {
        // Value token t of the query sits at q.value_pos + t; the logits of the position before
        // it predict it.
        const at::Tensor rows = lg[b].slice(0, q.value_pos - 1, q.value_pos - 1 + V);  // [V, vocab]
        const at::Tensor target = tokens[b].slice(0, q.value_pos, q.value_pos + V);     // [V]
        const at::Tensor logp = rows.log_softmax(-1).gather(1, target.unsqueeze(1));   // [V, 1]
        const int64_t right = rows.argmax(-1).eq(target).sum().item<int64_t>();
        RetrievalBucket one;
        one.queries = 1;
        one.exact = right == V ? 1 : 0;
        one.tokens = V;
        one.tokens_right = right;
        one.loss_sum = -logp.sum().item<double>();
        add(out.all, one);
        for (auto& bk : out.buckets)
          if (q.distance >= bk.lo && q.distance < bk.hi) add(bk, one);
      }
    }
    if (progress) progress(first + B, opts.sequences);
  }
  return out;
}

namespace {

nlohmann::json bucket_json(const RetrievalBucket& b) {
  const auto ratio = [](double a, int64_t n) -> nlohmann::json {
    if (n == 0) return nullptr;
    return a / static_cast<double>(n);
  };
  return {{"queries", b.queries},
          {"exact_match", ratio(static_cast<double>(b.exact), b.queries)},
          {"token_accuracy", ratio(static_cast<double>(b.tokens_right), b.tokens)},
          {"loss", ratio(b.loss_sum, b.tokens)}};
}

std::string num(const nlohmann::json& v, const char* fmt) {
  if (!v.is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v.get<double>());
  return buf;
}

}  // namespace

nlohmann::json retrieval_json(const RetrievalScore& s) {
  nlohmann::json j = bucket_json(s.all);
  j["buckets"] = nlohmann::json::array();
  for (const auto& b : s.buckets) {
    nlohmann::json bj = bucket_json(b);
    bj["lo"] = b.lo;
    bj["hi"] = b.hi;
    bj["range"] = b.lo == 0 ? "<" + size_label(b.hi) : size_label(b.lo) + "-" + size_label(b.hi);
    j["buckets"].push_back(bj);
  }
  return j;
}

nlohmann::json retrieval_chance(const train::NeedleConfig& c) {
  const double S = static_cast<double>(c.symbols);
  return {{"exact_match", std::pow(1.0 / S, static_cast<double>(c.value_length))},
          {"token_accuracy", 1.0 / S},
          {"loss", std::log(S)}};
}

std::string retrieval_table(const nlohmann::json& r) {
  std::ostringstream os;
  const bool control = r.contains("window") && r["window"].is_object();
  os << "retrieval (dense mode; teacher-forced greedy exact match of the whole value, loss in "
        "nats per value token)\n\n| distance | queries | exact match | token acc. | loss |";
  if (control)
    os << " window " << r["window"]["size"].get<int64_t>() << ": exact match | loss |";
  os << "\n|---|---|---|---|---|" << (control ? "---|---|" : "") << "\n";
  const auto& full = r.at("full");
  const auto row = [&](const std::string& label, const nlohmann::json& f,
                       const nlohmann::json* w) {
    os << "| " << label << " | " << f.at("queries").get<int64_t>() << " | "
       << num(f.at("exact_match"), "%.3f") << " | " << num(f.at("token_accuracy"), "%.3f")
       << " | " << num(f.at("loss"), "%.3f") << " |";
    if (w)
      os << " " << num(w->at("exact_match"), "%.3f") << " | " << num(w->at("loss"), "%.3f")
         << " |";
    os << "\n";
  };
  for (size_t i = 0; i < full.at("buckets").size(); ++i) {
    const auto& b = full["buckets"][i];
    const nlohmann::json* w = control ? &r["window"]["score"]["buckets"][i] : nullptr;
    row(b.at("range").get<std::string>(), b, w);
  }
  const nlohmann::json* w = control ? &r["window"]["score"] : nullptr;
  row("all", full, w);
  const auto& ch = r.at("chance");
  os << "\nchance: exact match " << num(ch.at("exact_match"), "%.2g") << ", token accuracy "
     << num(ch.at("token_accuracy"), "%.3g") << ", loss " << num(ch.at("loss"), "%.3f");
  if (control)
    os << "; the window control's stack of " << r["window"]["layers"].get<int64_t>()
       << " layers sees " << r["window"]["receptive_field"].get<int64_t>() << " positions back";
  return os.str();
}

}  // namespace lighthouse::eval
