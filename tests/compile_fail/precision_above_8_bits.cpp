// Lookup tables cover 1 to 8 message bits.
#include <fhetensor/algorithms/parameter_menu.hpp>

using namespace fhetensor;

#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
using P = params_for<8>;
#else
using P = params_for<9>;
#endif
int main() { return P::precision; }
