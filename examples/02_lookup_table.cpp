// Tutorial 02: lookup tables. Any function of an encrypted value runs as a programmable
// bootstrap (PBS); the compiler sizes the table from the value's range, rounds inputs
// wider than the rounding precision to their top bits, and fuses chained tables.
//
//   example_02_lookup_table
#include <cstdio>
#include <xtensor/xio.hpp>

#include <fhetensor/fhetensor.hpp>

using namespace fhetensor;

int main() {
  auto model = compile(
      [](auto x) {
        auto squared = apply(x - 8, [](std::int64_t v) { return v * v; }, "square");  // one PBS per element
        return std::tuple{relu(squared - 20),   // fuses with "square": still one PBS
                          greater(x, 10)};      // comparison: one PBS on x - 10
      },
      input<Tensor<int, 1>, Bits<4>>({6}));
  std::printf("%s\n", explain(model).c_str());

  const ClearTensor x = {0, 3, 8, 10, 12, 15};
  const auto clear = run_clear(model, {x});
  ClientKeys keys = ClientKeys::generate(model);
  const auto decrypted = keys.decrypt(model, run(model, keys.encrypt(model, {x}), *keys.server_keys()));
  std::cout << "relu((x - 8)^2 - 20): clear " << clear[0] << ", encrypted " << decrypted[0] << "\n"
            << "x > 10:               clear " << clear[1] << ", encrypted " << decrypted[1] << "\n";
  return decrypted == clear ? 0 : 1;
}
