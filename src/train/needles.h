// Needle records (data.needles, SPEC.md §13): key->value records written over the text of a
// sequence at random depths, and queries at its end that repeat a record's key, whose value
// the model can only produce by retrieving the record. Keys and values are made of ids
// reserved past the data's vocabulary (never in text), drawn fresh for every sequence from a
// seed that depends on the stream (training, validation, eval), its seed and the sequence's
// index alone: two runs with the same run.seed see the same needles in the same batches, and
// every run's validation needles are the same.
//
//   record:  R k_1 .. k_K v_1 .. v_V        (R = ids.record(), k = ids.key(s), v = ids.value(s))
//   query:   Q k_1 .. k_K v_1 .. v_V        (Q = ids.query(); the queries close the sequence)
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "train/run_config.h"

namespace lighthouse::train {

using NeedleConfig = RunConfig::Data::Needles;

// The ids reserved for needles, from `base` (the data's vocabulary size) up: the record and
// query markers, then `symbols` key ids, then `symbols` value ids.
struct NeedleIds {
  int64_t base = 0, symbols = 0;

  int64_t record() const { return base; }
  int64_t query() const { return base + 1; }
  int64_t key(int64_t s) const { return base + 2 + s; }
  int64_t value(int64_t s) const { return base + 2 + symbols + s; }
  int64_t end() const { return base + 2 + 2 * symbols; }  // one past the last reserved id
};

// Ids data.needles reserves: 0 when off (records = 0), else 2 + 2 x symbols.
int64_t needle_id_count(const NeedleConfig& c);
// Tokens of one record or query: 1 + key_length + value_length.
int64_t needle_span(const NeedleConfig& c);
// Distractor records per sequence: floor(distractors x records).
int64_t needle_distractor_count(const NeedleConfig& c);

// The first problem of `c` for sequences of `context` tokens, as {key, message}; key "" = none.
// run_config_check.cpp reports it (the one validation of data.needles).
std::pair<std::string, std::string> check_needles(const NeedleConfig& c, int64_t context);

enum class NeedleKind { Queried, Distractor, Other };

struct NeedleRecord {
  int64_t pos = 0;               // its marker's position in the sequence
  std::vector<int64_t> key;      // [key_length] symbols (not ids)
  std::vector<int64_t> value;    // [value_length] symbols
  NeedleKind kind = NeedleKind::Other;
  int64_t of = -1;               // a distractor: the queried record whose key it varies
};

struct NeedleQuery {
  int64_t pos = 0;       // its marker's position
  int64_t record = 0;    // the queried record (index into NeedlePlacement::records)
  int64_t distance = 0;  // pos - the record's pos
  int64_t value_pos = 0; // position of the query's first value token (pos + 1 + key_length)
};

struct NeedlePlacement {
  std::vector<NeedleRecord> records;  // the queried ones, the others, then the distractors
  std::vector<NeedleQuery> queries;   // in position order
};

// Which stream a sequence belongs to: each has its own seeds.
enum class NeedleStream : uint64_t { Train = 0x7a1, Validation = 0x5a1, Eval = 0xe5a1 };
// The seed of sequence `index` of a stream. Validation ignores `seed` (the same in every run).
uint64_t needle_seed(NeedleStream stream, uint64_t seed, int64_t index);

// Writes the records and queries of one sequence, drawn from `seed`, over seq[0, len) and
// returns where they are. len must be train.context + 1 for the config check_needles passed.
NeedlePlacement inject_needles(const NeedleConfig& c, const NeedleIds& ids, uint64_t seed,
                               int64_t* seq, int64_t len);

// inject_needles as a SequenceLoader hook: sequence `index` of `stream` with seed
// needle_seed(stream, seed, index).
std::function<void(int64_t, int64_t*, int64_t)> needle_hook(const NeedleConfig& c,
                                                            const NeedleIds& ids,
                                                            NeedleStream stream, uint64_t seed);

}  // namespace lighthouse::train
