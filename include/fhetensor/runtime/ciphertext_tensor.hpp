#pragma once
// Encrypted tensors: one big-key LWE ciphertext per element, row-major. A client uploads
// them seeded (each element's mask regenerated from one public seed, only the bodies
// travel: 8 bytes per element instead of 8(kN + 1)); the server expands them.
#include <cstddef>
#include <span>
#include <vector>
#include <fhetensor/core/parallel.hpp>
#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/expr/shape.hpp>
#include <fhetensor/random/csprng.hpp>

FHETENSOR_BEGIN_NAMESPACE

struct CiphertextTensor {
  Shape shape;
  std::size_t instance = 0;  // index of the parameter set in the menu
  std::size_t row_size = 0;  // LWE dimension + 1
  std::vector<Torus> data;

  std::span<Torus> row(std::size_t i) { return {data.data() + i * row_size, row_size}; }
  std::span<const Torus> row(std::size_t i) const { return {data.data() + i * row_size, row_size}; }
  std::size_t size() const noexcept { return row_size ? data.size() / row_size : 0; }
};

struct SeededCiphertextTensor {
  Shape shape;
  std::size_t instance = 0;
  std::size_t row_size = 0;
  Csprng::Seed mask_seed{};
  std::vector<Torus> bodies;  // one per element

  /// The mask stream of element i.
  Csprng masks(std::size_t i) const { return Csprng(derive_seed(mask_seed, seed_domain::ciphertext_masks, i)); }

  CiphertextTensor expand() const {
    CiphertextTensor out{shape, instance, row_size, std::vector<Torus>(bodies.size() * row_size)};
    parallel_for(bodies.size(), [&](std::size_t i, std::size_t) {
      const auto row = out.row(i);
      masks(i).fill(row.first(row_size - 1));
      row.back() = bodies[i];
    });
    return out;
  }
};

FHETENSOR_END_NAMESPACE
