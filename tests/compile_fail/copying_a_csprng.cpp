// A CSPRNG cannot be copied: the copy would repeat the keystream.
#include <fhetensor/random/csprng.hpp>

using namespace fhetensor;

int main() {
  Csprng a(Csprng::Seed{});
#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
  Csprng b = std::move(a);
#else
  Csprng b = a;
#endif
  return static_cast<int>(b.next_u64() & 1);
}
