// Encrypted<T> wraps a clear tensor type.
#include <fhetensor/expr/operations.hpp>

using namespace fhetensor;

#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
using T = Tensor<int, 1>;
#else
using T = int;
#endif
int main() {
  return Encrypted<T>::rank == 1 ? 0 : 1;
}
