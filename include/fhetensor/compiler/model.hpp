#pragma once
// A compiled model: the graph after the passes, with everything the four run modes need
// (ranges, rounding, tables, encodings, noise, the parameter set). It holds no key and no
// ciphertext, so the client and the server can share it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
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

namespace detail {
/// A probability: decimal where it matters to a reader (>= 2^-10), else a power of two
/// rounded up, so that the figure shown never understates it.
inline std::string format_probability(double log2_p) {
  char buffer[32];
  if (log2_p >= -10) std::snprintf(buffer, sizeof buffer, "%.3g", std::exp2(log2_p));
  else std::snprintf(buffer, sizeof buffer, "2^%.0f", std::ceil(log2_p));
  return buffer;
}
}  // namespace detail

/// How one lookup node runs: index j = round((x - offset) / 2^shift) over `precision` bits,
/// output table[j]. Encrypted, x is first multiplied by 2^input_scale_log2 so that the
/// index sits in the top bits of the torus.
struct LookupPlan {
  using Table = std::vector<std::int64_t>;  // 2^precision outputs
  int precision = 1;
  int shift = 0;
  std::int64_t offset = 0;
  std::int64_t used_entries = 0;  // indices the worst-case range reaches
  std::vector<Table> tables;      // one per function of the node
  int input_scale_log2 = 0;
  double rotation_variance = 0;   // of the phase at the blind rotation, torus units (q = 2^64)

  /// The table index of x, as the clear computation defines it (round half up).
  std::int64_t index_of(std::int64_t x) const noexcept {
    const std::int64_t d = x - offset;
    return shift == 0 ? d : (d + (std::int64_t{1} << (shift - 1))) >> shift;
  }
  /// The noiseless phase of x at the blind rotation, shifted by half a box so that its
  /// top precision + 1 bits are the box it falls in (of the 2^(precision + 1) boxes around
  /// the torus). Computed modulo the torus as encrypted execution does, so that a value
  /// beyond an assumed range wraps the same way in every run mode.
  std::uint64_t phase_of(std::int64_t x) const noexcept {
    const std::uint64_t d = static_cast<std::uint64_t>(x) - static_cast<std::uint64_t>(offset);
    const int step = 63 - precision - shift;
    std::uint64_t phase = (d << step) + (std::uint64_t{1} << (62 - precision));
    if (shift > 0) phase += std::uint64_t{1} << (step - 1);  // what execute adds: see runtime/execute.hpp
    return phase;
  }
  /// index_of(x) inside the table.
  std::uint64_t box_of(std::int64_t x) const noexcept { return phase_of(x) >> (63 - precision); }
  /// What the bootstrap of box b outputs: boxes past the table's end are negated
  /// (the negacyclic rotation).
  std::int64_t output_of_box(const Table& table, std::uint64_t box) const noexcept {
    const std::uint64_t boxes = std::uint64_t{1} << precision;
    return box < boxes ? table[box] : -table[box - boxes];
  }
  /// The standard deviation of the phase's noise at the blind rotation, in boxes (table
  /// steps): the chance that a value at a box's centre leaves it is erfc(0.5 / (sigma sqrt 2)).
  double noise_in_boxes() const noexcept { return std::sqrt(rotation_variance) / std::ldexp(1.0, 63 - precision); }
  /// The noiseless result of the table on x, exactly as encrypted execution computes it.
  std::int64_t apply(const Table& table, std::int64_t x) const noexcept { return output_of_box(table, box_of(x)); }
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

  /// What decrypting output node `id` gives for a noiseless value v: v itself inside the
  /// encoding, else v wrapped around the torus (decryption decodes around the range's
  /// centre).
  std::int64_t decoded(NodeId id, std::int64_t v) const noexcept {
    const ValueRange r = nodes[id].range;
    const std::int64_t centre = r.lo + static_cast<std::int64_t>(r.span() / 2);
    const int shift = encoding_shift(id);
    const auto wrapped = static_cast<std::int64_t>((static_cast<std::uint64_t>(v) - static_cast<std::uint64_t>(centre)) << shift);
    return centre + (wrapped >> shift);
  }
};

FHETENSOR_END_NAMESPACE
