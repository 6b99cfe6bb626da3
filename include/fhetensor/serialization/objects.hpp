#pragma once
// cereal save/load functions of what fhetensor files hold, with their class versions.
// Loads check every count against the bytes left and every size against the parameter set
// of the envelope before allocating; structural checks of models are in
// compiler/validate.hpp. A class whose layout changes gets a new version here, the old
// branch stays, and a fixture written by the old version stays in tests/fixtures/.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>
#include <fhetensor/client/client_keys.hpp>
#include <fhetensor/nn/client_recipe.hpp>
#include <fhetensor/compiler/model.hpp>
#include <fhetensor/compiler/validate.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/runtime/ciphertext_tensor.hpp>
#include <fhetensor/runtime/server_keys.hpp>
#include <fhetensor/serialization/archive.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace detail {

inline constexpr std::uint64_t max_rank = 8;
inline constexpr std::uint64_t max_string = 4096;

inline void save_shape(OutputArchive& ar, const Shape& shape) { save_array<std::uint64_t>(ar, std::vector<std::uint64_t>(shape.begin(), shape.end())); }
/// A shape whose element count is at most `max_elements` (checked without overflow).
inline Shape load_shape(InputArchive& ar, std::uint64_t max_elements, const char* what) {
  const auto dims = load_array<std::uint64_t>(ar, max_rank, what);
  // The nonzero extents are bounded too: with a zero among them the count is 0, but
  // xtensor's strides multiply the others (and would overflow).
  std::uint64_t count = 1, nonzero = 1;
  for (std::uint64_t d : dims) {
    if (d != 0 && nonzero > std::max<std::uint64_t>(max_elements, 1) / d)
      malformed(std::string(what) + ": a shape of more elements than the data holds");
    if (d != 0) nonzero *= d;
    count *= d;
  }
  if (count > max_elements) malformed(std::string(what) + ": a shape of more elements than the data holds");
  return Shape(dims.begin(), dims.end());
}

/// The row size (LWE dimension + 1) of big-key ciphertexts of menu instance `instance`.
inline std::size_t ciphertext_row_size(std::size_t instance) {
  return with_menu_instance(instance, []<class I>(std::type_identity<I>) { return I::glwe_dimension * I::polynomial_size + 1; });
}

/// The ciphertexts of one file, in order: full (server outputs) or seeded (client uploads).
struct CiphertextList {
  std::vector<std::variant<CiphertextTensor, SeededCiphertextTensor>> tensors;
};

/// Server keys and the secret keys carry no count: their sizes are the parameter set's.
struct ClientKeysRecord {
  const ClientKeys* source = nullptr;  // saving
  std::optional<ClientKeys> loaded;    // loading
};

}  // namespace detail

// ---- Ciphertexts ---------------------------------------------------------------------

namespace detail {
/// Shape, parameter set and row size of a ciphertext of the file's set; `element_bytes` is
/// what each element takes in the data (a row, or a body), against which the shape is bounded.
inline void load_ciphertext_header(InputArchive& ar, Shape& shape, std::size_t& instance, std::size_t& row_size,
                                   std::uint64_t element_bytes) {
  const auto& c = context(ar);
  shape = load_shape(ar, c.remaining() / element_bytes, "ciphertext");
  std::uint64_t stored_instance, stored_row;
  ar(stored_instance, stored_row);
  if (stored_instance != c.instance || stored_row != ciphertext_row_size(c.instance))
    malformed("ciphertext: not a ciphertext of the file's parameter set " + std::string(instance_name(c.instance)));
  instance = stored_instance;
  row_size = stored_row;
}
}  // namespace detail

inline void save(detail::OutputArchive& ar, const CiphertextTensor& c, std::uint32_t) {
  detail::save_shape(ar, c.shape);
  ar(static_cast<std::uint64_t>(c.instance), static_cast<std::uint64_t>(c.row_size));
  detail::save_array<Torus>(ar, c.data);
}
inline void load(detail::InputArchive& ar, CiphertextTensor& c, std::uint32_t version) {
  detail::check_version(version, 1, "ciphertext");
  const std::size_t row = detail::ciphertext_row_size(detail::context(ar).instance);
  detail::load_ciphertext_header(ar, c.shape, c.instance, c.row_size, 8 * row);
  c.data.assign(element_count(c.shape) * row, 0);
  detail::load_exact_array<Torus>(ar, c.data, "ciphertext");
}

