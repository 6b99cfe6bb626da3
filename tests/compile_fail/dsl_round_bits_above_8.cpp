// round_bits reads at most the 8 bits a table can bootstrap.
#include <fhetensor/expr/operations.hpp>

using namespace fhetensor;

#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
constexpr int P = 8;
#else
constexpr int P = 9;
#endif
int main() {
  auto x = Encrypted<Tensor<int, 1>, Bits<12>>::input({4});
  return round_bits<P>(x).node() == 0;
}
