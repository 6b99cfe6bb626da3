#pragma once
// What a long encrypted run keeps between levels of bootstraps, so that an interrupted run
// resumes where it stopped with the same result (a bootstrap is deterministic given its
// input and keys). run() saves after every level and, started again, loads the last save.
// serialization/checkpoint.hpp stores it in a file.
#include <cstddef>
#include <optional>
#include <span>
#include <vector>
#include <fhetensor/compiler/model.hpp>
#include <fhetensor/core/torus.hpp>
#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// After `levels_done` levels of a model's evaluation, the ciphertexts of the nodes still
/// to be read (each node's elements, one LWE row after another).
struct RunState {
  std::size_t levels_done = 0;
  std::vector<NodeId> nodes;
  std::vector<std::vector<Torus>> values;
};

/// Where run() saves its state and finds it again.
class RunCheckpoint {
 public:
  virtual ~RunCheckpoint() = default;
  /// The last saved state, if any.
  virtual std::optional<RunState> load() = 0;
  /// Replaces the saved state; values[k] holds node nodes[k].
  virtual void save(std::size_t levels_done, std::span<const NodeId> nodes, std::span<const std::span<const Torus>> values) = 0;
};

FHETENSOR_END_NAMESPACE