inline void save(detail::OutputArchive& ar, const SeededCiphertextTensor& c, std::uint32_t) {
  detail::save_shape(ar, c.shape);
  ar(static_cast<std::uint64_t>(c.instance), static_cast<std::uint64_t>(c.row_size));
  ar(cereal::binary_data(c.mask_seed.data(), c.mask_seed.size()));
  detail::save_array<Torus>(ar, c.bodies);
}
inline void load(detail::InputArchive& ar, SeededCiphertextTensor& c, std::uint32_t version) {
  detail::check_version(version, 1, "seeded ciphertext");
  detail::load_ciphertext_header(ar, c.shape, c.instance, c.row_size, 8);
  // A seeded tensor grows row_size times when expanded: bound what it will become.
  const auto& context = detail::context(ar);
  if (element_count(c.shape) > context.max_expanded_bytes / (8 * c.row_size))
    detail::malformed("seeded ciphertext: expands to more than the limit of " + std::to_string(context.max_expanded_bytes) +
                      " bytes");
  ar(cereal::binary_data(c.mask_seed.data(), c.mask_seed.size()));
  c.bodies.assign(element_count(c.shape), 0);
  detail::load_exact_array<Torus>(ar, c.bodies, "seeded ciphertext");
}

namespace detail {
// Version 1: full ciphertexts only. Version 2: each preceded by its form (0 full, 1 seeded).
enum class CiphertextForm : std::uint8_t { full = 0, seeded = 1 };

inline void save(OutputArchive& ar, const CiphertextList& list, std::uint32_t) {
  ar(static_cast<std::uint64_t>(list.tensors.size()));
  for (const auto& t : list.tensors) {
    ar(static_cast<std::uint8_t>(t.index()));
    std::visit([&](const auto& tensor) { ar(tensor); }, t);
  }
}
inline void load(InputArchive& ar, CiphertextList& list, std::uint32_t version) {
  check_version(version, 2, "ciphertext list");
  const std::uint64_t count = load_count(ar, 24, 1u << 20, "ciphertext list");
  list.tensors.resize(count);
  for (auto& t : list.tensors) {
    std::uint8_t form = 0;
    if (version >= 2) ar(form);
    if (form == static_cast<std::uint8_t>(CiphertextForm::full)) ar(t.emplace<CiphertextTensor>());
    else if (form == static_cast<std::uint8_t>(CiphertextForm::seeded)) ar(t.emplace<SeededCiphertextTensor>());
    else malformed("ciphertext list: unknown ciphertext form " + std::to_string(form));
  }
}
}  // namespace detail

// ---- Keys ----------------------------------------------------------------------------

namespace detail {
template <TfheInstance I>
constexpr std::uint64_t compressed_keys_payload() {
  using K = CompressedEvaluationKeys<I>;
  return 32 + 16 + 8 * (K::bootstrap_body_count + K::keyswitch_body_count);
}
}  // namespace detail

inline void save(detail::OutputArchive& ar, const CompressedServerKeys& keys, std::uint32_t) {
  with_menu_instance(keys.instance(), [&]<class I>(std::type_identity<I>) {
    const auto& k = keys.get<I>();
    ar(cereal::binary_data(k.mask_seed.data(), k.mask_seed.size()));
    detail::save_array<Torus>(ar, k.bootstrap_bodies);
    detail::save_array<Torus>(ar, k.keyswitch_bodies);
  });
}
inline void load(detail::InputArchive& ar, CompressedServerKeys& keys, std::uint32_t version) {
  detail::check_version(version, 1, "server keys");
  const auto& context = detail::context(ar);
  with_menu_instance(context.instance, [&]<class I>(std::type_identity<I>) {
    // The sizes are the parameter set's: refuse short data before allocating gigabytes.
    if (context.remaining() < detail::compressed_keys_payload<I>())
      detail::malformed("server keys: " + std::to_string(context.remaining()) + " bytes where " + std::string(I::name) +
                        " keys take " + std::to_string(detail::compressed_keys_payload<I>()));
    CompressedEvaluationKeys<I> k;
    ar(cereal::binary_data(k.mask_seed.data(), k.mask_seed.size()));
    detail::load_exact_array<Torus>(ar, k.bootstrap_bodies, "server keys (bootstrapping key)");
    detail::load_exact_array<Torus>(ar, k.keyswitch_bodies, "server keys (key-switching key)");
    keys = CompressedServerKeys(std::move(k));
  });
}

