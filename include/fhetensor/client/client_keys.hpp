#pragma once
// The client: secret keys for a compiled model's parameter set, encryption of inputs and
// decryption of outputs. The secret keys never leave this object; server_keys() gives the
// evaluation keys, which are all a server needs.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <variant>
#include <vector>
#include <fhetensor/algorithms/key_generation.hpp>
#include <fhetensor/algorithms/lwe_encryption.hpp>
#include <fhetensor/compiler/model.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/random/csprng.hpp>
#include <fhetensor/runtime/execute.hpp>

FHETENSOR_BEGIN_NAMESPACE

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
    return with_menu_instance(model.instance, [&]<class I>(std::type_identity<I>) {
      SecretKeys<I> secret = generate_secret_keys<I>(rng);
      auto server = std::make_shared<const ServerKeys>(generate_evaluation_keys(secret, rng));
      return ClientKeys(Secret(std::move(secret)), std::move(server), rng.next_seed());
    });
  }
  static ClientKeys generate(const CompiledModel& model) {
    Csprng rng = Csprng::from_os_entropy();
    return generate(model, rng);
  }

  /// The evaluation keys, to send to the server.
  std::shared_ptr<const ServerKeys> server_keys() const noexcept { return server_; }

  /// Encrypts the model's input `index`; values must lie in its declared range.
  CiphertextTensor encrypt(const CompiledModel& model, std::size_t index, const ClearTensor& values) {
    if (index >= model.inputs.size()) throw std::out_of_range("fhetensor: the model has " + std::to_string(model.inputs.size()) + " inputs");
    const NodeId id = model.inputs[index];
    const Shape shape(values.shape().begin(), values.shape().end());
    if (shape != model.graph[id].shape)
      throw std::invalid_argument("fhetensor: input " + std::to_string(index) + " has shape " + to_string(shape) +
                                  " but the model expects " + to_string(model.graph[id].shape));
    const ValueRange r = model.nodes[id].range;
    return with_keys(model, [&]<class I>(const SecretKeys<I>& keys) {
      const auto big = keys.big();
      CiphertextTensor out{shape, model.instance, big.dimension + 1, std::vector<Torus>(values.size() * (big.dimension + 1))};
      for (std::size_t i = 0; i < values.size(); ++i) {
        const std::int64_t v = values.flat(i);
        if (!r.contains(v))
          throw std::out_of_range("fhetensor: input " + std::to_string(index) + " holds " + std::to_string(v) +
                                  ", outside its declared range " + r.to_string());
        encrypt_lwe_into(out.row(i), big.bits(), static_cast<Torus>(v) << model.encoding_shift(id),
                         default_noise<I, BigKey>(), rng_);
      }
      return out;
    });
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
        out.flat(i) = centre + ((d + half) >> shift);
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
  ClientKeys(Secret secret, std::shared_ptr<const ServerKeys> server, Csprng::Seed seed)
      : secret_(std::move(secret)), server_(std::move(server)), rng_(seed) {}

  Secret secret_;
  std::shared_ptr<const ServerKeys> server_;
  Csprng rng_;
};

FHETENSOR_END_NAMESPACE
