#pragma once
// A compiled model: the graph after the passes, with everything the four run modes need
// (ranges, rounding, tables, encodings, noise, the parameter set). It holds no key and no
// ciphertext, so the client and the server can share it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include <fhetensor/core/value_range.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/expr/graph.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// How a lookup reads a wider accumulator (exact: the error probability holds for every
/// input; approximate: for inputs at the centre of their rounding interval, while inputs
/// near a rounding boundary may round either way, as in Concrete's approximate rounding).
enum class Rounding : std::uint8_t { exact, approximate };

struct CompileOptions {
  /// Tables read at most this many bits; wider inputs are rounded to their top bits.
  int rounding_bits = 8;
  /// Probability that one bootstrap (or one decryption) gives a wrong value.
  double error_probability = 0x1p-40;
  Rounding rounding = Rounding::exact;
};

/// How one lookup node runs: index j = round((x - offset) / 2^shift) over `precision` bits,
/// output table[j]. Encrypted, x is first multiplied by 2^input_scale_log2 so that the
/// index sits in the top bits of the torus.
struct LookupPlan {
  int precision = 1;
  int shift = 0;
  std::int64_t offset = 0;
  std::int64_t used_entries = 0;     // indices the clear computation can reach
  std::vector<std::int64_t> table;   // 2^precision outputs
  int input_scale_log2 = 0;
  double input_variance = 0;  // of the operand's noise, in torus units (q = 2^64)

  /// The table index of x, as the clear computation defines it (round half up).
  std::int64_t index_of(std::int64_t x) const noexcept {
    const std::int64_t d = x - offset;
    return shift == 0 ? d : (d + (std::int64_t{1} << (shift - 1))) >> shift;
  }
};

/// What the passes know about one node.
struct NodeAnnotation {
  ValueRange range;
  std::size_t component = 0;     // nodes joined by linear operations share one encoding
  double variance = 0;           // of the noise on the chosen parameter set, torus units
  bool correlated = false;       // elements may share noise terms
  std::optional<LookupPlan> lookup;
};

struct ModelStatistics {
  std::size_t bootstraps = 0;
  std::size_t lookup_nodes = 0;
  std::size_t linear_nodes = 0;
  int max_precision = 0;
  std::size_t fused_tables = 0;
  double estimated_seconds = 0;  // on one core, from the benchmarked cost of the chosen set
  double log2_error_probability = 0;  // of the worst bootstrap or decryption
};

struct CompiledModel {
  Graph graph;
  std::vector<NodeId> inputs;
  std::vector<NodeId> outputs;
  std::vector<NodeAnnotation> nodes;
  std::vector<int> component_bits;  // values of component c are encoded as v * 2^(63 - bits)
  std::size_t instance = 0;         // index into the parameter menu
  std::string instance_name;
  CompileOptions options;
  ModelStatistics statistics;

  int encoding_shift(NodeId id) const { return 63 - component_bits[nodes[id].component]; }
};

FHETENSOR_END_NAMESPACE