namespace detail {
/// The one door to a ClientKeys' secrets: serialization only.
struct ClientKeysAccess {
  static const ClientKeys::Secret& secret(const ClientKeys& k) { return k.secret_; }
  static const Csprng::Seed& evaluation_seed(const ClientKeys& k) { return k.evaluation_seed_; }
  static ClientKeys make(ClientKeys::Secret secret, const Csprng::Seed& evaluation_seed) {
    Csprng os = Csprng::from_os_entropy();  // encryption randomness is never stored
    return ClientKeys(std::move(secret), evaluation_seed, os.next_seed());
  }
};

inline void save_bits(OutputArchive& ar, std::span<const Torus> bits) {
  const std::vector<std::uint8_t> bytes(bits.begin(), bits.end());
  save_array<std::uint8_t>(ar, bytes);
}
inline std::vector<Torus> load_bits(InputArchive& ar, std::size_t count, const char* what) {
  std::vector<std::uint8_t> bytes(count);
  load_exact_array<std::uint8_t>(ar, bytes, what);
  for (std::uint8_t b : bytes)
    if (b > 1) malformed(std::string(what) + ": a key coefficient that is not a bit");
  return {bytes.begin(), bytes.end()};
}
}  // namespace detail

namespace detail {
inline void save(OutputArchive& ar, const ClientKeysRecord& record, std::uint32_t) {
  using Access = ClientKeysAccess;
  with_menu_instance(record.source->instance(), [&]<class I>(std::type_identity<I>) {
    const auto& secret = std::get<SecretKeys<I>>(Access::secret(*record.source));
    save_bits(ar, secret.big().bits());  // the GLWE key's polynomials laid end to end
    save_bits(ar, secret.small.bits());
    const auto& seed = Access::evaluation_seed(*record.source);
    ar(cereal::binary_data(seed.data(), seed.size()));
  });
}
inline void load(InputArchive& ar, ClientKeysRecord& record, std::uint32_t version) {
  check_version(version, 1, "client keys");
  with_menu_instance(context(ar).instance, [&]<class I>(std::type_identity<I>) {
    auto glwe = load_bits(ar, I::glwe_dimension * I::polynomial_size, "client keys (GLWE key)");
    auto small = load_bits(ar, I::lwe_dimension, "client keys (LWE key)");
    Csprng::Seed seed;
    ar(cereal::binary_data(seed.data(), seed.size()));
    record.loaded.emplace(ClientKeysAccess::make(
        SecretKeys<I>{GlweSecretKey<I>(std::move(glwe)), LweSecretKey<I, SmallKey>(std::move(small))}, seed));
  });
}

}  // namespace detail

// ---- Compiled models ------------------------------------------------------------------

namespace detail {
inline void save_range(OutputArchive& ar, ValueRange r) { ar(r.lo, r.hi); }
inline ValueRange load_range(InputArchive& ar) {
  ValueRange r;
  ar(r.lo, r.hi);
  return r;
}
inline void save_optional_range(OutputArchive& ar, const std::optional<ValueRange>& r) {
  ar(r.has_value());
  if (r) save_range(ar, *r);
}
inline std::optional<ValueRange> load_optional_range(InputArchive& ar) {
  if (!load_bool(ar, "model: optional range")) return std::nullopt;
  return load_range(ar);
}
inline void save_ids(OutputArchive& ar, const std::vector<std::size_t>& ids) {
  save_array<std::uint64_t>(ar, std::vector<std::uint64_t>(ids.begin(), ids.end()));
}
inline std::vector<std::size_t> load_ids(InputArchive& ar, const char* what) {
  const auto ids = load_array<std::uint64_t>(ar, UINT64_MAX, what);
  return {ids.begin(), ids.end()};
}
inline void save_tensor(OutputArchive& ar, const ClearTensor& t) {
  save_shape(ar, Shape(t.shape().begin(), t.shape().end()));
  save_array<std::int64_t>(ar, std::span<const std::int64_t>(t.data(), t.size()));
}
inline ClearTensor load_tensor(InputArchive& ar, const char* what) {
  const Shape shape = load_shape(ar, context(ar).remaining() / 8, what);
  ClearTensor t = ClearTensor::from_shape(shape);
  load_exact_array<std::int64_t>(ar, std::span<std::int64_t>(t.data(), t.size()), what);
  return t;
}
inline void save_window(OutputArchive& ar, const Window2d& w) {
  for (std::size_t v : {w.kernel_h, w.kernel_w, w.stride_h, w.stride_w, w.pad_top, w.pad_left, w.pad_bottom, w.pad_right,
                        w.dilation_h, w.dilation_w})
    ar(static_cast<std::uint64_t>(v));
}
inline Window2d load_window(InputArchive& ar) {
  Window2d w;
  for (std::size_t* v : {&w.kernel_h, &w.kernel_w, &w.stride_h, &w.stride_w, &w.pad_top, &w.pad_left, &w.pad_bottom,
                         &w.pad_right, &w.dilation_h, &w.dilation_w}) {
    std::uint64_t x;
    ar(x);
    *v = x;
  }
  return w;
}
}  // namespace detail

