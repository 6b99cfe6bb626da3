// An instance whose noise cannot meet the failure target at a precision is rejected.
#include <fhetensor/algorithms/parameter_menu.hpp>

using namespace fhetensor;

#ifdef FHETENSOR_COMPILE_FAIL_CONTROL
using P = ParameterSet<TfheN1024, 3, p_fail_2m64>;
#else
using P = ParameterSet<TfheN1024, 4, p_fail_2m64>;
#endif
int main() { return P::max_norm2 > 1.0 ? 0 : 1; }
