#pragma once
// The server's evaluation keys for one parameter set of the menu, in the form blind
// rotation reads (ServerKeys) or the compressed form a client uploads and a file holds
// (CompressedServerKeys: seeded masks, about half the size at k = 1).
#include <cstddef>
#include <stdexcept>
#include <string>
#include <variant>
#include <fhetensor/algorithms/key_generation.hpp>
#include <fhetensor/algorithms/parameter_menu.hpp>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace detail {
template <template <class> class Of, class List>
struct MenuVariant;
template <template <class> class Of, class... Instances>
struct MenuVariant<Of, InstanceList<Instances...>> {
  using type = std::variant<std::monostate, Of<Instances>...>;
};
template <TfheInstance I>
using DefaultEvaluationKeys = EvaluationKeys<I>;

/// The keys of instance I held by a menu variant, or a clear error.
template <class I, class Variant, class Keys>
const Keys& get_keys(const Variant& keys, const char* what) {
  if (auto* k = std::get_if<Keys>(&keys)) return *k;
  throw std::invalid_argument(std::string("fhetensor: these ") + what + " are not for parameter set " + std::string(I::name));
}
}  // namespace detail

class CompressedServerKeys {
 public:
  using Keys = typename detail::MenuVariant<CompressedEvaluationKeys, detail::Menu>::type;
  CompressedServerKeys() = default;
  template <TfheInstance I>
  explicit CompressedServerKeys(CompressedEvaluationKeys<I> keys) : keys_(std::move(keys)) {}

  std::size_t instance() const noexcept { return keys_.index() - 1; }
  template <TfheInstance I>
  const CompressedEvaluationKeys<I>& get() const {
    return detail::get_keys<I, Keys, CompressedEvaluationKeys<I>>(keys_, "compressed server keys");
  }
  std::size_t size_bytes() const {
    return std::visit([](const auto& k) -> std::size_t {
      if constexpr (std::is_same_v<std::decay_t<decltype(k)>, std::monostate>) return 0;
      else return k.size_bytes();
    }, keys_);
  }

 private:
  Keys keys_;
};

/// What the server holds: the evaluation keys of one parameter set of the menu.
class ServerKeys {
 public:
  using Keys = typename detail::MenuVariant<detail::DefaultEvaluationKeys, detail::Menu>::type;
  ServerKeys() = default;
  template <TfheInstance I>
  explicit ServerKeys(EvaluationKeys<I> keys) : keys_(std::move(keys)) {}
  /// Expands compressed keys (regenerates the masks, transforms the bootstrapping key).
  explicit ServerKeys(const CompressedServerKeys& compressed) {
    with_menu_instance(compressed.instance(), [&]<class I>(std::type_identity<I>) { keys_ = expand(compressed.get<I>()); });
  }

  std::size_t instance() const noexcept { return keys_.index() - 1; }
  template <TfheInstance I>
  const EvaluationKeys<I>& get() const {
    return detail::get_keys<I, Keys, EvaluationKeys<I>>(keys_, "server keys");
  }

 private:
  Keys keys_;
};

FHETENSOR_END_NAMESPACE