// Tables' functions keep their names only (for explain()); a loaded model runs in the clear,
// simulated and encrypted modes, which read the tables, but not in the float mode.
inline void save(detail::OutputArchive& ar, const Node& n, std::uint32_t) {
  ar(static_cast<std::uint8_t>(n.kind));
  detail::save_string(ar, n.label);
  detail::save_shape(ar, n.shape);
  detail::save_ids(ar, n.operands);
  detail::save_optional_range(ar, n.declared_range);
  detail::save_ids(ar, n.hull_of);
  ar(static_cast<std::uint64_t>(n.hull_if_exact));
  detail::save_optional_range(ar, n.assumed_range);
  detail::save_array<std::int64_t>(ar, n.map);
  ar(static_cast<std::uint64_t>(n.coefficients.size()));
  for (const auto& c : n.coefficients) detail::save_tensor(ar, c);
  detail::save_tensor(ar, n.weights);
  detail::save_tensor(ar, n.bias);
  detail::save_window(ar, n.window);
  ar(static_cast<std::uint64_t>(n.groups));
  detail::save_ids(ar, n.axes);
  ar(static_cast<std::uint64_t>(n.functions.size()));
  for (const auto& f : n.functions) detail::save_string(ar, f.name);
  detail::save_array<std::uint32_t>(ar, n.table_of);
  ar(n.rounding_bits.has_value(), static_cast<std::int32_t>(n.rounding_bits.value_or(0)));
}
inline void load(detail::InputArchive& ar, Node& n, std::uint32_t version) {
  detail::check_version(version, 1, "model node");
  std::uint8_t kind;
  ar(kind);
  if (kind > static_cast<std::uint8_t>(NodeKind::lookup)) detail::malformed("model: unknown node kind " + std::to_string(kind));
  n.kind = static_cast<NodeKind>(kind);
  n.label = detail::load_string(ar, detail::max_string, "model: node label");
  n.shape = detail::load_shape(ar, detail::max_node_elements, "model: node shape");
  n.operands = detail::load_ids(ar, "model: operands");
  n.declared_range = detail::load_optional_range(ar);
  n.hull_of = detail::load_ids(ar, "model: hull");
  std::uint64_t hull_if_exact;
  ar(hull_if_exact);
  n.hull_if_exact = hull_if_exact;
  n.assumed_range = detail::load_optional_range(ar);
  n.map = detail::load_array<std::int64_t>(ar, UINT64_MAX, "model: gather map");
  n.coefficients.resize(detail::load_count(ar, 16, UINT64_MAX, "model: coefficients"));
  for (auto& c : n.coefficients) c = detail::load_tensor(ar, "model: coefficients");
  n.weights = detail::load_tensor(ar, "model: weights");
  n.bias = detail::load_tensor(ar, "model: bias");
  n.window = detail::load_window(ar);
  std::uint64_t groups;
  ar(groups);
  n.groups = groups;
  n.axes = detail::load_ids(ar, "model: axes");
  n.functions.resize(detail::load_count(ar, 8, UINT64_MAX, "model: functions"));
  for (auto& f : n.functions) f.name = detail::load_string(ar, detail::max_string, "model: function name");
  n.table_of = detail::load_array<std::uint32_t>(ar, UINT64_MAX, "model: table selection");
  const bool pinned = detail::load_bool(ar, "model: rounding bits");
  std::int32_t bits;
  ar(bits);
  if (pinned) n.rounding_bits = bits;
}

