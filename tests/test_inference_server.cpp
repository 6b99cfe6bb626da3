// The encrypted-inference service (server/inference_service.hpp) on 127.0.0.1: clients
// running a small model concurrently, checked bit-exactly against run_clear; hostile
// uploads (truncated, flipped, foreign version or parameter set, absurd lengths, wrong
// shapes and counts, unknown sessions, garbage) answered 4xx with a clear message while
// the server keeps working; session limits and expiry; the run queue.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fhetensor/fhetensor.hpp>
#include <fhetensor/serialization/files.hpp>
#include <fhetensor/server/http.hpp>
#include <fhetensor/server/inference_client.hpp>
#include <fhetensor/server/inference_service.hpp>

#include "test_support.hpp"

using namespace fhetensor;
using namespace fhetensor::server;
using Catch::Matchers::Contains;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

using Bytes = std::vector<std::uint8_t>;

// Two inputs, two outputs, 6 bootstraps, on the cheapest parameter set.
CompiledModel make_small_model() {
  return compile([](auto x, auto y) { return std::tuple{relu(x) * 3 - 1, sum(y) * 2 + 1}; },
                 std::tuple{input<Tensor<int, 1>, SignedBits<3>>({6}), input<Tensor<int, 1>, Bits<2>>({3})});
}
// The same parameter set, 64 bootstraps: slow enough on one thread to queue runs behind it.
CompiledModel make_slow_model() {
  return compile([](auto x) { return relu(x); }, input<Tensor<int, 1>, SignedBits<3>>({64}));
}
// A 4-bit table needs a larger parameter set.
CompiledModel make_other_model() {
  return compile([](auto x) { return relu(x); }, input<Tensor<int, 1>, SignedBits<4>>({2}));
}

const CompiledModel& small_model() {
  static const CompiledModel m = make_small_model();
  return m;
}
ClientKeys& shared_keys() {
  static ClientKeys keys = [] {
    auto rng = testing::seeded_rng(2024);
    return ClientKeys::generate(small_model(), rng);
  }();
  return keys;
}
const Bytes& shared_key_bytes() {
  static const Bytes bytes = serialize(shared_keys().compressed_server_keys());
  return bytes;
}

ClearTensor random_tensor(std::mt19937_64& gen, const Shape& shape, ValueRange r) {
  ClearTensor t = ClearTensor::from_shape(shape);
  std::uniform_int_distribution<std::int64_t> d(r.lo, r.hi);
  for (auto& v : t) v = d(gen);
  return t;
}
std::vector<ClearTensor> random_inputs(const CompiledModel& m, std::mt19937_64& gen) {
  std::vector<ClearTensor> in;
  for (NodeId id : m.inputs) in.push_back(random_tensor(gen, m.graph[id].shape, m.nodes[id].range));
  return in;
}

std::string_view text(const Bytes& b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

template <class T>
Bytes patched(Bytes bytes, std::size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof value);
  return bytes;
}
/// The payload in a fresh envelope (valid checksum), as a forger would send it.
Bytes resealed(std::span<const std::uint8_t> bytes, std::size_t payload_bytes) {
  const EnvelopeHeader h = read_header(bytes);
  return seal(h.kind, h.instance, bytes.subspan(format::header_size, payload_bytes));
}

struct TestServer {
  std::mutex mutex;
  std::vector<std::string> lines;
  InferenceService service;
  HttpServer server;

  explicit TestServer(const CompiledModel& model, InferenceServiceOptions options = {})
      : service(ModelPackage{model, std::nullopt}, with_log(std::move(options))), server(server_options(), service.handler()) {
    server.start();
  }
  ~TestServer() {
    service.shutdown();
    server.stop();
  }

  unsigned short port() const { return server.port(); }
  std::string log() {
    std::lock_guard lock(mutex);
    std::string all;
    for (const auto& line : lines) all += line + "\n";
    return all;
  }

