#pragma once
// The test polynomial of a programmable bootstrap: blind rotation by the encrypted
// position returns coefficient 0 of X^(-position) * v, which holds f(m).
#include <concepts>
#include <type_traits>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/crypto/encoding.hpp>
#include <fhetensor/params/parameter_sets.hpp>

FHETENSOR_BEGIN_NAMESPACE

template <TfheInstance P>
class LookupTable {
 public:
  static constexpr std::size_t N = P::polynomial_size;

  /// f maps each message of `input` to an integer, encoded (mod 2^p) in `output`.
  template <std::invocable<std::int64_t> F>
  LookupTable(F&& f, Encoding input, Encoding output)
      : LookupTable(input, [&](std::int64_t m) { return output.encode(static_cast<std::int64_t>(f(m))); }) {
    output_ = output;
  }
  /// g maps each message of `input` straight to the torus value the bootstrap returns:
  /// outputs in any encoding, such as a graph's wider accumulators.
  template <class G>
    requires std::is_invocable_r_v<Torus, G, std::int64_t>
  LookupTable(Encoding input, G&& g) : input_(input), output_(input), polynomial_(N) {
    const std::size_t messages = input.message_modulus();
    if (2 * messages > N)  // a box of at least two positions, so that noise has room
      throw std::invalid_argument("fhetensor: a " + std::to_string(input.precision) +
                                  "-bit lookup table needs N >= " + std::to_string(2 * messages));
    // Each message owns a box of N / 2^p positions, centred on m * box: positions
    // [m*box - box/2, m*box + box/2). The half box below 0 wraps negacyclically, so it
    // holds -g(0): X^(-position) there picks -v, giving back g(0).
    const std::size_t box = N / messages;
    const std::size_t half = box / 2;
    std::vector<Torus> values(messages);
    for (std::size_t m = 0; m < messages; ++m) values[m] = static_cast<Torus>(g(static_cast<std::int64_t>(m)));
    for (std::size_t i = 0; i < N; ++i) {
      const std::size_t m = (i + half) / box;
      polynomial_[i] = m < messages ? values[m] : Torus{0} - values[0];
    }
  }
  /// A table given as 2^p values.
  LookupTable(std::span<const std::int64_t> values, Encoding input, Encoding output)
      : LookupTable(checked_table(values, input), input, output) {}

  Encoding input_encoding() const noexcept { return input_; }
  Encoding output_encoding() const noexcept { return output_; }
  std::span<const Torus> polynomial() const noexcept { return polynomial_; }

 private:
  static auto checked_table(std::span<const std::int64_t> values, Encoding input) {
    if (values.size() != input.message_modulus())
      throw std::invalid_argument("fhetensor: a lookup table over " + std::to_string(input.precision) +
                                  " bits needs " + std::to_string(input.message_modulus()) + " values, got " +
                                  std::to_string(values.size()));
    return [values](std::int64_t m) { return values[static_cast<std::size_t>(m)]; };
  }

  Encoding input_;
  Encoding output_;
  std::vector<Torus> polynomial_;
};

FHETENSOR_END_NAMESPACE

