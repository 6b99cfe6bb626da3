// An encrypted value keeps one of the torus's 64 bits for padding.
#include <fhetensor/expr/operations.hpp>

using namespace fhetensor;

#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
using X = Encrypted<Tensor<int, 1>, Bits<62>>;
#else
using X = Encrypted<Tensor<int, 1>, Bits<63>>;
#endif
int main() {
  return X::static_range->lo == 0 ? 0 : 1;
}