 private:
  InferenceServiceOptions with_log(InferenceServiceOptions options) {
    options.log = [this](const std::string& line) {
      std::lock_guard lock(mutex);
      lines.push_back(line);
    };
    return options;
  }
  HttpServerOptions server_options() {
    HttpServerOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.io_threads = 1;
    o.error_log = [this](const std::string& line) {
      std::lock_guard lock(mutex);
      lines.push_back("ERROR " + line);
    };
    service.configure(o);
    return o;
  }
};

// What a raw socket gets back for `request`: the status line and whatever follows, until
// the server closes or 5 s pass.
std::string raw_exchange(unsigned short port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  std::string answer;
  const auto deadline = Clock::now() + 5s;
  char buffer[4096];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    answer.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return answer;
}

// An HTTP answer's status and body, or the failure to get one.
struct Answer {
  unsigned status = 0;
  std::string body;
};
Answer post(HttpClient& client, const std::string& target, std::string_view body) {
  const HttpResponse r = client.post(target, body);
  return {r.status, r.body};
}

}  // namespace

TEST_CASE("three clients run a model concurrently and decrypt the clear results", "[server]") {
  TestServer server(small_model());
  const std::string model_bytes = [] {
    const Bytes b = serialize(ModelPackage{small_model(), std::nullopt});
    return std::string(b.begin(), b.end());
  }();

  struct Outcome {
    std::string error;  // empty: every check passed
    int runs_checked = 0;
    double seconds = 0;
  };
  const auto client = [&](int index) {
    Outcome outcome;
    const auto start = Clock::now();
    try {
      InferenceClient c("127.0.0.1", server.port());
      const std::string fetched = c.http().get("/model").body;
      if (fetched != model_bytes) outcome.error += "GET /model differs from the model file; ";
      const ModelPackage package = c.fetch_model();
      const CompiledModel& model = package.model;
      auto rng = testing::seeded_rng(100 + static_cast<std::uint64_t>(index));
      ClientKeys keys = ClientKeys::generate(model, rng);
      const std::string session = c.open_session(keys.compressed_server_keys());
      if (session.size() != 32) outcome.error += "session id '" + session + "' is not 32 hex digits; ";
      std::mt19937_64 gen(static_cast<std::uint64_t>(index));
      for (int trial = 0; trial < 2; ++trial) {
        const auto in = random_inputs(model, gen);
        const auto outputs = c.run(session, keys.encrypt_seeded(model, in));
        const auto got = keys.decrypt(model, outputs);
        const auto expected = run_clear(small_model(), in);
        if (got.size() != 2 || got[0] != expected[0] || got[1] != expected[1])
          outcome.error += "client " + std::to_string(index) + " run " + std::to_string(trial) + " decrypted wrongly; ";
        ++outcome.runs_checked;
      }
      const RunProgress p = c.progress(session);
      if (p.state != "idle" || p.runs_completed != 2 || p.pbs_done != model.statistics.bootstraps ||
          p.pbs_total != model.statistics.bootstraps || p.remaining_seconds != 0)
        outcome.error += "unexpected progress after the runs: " + p.state + " " + std::to_string(p.runs_completed) + " " +
                         std::to_string(p.pbs_done) + "/" + std::to_string(p.pbs_total) + "; ";
      c.close_session(session);
      try {
        c.progress(session);
        outcome.error += "a closed session still answers; ";
      } catch (const InferenceError& e) {
        if (e.status() != 404) outcome.error += "a closed session gives " + std::to_string(e.status()) + "; ";
      }
    } catch (const std::exception& e) {
      outcome.error += e.what();
    }
    outcome.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return outcome;
  };
  std::vector<std::future<Outcome>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(std::async(std::launch::async, client, i));
  for (int i = 0; i < 3; ++i) {
    const Outcome outcome = clients[static_cast<std::size_t>(i)].get();
    INFO("client " << i << " took " << outcome.seconds << " s");
    CHECK(outcome.error == "");
    CHECK(outcome.runs_checked == 2);
  }
  CHECK(server.service.session_count() == 0);
  const std::string log = server.log();
  CHECK_THAT(log, Contains("opened"));
  CHECK_THAT(log, Contains("run on session"));
  CHECK_THAT(log, !Contains("ERROR"));
}

