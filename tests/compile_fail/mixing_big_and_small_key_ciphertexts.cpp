// A ciphertext under the big key and one under the small key cannot be added.
#include <fhetensor/algorithms/lwe_encryption.hpp>

using namespace fhetensor;

int main() {
  LweCiphertext<TfheN2048, BigKey> x;
#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
  LweCiphertext<TfheN2048, BigKey> y;
#else
  LweCiphertext<TfheN2048, SmallKey> y;
#endif
  auto z = x + y;
  return static_cast<int>(z.body());
}
