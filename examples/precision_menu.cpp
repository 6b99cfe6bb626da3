// Which parameter set a table needs, by precision and error probability: prints the
// markdown tables of docs/dsl.md. Times are the benchmarked cost of one key switch +
// bootstrap on each set (compiler/cost_model.hpp, from docs/benchmarks.md).
//
//   example_precision_menu
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <fhetensor/fhetensor.hpp>

using namespace fhetensor;

namespace {
// One table reading `input_bits`-bit values through its top `table_bits` bits.
std::string cell(int input_bits, int table_bits, double p, Rounding rounding) {
  auto x = Encrypted<Tensor<int, 1>>::input({1}, ValueRange::unsigned_bits(input_bits));
  try {
    auto m = compile(apply(x, [](std::int64_t v) { return v > 0; }, "f"),
                     CompileOptions{.rounding_bits = table_bits, .error_probability = p, .rounding = rounding});
    char text[96];
    std::snprintf(text, sizeof text, "N=%zu%s, %.0f ms", with_menu_instance(m.instance, []<class I>(std::type_identity<I>) {
                    return I::polynomial_size;
                  }), m.instance_name.find("quiet") != std::string::npos ? " quiet" : "",
                  1e3 * estimated_bootstrap_seconds(m.instance));
    return text;
  } catch (const CompileError&) {
    return "none";
  }
}
const std::vector<std::pair<const char*, double>> probabilities{
    {"2^-64", 0x1p-64}, {"2^-40", 0x1p-40}, {"2^-20", 0x1p-20}, {"0.01", 0.01}, {"0.05", 0.05}};

void print_table(const char* title, int input_extra_bits, Rounding rounding) {
  std::printf("\n%s\n\n| table bits |", title);
  for (auto& [name, p] : probabilities) std::printf(" p = %s |", name);
  std::printf("\n|---|");
  for (std::size_t i = 0; i < probabilities.size(); ++i) std::printf("---|");
  std::printf("\n");
  for (int bits = 1; bits <= 8; ++bits) {
    std::printf("| %d |", bits);
    for (auto& [name, p] : probabilities) std::printf(" %s |", cell(bits + input_extra_bits, bits, p, rounding).c_str());
    std::printf("\n");
  }
}
}  // namespace

int main() {
  print_table("Exact tables: the input has as many bits as the table.", 0, Rounding::exact);
  print_table("The top bits of an input 4 bits wider, exact rounding (every input rounds correctly).", 4, Rounding::exact);
  print_table("The top bits of an input 4 bits wider, approximate rounding (inputs next to a rounding boundary may round "
        "either way).",
        4, Rounding::approximate);
}
