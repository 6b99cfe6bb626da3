// The HTTP transport (server/http.hpp): a server on 127.0.0.1 (ephemeral port) with a test
// handler, driven by HttpClient and, for what a well-behaved client never sends, by a raw
// socket: statuses and handler exceptions, concurrency, size limits, slow handlers,
// malformed and stalled requests, connection limits, shutdown and the client's own limits.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fhetensor/server/http.hpp>

using namespace fhetensor::server;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// What the test handler saw, for the tests to check.
struct Events {
  std::atomic<bool> sleeper_started{false};
  std::mutex mutex;
  std::vector<std::string> logged;

  std::string all_logged() {
    std::lock_guard lock(mutex);
    std::string all;
    for (const auto& line : logged) all += line + "\n";
    return all;
  }
};

HttpResponse test_handler(const HttpRequest& request, Events& events) {
  const std::string& target = request.target;
  if (target == "/echo") return {200, request.content_type, request.method + " " + request.body};
  if (target == "/sleep") {
    events.sleeper_started = true;
    std::this_thread::sleep_for(1s);
    return {200, "text/plain", "slept"};
  }
  if (target == "/throw/http") throw HttpError(418, "short and stout");
  if (target == "/throw/invalid_argument") throw std::invalid_argument("bad argument");
  if (target == "/throw/out_of_range") throw std::out_of_range("index 7 out of range");
  if (target == "/throw/length_error") throw std::length_error("too long");
  if (target == "/throw/domain_error") throw std::domain_error("outside the domain");
  if (target == "/throw/runtime_error") throw std::runtime_error("secret detail");
  if (target == "/throw/int") throw 42;
  if (target == "/status/999") return {999, "text/plain", "nonsense"};
  if (target == "/no_content") return {204, "text/plain", "dropped"};
  throw HttpError(404, "no such target: " + target);
}

HttpServerOptions test_options() {
  HttpServerOptions options;
  options.io_threads = 2;
  options.handler_threads = 4;
  return options;
}

// A started server whose error log goes to `events` rather than stderr.
struct TestServer {
  Events events;
  HttpServer server;

  explicit TestServer(HttpServerOptions options = test_options())
      : server(with_log(std::move(options)), [this](const HttpRequest& request) { return test_handler(request, events); }) {
    server.start();
  }
  unsigned short port() const { return server.port(); }

 private:
  HttpServerOptions with_log(HttpServerOptions options) {
    options.error_log = [this](const std::string& line) {
      std::lock_guard lock(events.mutex);
      events.logged.push_back(line);
    };
    return options;
  }
};

// A plain TCP connection to 127.0.0.1, for bytes no HTTP client would send.
class RawSocket {
 public:
  explicit RawSocket(unsigned short port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  }
  ~RawSocket() { ::close(fd_); }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t sent = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (sent <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(sent));
    }
    return true;
  }
  void shutdown_send() { ::shutdown(fd_, SHUT_WR); }

  struct Received {
    std::string data;
    bool closed = false;  // the server closed (or reset) the connection
  };

  // Reads until the server closes the connection, `needle` has arrived, or `timeout`.
  Received receive(std::chrono::milliseconds timeout, std::string_view needle = {}) {
    Received received;
    const auto deadline = Clock::now() + timeout;
    while (needle.empty() || received.data.find(needle) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buffer[4096];
      const ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
      if (got <= 0) {
        received.closed = true;
        break;
      }
      received.data.append(buffer, static_cast<std::size_t>(got));
    }
    return received;
  }

 private:
  int fd_;
};

// "HTTP/1.1 413 Payload Too Large..." -> 413; 0 when there is no status line.
unsigned status_of(const std::string& response) {
  if (response.size() < 12 || response.compare(0, 7, "HTTP/1.") != 0) return 0;
  return static_cast<unsigned>(std::stoul(response.substr(9, 3)));
}

}  // namespace