TEST_CASE("hostile uploads get 4xx with a clear message and the server keeps working", "[server]") {
  TestServer server(small_model());
  const CompiledModel& model = small_model();
  ClientKeys& keys = shared_keys();
  const Bytes& key_bytes = shared_key_bytes();
  HttpClient http("127.0.0.1", server.port());
  InferenceClient client("127.0.0.1", server.port());
  const std::string session = client.open_session_raw(key_bytes);
  std::mt19937_64 gen(9);
  const auto in = random_inputs(model, gen);
  const Bytes upload = serialize(keys.encrypt_seeded(model, in));
  const std::string run_target = "/sessions/" + session + "/run";

  const auto expect = [&](const std::string& target, std::string_view body, unsigned status, const std::string& phrase) {
    const Answer a = post(http, target, body);
    INFO("POST " << target << " (" << body.size() << " bytes): " << a.status << " " << a.body);
    CHECK(a.status == status);
    CHECK_THAT(a.body, Contains(phrase));
  };

  SECTION("server keys") {
    expect("/sessions", text(key_bytes).substr(0, key_bytes.size() / 2), 400, "truncated");
    expect("/sessions", text(key_bytes).substr(0, 50), 400, "shorter than the 96-byte header");
    expect("/sessions", "", 400, "not an fhetensor file");
    expect("/sessions", std::string(200, 'x') + "GET / HTTP/1.1, garbage long enough to fill an envelope's header",
           400, "not an fhetensor file (wrong magic bytes)");
    Bytes flipped = key_bytes;
    flipped[key_bytes.size() / 3] ^= 0x10;
    expect("/sessions", text(flipped), 400, "checksum mismatch");
    expect("/sessions", text(patched<std::uint32_t>(key_bytes, 8, 7)), 400, "format version 7 by a newer fhetensor");
    expect("/sessions", text(patched<std::uint32_t>(key_bytes, 8, 0)), 400, "too old");
    expect("/sessions", text(patched<std::uint64_t>(key_bytes, 56, std::uint64_t{1} << 60)), 400, "over the limit");
    expect("/sessions", text(patched<std::uint32_t>(key_bytes, 12, 9)), 400, "unknown object kind");
    // A valid envelope around too few key bytes: the checksum holds, the loader refuses.
    expect("/sessions", text(resealed(key_bytes, key_bytes.size() / 2)), 400, "server keys");
    expect("/sessions", text(upload), 400, "expected server keys, this holds ciphertexts");

    // Genuine keys of another parameter set: the shared keys, to a server of a model on
    // a larger set (keys of a larger set than the model's exceed the body limit: 413).
    const CompiledModel other = make_other_model();
    REQUIRE(other.instance != model.instance);
    TestServer other_server(other);
    HttpClient other_http("127.0.0.1", other_server.port());
    const Answer a = post(other_http, "/sessions", text(key_bytes));
    CHECK(a.status == 422);
    CHECK_THAT(a.body, Contains("server keys for parameter set " + model.instance_name + "; this model runs under " +
                                other.instance_name));
    CHECK(other_server.service.session_count() == 0);
  }

  SECTION("ciphertexts") {
    expect(run_target, text(upload).substr(0, upload.size() - 1), 400, "truncated");
    expect(run_target, text(upload).substr(0, 10), 400, "shorter than the 96-byte header");
    expect(run_target, "", 400, "not an fhetensor file");
    Bytes flipped = upload;
    flipped[upload.size() - 5] ^= 1;
    expect(run_target, text(flipped), 400, "checksum mismatch");
    expect(run_target, text(patched<std::uint32_t>(upload, 8, 3)), 400, "newer fhetensor");
    expect(run_target, text(patched<std::uint64_t>(upload, 56, ~std::uint64_t{0})), 400, "over the limit");
    expect(run_target, text(key_bytes), 400, "expected ciphertexts, this holds server keys");

    // Well-formed ciphertexts that do not fit the model.
    auto seeded = keys.encrypt_seeded(model, in);
    std::swap(seeded[0], seeded[1]);
    expect(run_target, text(serialize(seeded)), 400, "encrypted input 0 has shape [3]");
    seeded.pop_back();
    expect(run_target, text(serialize(seeded)), 400, "1 encrypted inputs; the model takes 2");
    // A forged tensor claiming a huge shape over a few bodies, in a valid envelope.
    auto forged = keys.encrypt_seeded(model, in);
    forged[0].shape = {std::size_t{1} << 40};
    const Bytes forged_bytes = serialize(forged);
    expect(run_target, text(forged_bytes), 400, "fhetensor:");
    // Ciphertexts of another parameter set.
    const CompiledModel other = make_other_model();
    auto rng = testing::seeded_rng(78);
    ClientKeys other_keys = ClientKeys::generate(other, rng);
    std::vector<ClearTensor> other_in{ClearTensor(xt::zeros<std::int64_t>({2}))};
    expect(run_target, text(serialize(other_keys.encrypt_seeded(other, other_in))), 422,
           "ciphertexts for parameter set " + other.instance_name);
  }

  SECTION("sessions, paths and methods") {
    expect("/sessions/0123456789abcdef0123456789abcdef/run", text(upload), 404, "unknown session");
    expect("/sessions/..%2f..%2fetc/run", text(upload), 404, "unknown session");
    const HttpResponse progress = http.get("/sessions/0123456789abcdef0123456789abcdef/progress");
    CHECK(progress.status == 404);
    CHECK(http.request("DELETE", "/sessions/0123456789abcdef0123456789abcdef").status == 404);
    const HttpResponse get_sessions = http.get("/sessions");
    CHECK(get_sessions.status == 405);
    CHECK_THAT(get_sessions.body, Contains("use POST"));
    CHECK(http.request("PUT", "/model", "x").status == 405);
    const HttpResponse nowhere = http.get("/nowhere");
    CHECK(nowhere.status == 404);
    CHECK_THAT(nowhere.body, Contains("no such resource"));
  }

  SECTION("a body over the limit is refused before it is read") {
    const std::uint64_t limit = server.service.max_request_bytes();
    CHECK(limit >= key_bytes.size());
    CHECK(limit < key_bytes.size() + 64 * 1024);
    for (const std::string& target : {std::string("/sessions"), run_target}) {
      const std::string answer = raw_exchange(server.port(), "POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                                                 std::to_string(limit + 1) + "\r\n\r\n");
      CHECK_THAT(answer, Catch::Matchers::StartsWith("HTTP/1.1 413"));
      CHECK_THAT(answer, Contains("request body larger than " + std::to_string(limit) + " bytes"));
    }
    const std::string absurd = raw_exchange(server.port(), "POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                                           "99999999999999999999999\r\n\r\n");
    CHECK_THAT(absurd, Catch::Matchers::StartsWith("HTTP/1.1 4"));
  }

  // Whatever came before, the session still runs and a new one opens.
  const auto outputs = client.run(session, keys.encrypt_seeded(model, in));
  const auto expected = run_clear(model, in);
  const auto got = keys.decrypt(model, outputs);
  CHECK(got[0] == expected[0]);
  CHECK(got[1] == expected[1]);
  const std::string second = client.open_session_raw(key_bytes);
  CHECK(second != session);
  CHECK(server.service.session_count() == 2);
  CHECK_THAT(server.log(), !Contains("ERROR"));
}

TEST_CASE("sessions are bounded, can be closed and expire when idle", "[server]") {
  InferenceServiceOptions options;
  options.max_sessions = 2;
  options.session_idle_timeout = 1500ms;
  TestServer server(small_model(), options);
  InferenceClient client("127.0.0.1", server.port());
  const Bytes& key_bytes = shared_key_bytes();
  const std::string a = client.open_session_raw(key_bytes);
  const std::string b = client.open_session_raw(key_bytes);
  CHECK(a != b);
  try {
    client.open_session_raw(key_bytes);
    FAIL("a third session was opened");
  } catch (const InferenceError& e) {
    CHECK(e.status() == 503);
    CHECK_THAT(e.server_message(), Contains("2 sessions open"));
  }
  client.close_session(a);
  const std::string c = client.open_session_raw(key_bytes);
  CHECK(server.service.session_count() == 2);

  // b stays in use, c idles past the timeout and is closed.
  const auto start = Clock::now();
  while (server.service.session_count() > 1 && Clock::now() - start < 10s) {
    CHECK(client.progress(b).state == "idle");
    std::this_thread::sleep_for(200ms);
  }
  CHECK(Clock::now() - start >= 1300ms);  // not before its time (c was opened just before)
  CHECK(server.service.session_count() == 1);
  CHECK(client.progress(b).state == "idle");
  try {
    client.progress(c);
    FAIL("an expired session still answers");
  } catch (const InferenceError& e) {
    CHECK(e.status() == 404);
    CHECK_THAT(e.server_message(), Contains("unknown session"));
  }
  CHECK_THAT(server.log(), Contains("expired"));
}

TEST_CASE("runs go one at a time, a bounded queue waits, progress is reported", "[server]") {
  const CompiledModel slow = make_slow_model();
  REQUIRE(slow.instance == small_model().instance);  // the shared keys serve it
  InferenceServiceOptions options;
  options.max_queued_runs = 1;
  options.run_threads = 1;
  TestServer server(slow, options);
  ClientKeys& keys = shared_keys();
  InferenceClient client("127.0.0.1", server.port());
  const std::string session = client.open_session_raw(shared_key_bytes());
  std::mt19937_64 gen(3);
  const auto in = random_inputs(slow, gen);
  const Bytes upload = serialize(keys.encrypt_seeded(slow, in));
  const auto expected = run_clear(slow, in);

  // Four runs at once: one runs, one waits, the others are turned away.
  std::atomic<bool> go{false};
  const auto runner = [&]() -> Answer {
    HttpClient http("127.0.0.1", server.port());
    while (!go) std::this_thread::yield();
    return post(http, "/sessions/" + session + "/run", text(upload));
  };
  std::vector<std::future<Answer>> runs;
  for (int i = 0; i < 4; ++i) runs.push_back(std::async(std::launch::async, runner));
  go = true;

  // Meanwhile the progress of the session shows the run.
  bool saw_running = false, saw_counts = false;
  const auto start = Clock::now();
  while (Clock::now() - start < 20s && !saw_counts) {
    const RunProgress p = client.progress(session);
    if (p.state == "running") {
      saw_running = true;
      CHECK(p.pbs_total == slow.statistics.bootstraps);
      saw_counts = p.pbs_done > 0 && p.remaining_seconds >= 0;
    }
    std::this_thread::sleep_for(20ms);
  }
  CHECK(saw_running);
  CHECK(saw_counts);

  int ok = 0, busy = 0;
  for (auto& run : runs) {
    const Answer a = run.get();
    INFO(a.status << " " << a.body.substr(0, 200));
    if (a.status == 200) {
      ++ok;
      const Bytes bytes(a.body.begin(), a.body.end());
      const auto decrypted = keys.decrypt(slow, deserialize_ciphertexts(bytes));
      CHECK(decrypted[0] == expected[0]);
    } else {
      CHECK(a.status == 503);
      CHECK_THAT(a.body, Contains("server busy"));
      ++busy;
    }
  }
  CHECK(ok >= 2);
  CHECK(ok + busy == 4);
  CHECK(busy >= 1);
  CHECK(client.progress(session).runs_completed == static_cast<std::size_t>(ok));

  server.service.shutdown();
  HttpClient http("127.0.0.1", server.port());
  const Answer refused = post(http, "/sessions/" + session + "/run", text(upload));
  CHECK(refused.status == 503);
  CHECK_THAT(refused.body, Contains("shutting down"));
  CHECK_THAT(server.log(), !Contains("ERROR"));
}
