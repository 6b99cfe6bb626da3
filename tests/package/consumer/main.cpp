// A tiny outside program: encrypts, adds and decrypts under a real parameter set.
#include <cstdio>

#include <fhetensor/fhetensor.hpp>

int main() {
  using P = fhetensor::params_for<4>;
  auto rng = fhetensor::Csprng::from_os_entropy();
  const auto keys = fhetensor::generate_secret_keys<P>(rng);
  const fhetensor::Encoding e{P::precision};
  const auto big = keys.big();
  const auto sum = fhetensor::encrypt_lwe(big, e.encode(5), rng) + fhetensor::encrypt_lwe(big, e.encode(6), rng);
  const auto result = e.decode(fhetensor::decrypt_phase(big, sum));
  std::printf("fhetensor consumer: %s (5 + 6 = %llu)\n", result == 11 ? "ok" : "WRONG",
              static_cast<unsigned long long>(result));
  return result == 11 ? 0 : 1;
}