TEST_CASE("HttpServer: answers, maps handler exceptions to statuses, keeps the connection alive") {
  TestServer test;
  HttpClient client("127.0.0.1", test.port());

  auto response = client.post("/echo", "hello", "text/x-test");
  CHECK(response.status == 200);
  CHECK(response.body == "POST hello");
  CHECK(response.content_type == "text/x-test");
  CHECK(client.get("/echo").body == "GET ");

  response = client.get("/nowhere");
  CHECK(response.status == 404);
  CHECK(response.body == "no such target: /nowhere");
  CHECK_THAT(response.content_type, StartsWith("text/plain"));

  response = client.get("/throw/http");
  CHECK(response.status == 418);
  CHECK(response.body == "short and stout");

  const std::vector<std::pair<std::string, std::string>> bad_input = {
      {"/throw/invalid_argument", "bad argument"},
      {"/throw/out_of_range", "index 7 out of range"},
      {"/throw/length_error", "too long"},
      {"/throw/domain_error", "outside the domain"}};
  for (const auto& [target, message] : bad_input) {
    INFO(target);
    response = client.get(target);
    CHECK(response.status == 400);
    CHECK(response.body == message);
  }

  // The detail of an unexpected failure is logged, never sent.
  response = client.get("/throw/runtime_error");
  CHECK(response.status == 500);
  CHECK_THAT(response.body, !Contains("secret"));
  CHECK_THAT(test.events.all_logged(), Contains("/throw/runtime_error") && Contains("secret detail"));
  CHECK(client.get("/throw/int").status == 500);
  CHECK(client.get("/status/999").status == 500);
  CHECK_THAT(test.events.all_logged(), Contains("999"));

  response = client.get("/no_content");
  CHECK(response.status == 204);
  CHECK(response.body.empty());

  response = client.request("HEAD", "/echo");
  CHECK(response.status == 200);
  CHECK(response.body.empty());

  const std::string big(3 << 20, 'x');
  response = client.post("/echo", big);
  CHECK(response.status == 200);
  CHECK(response.body.size() == big.size() + 5);
  CHECK(response.body == "POST " + big);

  // Every answer above, the HEAD and 204 ones included, came on one kept-alive connection.
  CHECK(client.connection_count() == 1);
  CHECK(client.connected());
}

TEST_CASE("HttpServer: 8 concurrent clients each get their own answers") {
  TestServer test;
  constexpr int clients = 8;
  constexpr int requests = 25;
  std::vector<std::vector<std::string>> errors(clients);
  std::vector<std::size_t> connections(clients, 0);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      try {
        HttpClient client("127.0.0.1", test.port());
        for (int i = 0; i < requests; ++i) {
          // Bodies of different sizes, some past one TCP segment.
          const std::string body = "client " + std::to_string(c) + " request " + std::to_string(i) + " " +
                                   std::string(static_cast<std::size_t>((c * 7919 + i * 104729) % 20000), 'a' + c);
          const auto response = client.post("/echo", body);
          if (response.status != 200 || response.body != "POST " + body) {
            errors[c].push_back("request " + std::to_string(i) + ": status " + std::to_string(response.status));
          }
        }
        connections[c] = client.connection_count();
      } catch (const std::exception& e) {
        errors[c].push_back(e.what());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int c = 0; c < clients; ++c) {
    INFO("client " << c << ": " << (errors[c].empty() ? std::string("ok") : errors[c].front()));
    CHECK(errors[c].empty());
    CHECK(connections[c] == 1);
  }
}

