// The built-in corpus: procedurally generated documents whose bytes can only be predicted
// by looking far back. Each document states key-value facts and a record id at its start,
// then buries recall lines for those facts at random depths inside topic-consistent filler
// text, and ends by repeating the id. docs/builtin-corpus.md describes it in full.
#pragma once

#include <cstdint>
#include <string>

namespace lighthouse::train {

struct CorpusParams {
  uint64_t seed = 0;
  int64_t doc_bytes = 2048;  // mean document length (each document is 0.75x..1.25x of it)
  int64_t facts = 6;         // key-value facts per document
};

// Document `index` of the corpus; a pure function of (params, index).
std::string builtin_document(const CorpusParams& params, int64_t index);

}  // namespace lighthouse::train