inline void save(detail::OutputArchive& ar, const NodeAnnotation& a, std::uint32_t) {
  detail::save_range(ar, a.range);
  ar(static_cast<std::uint64_t>(a.component), a.variance, a.correlated, a.lookup.has_value());
  if (!a.lookup) return;
  const LookupPlan& p = *a.lookup;
  ar(static_cast<std::int32_t>(p.precision), static_cast<std::int32_t>(p.shift), p.offset, p.used_entries,
     static_cast<std::int32_t>(p.input_scale_log2), p.rotation_variance);
  ar(static_cast<std::uint64_t>(p.tables.size()));
  for (const auto& t : p.tables) detail::save_array<std::int64_t>(ar, t);
}
inline void load(detail::InputArchive& ar, NodeAnnotation& a, std::uint32_t version) {
  detail::check_version(version, 1, "model annotation");
  a.range = detail::load_range(ar);
  std::uint64_t component;
  ar(component, a.variance);
  a.component = component;
  a.correlated = detail::load_bool(ar, "model: correlation");
  if (!detail::load_bool(ar, "model: lookup plan")) return;
  LookupPlan& p = a.lookup.emplace();
  std::int32_t precision, shift, scale;
  ar(precision, shift, p.offset, p.used_entries, scale, p.rotation_variance);
  p.precision = precision;
  p.shift = shift;
  p.input_scale_log2 = scale;
  p.tables.resize(detail::load_count(ar, 8, UINT64_MAX, "model: tables"));
  for (auto& t : p.tables) t = detail::load_array<std::int64_t>(ar, std::uint64_t{1} << max_precision, "model: table");
}

inline void save(detail::OutputArchive& ar, const CompiledModel& m, std::uint32_t) {
  ar(static_cast<std::uint64_t>(m.graph.size()));
  for (const Node& n : m.graph.nodes()) ar(n);
  detail::save_ids(ar, m.inputs);
  detail::save_ids(ar, m.outputs);
  for (const NodeAnnotation& a : m.nodes) ar(a);
  detail::save_array<std::int32_t>(ar, std::vector<std::int32_t>(m.component_bits.begin(), m.component_bits.end()));
  ar(static_cast<std::uint64_t>(m.instance));
  detail::save_string(ar, m.instance_name);
  ar(static_cast<std::int32_t>(m.options.rounding_bits), m.options.error_probability, static_cast<std::uint8_t>(m.options.rounding));
  const ModelStatistics& s = m.statistics;
  ar(static_cast<std::uint64_t>(s.bootstraps), static_cast<std::uint64_t>(s.lookup_nodes), static_cast<std::uint64_t>(s.linear_nodes),
     static_cast<std::int32_t>(s.max_precision), static_cast<std::uint64_t>(s.fused_tables), s.estimated_seconds,
     s.log2_error_probability);
}
inline void load(detail::InputArchive& ar, CompiledModel& m, std::uint32_t version) {
  detail::check_version(version, 1, "model");
  const std::uint64_t count = detail::load_count(ar, 64, UINT64_MAX, "model: node count");
  m.graph = Graph();
  std::vector<Node> nodes(count);
  for (Node& n : nodes) ar(n);
  for (Node& n : nodes) {
    for (NodeId o : n.operands)
      if (o >= m.graph.size()) detail::malformed("model: an operand that does not come before its node");
    m.graph.add(std::move(n));
  }
  m.inputs = detail::load_ids(ar, "model: inputs");
  m.outputs = detail::load_ids(ar, "model: outputs");
  m.nodes.resize(count);
  for (NodeAnnotation& a : m.nodes) ar(a);
  const auto bits = detail::load_array<std::int32_t>(ar, UINT64_MAX, "model: encodings");
  m.component_bits.assign(bits.begin(), bits.end());
  std::uint64_t instance;
  ar(instance);
  if (instance != detail::context(ar).instance) detail::malformed("model: compiled for another parameter set than its file says");
  m.instance = instance;
  m.instance_name = detail::load_string(ar, detail::max_string, "model: parameter set name");
  if (m.instance_name != instance_name(m.instance)) detail::malformed("model: parameter set name");
  std::int32_t rounding_bits;
  std::uint8_t rounding;
  ar(rounding_bits, m.options.error_probability, rounding);
  if (rounding > 1) detail::malformed("model: rounding mode");
  m.options.rounding_bits = rounding_bits;
  m.options.rounding = static_cast<Rounding>(rounding);
  ModelStatistics& s = m.statistics;
  std::uint64_t bootstraps, lookups, linears, fused;
  std::int32_t precision;
  ar(bootstraps, lookups, linears, precision, fused, s.estimated_seconds, s.log2_error_probability);
  s.bootstraps = bootstraps;
  s.lookup_nodes = lookups;
  s.linear_nodes = linears;
  s.max_precision = precision;
  s.fused_tables = fused;
  try {
    validate(m);
  } catch (const std::invalid_argument& e) {
    throw FormatError(e.what());
  }
}