TEST_CASE("HttpServer: a body over the limit gets 413 and the server stays up") {
  auto options = test_options();
  options.max_body_bytes = 1024;
  TestServer test(options);
  HttpClient client("127.0.0.1", test.port());

  CHECK(client.post("/echo", std::string(1024, 'b')).status == 200);
  auto response = client.post("/echo", std::string(4096, 'b'));
  CHECK(response.status == 413);
  CHECK_THAT(response.body, Contains("1024"));
  // Much larger than the socket buffers: the server drops the rest while the client
  // sends it, so the client reads its 413 instead of a reset.
  CHECK(client.post("/echo", std::string(8 << 20, 'b')).status == 413);
  CHECK(client.post("/echo", "small").body == "POST small");

  // A chunked body has no Content-Length: the limit applies to the sum of the chunks.
  RawSocket raw(test.port());
  raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           "300\r\n" + std::string(0x300, 'c') + "\r\n300\r\n" + std::string(0x300, 'c') + "\r\n0\r\n\r\n");
  const auto received = raw.receive(3s);
  CHECK(status_of(received.data) == 413);
  CHECK(received.closed);
  CHECK(client.post("/echo", "still up").body == "POST still up");
}

TEST_CASE("HttpServer: an absurd Content-Length gets 413 without reading or allocating") {
  TestServer test;  // the default limit, 64 MiB
  {
    RawSocket raw(test.port());
    raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4611686018427387904\r\n\r\nabc");
    const auto received = raw.receive(3s);
    CHECK(status_of(received.data) == 413);
    CHECK(received.closed);
  }
  {
    RawSocket raw(test.port());  // past 2^64: not a number the parser accepts
    raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    CHECK(status_of(raw.receive(3s).data) == 400);
  }
  HttpClient client("127.0.0.1", test.port());
  CHECK(client.get("/echo").status == 200);
}

TEST_CASE("HttpServer: a slow handler does not hold up a fast request") {
  auto options = test_options();
  options.io_threads = 1;  // the handler must not run on the only I/O thread
  options.handler_threads = 2;
  TestServer test(options);

  Clock::time_point slow_done;
  auto slow = std::async(std::launch::async, [&] {
    HttpClient client("127.0.0.1", test.port());
    auto response = client.get("/sleep");
    slow_done = Clock::now();
    return response;
  });
  const auto wait_start = Clock::now();
  while (!test.events.sleeper_started && seconds_since(wait_start) < 5) std::this_thread::sleep_for(1ms);
  REQUIRE(test.events.sleeper_started);

  const auto fast_start = Clock::now();
  HttpClient client("127.0.0.1", test.port());
  const auto fast = client.post("/echo", "quick");
  const auto fast_done = Clock::now();
  const double fast_seconds = seconds_since(fast_start);

  const auto slow_response = slow.get();
  CHECK(fast.body == "POST quick");
  CHECK(slow_response.body == "slept");
  CHECK(fast_done < slow_done);
  CHECK(fast_seconds < 0.5);
}

TEST_CASE("HttpServer: garbage, truncated, stalled and oversized requests do not take it down") {
  auto options = test_options();
  options.read_timeout = 300ms;
  options.max_header_bytes = 4096;
  TestServer test(options);

  for (const std::string& garbage : {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 binary\r\n\r\n", 22),
                                    std::string("GET / HTTP/9.9 what\r\n\r\n"), std::string("\r\n\r\n\r\n"),
                                    std::string("GET /echo HTTP/1.1\r\nBad Header Line\r\n\r\n")}) {
    RawSocket raw(test.port());
    raw.send(garbage);
    const auto received = raw.receive(3s);
    INFO(received.data);
    CHECK(status_of(received.data) == 400);
    CHECK(received.closed);
  }
  {  // the client gives up halfway through the body: closed, nothing to answer
    RawSocket raw(test.port());
    raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    raw.shutdown_send();
    const auto received = raw.receive(3s);
    CHECK(received.closed);
    CHECK(received.data.empty());
  }
  {  // a stalled header is dropped after the read timeout
    RawSocket raw(test.port());
    raw.send("GET /echo HTTP/1.1\r\nHo");
    const auto start = Clock::now();
    const auto received = raw.receive(5s);
    CHECK(received.closed);
    CHECK(received.data.empty());
    CHECK(seconds_since(start) < 2.0);
  }
  {  // a stalled body too
    RawSocket raw(test.port());
    raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    const auto start = Clock::now();
    CHECK(raw.receive(5s).closed);
    CHECK(seconds_since(start) < 2.0);
  }
  {  // a header over max_header_bytes
    RawSocket raw(test.port());
    raw.send("GET /echo HTTP/1.1\r\nX-Long: " + std::string(8000, 'h') + "\r\n\r\n");
    const auto received = raw.receive(3s);
    CHECK(status_of(received.data) == 431);
    CHECK(received.closed);
  }
  HttpClient client("127.0.0.1", test.port());
  CHECK(client.post("/echo", "alive").body == "POST alive");
}

