// Backend tutorial: generate keys, encrypt, apply a lookup table under
// encryption with programmable bootstrapping, decrypt. The parameter set comes from the
// precision you ask for; you never pick n, N, k or a decomposition.
//
//   example_backend_lookup_table [precision 1..6]   (default 4)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fhetensor/fhetensor.hpp>

using namespace fhetensor;
using Clock = std::chrono::steady_clock;

template <int Precision>
int run() {
  using P = params_for<Precision>;  // the cheapest 128-bit set with failure <= 2^-64
  using I = typename P::instance;
  std::printf("precision %d bits -> parameter set %s (n=%zu, k=%zu, N=%zu), PBS failure 2^%.1f\n", Precision,
              I::name.data(), I::lwe_dimension, I::glwe_dimension, I::polynomial_size,
              P::log2_failure_probability(1.0));

  auto rng = Csprng::from_os_entropy();
  auto t0 = Clock::now();
  const auto secret = generate_secret_keys<I>(rng);                 // client side, stays there
  const auto eval = generate_evaluation_keys<I>(secret, rng);       // what a server gets
  std::printf("keys generated in %.2f s: bootstrapping key %.1f MiB, key-switching key %.1f MiB\n",
              std::chrono::duration<double>(Clock::now() - t0).count(), eval.bootstrap.size_bytes() / 1048576.0,
              eval.keyswitch.data().size_bytes() / 1048576.0);

  // f(m) = m^2 mod 2^p, applied to every message.
  const Encoding e{Precision};
  const std::int64_t messages = static_cast<std::int64_t>(e.message_modulus());
  const LookupTable<I> square([&](std::int64_t m) { return (m * m) % messages; }, e, e);
  std::vector<LweCiphertext<I>> inputs, outputs(static_cast<std::size_t>(messages));
  for (std::int64_t m = 0; m < messages; ++m) inputs.push_back(encrypt_lwe(secret.big(), e.encode(m), rng));

  std::vector<PbsWorkspace<I>> workspaces(default_thread_count());
  t0 = Clock::now();
  parallel_for(inputs.size(), [&](std::size_t i, std::size_t worker) {
    apply_lookup_table_into(outputs[i], inputs[i], square, eval, workspaces[worker]);
  });
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  int wrong = 0;
  for (std::int64_t m = 0; m < messages; ++m) {
    const auto got = static_cast<std::int64_t>(e.decode(decrypt_phase(secret.big(), outputs[static_cast<std::size_t>(m)])));
    wrong += got != (m * m) % messages;
    std::printf("  f(%2lld) = %3lld%s\n", static_cast<long long>(m), static_cast<long long>(got),
                got == (m * m) % messages ? "" : "   <- WRONG");
  }
  std::printf("%lld bootstraps on %zu threads in %.3f s (%.2f ms per bootstrap per thread); %d wrong\n",
              static_cast<long long>(messages), workspaces.size(), seconds,
              1e3 * seconds * static_cast<double>(workspaces.size()) / static_cast<double>(messages), wrong);
  return wrong == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  const int precision = argc > 1 ? std::atoi(argv[1]) : 4;
  switch (precision) {
    case 1: return run<1>();
    case 2: return run<2>();
    case 3: return run<3>();
    case 4: return run<4>();
    case 5: return run<5>();
    case 6: return run<6>();
    default: std::fprintf(stderr, "usage: %s [precision 1..6]\n", argv[0]); return 2;
  }
}
