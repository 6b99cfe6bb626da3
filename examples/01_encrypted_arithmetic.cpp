// Tutorial 01: encrypted arithmetic. A model is a C++ function of encrypted tensors with
// clear weights; compile() traces it once, derives every width and picks the parameter
// set. The same compiled model then runs in the clear and encrypted, with equal results.
//
//   example_01_encrypted_arithmetic
#include <cstdio>
#include <xtensor/xio.hpp>

#include <fhetensor/fhetensor.hpp>

using namespace fhetensor;

int main() {
  // Two encrypted vectors of 4-bit values, and clear weights.
  const Tensor<int, 2> weights = {{2, -1}, {0, 3}, {1, 1}, {-2, 0}};
  const Tensor<int, 1> offset = {5, -5};
  auto model = compile(
      [&](auto a, auto b) {
        auto mixed = 3 * a - b + 1;           // elementwise, with clear scalars
        return dense(mixed, weights, offset);  // a clear [4, 2] matrix
      },
      std::tuple{input<Tensor<int, 1>, Bits<4>>({4}), input<Tensor<int, 1>, Bits<4>>({4})});
  // No bootstrap: linear operations only add noise. explain() shows the widths it derived.
  std::printf("%s\n", explain(model).c_str());

  const ClearTensor a = {1, 7, 15, 0}, b = {3, 3, 0, 9};
  const ClearTensor clear = run_clear(model, {a, b})[0];

  ClientKeys keys = ClientKeys::generate(model);                // secret keys stay in this object
  auto server_keys = keys.server_keys();                         // evaluation keys, for the server
  auto encrypted = run(model, keys.encrypt(model, {a, b}), *server_keys);
  const ClearTensor decrypted = keys.decrypt(model, 0, encrypted[0]);

  std::cout << "clear:     " << clear << "\nencrypted: " << decrypted << "\n";
  return decrypted == clear ? 0 : 1;
}
