#pragma once
// InferenceClient: the client side of InferenceService's protocol (inference_service.hpp)
// over one HttpClient connection. The keys stay with the caller: it uploads the
// compressed server keys and seeded ciphertexts, and decrypts what comes back. Not
// thread-safe: one client per thread (a second one may poll progress() during a run).
//
// Every method throws InferenceError with the server's status and message for an HTTP
// error answer, HttpClientError when no answer arrived, FormatError when an answer that
// should be an fhetensor object is not one.
//
// Needs Boost (headers only) and threads: link fhetensor::server.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fhetensor/core/version.hpp>
#include <fhetensor/serialization/files.hpp>
#include <fhetensor/server/http_client.hpp>
#include <fhetensor/server/http_message.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace server {

/// The server answered with an error status; what() is "<request>: <status> <message>".
class InferenceError : public std::runtime_error {
 public:
  InferenceError(unsigned status, std::string server_message, const std::string& request)
      : std::runtime_error("fhetensor: " + request + ": HTTP " + std::to_string(status) + ": " + server_message),
        status_(status),
        message_(std::move(server_message)) {}
  unsigned status() const noexcept { return status_; }
  const std::string& server_message() const noexcept { return message_; }

 private:
  unsigned status_;
  std::string message_;
};

/// GET /sessions/{id}/progress, parsed.
struct RunProgress {
  std::string state;  // "idle", "queued" or "running"
  std::size_t queue_position = 0;
  std::size_t pbs_done = 0, pbs_total = 0;
  double elapsed_seconds = 0;
  double remaining_seconds = -1;  // -1: not known yet
  std::size_t runs_completed = 0;
};

namespace detail {
// The value of "key" in the flat JSON object InferenceService writes (no nesting).
inline std::string_view json_field(std::string_view json, std::string_view key) {
  const std::string quoted = "\"" + std::string(key) + "\":";
  auto at = json.find(quoted);
  if (at == std::string_view::npos) return {};
  at += quoted.size();
  while (at < json.size() && json[at] == ' ') ++at;
  if (at < json.size() && json[at] == '"') {
    const auto end = json.find('"', at + 1);
    return end == std::string_view::npos ? std::string_view() : json.substr(at + 1, end - at - 1);
  }
  const auto end = json.find_first_of(",}", at);
  return json.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
}
inline double json_double(std::string_view json, std::string_view key, double fallback) {
  const std::string text(json_field(json, key));
  if (text.empty()) return fallback;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  return end == text.c_str() ? fallback : value;
}
}  // namespace detail

class InferenceClient {
 public:
  /// Connects at once (HttpClientError if it cannot). The default response limit admits
  /// the outputs of large models; lower it in `options` to bound what a server may send.
  InferenceClient(std::string host, unsigned short port, HttpClientOptions options = default_options())
      : http_(std::move(host), port, options) {}

  static HttpClientOptions default_options() {
    HttpClientOptions o;
    o.max_body_bytes = std::uint64_t{1} << 30;
    return o;
  }

  /// GET /model: the model and, if any, the client's recipe.
  ModelPackage fetch_model(const LoadLimits& limits = {}) {
    const auto body = call("GET", "/model", {}, 200);
    return deserialize_model_package(bytes_of(body), limits);
  }

  /// POST /sessions: uploads the evaluation keys; returns the session id.
  std::string open_session(const CompressedServerKeys& keys) { return open_session_raw(serialize(keys)); }
  std::string open_session_raw(std::span<const std::uint8_t> key_bytes) {
    return call("POST", "/sessions", as_text(key_bytes), 201);
  }

  /// POST /sessions/{id}/run: the encrypted outputs of the model on these inputs.
  std::vector<CiphertextTensor> run(const std::string& session, std::span<const SeededCiphertextTensor> inputs,
                                    const LoadLimits& limits = {}) {
    return run_raw(session, serialize(inputs), limits);
  }
  std::vector<CiphertextTensor> run(const std::string& session, std::span<const CiphertextTensor> inputs,
                                    const LoadLimits& limits = {}) {
    return run_raw(session, serialize(inputs), limits);
  }
  std::vector<CiphertextTensor> run_raw(const std::string& session, std::span<const std::uint8_t> input_bytes,
                                        const LoadLimits& limits = {}) {
    const auto body = call("POST", "/sessions/" + session + "/run", as_text(input_bytes), 200);
    return deserialize_ciphertexts(bytes_of(body), limits);
  }

  /// GET /sessions/{id}/progress.
  RunProgress progress(const std::string& session) {
    const std::string json = call("GET", "/sessions/" + session + "/progress", {}, 200);
    RunProgress p;
    p.state = std::string(detail::json_field(json, "state"));
    p.queue_position = static_cast<std::size_t>(detail::json_double(json, "queue_position", 0));
    p.pbs_done = static_cast<std::size_t>(detail::json_double(json, "pbs_done", 0));
    p.pbs_total = static_cast<std::size_t>(detail::json_double(json, "pbs_total", 0));
    p.elapsed_seconds = detail::json_double(json, "elapsed_seconds", 0);
    p.remaining_seconds = detail::json_double(json, "remaining_seconds", -1);
    p.runs_completed = static_cast<std::size_t>(detail::json_double(json, "runs_completed", 0));
    return p;
  }

  /// DELETE /sessions/{id}: the server frees the keys.
  void close_session(const std::string& session) { call("DELETE", "/sessions/" + session, {}, 204); }

  HttpClient& http() noexcept { return http_; }

 private:
  static std::span<const std::uint8_t> bytes_of(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
  }
  static std::string_view as_text(std::span<const std::uint8_t> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }

  std::string call(std::string_view method, const std::string& target, std::string_view body, unsigned expected) {
    HttpResponse response = http_.request(method, target, body);
    if (response.status != expected) {
      std::string message = std::move(response.body);
      if (message.size() > 1000) message.resize(1000);
      throw InferenceError(response.status, std::move(message), std::string(method) + " " + target);
    }
    return std::move(response.body);
  }

  HttpClient http_;
};

}  // namespace server
FHETENSOR_END_NAMESPACE
