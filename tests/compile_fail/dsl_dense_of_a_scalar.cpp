// dense reads the features on the last axis: a scalar has none.
#include <fhetensor/expr/operations.hpp>

using namespace fhetensor;

#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
constexpr std::size_t rank = 1;
#else
constexpr std::size_t rank = 0;
#endif
int main() {
  auto x = Encrypted<Tensor<int, rank>, Bits<4>>::input(Shape(rank, 3));
  return dense(x, Tensor<int, 2>{{1}, {2}, {3}}).node() == 0;
}
