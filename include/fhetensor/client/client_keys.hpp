#pragma once
// The client: secret keys for a compiled model's parameter set, encryption of inputs and
// decryption of outputs. The secret keys never leave this object (save_client_keys in
// <fhetensor/serialization/files.hpp> is the explicit export); server_keys() and
// compressed_server_keys() give the evaluation keys, which are all a server needs.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <variant>
#include <vector>
#include <fhetensor/algorithms/key_generation.hpp>
#include <fhetensor/algorithms/lwe_encryption.hpp>
#include <fhetensor/compiler/model.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/random/csprng.hpp>
#include <fhetensor/runtime/execute.hpp>
#include <fhetensor/runtime/server_keys.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace detail {
struct ClientKeysAccess;
}

class ClientKeys {
  using Secret = typename detail::MenuVariant<SecretKeys, detail::Menu>::type;

  template <class F>
  decltype(auto) with_keys(const CompiledModel& model, F&& f) const {
    if (secret_.index() != model.instance + 1)
      throw std::invalid_argument("fhetensor: these keys are for another parameter set than the model's (" +
                                  model.instance_name + ")");
    return with_menu_instance(model.instance, [&]<class I>(std::type_identity<I>) { return f(std::get<SecretKeys<I>>(secret_)); });
  }

 public:
  /// Fresh secret and evaluation keys for the model's parameter set.
  static ClientKeys generate(const CompiledModel& model, Csprng& rng) {
    ClientKeys keys = with_menu_instance(model.instance, [&]<class I>(std::type_identity<I>) {
      SecretKeys<I> secret = generate_secret_keys<I>(rng);
      const Csprng::Seed evaluation_seed = rng.next_seed();
      return ClientKeys(Secret(std::move(secret)), evaluation_seed, rng.next_seed());
    });
    keys.server_keys();  // generated now, as callers expect of generate()
    return keys;
  }
  static ClientKeys generate(const CompiledModel& model) {
    Csprng rng = Csprng::from_os_entropy();
    return generate(model, rng);
  }

  /// Index of the parameter set in the menu.
  std::size_t instance() const noexcept { return secret_.index() - 1; }

  /// The evaluation keys, compressed: what a client sends a server. Regenerated from the
  /// evaluation seed, so every call gives the same keys.
  CompressedServerKeys compressed_server_keys() const {
    return std::visit([&]<class K>(const K& secret) -> CompressedServerKeys {
      if constexpr (std::is_same_v<K, std::monostate>) throw std::logic_error("fhetensor: empty client keys");
      else {
        Csprng rng(evaluation_seed_);
        return CompressedServerKeys(generate_compressed_evaluation_keys(secret, rng));
      }
    }, secret_);
  }

  /// The evaluation keys, expanded (generated on first use after loading keys from a file).
  std::shared_ptr<const ServerKeys> server_keys() const {
    const std::lock_guard lock(*server_mutex_);
    if (!server_) server_ = std::make_shared<const ServerKeys>(compressed_server_keys());
    return server_;
  }