TEST_CASE("HttpServer: Expect: 100-continue and pipelined requests") {
  TestServer test;
  RawSocket raw(test.port());
  raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  auto received = raw.receive(3s, "\r\n\r\n");
  CHECK_THAT(received.data, StartsWith("HTTP/1.1 100 Continue\r\n"));
  raw.send("hello");
  received = raw.receive(3s, "POST hello");
  CHECK(status_of(received.data) == 200);
  CHECK_THAT(received.data, Contains("POST hello"));

  // Two requests in one write: answered in order on the same connection.
  raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
           "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo");
  received = raw.receive(3s, "POST two");
  const auto first = received.data.find("POST one");
  CHECK(first != std::string::npos);
  CHECK(received.data.find("POST two") > first);
  CHECK_FALSE(received.closed);
}

TEST_CASE("HttpServer: connections beyond max_connections get 503") {
  auto options = test_options();
  options.max_connections = 2;
  TestServer test(options);
  HttpClient first("127.0.0.1", test.port());
  HttpClient second("127.0.0.1", test.port());
  CHECK(first.get("/echo").status == 200);
  CHECK(second.get("/echo").status == 200);

  HttpClient third("127.0.0.1", test.port());
  const auto refused = third.get("/echo");
  CHECK(refused.status == 503);
  CHECK_THAT(refused.body, Contains("too many connections"));

  first.close();  // frees a place once the server sees the connection end
  unsigned status = 0;
  const auto start = Clock::now();
  while (status != 200 && seconds_since(start) < 3) {
    status = third.get("/echo").status;
    if (status != 200) std::this_thread::sleep_for(10ms);
  }
  CHECK(status == 200);
}

TEST_CASE("HttpServer: stop() with idle connections open returns promptly") {
  TestServer test;  // read timeout 30 s: only closing the idle connections can be prompt
  HttpClient client("127.0.0.1", test.port());
  CHECK(client.get("/echo").status == 200);  // now an idle kept-alive connection
  RawSocket silent(test.port());
  RawSocket partial(test.port());
  partial.send("GET /echo HTTP/1.1\r\n");
  std::this_thread::sleep_for(50ms);  // let the server accept both

  const auto start = Clock::now();
  test.server.stop();
  CHECK(seconds_since(start) < 1.0);
  CHECK(test.server.stopping());
  CHECK(silent.receive(1s).closed);
  CHECK(partial.receive(1s).closed);
  CHECK_THROWS_AS(client.get("/echo"), HttpClientError);
  test.server.stop();  // again: a no-op
}

TEST_CASE("HttpServer: stop() lets a running handler answer first") {
  TestServer test;
  auto slow = std::async(std::launch::async, [&] {
    HttpClient client("127.0.0.1", test.port());
    return client.get("/sleep");
  });
  const auto wait_start = Clock::now();
  while (!test.events.sleeper_started && seconds_since(wait_start) < 5) std::this_thread::sleep_for(1ms);
  REQUIRE(test.events.sleeper_started);
  const auto start = Clock::now();
  test.server.stop();
  CHECK(seconds_since(start) > 0.3);  // it waited for the handler
  REQUIRE(slow.wait_for(2s) == std::future_status::ready);
  const auto response = slow.get();
  CHECK(response.status == 200);
  CHECK(response.body == "slept");
}

