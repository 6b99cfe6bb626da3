// Raw bytes, no envelope made for them: the header checks (magic, version, kind, parameter
// set name and digest, payload length against its limit, checksum) of read_header(),
// inspect() and of every object loader, which all start with them.
#include <cstddef>
#include <cstdint>
#include <span>
#include <fhetensor/serialization/files.hpp>

using namespace fhetensor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  try {
    const EnvelopeHeader header = read_header(bytes);
    if (header.instance >= menu_size) __builtin_trap();  // read_header promises an index of this build's menu
  } catch (const FormatError&) {
  }
  try {
    const EnvelopeHeader header = inspect(bytes);
    if (header.payload_size != size - format::header_size) __builtin_trap();  // a checked envelope holds its payload exactly
  } catch (const FormatError&) {
  }
  // The loaders on the same bytes: each checks the header, the kind and the checksum first.
  try {
    (void)deserialize_model(bytes);
  } catch (const FormatError&) {
  }
  try {
    (void)deserialize_ciphertexts(bytes);
  } catch (const FormatError&) {
  }
  try {
    (void)import_client_keys(bytes);
  } catch (const FormatError&) {
  }
  try {
    (void)deserialize_server_keys(bytes);
  } catch (const FormatError&) {
  }
  return 0;
}
