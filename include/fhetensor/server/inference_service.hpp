#pragma once
// InferenceService: encrypted inference over HTTP for one loaded model. handler() plugs it
// into an HttpServer (configure() sizes the server's limits for the model); the client
// side is in inference_client.hpp.
//
// Protocol (bodies are fhetensor envelopes, serialization/files.hpp):
//   GET    /model                  -> 200, the model file (graph, encodings, shapes, recipe)
//   POST   /sessions               body: CompressedServerKeys of the model's parameter set
//                                  -> 201, text/plain: the session id (32 hex digits,
//                                  128 random bits); the keys are expanded here (seconds).
//                                  503 when max_sessions sessions are live.
//   POST   /sessions/{id}/run      body: the model's inputs, seeded or full ciphertexts
//                                  -> 200, the outputs (full ciphertexts). One run at a
//                                  time on every core; up to max_queued_runs wait, 503 beyond.
//   GET    /sessions/{id}/progress -> 200, JSON: {"state": "idle"|"queued"|"running",
//                                  "queue_position", "pbs_done", "pbs_total",
//                                  "elapsed_seconds", "remaining_seconds" (-1: unknown),
//                                  "stage", "runs_completed"}
//   DELETE /sessions/{id}          -> 204; frees the keys (a run in flight finishes first).
//   GET    /status                 -> 200, JSON: parameter set, sessions, runs queued.
// Sessions idle for session_idle_timeout are closed. Errors are text/plain messages:
// 400 malformed input (every FormatError, with its message), 404 unknown session or path,
// 405 wrong method, 413 body over the limit (transport), 422 keys or ciphertexts of
// another parameter set than the model's, 503 busy or shutting down, 500 internal
// (generic; the detail goes to the server's error log).
//
// Uploads are checked against the model before anything is expanded (deserialize_inputs),
// and expansions are bounded by the model's own sizes.
//
// Needs Boost (headers only), libsodium and threads: link fhetensor::server.
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fhetensor/core/version.hpp>
#include <fhetensor/random/csprng.hpp>
#include <fhetensor/runtime/execute.hpp>
#include <fhetensor/runtime/progress.hpp>
#include <fhetensor/runtime/server_keys.hpp>
#include <fhetensor/serialization/files.hpp>
#include <fhetensor/server/http_message.hpp>
#include <fhetensor/server/http_server.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace server {

struct InferenceServiceOptions {
  /// Live sessions, each holding expanded server keys (tens to hundreds of MB).
  std::size_t max_sessions = 8;
  /// A session not used for this long is closed (not while one of its runs is in flight).
  std::chrono::milliseconds session_idle_timeout{std::chrono::minutes(30)};
  /// Runs waiting behind the one running; more get 503.
  std::size_t max_queued_runs = 4;
  /// Threads of each run (runs go one at a time).
  std::size_t run_threads = default_thread_count();
  /// One line per session opened, closed or expired and per run, with times; empty: silent.
  std::function<void(const std::string&)> log;
};

namespace detail {

inline std::string json_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out;
}

inline std::string json_number(double x) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3f", x);
  return buffer;
}

inline std::span<const std::uint8_t> bytes_of(const std::string& body) {
  return {reinterpret_cast<const std::uint8_t*>(body.data()), body.size()};
}

inline std::string random_session_id() {
  fhetensor::detail::ensure_sodium_initialized();
  unsigned char raw[16];
  randombytes_buf(raw, sizeof raw);
  static constexpr char digits[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : raw) {
    id += digits[b >> 4];
    id += digits[b & 15];
  }
  return id;
}

