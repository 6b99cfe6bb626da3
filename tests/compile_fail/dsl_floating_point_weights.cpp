// Clear weights are integers: floats are quantized first.
#include <fhetensor/expr/operations.hpp>

using namespace fhetensor;

#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
using W = Tensor<int, 2>;
#else
using W = Tensor<double, 2>;
#endif
int main() {
  auto x = Encrypted<Tensor<int, 1>, Bits<4>>::input({3});
  return dense(x, W::from_shape({3, 2})).node() == 0;
}
