// Checkpoints of encrypted runs (runtime/checkpoint.hpp, serialization/checkpoint.hpp): an
// interrupted run resumes from its last saved level with the very same ciphertexts as an
// uninterrupted one; checkpoints of another model, other inputs or corrupt ones are refused.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <fhetensor/fhetensor.hpp>
#include <fhetensor/serialization/checkpoint.hpp>

#include "test_support.hpp"

using namespace fhetensor;

namespace {

using Vector = Encrypted<Tensor<int, 1>>;

/// `layers` dense layers of fixed small weights, each followed by a clip (one level of
/// bootstraps each).
CompiledModel layered_model(int layers, int salt) {
  auto h = Vector::input({6}, ValueRange{-1, 1});
  for (int layer = 0; layer < layers; ++layer) {
    Tensor<int, 2> w = xt::zeros<int>({std::size_t{6}, std::size_t{6}});
    for (std::size_t i = 0; i < w.size(); ++i) w.flat(i) = static_cast<int>((i * 7 + static_cast<std::size_t>(layer + salt)) % 3) - 1;
    h = clip(dense(h, w, layer % 2), -1, 1);
  }
  return compile(h, CompileOptions{.rounding_bits = 4, .error_probability = 0x1p-40});
}

struct Interrupted {};

/// The decrypted output equals the clear computation's.
bool decrypts_to_clear(ClientKeys& keys, const CompiledModel& m, const std::vector<CiphertextTensor>& out, const ClearTensor& x) {
  const ClearTensor decrypted = keys.decrypt(m, out)[0];
  return decrypted == run_clear(m, {x})[0];
}

/// Saves through a FileCheckpoint, and stops the run (throws) after `saves` saves.
class StopAfter : public RunCheckpoint {
 public:
  StopAfter(FileCheckpoint inner, int saves) : inner_(std::move(inner)), saves_(saves) {}
  std::optional<RunState> load() override { return inner_.load(); }
  void save(std::size_t levels_done, std::span<const NodeId> nodes, std::span<const std::span<const Torus>> values) override {
    inner_.save(levels_done, nodes, values);
    if (--saves_ == 0) throw Interrupted{};
  }

 private:
  FileCheckpoint inner_;
  int saves_;
};

void flip_byte(const std::filesystem::path& file, std::streamoff offset) {
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  f.seekg(offset);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  f.seekp(offset);
  f.write(&c, 1);
}

}  // namespace

TEST_CASE("an interrupted encrypted run resumes from its checkpoint with the same ciphertexts", "[checkpoint]") {
  const CompiledModel m = layered_model(5, 0);
  INFO(explain(m));
  REQUIRE(m.instance <= 2);
  testing::TempDir dir;
  std::mt19937_64 gen(7);
  for (int trial = 0; trial < 3; ++trial) {
    ClientKeys keys = ClientKeys::generate(m);
    ClearTensor x = ClearTensor::from_shape({6});
    for (auto& v : x) v = std::uniform_int_distribution<std::int64_t>(-1, 1)(gen);
    const auto inputs = keys.encrypt(m, {x});

    std::vector<LevelReport> full_levels;
    const auto full = run(m, inputs, *keys.server_keys(), {.on_level = [&](const LevelReport& r) { full_levels.push_back(r); }});
    REQUIRE(full_levels.size() == 5);
    REQUIRE(decrypts_to_clear(keys, m, full, x));

    const int saves = 1 + trial;  // interrupted after levels 1, 2, 3
    const auto file = dir.path / ("run" + std::to_string(trial) + ".fhet");
    auto stopping = std::make_shared<StopAfter>(FileCheckpoint(file, m, inputs), saves);
    REQUIRE_THROWS_AS(run(m, inputs, *keys.server_keys(), {.checkpoint = stopping}), Interrupted);
    REQUIRE(std::filesystem::exists(file));

    std::vector<LevelReport> resumed_levels;
    std::size_t first_done = 0;
    bool reported = false;
    const auto resumed = run(m, inputs, *keys.server_keys(),
                             {.progress = [&](const Progress& p) { if (!reported) first_done = p.done, reported = true; },
                              .on_level = [&](const LevelReport& r) { resumed_levels.push_back(r); },
                              .checkpoint = std::make_shared<FileCheckpoint>(file, m, inputs)});
    INFO("interrupted after " << saves << " levels");
    // Only the levels after the checkpoint ran, and their result is bit for bit the same.
    REQUIRE(resumed_levels.size() == full_levels.size() - static_cast<std::size_t>(saves));
    CHECK(resumed_levels.front().level == full_levels[static_cast<std::size_t>(saves)].level);
    std::size_t before = 0;
    for (int l = 0; l < saves; ++l) before += full_levels[static_cast<std::size_t>(l)].bootstraps;
    CHECK(first_done == before);
    REQUIRE(resumed.size() == 1);
    CHECK(resumed[0].data == full[0].data);
    CHECK(decrypts_to_clear(keys, m, resumed, x));
  }
}

TEST_CASE("a checkpoint of another model, other inputs, or corrupt, is refused", "[checkpoint]") {
  const CompiledModel m = layered_model(3, 0);
  testing::TempDir dir;
  ClientKeys keys = ClientKeys::generate(m);
  const ClearTensor x = xt::xarray<std::int64_t>{1, -1, 0, 0, -1, 1};
  const auto inputs = keys.encrypt(m, {x});
  const auto file = dir.path / "run.fhet";
  auto stopping = std::make_shared<StopAfter>(FileCheckpoint(file, m, inputs), 1);
  REQUIRE_THROWS_AS(run(m, inputs, *keys.server_keys(), {.checkpoint = stopping}), Interrupted);
  const auto saved_size = std::filesystem::file_size(file);

  auto refused = [&](const CompiledModel& model, const std::vector<CiphertextTensor>& in, const std::string& message) {
    INFO(message);
    CHECK_THROWS_WITH(run(model, in, *keys.server_keys(), {.checkpoint = std::make_shared<FileCheckpoint>(file, model, in)}),
                      Catch::Contains(message));
    CHECK(std::filesystem::file_size(file) == saved_size);  // nothing lost
  };
  refused(m, keys.encrypt(m, {x}), "other encrypted inputs");  // the same values, encrypted again
  const CompiledModel other = layered_model(3, 1);
  REQUIRE(other.instance == m.instance);
  refused(other, inputs, "another model");

  const auto copy = dir.path / "copy.fhet";
  std::filesystem::copy_file(file, copy);
  flip_byte(file, static_cast<std::streamoff>(saved_size / 2));
  refused(m, inputs, "checksum mismatch");
  std::filesystem::copy_file(copy, file, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(file, saved_size - 8);
  CHECK_THROWS_AS(run(m, inputs, *keys.server_keys(), {.checkpoint = std::make_shared<FileCheckpoint>(file, m, inputs)}), FormatError);

  // The intact copy still resumes.
  std::filesystem::copy_file(copy, file, std::filesystem::copy_options::overwrite_existing);
  const auto resumed = run(m, inputs, *keys.server_keys(), {.checkpoint = std::make_shared<FileCheckpoint>(file, m, inputs)});
  CHECK(decrypts_to_clear(keys, m, resumed, x));
}
