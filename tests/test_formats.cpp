// Files written by older format versions (tests/fixtures/format_v<N>/, made by
// tests/fixtures/make_fixtures.cpp at that version) must load and mean the same thing.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <xtensor/xadapt.hpp>
#include <fhetensor/fhetensor.hpp>
#include <fhetensor/serialization/files.hpp>

using namespace fhetensor;

namespace {
const std::filesystem::path fixtures = FHETENSOR_FIXTURES_DIR;

/// The clear input and output a fixture directory's values.txt lists.
std::pair<ClearTensor, ClearTensor> fixture_values(const std::filesystem::path& dir) {
  std::ifstream in(dir / "values.txt");
  std::string line;
  std::vector<std::vector<std::int64_t>> rows;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string name;
    words >> name;
    rows.emplace_back(std::istream_iterator<std::int64_t>(words), std::istream_iterator<std::int64_t>());
  }
  REQUIRE(rows.size() == 2);
  return {ClearTensor(xt::adapt(rows[0], std::vector<std::size_t>{rows[0].size()})),
          ClearTensor(xt::adapt(rows[1], std::vector<std::size_t>{rows[1].size()}))};
}

std::uint32_t version_of(const std::filesystem::path& file) {
  return read_header(io::read_file_bounded(file, 1 << 24)).format_version;
}
}  // namespace

TEST_CASE("format version 1 files load: model, secret keys, ciphertexts", "[formats]") {
  const auto dir = fixtures / "format_v1";
  for (const char* name : {"model.fhe", "client.keys", "inputs.ct", "outputs.ct"}) CHECK(version_of(dir / name) == 1);
  const auto [x, y] = fixture_values(dir);
  const CompiledModel model = load_model(dir / "model.fhe");
  ClientKeys keys = import_client_keys(dir / "client.keys");
  CHECK((run_clear(model, {x})[0] == y));
  // The outputs the old version computed, and a fresh run on its inputs with the keys the
  // imported secret regenerates, decrypt to the clear result.
  CHECK((keys.decrypt(model, load_ciphertexts(dir / "outputs.ct"))[0] == y));
  CHECK((keys.decrypt(model, run(model, load_ciphertexts(dir / "inputs.ct"), *keys.server_keys()))[0] == y));
  // Saved again, they are in the current version and load the same.
  const CompiledModel again = deserialize_model(serialize(model));
  CHECK(read_header(serialize(model)).format_version == format::current_version);
  CHECK((run_clear(again, {x})[0] == y));
}
