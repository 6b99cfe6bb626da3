// Encrypted tensors hold integers: floats are quantized first.
#include <fhetensor/expr/operations.hpp>

using namespace fhetensor;

#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
using E = int;
#else
using E = float;
#endif
int main() {
  return Encrypted<Tensor<E, 1>, Bits<4>>::rank == 1 ? 0 : 1;
}