// ---- Model files ----------------------------------------------------------------------

/// What a model file holds: the compiled model and, for a model quantized from a float
/// network, the client's recipe (format version 2 on; absent in version 1 files).
struct ModelPackage {
  CompiledModel model;
  std::optional<ClientRecipe> recipe;
};

namespace detail {
inline void save_quantizer(OutputArchive& ar, const nn::Quantizer& q) { ar(q.scale, q.zero, static_cast<std::int32_t>(q.bits)); }
inline nn::Quantizer load_quantizer(InputArchive& ar) {
  nn::Quantizer q;
  std::int32_t bits;
  ar(q.scale, q.zero, bits);
  if (bits < 1 || bits > 24 || !std::isfinite(q.scale) || !(q.scale > 0) || q.zero < 0 || q.zero >= (std::int64_t{1} << bits))
    malformed("recipe: a quantizer");
  q.bits = bits;
  return q;
}
}  // namespace detail

inline void save(detail::OutputArchive& ar, const ClientRecipe& r, std::uint32_t) {
  ar(r.pixel_scale);
  detail::save_array<double>(ar, r.mean);
  detail::save_array<double>(ar, r.stddev);
  detail::save_quantizer(ar, r.input);
  detail::save_quantizer(ar, r.output);
  ar(r.softmax_axis.has_value(), static_cast<std::uint64_t>(r.softmax_axis.value_or(0)));
  ar(static_cast<std::uint64_t>(r.labels.size()));
  for (const auto& label : r.labels) detail::save_string(ar, label);
}
inline void load(detail::InputArchive& ar, ClientRecipe& r, std::uint32_t version) {
  detail::check_version(version, 1, "client recipe");
  ar(r.pixel_scale);
  r.mean = detail::load_array<double>(ar, 4096, "recipe: mean");
  r.stddev = detail::load_array<double>(ar, 4096, "recipe: standard deviation");
  if (r.mean.size() != r.stddev.size() || !std::isfinite(r.pixel_scale)) detail::malformed("recipe: normalization");
  for (double s : r.stddev)
    if (!(s != 0) || !std::isfinite(s)) detail::malformed("recipe: a standard deviation");
  r.input = detail::load_quantizer(ar);
  r.output = detail::load_quantizer(ar);
  const bool softmax = detail::load_bool(ar, "recipe: softmax");
  std::uint64_t axis;
  ar(axis);
  if (softmax) {
    if (axis >= detail::max_rank) detail::malformed("recipe: softmax axis");
    r.softmax_axis = axis;
  }
  r.labels.resize(detail::load_count(ar, 8, 1u << 20, "recipe: labels"));
  for (auto& label : r.labels) label = detail::load_string(ar, detail::max_string, "recipe: label");
}

inline void save(detail::OutputArchive& ar, const ModelPackage& p, std::uint32_t) {
  ar(p.model, p.recipe.has_value());
  if (p.recipe) ar(*p.recipe);
}
inline void load(detail::InputArchive& ar, ModelPackage& p, std::uint32_t version) {
  detail::check_version(version, 1, "model package");
  ar(p.model);
  if (detail::load_bool(ar, "model package: recipe")) ar(p.recipe.emplace());
  if (p.recipe && p.recipe->softmax_axis) {
    for (NodeId o : p.model.outputs)
      if (*p.recipe->softmax_axis >= p.model.graph[o].shape.size()) detail::malformed("recipe: softmax axis beyond an output's rank");
  }
}

FHETENSOR_END_NAMESPACE

CEREAL_CLASS_VERSION(fhetensor::Node, 1)
CEREAL_CLASS_VERSION(fhetensor::NodeAnnotation, 1)
CEREAL_CLASS_VERSION(fhetensor::CompiledModel, 1)
CEREAL_CLASS_VERSION(fhetensor::ClientRecipe, 1)
CEREAL_CLASS_VERSION(fhetensor::ModelPackage, 1)
CEREAL_CLASS_VERSION(fhetensor::CiphertextTensor, 1)
CEREAL_CLASS_VERSION(fhetensor::detail::CiphertextList, 2)
CEREAL_CLASS_VERSION(fhetensor::SeededCiphertextTensor, 1)
CEREAL_CLASS_VERSION(fhetensor::CompressedServerKeys, 1)
CEREAL_CLASS_VERSION(fhetensor::detail::ClientKeysRecord, 1)
