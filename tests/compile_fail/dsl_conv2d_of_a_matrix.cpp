// conv2d takes [C, H, W] or [B, C, H, W] tensors.
#include <fhetensor/expr/operations.hpp>

using namespace fhetensor;

#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
constexpr std::size_t rank = 3;
#else
constexpr std::size_t rank = 2;
#endif
int main() {
  auto x = Encrypted<Tensor<int, rank>, Bits<4>>::input(Shape(rank, 3));
  return conv2d(x, Tensor<int, 4>::from_shape({1, 1, 1, 1})).node() == 0;
}
