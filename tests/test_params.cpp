// The parameter menu: security and failure probability of every set, and the choice of set.
#include <catch2/catch.hpp>

#include <cmath>

#include <fhetensor/algorithms/parameter_menu.hpp>

using namespace fhetensor;

TEST_CASE("failure targets carry z-scores whose Gaussian tail is at most the target", "[params]") {
  for (auto target : {p_fail_2m40, p_fail_2m64, p_fail_2m128}) {
    const double tail = std::erfc(target.z_score / std::sqrt(2.0));
    CHECK(std::log2(tail) <= target.log2_p);
    CHECK(std::log2(tail) > target.log2_p - 0.01);  // and not needlessly conservative
  }
}

template <TfheInstance I>
void check_instance_security() {
  INFO(I::name);
  CHECK(I::lwe_security.bits >= 128.0);
  CHECK(I::glwe_security.bits >= 128.0);
  CHECK(!I::lwe_security.source.empty());
  CHECK(!I::glwe_security.source.empty());
  // The GLWE noise is never below the [LE] point it is compared with.
  CHECK(I::glwe_noise.log2_bound >= 17);
  CHECK(I::glwe_dimension * I::polynomial_size >= 2048);
  // An LWE estimate taken "monotone" from an [LE] point has at least its dimension and noise.
  namespace ss = security_source;
  if (I::lwe_security.source == ss::le_lwe_918) CHECK((I::lwe_dimension == 918 && I::lwe_noise.log2_bound == 45));
  if (I::lwe_security.source == ss::le_lwe_900) CHECK((I::lwe_dimension >= 900 && I::lwe_noise.log2_bound >= 44));
  if (I::lwe_security.source == ss::le_lwe_1000) CHECK((I::lwe_dimension >= 1000 && I::lwe_noise.log2_bound >= 42));
}

TEST_CASE("every instance of the menu is estimated at >= 128 bits", "[params]") {
  for (std::size_t i = 0; i < menu_size; ++i)
    with_menu_instance(i, []<class I>(std::type_identity<I>) { check_instance_security<I>(); });
}

template <int P, FailureProbability T>
void check_menu_entry() {
  using S = params_for<P, T>;
  INFO("precision " << P << " target 2^" << T.log2_p << " -> " << S::name);
  CHECK(S::precision == P);
  CHECK(S::max_norm2 >= 1.0);
  CHECK(S::log2_failure_probability(1.0) <= T.log2_p);
  CHECK(S::log2_failure_probability() <= T.log2_p + 1e-6);  // at the largest admissible 2-norm
  CHECK(S::polynomial_size >= (std::size_t{1} << P));       // a box per message
}

TEST_CASE("params_for meets precision 1 to 8 at 2^-64 and 2^-128", "[params]") {
  [&]<int... I>(std::integer_sequence<int, I...>) {
    (check_menu_entry<I + 1, p_fail_2m64>(), ...);
    (check_menu_entry<I + 1, p_fail_2m128>(), ...);
  }(std::make_integer_sequence<int, 8>{});
}

TEST_CASE("params_for picks the cheapest feasible instance", "[params]") {
  STATIC_REQUIRE(std::is_same_v<params_for<3>::instance, TfheN1024>);
  STATIC_REQUIRE(std::is_same_v<params_for<4>::instance, TfheN2048>);
  STATIC_REQUIRE(std::is_same_v<params_for<5>::instance, TfheN4096>);
  STATIC_REQUIRE(std::is_same_v<params_for<8>::instance, TfheN65536>);
  STATIC_REQUIRE(std::is_same_v<params_for<4, p_fail_2m128>::instance, TfheN4096>);
  // TfheN1024 fails 4 bits at 2^-64: the menu moved on because it had to.
  CHECK(noise::max_norm2<TfheN1024>(4, p_fail_2m64) < 1.0);
  CHECK(noise::max_norm2<TfheN2048>(5, p_fail_2m64) < 1.0);
}
