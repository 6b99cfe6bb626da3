#pragma once
// Cryptographically secure randomness for keys, masks and noise: the ChaCha20 stream
// cipher (RFC 8439) of libsodium, keyed from the operating system's entropy (getrandom)
// or from an explicit seed. std::mt19937 and friends never touch key material.
#include <sodium.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>

#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

namespace detail {
inline void ensure_sodium_initialized() {
  static const int status = sodium_init();  // thread-safe once; returns 1 if already done
  if (status < 0) throw std::runtime_error("fhetensor: libsodium could not be initialised");
}
}  // namespace detail

/// A seeded ChaCha20 keystream. Move-only: a copy would repeat the stream.
class Csprng {
 public:
  using Seed = std::array<std::uint8_t, crypto_stream_chacha20_ietf_KEYBYTES>;

  /// A generator seeded from the operating system's entropy source.
  static Csprng from_os_entropy() {
    detail::ensure_sodium_initialized();
    Seed seed;
    randombytes_buf(seed.data(), seed.size());
    Csprng rng(seed);
    sodium_memzero(seed.data(), seed.size());
    return rng;
  }

  /// A reproducible generator (tests, and seeded masks a server can regenerate).
  explicit Csprng(const Seed& seed) : key_(seed) { detail::ensure_sodium_initialized(); }

  Csprng(Csprng&& other) noexcept { *this = std::move(other); }
  Csprng& operator=(Csprng&& other) noexcept {
    key_ = other.key_;
    block_counter_ = other.block_counter_;
    buffer_ = other.buffer_;
    position_ = other.position_;
    other.wipe();
    return *this;
  }
  Csprng(const Csprng&) = delete;
  Csprng& operator=(const Csprng&) = delete;
  ~Csprng() { wipe(); }

  /// A fresh seed drawn from this stream: independent child generators for parallel work.
  Seed next_seed() {
    Seed seed;
    fill_bytes(seed.data(), seed.size());
    return seed;
  }

  std::uint64_t next_u64() {
    if (position_ == buffer_.size()) refill();
    return buffer_[position_++];
  }

  void fill(std::span<std::uint64_t> out) {
    for (auto& x : out) x = next_u64();
  }

  /// Uniform in [0, 1) with 53 random bits.
  double next_unit_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  /// One uniformly random bit.
  std::uint64_t next_bit() {
    if (bits_left_ == 0) {
      bit_pool_ = next_u64();
      bits_left_ = 64;
    }
    const std::uint64_t bit = bit_pool_ & 1;
    bit_pool_ >>= 1;
    --bits_left_;
    return bit;
  }

 private:
  static constexpr std::size_t buffer_words = 512;  // 4 KiB of keystream per refill

  void fill_bytes(std::uint8_t* out, std::size_t size) {
    for (std::size_t i = 0; i < size; i += 8) {
      const std::uint64_t word = next_u64();
      std::memcpy(out + i, &word, size - i < 8 ? size - i : 8);
    }
  }

  void refill() {
    // The 96-bit nonce carries a block counter, so no (key, nonce) pair is used twice.
    std::array<std::uint8_t, crypto_stream_chacha20_ietf_NONCEBYTES> nonce{};
    std::memcpy(nonce.data(), &block_counter_, sizeof block_counter_);
    ++block_counter_;
    crypto_stream_chacha20_ietf(reinterpret_cast<unsigned char*>(buffer_.data()), buffer_.size() * 8,
                                nonce.data(), key_.data());
    position_ = 0;
  }

  void wipe() noexcept {
    sodium_memzero(key_.data(), key_.size());
    sodium_memzero(buffer_.data(), buffer_.size() * 8);
    position_ = buffer_.size();
    bit_pool_ = 0;
    bits_left_ = 0;
  }

  Seed key_{};
  std::uint64_t block_counter_ = 0;
  std::array<std::uint64_t, buffer_words> buffer_{};
  std::size_t position_ = buffer_words;
  std::uint64_t bit_pool_ = 0;
  int bits_left_ = 0;
};

/// The seed of stream `index` of purpose `domain` under `parent` (keyed BLAKE2b): seeded
/// masks are regenerated element by element, in any order, from one public seed.
inline Csprng::Seed derive_seed(const Csprng::Seed& parent, std::uint64_t domain, std::uint64_t index) {
  detail::ensure_sodium_initialized();
  std::array<std::uint8_t, 16> message;
  std::memcpy(message.data(), &domain, 8);
  std::memcpy(message.data() + 8, &index, 8);
  Csprng::Seed seed;
  crypto_generichash(seed.data(), seed.size(), message.data(), message.size(), parent.data(), parent.size());
  return seed;
}

/// The purposes of derived streams.
namespace seed_domain {
inline constexpr std::uint64_t bootstrap_key_masks = 1;
inline constexpr std::uint64_t keyswitch_key_masks = 2;
inline constexpr std::uint64_t ciphertext_masks = 3;
}  // namespace seed_domain

FHETENSOR_END_NAMESPACE