inline bool is_session_id(std::string_view s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace detail

class InferenceService {
 public:
  using Options = InferenceServiceOptions;
  using Clock = std::chrono::steady_clock;

  /// Serves `package`; throws std::invalid_argument for unusable options.
  explicit InferenceService(ModelPackage package, Options options = {})
      : package_(std::move(package)), options_(std::move(options)), model_bytes_(serialize(package_)) {
    if (options_.max_sessions == 0) throw std::invalid_argument("fhetensor: InferenceService needs max_sessions > 0");
    if (options_.session_idle_timeout.count() <= 0)
      throw std::invalid_argument("fhetensor: InferenceService session_idle_timeout must be positive");
    const CompiledModel& model = package_.model;
    const std::uint64_t row = fhetensor::detail::ciphertext_row_size(model.instance);
    std::uint64_t full_upload = format::header_size + 64;
    for (NodeId id : model.inputs)  // each tensor: form, shape, parameter set, row size, data
      full_upload += element_count(model.graph[id].shape) * row * 8 + 256;
    max_inputs_bytes_ = full_upload;
    const std::uint64_t keys = format::header_size + with_menu_instance(model.instance, []<class I>(std::type_identity<I>) {
                                 return fhetensor::detail::compressed_keys_payload<I>();
                               }) + 64;
    max_request_bytes_ = std::max(keys, full_upload) + 4096;
    reaper_ = std::jthread([this](std::stop_token stop) { reap(stop); });
  }

  /// Stops the reaper; the HttpServer using handler() must be stopped first.
  ~InferenceService() {
    shutdown();
    reaper_.request_stop();
    reaper_cv_.notify_all();
  }

  InferenceService(const InferenceService&) = delete;
  InferenceService& operator=(const InferenceService&) = delete;

  const ModelPackage& package() const noexcept { return package_; }
  const Options& options() const noexcept { return options_; }

  /// The largest legitimate request body: compressed server keys of the model's parameter
  /// set, or its inputs as full ciphertexts, whichever is larger, plus slack.
  std::uint64_t max_request_bytes() const noexcept { return max_request_bytes_; }

  /// Sets the server's body limit to max_request_bytes() and gives it enough handler
  /// threads for the queued runs plus quick requests (progress) beside them.
  void configure(HttpServerOptions& server_options) const {
    server_options.max_body_bytes = max_request_bytes_;
    // Each connection may buffer a whole body: bound what they hold together.
    server_options.max_connections = std::min<std::size_t>(server_options.max_connections, 2 * options_.max_sessions + 8);
    server_options.handler_threads =
        std::max<unsigned>(server_options.handler_threads, static_cast<unsigned>(options_.max_queued_runs + 1 + 4));
  }

  /// The handler for an HttpServer; the service must outlive the server.
  HttpHandler handler() {
    return [this](const HttpRequest& request) { return handle(request); };
  }

  /// Refuses new sessions and queued runs (503); the run in progress finishes.
  void shutdown() {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    turn_.notify_all();
  }

  std::size_t session_count() const {
    std::lock_guard lock(mutex_);
    return sessions_.size();
  }

  /// Closes the sessions idle for longer than session_idle_timeout (also done every few
  /// seconds by a background thread); returns how many.
  std::size_t expire_idle_sessions() {
    std::vector<std::string> expired;
    {
      std::lock_guard lock(mutex_);
      const auto now = Clock::now();
      for (auto it = sessions_.begin(); it != sessions_.end();) {
        const Session& s = *it->second;
        if (s.queued == 0 && !s.running && now - s.last_used > options_.session_idle_timeout) {
          expired.push_back(it->first);
          it = sessions_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const auto& id : expired) log("session " + short_id(id) + " expired after " + seconds_text(options_.session_idle_timeout) + " idle");
    return expired.size();
  }

  HttpResponse handle(const HttpRequest& request) {
    try {
      return route(request);
    } catch (const FormatError& e) {
      throw HttpError(400, e.what());
    }
  }

 private:
  struct Session {
    std::shared_ptr<const ServerKeys> keys;
    Clock::time_point last_used;
    std::size_t queued = 0;  // runs waiting for their turn
    bool running = false;
    std::vector<std::uint64_t> tickets;  // of the queued runs
    Progress progress;                   // of the current or last run
    std::size_t runs_completed = 0;
  };

  HttpResponse route(const HttpRequest& request) {
    std::string_view path(request.target);
    path = path.substr(0, path.find('?'));
    const std::string& method = request.method;
    if (path == "/model") {
      require_method(method, {"GET", "HEAD"});
      return {200, "application/octet-stream", std::string(model_bytes_.begin(), model_bytes_.end())};
    }
    if (path == "/status") {
      require_method(method, {"GET", "HEAD"});
      return {200, "application/json", status_json()};
    }
    if (path == "/sessions") {
      require_method(method, {"POST"});
      return open_session(request.body);
    }
    constexpr std::string_view prefix = "/sessions/";
    if (path.starts_with(prefix)) {
      std::string_view rest = path.substr(prefix.size());
      const std::string_view id = rest.substr(0, rest.find('/'));
      const std::string_view action = id.size() < rest.size() ? rest.substr(id.size() + 1) : std::string_view();
      if (action.empty()) {
        require_method(method, {"DELETE"});
        return close_session(id);
      }
      if (action == "run") {
        require_method(method, {"POST"});
        return run_session(id, request.body);
      }
      if (action == "progress") {
        require_method(method, {"GET", "HEAD"});
        return {200, "application/json", progress_json(id)};
      }
    }
    throw HttpError(404, "no such resource: " + std::string(path.substr(0, 100)) +
                             " (GET /model, POST /sessions, POST /sessions/{id}/run, GET /sessions/{id}/progress, "
                             "DELETE /sessions/{id})");
  }

  static void require_method(const std::string& method, std::initializer_list<std::string_view> allowed) {
    for (std::string_view m : allowed)
      if (method == m) return;
    std::string list;
    for (std::string_view m : allowed) list += (list.empty() ? "" : ", ") + std::string(m);
    throw HttpError(405, "method " + method.substr(0, 20) + " not allowed here; use " + list);
  }

  // Refuses an envelope of the right kind under another parameter set with 422, before
  // loading it; every other defect is left to the loader's FormatError (400).
  void check_parameter_set(const std::string& body, ObjectKind kind) const {
    const EnvelopeHeader header = read_header(detail::bytes_of(body));
    if (header.kind == kind && header.instance != package_.model.instance)
      throw HttpError(422, std::string(to_string(kind)) + " for parameter set " + std::string(instance_name(header.instance)) +
                               "; this model runs under " + package_.model.instance_name);
  }

  HttpResponse open_session(const std::string& body) {
    check_parameter_set(body, ObjectKind::server_keys);
    {
      std::lock_guard lock(mutex_);
      if (stopping_) throw HttpError(503, "server shutting down");
      if (sessions_.size() + opening_ >= options_.max_sessions) {
        throw HttpError(503, "server busy: " + std::to_string(options_.max_sessions) +
                                 " sessions open; retry later or close one (DELETE /sessions/{id})");
      }
      ++opening_;
    }
    struct Release {
      InferenceService& self;
      ~Release() {
        std::lock_guard lock(self.mutex_);
        --self.opening_;
      }
    } release{*this};
    const auto start = Clock::now();
    auto keys = std::make_shared<const ServerKeys>(deserialize_server_keys(detail::bytes_of(body)));
    const double seconds = since(start);
    std::string id = detail::random_session_id();
    std::size_t live;
    {
      std::lock_guard lock(mutex_);
      auto session = std::make_unique<Session>();
      session->keys = std::move(keys);
      session->last_used = Clock::now();
      sessions_.emplace(id, std::move(session));
      live = sessions_.size();
    }
    log("session " + short_id(id) + " opened: " + std::to_string(body.size()) + " bytes of keys expanded in " +
        detail::json_number(seconds) + " s; " + std::to_string(live) + " open");
    return {201, "text/plain; charset=utf-8", id};
  }

  HttpResponse close_session(std::string_view id) {
    {
      std::lock_guard lock(mutex_);
      const auto it = find(id);
      sessions_.erase(it);
    }
    log("session " + short_id(id) + " closed by its client");
    return {204, {}, {}};
  }

  HttpResponse run_session(std::string_view id, const std::string& body) {
    const CompiledModel& model = package_.model;
    std::shared_ptr<const ServerKeys> keys;
    {
      std::lock_guard lock(mutex_);
      Session& s = *find(id)->second;
      s.last_used = Clock::now();
      keys = s.keys;
    }
    check_parameter_set(body, ObjectKind::ciphertexts);
    LoadLimits limits;  // the payload, and what each seeded tensor expands to
    limits.max_ciphertext_bytes = max_inputs_bytes_;
    const auto start = Clock::now();
    std::vector<CiphertextTensor> inputs = deserialize_inputs(detail::bytes_of(body), model, limits);

    // Wait for our turn: one run at a time, at most max_queued_runs waiting.
    std::uint64_t ticket;
    std::size_t ahead;
    {
      std::unique_lock lock(mutex_);
      if (stopping_) throw HttpError(503, "server shutting down");
      ahead = static_cast<std::size_t>(next_ticket_ - serving_);
      if (ahead > options_.max_queued_runs)
        throw HttpError(503, "server busy: " + std::to_string(ahead) + " runs queued or running; retry later");
      Session* s = lookup(id);
      if (!s) throw HttpError(404, "unknown session (closed while its inputs were read)");
      ticket = next_ticket_++;
      ++s->queued;
      s->tickets.push_back(ticket);
      turn_.wait(lock, [&] { return serving_ == ticket || stopping_; });
      s = lookup(id);
      if (s) {
        --s->queued;
        std::erase(s->tickets, ticket);
      }
      if (stopping_) {  // queued runs are refused, and their turns passed on
        if (serving_ == ticket) advance_turn();
        else abandoned_.push_back(ticket);
        throw HttpError(503, "server shutting down");
      }
      if (s) {
        s->running = true;
        s->progress = Progress{};
        s->progress.total = model.statistics.bootstraps;
      }
    }
    struct NextTurn {
      InferenceService& self;
      std::string id;
      ~NextTurn() {
        std::lock_guard lock(self.mutex_);
        if (Session* s = self.lookup(id)) {
          s->running = false;
          s->last_used = Clock::now();
        }
        self.advance_turn();
      }
    } next_turn{*this, std::string(id)};

    const double waited = since(start);
    const auto run_start = Clock::now();
    RunOptions run_options;
    run_options.threads = options_.run_threads;
    run_options.progress = [this, session_id = std::string(id)](const Progress& p) {
      std::lock_guard lock(mutex_);
      if (Session* s = lookup(session_id)) s->progress = p;
    };
    const std::vector<CiphertextTensor> outputs = run(model, inputs, *keys, std::move(run_options));
    const double ran = since(run_start);
    inputs.clear();
    std::vector<std::uint8_t> bytes = serialize(std::span<const CiphertextTensor>(outputs));
    {
      std::lock_guard lock(mutex_);
      if (Session* s = lookup(id)) {
        ++s->runs_completed;
        s->progress.finished = true;
        s->progress.done = s->progress.total;
        s->progress.remaining_seconds = 0;
      }
    }
    log("run on session " + short_id(id) + ": " + std::to_string(model.statistics.bootstraps) + " PBS in " +
        detail::json_number(ran) + " s (queued and decoded " + detail::json_number(waited) + " s, " + std::to_string(ahead) +
        " ahead)");
    return {200, "application/octet-stream", std::string(bytes.begin(), bytes.end())};
  }

  std::string progress_json(std::string_view id) {
    std::lock_guard lock(mutex_);
    Session& s = *find(id)->second;
    s.last_used = Clock::now();
    const char* state = s.running ? "running" : s.queued > 0 ? "queued" : "idle";
    std::uint64_t position = 0;
    if (!s.tickets.empty()) position = *std::min_element(s.tickets.begin(), s.tickets.end()) - serving_;
    const Progress& p = s.progress;
    std::string json = "{\"state\": \"" + std::string(state) + "\", \"queue_position\": " + std::to_string(position) +
                       ", \"pbs_done\": " + std::to_string(p.done) + ", \"pbs_total\": " +
                       std::to_string(s.running || s.runs_completed > 0 ? p.total : package_.model.statistics.bootstraps) +
                       ", \"elapsed_seconds\": " + detail::json_number(p.elapsed_seconds) +
                       ", \"remaining_seconds\": " + detail::json_number(p.remaining_seconds) + ", \"stage\": \"" +
                       detail::json_escape(p.stage.substr(0, 200)) + "\", \"runs_completed\": " +
                       std::to_string(s.runs_completed) + "}";
    return json;
  }

  std::string status_json() const {
    std::lock_guard lock(mutex_);
    return "{\"parameter_set\": \"" + detail::json_escape(package_.model.instance_name) + "\", \"pbs_per_run\": " +
           std::to_string(package_.model.statistics.bootstraps) + ", \"sessions\": " + std::to_string(sessions_.size()) +
           ", \"max_sessions\": " + std::to_string(options_.max_sessions) + ", \"runs_in_flight\": " +
           std::to_string(next_ticket_ - serving_) + ", \"max_request_bytes\": " + std::to_string(max_request_bytes_) + "}";
  }

  // Caller holds mutex_.
  Session* lookup(std::string_view id) {
    const auto it = sessions_.find(std::string(id));
    return it == sessions_.end() ? nullptr : it->second.get();
  }
  std::map<std::string, std::unique_ptr<Session>>::iterator find(std::string_view id) {
    if (!detail::is_session_id(id)) throw HttpError(404, "unknown session: a session id is 32 hexadecimal digits");
    const auto it = sessions_.find(std::string(id));
    if (it == sessions_.end()) throw HttpError(404, "unknown session (never opened, closed or expired): open one with POST /sessions");
    return it;
  }

  // Caller holds mutex_: the next ticket whose holder still waits gets the turn.
  void advance_turn() {
    ++serving_;
    while (!abandoned_.empty()) {
      const auto it = std::find(abandoned_.begin(), abandoned_.end(), serving_);
      if (it == abandoned_.end()) break;
      abandoned_.erase(it);
      ++serving_;
    }
    turn_.notify_all();
  }

  void reap(std::stop_token stop) {
    const auto period = std::clamp<std::chrono::milliseconds>(options_.session_idle_timeout / 4, std::chrono::milliseconds(100),
                                                              std::chrono::milliseconds(10'000));
    std::unique_lock lock(reaper_mutex_);
    while (!stop.stop_requested()) {
      reaper_cv_.wait_for(lock, stop, period, [] { return false; });
      if (stop.stop_requested()) return;
      lock.unlock();
      expire_idle_sessions();
      lock.lock();
    }
  }

  void log(const std::string& line) const noexcept {
    if (!options_.log) return;
    try {
      options_.log(line);
    } catch (...) {
    }
  }

  static std::string short_id(std::string_view id) { return std::string(id.substr(0, 8)) + "..."; }
  static std::string seconds_text(std::chrono::milliseconds d) { return detail::json_number(d.count() / 1000.0) + " s"; }
  static double since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

  const ModelPackage package_;
  const Options options_;
  const std::vector<std::uint8_t> model_bytes_;
  std::uint64_t max_inputs_bytes_ = 0;  // the model's inputs as full ciphertexts
  std::uint64_t max_request_bytes_ = 0;

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Session>> sessions_;
  std::size_t opening_ = 0;  // sessions whose keys are being expanded
  bool stopping_ = false;
  std::uint64_t next_ticket_ = 0, serving_ = 0;
  std::vector<std::uint64_t> abandoned_;  // tickets given up before their turn
  std::condition_variable turn_;

  std::mutex reaper_mutex_;
  std::condition_variable_any reaper_cv_;
  std::jthread reaper_;  // last: stopped and joined before the rest is destroyed
};

}  // namespace server
FHETENSOR_END_NAMESPACE
