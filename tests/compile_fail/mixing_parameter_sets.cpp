// Ciphertexts of two parameter sets cannot be added.
#include <fhetensor/algorithms/lwe_encryption.hpp>

using namespace fhetensor;

int main() {
  LweCiphertext<TfheN2048> x;
#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
  LweCiphertext<TfheN2048> y;
#else
  LweCiphertext<TfheN1024> y;
#endif
  auto z = x + y;
  return static_cast<int>(z.body());
}
