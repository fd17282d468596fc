// Needle records: their validation, the seeded draw of keys, values, depths and distractors,
// and their injection into a sequence (needles.h).
#include "train/needles.h"

#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "train/rng.h"

namespace lighthouse::train {

int64_t needle_id_count(const NeedleConfig& c) { return c.records > 0 ? 2 + 2 * c.symbols : 0; }

int64_t needle_span(const NeedleConfig& c) { return 1 + c.key_length + c.value_length; }

int64_t needle_distractor_count(const NeedleConfig& c) {
  return static_cast<int64_t>(std::floor(c.distractors * static_cast<double>(c.records)));
}

std::pair<std::string, std::string> check_needles(const NeedleConfig& c, int64_t context) {
  const auto s = [](auto v) { return std::to_string(v); };
  if (c.records < 0) return {"data.needles.records", "must be >= 0 (0 = off), got " + s(c.records)};
  if (c.records == 0) return {};
  if (c.queries < 1) return {"data.needles.queries", "must be >= 1, got " + s(c.queries)};
  if (c.key_length < 1 || c.key_length > 64)
    return {"data.needles.key_length", "must be in [1, 64], got " + s(c.key_length)};
  if (c.value_length < 1 || c.value_length > 64)
    return {"data.needles.value_length", "must be in [1, 64], got " + s(c.value_length)};
  if (c.symbols < 2 || c.symbols > 4096)
    return {"data.needles.symbols", "must be in [2, 4096], got " + s(c.symbols)};
  if (!(c.distractors >= 0 && c.distractors < 1))
    return {"data.needles.distractors", "must be in [0, 1), got " + std::to_string(c.distractors)};
  if (c.min_distance < 0)
    return {"data.needles.min_distance", "must be >= 0, got " + s(c.min_distance)};
  const int64_t distractors = needle_distractor_count(c);
  if (c.queries > c.records - distractors)
    return {"data.needles.queries",
            "must be at most data.needles.records minus its distractors (" + s(c.records) +
                " - " + s(distractors) + " = " + s(c.records - distractors) + "), got " +
                s(c.queries)};
  const int64_t span = needle_span(c);
  if (c.records * span > context / 4)
    return {"data.needles.records",
            s(c.records) + " records of " + s(span) + " tokens cover more than a quarter of "
            "train.context = " + s(context) + "; at most " + s(context / 4 / span)};
  // Every key of a sequence is distinct: 2 x records keys must exist, and a queried key's
  // one-token variants (key_length x (symbols - 1)) must outnumber the records.
  double keys = 1;
  for (int64_t i = 0; i < c.key_length && keys < 1e18; ++i) keys *= static_cast<double>(c.symbols);
  if (keys < 2.0 * static_cast<double>(c.records) ||
      (distractors > 0 && c.key_length * (c.symbols - 1) <= c.records))
    return {"data.needles.symbols",
            "too few keys for " + s(c.records) + " distinct ones per sequence: symbols^key_length "
            "must be >= 2 x records and key_length x (symbols - 1) > records; got symbols = " +
                s(c.symbols) + ", key_length = " + s(c.key_length)};
  const int64_t room = context / 2 - span - c.queries * span;
  if (c.min_distance > room)
    return {"data.needles.min_distance",
            "must leave half of train.context = " + s(context) + " to the text and the " +
                s(c.queries) + " queries: at most " + s(std::max<int64_t>(room, 0)) + ", got " +
                s(c.min_distance)};
  return {};
}

uint64_t needle_seed(NeedleStream stream, uint64_t seed, int64_t index) {
  const uint64_t tag = static_cast<uint64_t>(stream);
  return mix_seed(stream == NeedleStream::Validation ? 0 : seed, static_cast<uint64_t>(index),
                  tag * 0x9e3779b97f4a7c15ULL + 0x4e);
}

namespace {

// Non-overlapping spans of `span` tokens in a sequence.
class Occupancy {
 public:
  Occupancy(int64_t len, int64_t span) : used_(static_cast<size_t>(len), 0), span_(span) {}

  bool free(int64_t p) const {
    for (int64_t t = p; t < p + span_; ++t)
      if (used_[t]) return false;
    return true;
  }
  void take(int64_t p) { std::fill(used_.begin() + p, used_.begin() + p + span_, 1); }

  // A free start in [lo, hi]: `draw()` up to 64 times, then the free start nearest the last
  // draw (check_needles leaves at least half of every range free, so one exists).
  template <typename Draw>
  int64_t place(int64_t lo, int64_t hi, Draw draw) {
    int64_t p = lo;
    for (int i = 0; i < 64; ++i) {
      p = std::clamp<int64_t>(draw(), lo, hi);
      if (free(p)) return take(p), p;
    }
    for (int64_t d = 1; d <= hi - lo; ++d)
      for (const int64_t q : {p - d, p + d})
        if (q >= lo && q <= hi && free(q)) return take(q), q;
    TORCH_INTERNAL_ASSERT(false, "no free needle position in [", lo, ", ", hi, "]");
    return lo;
  }

