// Key switching takes a big-key ciphertext; a small-key one is rejected.
#include <fhetensor/algorithms/keyswitch.hpp>

using namespace fhetensor;

int main() {
  const KeySwitchKey<TfheN1024>* ksk = nullptr;
#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
  LweCiphertext<TfheN1024, BigKey> x;
#else
  LweCiphertext<TfheN1024, SmallKey> x;
#endif
  if (ksk) return static_cast<int>(keyswitch(x, *ksk).body());
  return 0;
}
