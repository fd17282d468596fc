// Generator of the built-in corpus (corpus.h, docs/builtin-corpus.md). A document:
//
//   record 48213: on lanterns and harbors.
//   fact: the code of amber falcon is 73915.          (x facts; random 5-digit values)
//   <filler sentences over the document's topic words, with paragraph breaks>
//   recall: the code of amber falcon is 73915.        (each fact once, some twice, at
//   <filler ...>                                        random depths in the filler)
//   end of record 48213.
//
// Filler is locally predictable (a small grammar over a per-document topic vocabulary), the
// recalled values and the closing id are not: they are copies of bytes stated up to a whole
// document earlier, so predicting them needs attention across the full context.
#include "train/corpus.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "train/rng.h"

namespace lighthouse::train {
namespace {

const std::vector<const char*> kNameAdj = {
    "amber", "brisk",  "cobalt", "dusty",   "eager",  "faded",  "gentle", "hollow",
    "ivory", "jagged", "keen",   "lunar",   "mellow", "narrow", "olive",  "pale",
    "quiet", "rusty",  "silent", "tidal",   "umber",  "velvet", "woven",  "young",
    "zesty", "bold",   "crisp",  "distant", "early",  "frozen", "golden", "hidden"};
const std::vector<const char*> kNameNoun = {
    "falcon",  "river",  "anchor", "beacon", "canyon",  "delta",   "ember",  "fjord",
    "glacier", "harbor", "island", "jasper", "kestrel", "lantern", "meadow", "nebula",
    "orchid",  "pebble", "quarry", "raven",  "summit",  "thicket", "urchin", "valley",
    "willow",  "yarrow", "zephyr", "badger", "cedar",   "dune",    "ferry",  "grove"};
const std::vector<const char*> kNouns = {
    "miller", "sailor", "weaver", "farmer", "baker",    "scholar", "pilot",   "keeper",
    "hunter", "potter", "singer", "guard",  "merchant", "builder", "painter", "rider",
    "cart",   "boat",   "lamp",   "bridge", "tower",    "garden",  "market",  "road",
    "well",   "bell",   "window", "door",   "wagon",    "basket",  "letter",  "map",
    "coin",   "rope",   "sail",   "kettle", "drum",     "mill",    "orchard", "stable",
    "forge",  "school", "chapel", "pier",   "gate",     "field",   "barn",    "inn"};
const std::vector<const char*> kVerbs = {
    "carries", "paints",   "repairs", "watches", "follows", "counts",  "opens",  "closes",
    "finds",   "keeps",    "sells",   "builds",  "cleans",  "visits",  "guards", "moves",
    "lifts",   "measures", "marks",   "trades",  "lights",  "crosses", "mends",  "fills"};
const std::vector<const char*> kAdjs = {"old",    "new",   "small",  "large",  "red",  "green",
                                        "bright", "dark",  "heavy",  "light",  "tall", "short",
                                        "warm",   "cold",  "wooden", "stone",  "busy", "calm",
                                        "broken", "clean", "rough",  "smooth", "wide", "narrow"};
const std::vector<const char*> kPlaces = {
    "north",  "south",   "east", "west",  "valley", "hills",      "square",   "harbor",
    "forest", "village", "city", "coast", "plain",  "river bank", "old town", "market street"};

template <typename T>
const T& pick(const std::vector<T>& v, SplitMix64& r) {
  return v[r.below(v.size())];
}

// k distinct elements of v.
std::vector<const char*> subset(const std::vector<const char*>& v, size_t k, SplitMix64& r) {
  std::vector<const char*> c = v;
  for (size_t i = 0; i < k; ++i) std::swap(c[i], c[i + r.below(c.size() - i)]);
  c.resize(k);
  return c;
}

std::string digits(SplitMix64& r, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>('0' + r.below(10));
  return s;
}

std::string article(const std::string& word) {
  return std::string("aeiou").find(word[0]) != std::string::npos ? "an" : "a";
}

struct Topic {
  std::vector<const char*> nouns, verbs, adjs, places;
};

std::string sentence(const Topic& t, SplitMix64& r) {
  const std::string n1 = pick(t.nouns, r), n2 = pick(t.nouns, r);
  const std::string a1 = pick(t.adjs, r), a2 = pick(t.adjs, r);
  const std::string v = pick(t.verbs, r), pl = pick(t.places, r);
  switch (r.below(5)) {
    case 0:
      return "the " + a1 + " " + n1 + " " + v + " the " + n2 + " in the " + pl + ".";
    case 1:
      return article(n1) + " " + n1 + " was " + a1 + " and " + a2 + ".";
    case 2:
      return "every " + n1 + " " + v + " " + article(a1) + " " + a1 + " " + n2 + ".";
    case 3:
      return "near the " + pl + " the " + n1 + " " + v + " the " + a2 + " " + n2 + ".";
    default:
      return "the " + n1 + " of the " + pl + " " + v + " " + std::to_string(2 + r.below(8)) + " " +
             a1 + " " + n2 + "s.";
  }
}

}  // namespace

std::string builtin_document(const CorpusParams& params, int64_t index) {
  SplitMix64 r(mix_seed(params.seed, static_cast<uint64_t>(index), 0xc0de));
  const int64_t target = std::max<int64_t>(
      64, params.doc_bytes * 3 / 4 + static_cast<int64_t>(r.below(params.doc_bytes / 2 + 1)));

  Topic t{subset(kNouns, 8, r), subset(kVerbs, 6, r), subset(kAdjs, 6, r), subset(kPlaces, 3, r)};
  const std::string id = digits(r, 5);
  std::string doc = "record " + id + ": on " + t.nouns[0] + "s and " + t.nouns[1] + "s.\n";

  // Facts: distinct names, random values.
  std::vector<std::string> names, values;
  while (static_cast<int64_t>(names.size()) < params.facts) {
    const std::string name = std::string(pick(kNameAdj, r)) + " " + pick(kNameNoun, r);
    if (std::find(names.begin(), names.end(), name) != names.end()) continue;
    names.push_back(name);
    values.push_back(digits(r, 5));
    doc += "fact: the code of " + name + " is " + values.back() + ".\n";
  }

  // Recall lines (each fact once, a third of them twice) at sorted random depths of the
  // filler, biased towards the end so that most recalls are far from their facts.
  std::vector<int64_t> order;
  for (int64_t f = 0; f < params.facts; ++f) order.push_back(f);
  for (int64_t f = 0; f < params.facts; f += 3) order.push_back(f);
  std::vector<std::pair<double, int64_t>> recalls;
  for (const int64_t f : order) recalls.push_back({std::sqrt(r.uniform()), f});
  std::sort(recalls.begin(), recalls.end());

  const std::string tail = "end of record " + id + ".\n";
  const int64_t filler_start = static_cast<int64_t>(doc.size());
  const int64_t filler_bytes =
      std::max<int64_t>(0, target - filler_start - static_cast<int64_t>(tail.size()));
  size_t next = 0;
  int sentences_in_paragraph = 0;
  while (static_cast<int64_t>(doc.size()) - filler_start < filler_bytes || next < recalls.size()) {
    const double depth =
        filler_bytes > 0
            ? double(static_cast<int64_t>(doc.size()) - filler_start) / double(filler_bytes)
            : 1.0;
    if (next < recalls.size() && recalls[next].first <= depth) {
      const int64_t f = recalls[next++].second;
      if (doc.back() == ' ') doc.back() = '\n';
      doc += "\nrecall: the code of " + names[f] + " is " + values[f] + ".\n";
      sentences_in_paragraph = 0;
      continue;
    }
    doc += sentence(t, r);
    if (++sentences_in_paragraph >= 3 + static_cast<int>(r.below(4))) {
      doc += "\n";
      sentences_in_paragraph = 0;
    } else {
      doc += " ";
    }
  }
  if (doc.back() != '\n') doc += "\n";
  return doc + tail;
}

}  // namespace lighthouse::train