 private:
  std::vector<char> used_;
  int64_t span_;
};

}  // namespace

NeedlePlacement inject_needles(const NeedleConfig& c, const NeedleIds& ids, uint64_t seed,
                               int64_t* seq, int64_t len) {
  TORCH_INTERNAL_ASSERT(c.records > 0 && ids.symbols == c.symbols);
  SplitMix64 rng(seed);
  const int64_t K = c.key_length, V = c.value_length, S = c.symbols, span = needle_span(c);
  const int64_t Q = c.queries, D = needle_distractor_count(c);
  const int64_t qstart = len - Q * span;  // the queries fill the sequence's end
  TORCH_INTERNAL_ASSERT(qstart > 0);

  NeedlePlacement out;
  std::set<std::vector<int64_t>> keys;
  const auto symbols = [&](int64_t n) {
    std::vector<int64_t> v(static_cast<size_t>(n));
    for (auto& x : v) x = static_cast<int64_t>(rng.below(static_cast<uint64_t>(S)));
    return v;
  };
  const auto fresh_key = [&] {
    std::vector<int64_t> k;
    do k = symbols(K);
    while (keys.count(k));
    keys.insert(k);
    return k;
  };
  // The queried records and the others, then the distractors (their keys and values).
  for (int64_t i = 0; i < c.records - D; ++i) {
    NeedleRecord r;
    r.kind = i < Q ? NeedleKind::Queried : NeedleKind::Other;
    r.key = fresh_key();
    r.value = symbols(V);
    out.records.push_back(std::move(r));
  }
  for (int64_t i = 0; i < D; ++i) {
    NeedleRecord r;
    r.kind = NeedleKind::Distractor;
    r.of = i % Q;
    const std::vector<int64_t>& base = out.records[static_cast<size_t>(r.of)].key;
    // One token changed to another symbol; a variant already in use is drawn again, and
    // after 64 draws the first free variant in order is taken (check_needles: one exists).
    const auto variant = [&](int64_t at, int64_t to) {
      std::vector<int64_t> k = base;
      k[at] = (k[at] + 1 + to) % S;
      if (!keys.count(k)) r.key = std::move(k);
    };
    for (int tries = 0; tries < 64 && r.key.empty(); ++tries)
      variant(static_cast<int64_t>(rng.below(K)), static_cast<int64_t>(rng.below(S - 1)));
    for (int64_t j = 0; j < K * (S - 1) && r.key.empty(); ++j) variant(j / (S - 1), j % (S - 1));
    TORCH_INTERNAL_ASSERT(!r.key.empty(), "no free distractor key");
    keys.insert(r.key);
    r.value = symbols(V);
    out.records.push_back(std::move(r));
  }

  // Depths: a queried record lies log-uniformly min_distance .. qstart before the query block
  // (so every distance bucket gets its share); the others anywhere before the queries.
  Occupancy occ(len, span);
  const int64_t dmin = std::max<int64_t>(c.min_distance, span);
  const double lmin = std::log(static_cast<double>(dmin));
  const double lmax = std::log(static_cast<double>(qstart));
  for (auto& r : out.records) {
    if (r.kind == NeedleKind::Queried)
      r.pos = occ.place(0, qstart - dmin, [&] {
        const double d = std::exp(lmin + rng.uniform() * (lmax - lmin));
        return qstart - static_cast<int64_t>(std::llround(d));
      });
    else
      r.pos = occ.place(0, qstart - span,
                        [&] { return static_cast<int64_t>(rng.below(qstart - span + 1)); });
  }
  const auto write = [&](int64_t p, int64_t marker, const NeedleRecord& r) {
    seq[p] = marker;
    for (int64_t j = 0; j < K; ++j) seq[p + 1 + j] = ids.key(r.key[j]);
    for (int64_t j = 0; j < V; ++j) seq[p + 1 + K + j] = ids.value(r.value[j]);
  };
  for (const auto& r : out.records) write(r.pos, ids.record(), r);
  // Queries in a random order of the queried records.
  const std::vector<int64_t> order = permutation(Q, rng.next());
  for (int64_t j = 0; j < Q; ++j) {
    NeedleQuery q;
    q.pos = qstart + j * span;
    q.record = order[j];
    q.distance = q.pos - out.records[q.record].pos;
    q.value_pos = q.pos + 1 + K;
    write(q.pos, ids.query(), out.records[q.record]);
    out.queries.push_back(q);
  }
  return out;
}

std::function<void(int64_t, int64_t*, int64_t)> needle_hook(const NeedleConfig& c,
                                                            const NeedleIds& ids,
                                                            NeedleStream stream, uint64_t seed) {
  return [c, ids, stream, seed](int64_t index, int64_t* seq, int64_t len) {
    inject_needles(c, ids, needle_seed(stream, seed, index), seq, len);
  };
}

}  // namespace lighthouse::train