TEST_CASE("HttpServer: run() serves until stop() or a signal") {
  Events events;
  HttpServer server(test_options(), [&](const HttpRequest& request) { return test_handler(request, events); });
  auto running = std::async(std::launch::async, [&] { server.run(); });
  HttpClient client("127.0.0.1", server.port());
  CHECK(client.post("/echo", "run").body == "POST run");
  CHECK(running.wait_for(100ms) == std::future_status::timeout);  // still serving
  server.stop();
  CHECK(running.wait_for(2s) == std::future_status::ready);
  CHECK_THROWS_AS(server.start(), std::logic_error);

  HttpServer signalled(test_options(), [&](const HttpRequest& request) { return test_handler(request, events); });
  signalled.stop_on_signals({SIGUSR2});
  signalled.start();
  HttpClient other("127.0.0.1", signalled.port());
  CHECK(other.get("/echo").status == 200);
  std::raise(SIGUSR2);
  const auto start = Clock::now();
  while (!signalled.stopping() && seconds_since(start) < 3) std::this_thread::sleep_for(1ms);
  CHECK(signalled.stopping());
}

TEST_CASE("HttpServer: bad options and a taken port are refused") {
  Events events;
  const auto handler = [&](const HttpRequest& request) { return test_handler(request, events); };
  auto options = test_options();
  options.address = "not-an-address";
  CHECK_THROWS_AS(HttpServer(options, handler), std::invalid_argument);
  options = test_options();
  options.handler_threads = 0;
  CHECK_THROWS_AS(HttpServer(options, handler), std::invalid_argument);

  HttpServer first(test_options(), handler);
  options = test_options();
  options.port = first.port();
  CHECK_THROWS_WITH(HttpServer(options, handler), Contains("cannot listen on 127.0.0.1:" + std::to_string(first.port())));
}

TEST_CASE("HttpClient: timeouts, response limit, reconnection and refused input") {
  auto server_options = test_options();
  server_options.read_timeout = 200ms;  // idle connections are dropped quickly
  TestServer test(server_options);

  {  // a response that does not come in time
    HttpClientOptions options;
    options.request_timeout = 200ms;
    HttpClient client("127.0.0.1", test.port(), options);
    const auto start = Clock::now();
    CHECK_THROWS_WITH(client.get("/sleep"), Contains("no complete response within 200 ms") && Contains("/sleep"));
    CHECK(seconds_since(start) < 0.9);
    CHECK(client.get("/echo").status == 200);  // on a new connection
    CHECK(client.connection_count() == 2);
  }
  {  // a response over the limit
    HttpClientOptions options;
    options.max_body_bytes = 100;
    HttpClient client("127.0.0.1", test.port(), options);
    CHECK(client.post("/echo", std::string(90, 'r')).status == 200);
    CHECK_THROWS_WITH(client.post("/echo", std::string(1000, 'r')), Contains("larger than 100 bytes"));
  }
  {  // the server dropped the idle connection: the request goes out again on a new one
    HttpClient client("127.0.0.1", test.port());
    CHECK(client.get("/echo").status == 200);
    std::this_thread::sleep_for(500ms);
    CHECK(client.post("/echo", "again").body == "POST again");
    CHECK(client.connection_count() == 2);
  }
  {  // what cannot be written into a request
    HttpClient client("127.0.0.1", test.port());
    CHECK_THROWS_AS(client.request("GE T", "/echo"), std::invalid_argument);
    CHECK_THROWS_AS(client.request("GET", "echo"), std::invalid_argument);
    CHECK_THROWS_AS(client.request("GET", "/echo\r\nX-Injected: 1"), std::invalid_argument);
    CHECK_THROWS_AS(client.request("POST", "/echo", "x", "text/plain\r\nX-Injected: 1"), std::invalid_argument);
  }
  unsigned short closed_port = 0;
  {
    HttpServer gone(test_options(), [](const HttpRequest&) { return HttpResponse{}; });
    closed_port = gone.port();
  }
  CHECK_THROWS_WITH(HttpClient("127.0.0.1", closed_port), Contains("cannot connect to 127.0.0.1:"));
}
