// A lookup table built for one parameter set cannot be applied under another.
#include <fhetensor/algorithms/pbs.hpp>

using namespace fhetensor;

int main() {
  const EvaluationKeys<TfheN2048>* keys = nullptr;
  PbsWorkspace<TfheN2048>* ws = nullptr;
  LweCiphertext<TfheN2048> x;
#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
  const LookupTable<TfheN2048> table([](std::int64_t m) { return m; }, Encoding{4}, Encoding{4});
#else
  const LookupTable<TfheN1024> table([](std::int64_t m) { return m; }, Encoding{3}, Encoding{3});
#endif
  if (keys) return static_cast<int>(apply_lookup_table(x, table, *keys, *ws).body());
  return 0;
}