  /// Encrypts the model's input `index`; values must lie in its declared range. The seeded
  /// form is what travels (8 bytes per element); expand() gives the full ciphertexts.
  SeededCiphertextTensor encrypt_seeded(const CompiledModel& model, std::size_t index, const ClearTensor& values) {
    if (index >= model.inputs.size()) throw std::out_of_range("fhetensor: the model has " + std::to_string(model.inputs.size()) + " inputs");
    const NodeId id = model.inputs[index];
    const Shape shape(values.shape().begin(), values.shape().end());
    if (shape != model.graph[id].shape)
      throw std::invalid_argument("fhetensor: input " + std::to_string(index) + " has shape " + to_string(shape) +
                                  " but the model expects " + to_string(model.graph[id].shape));
    const ValueRange r = model.nodes[id].range;
    return with_keys(model, [&]<class I>(const SecretKeys<I>& keys) {
      const auto big = keys.big();
      SeededCiphertextTensor out{shape, model.instance, big.dimension + 1, rng_.next_seed(), std::vector<Torus>(values.size())};
      std::vector<Torus> row(big.dimension + 1);
      for (std::size_t i = 0; i < values.size(); ++i) {
        const std::int64_t v = values.flat(i);
        if (!r.contains(v))
          throw std::out_of_range("fhetensor: input " + std::to_string(index) + " holds " + std::to_string(v) +
                                  ", outside its declared range " + r.to_string());
        Csprng masks = out.masks(i);
        encrypt_lwe_into(std::span<Torus>(row), big.bits(), static_cast<Torus>(v) << model.encoding_shift(id),
                         default_noise<I, BigKey>(), masks, rng_);
        out.bodies[i] = row.back();
      }
      return out;
    });
  }
  CiphertextTensor encrypt(const CompiledModel& model, std::size_t index, const ClearTensor& values) {
    return encrypt_seeded(model, index, values).expand();
  }
  std::vector<SeededCiphertextTensor> encrypt_seeded(const CompiledModel& model, const std::vector<ClearTensor>& inputs) {
    if (inputs.size() != model.inputs.size())
      throw std::invalid_argument("fhetensor: the model takes " + std::to_string(model.inputs.size()) + " inputs, got " +
                                  std::to_string(inputs.size()));
    std::vector<SeededCiphertextTensor> out;
    for (std::size_t k = 0; k < inputs.size(); ++k) out.push_back(encrypt_seeded(model, k, inputs[k]));
    return out;
  }
  std::vector<CiphertextTensor> encrypt(const CompiledModel& model, const std::vector<ClearTensor>& inputs) {
    if (inputs.size() != model.inputs.size())
      throw std::invalid_argument("fhetensor: the model takes " + std::to_string(model.inputs.size()) + " inputs, got " +
                                  std::to_string(inputs.size()));
    std::vector<CiphertextTensor> out;
    for (std::size_t k = 0; k < inputs.size(); ++k) out.push_back(encrypt(model, k, inputs[k]));
    return out;
  }

  /// Decrypts the model's output `index`: the nearest value of the output's range.
  ClearTensor decrypt(const CompiledModel& model, std::size_t index, const CiphertextTensor& c) const {
    if (index >= model.outputs.size()) throw std::out_of_range("fhetensor: the model has " + std::to_string(model.outputs.size()) + " outputs");
    const NodeId id = model.outputs[index];
    if (c.shape != model.graph[id].shape || c.instance != model.instance || c.data.size() != c.size() * c.row_size)
      throw std::invalid_argument("fhetensor: this ciphertext is not output " + std::to_string(index) + " of the model");
    const ValueRange r = model.nodes[id].range;
    const int shift = model.encoding_shift(id);
    return with_keys(model, [&]<class I>(const SecretKeys<I>& keys) {
      const auto big = keys.big();
      if (c.row_size != big.dimension + 1) throw std::invalid_argument("fhetensor: a ciphertext of another dimension");
      ClearTensor out = ClearTensor::from_shape(c.shape);
      // Decode around the range's centre, so that negative noise near lo does not wrap.
      const std::int64_t centre = r.lo + static_cast<std::int64_t>(r.span() / 2);
      for (std::size_t i = 0; i < out.size(); ++i) {
        const auto row = c.row(i);
        const Torus phase = row.back() - dot_product(row.first(row.size() - 1), big.bits());
        const auto d = static_cast<std::int64_t>(phase - (static_cast<Torus>(centre) << shift));
        const std::int64_t half = shift > 0 ? std::int64_t{1} << (shift - 1) : 0;
        // The sum in unsigned arithmetic: near the far end of the torus it leaves int64.
        out.flat(i) = centre + (static_cast<std::int64_t>(static_cast<Torus>(d) + static_cast<Torus>(half)) >> shift);
      }
      return out;
    });
  }
  std::vector<ClearTensor> decrypt(const CompiledModel& model, const std::vector<CiphertextTensor>& outputs) const {
    std::vector<ClearTensor> out;
    for (std::size_t k = 0; k < outputs.size(); ++k) out.push_back(decrypt(model, k, outputs[k]));
    return out;
  }

 private:
  friend struct detail::ClientKeysAccess;
  ClientKeys(Secret secret, const Csprng::Seed& evaluation_seed, const Csprng::Seed& encryption_seed)
      : secret_(std::move(secret)), evaluation_seed_(evaluation_seed), rng_(encryption_seed) {}

  Secret secret_;
  Csprng::Seed evaluation_seed_;  // the evaluation keys' randomness: secret, like the keys
  Csprng rng_;                    // masks and noise of encryptions
  mutable std::shared_ptr<const ServerKeys> server_;
  mutable std::unique_ptr<std::mutex> server_mutex_ = std::make_unique<std::mutex>();
};

FHETENSOR_END_NAMESPACE
