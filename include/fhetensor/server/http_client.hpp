#pragma once
// HttpClient: a small synchronous HTTP/1.1 client for HttpServer (the client example and
// the tests). One connection, kept alive across requests and reopened when the server
// closed it; bounded response size; every step under a deadline. Not thread-safe: one
// client per thread.
//
// request() returns every HTTP answer, error statuses included, and throws
// HttpClientError only when no answer arrived (cannot connect, timeout, connection lost,
// malformed or oversized response).
//
// Needs Boost (headers only) and threads: link fhetensor::server.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fhetensor/core/version.hpp>
#include <fhetensor/server/http_detail.hpp>
#include <fhetensor/server/http_message.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace server {

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};  // resolving and connecting
  // Sending one request and receiving its whole response, the server's work included:
  // an encrypted inference takes minutes.
  std::chrono::milliseconds request_timeout{600'000};
  std::uint64_t max_body_bytes = std::uint64_t{64} << 20;  // of a response
  std::uint32_t max_header_bytes = 16 * 1024;
};

/// No HTTP answer was obtained; what() names the request and the reason.
class HttpClientError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class HttpClient {
 public:
  using Options = HttpClientOptions;

  /// Connects at once, so that a wrong address fails here; throws HttpClientError.
  HttpClient(std::string host, unsigned short port, Options options = {})
      : host_(std::move(host)), port_(port), options_(options) {
    if (options_.connect_timeout.count() <= 0 || options_.request_timeout.count() <= 0) {
      throw std::invalid_argument("fhetensor: HttpClient timeouts must be positive");
    }
    connect();
  }

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Sends one request and returns the server's answer, whatever its status. The body is
  /// sent from `body` without a copy; the content type only goes with a non-empty body.
  /// Throws std::invalid_argument for a method, target or content type that cannot go
  /// into a request line or header, and HttpClientError when no answer arrives.
  HttpResponse request(std::string_view method, std::string_view target, std::string_view body = {},
                       std::string_view content_type = "application/octet-stream") {
    namespace http = detail::http;
    check_request(method, target, content_type);
    http::request<http::span_body<const char>> message;
    message.version(11);
    message.method_string(detail::beast::string_view(method.data(), method.size()));
    message.target(detail::beast::string_view(target.data(), target.size()));
    message.set(http::field::host, host_header());
    if (!body.empty() && !content_type.empty()) {
      message.set(http::field::content_type, detail::beast::string_view(content_type.data(), content_type.size()));
    }
    message.body() = detail::beast::span<const char>(body.data(), body.size());
    message.keep_alive(true);
    message.prepare_payload();
    const bool head = message.method() == http::verb::head;

    const auto deadline = Clock::now() + options_.request_timeout;
    for (int attempt = 0;; ++attempt) {
      if (!socket_.is_open()) connect();
      const bool reused = requests_on_connection_ > 0;
      const char* step = "sending the request";
      Outcome outcome = run_until(
          deadline,
          [&](auto done) {
            http::async_write(socket_, message, [done](error_code ec, std::size_t) mutable { done(ec); });
          },
          [&] { close(); });
      std::optional<http::response_parser<http::string_body>> parser;
      if (!outcome.ec) {
        step = "reading the response";
        parser.emplace();
        parser->header_limit(options_.max_header_bytes);
        parser->body_limit(options_.max_body_bytes);
        parser->skip(head);  // a HEAD answer announces a body it does not carry
        outcome = run_until(
            deadline,
            [&](auto done) {
              http::async_read_header(socket_, buffer_, *parser,
                                      [done](error_code ec, std::size_t) mutable { done(ec); });
            },
            [&] { close(); });
        // Checked here, not left to body_limit: Boost 1.74's response parser reports a
        // Content-Length over the limit, then reads the body anyway when reading eagerly.
        if (!outcome.ec && !head) {
          const auto length = parser->content_length();
          if (length && *length > options_.max_body_bytes) outcome.ec = http::error::body_limit;
        }
        if (!outcome.ec && !parser->is_done()) {
          outcome = run_until(
              deadline,
              [&](auto done) {
                http::async_read(socket_, buffer_, *parser, [done](error_code ec, std::size_t) mutable { done(ec); });
              },
              [&] { close(); });
        }
      }
      if (!outcome.ec) {
        ++requests_on_connection_;
        auto& answer = parser->get();
        HttpResponse response;
        response.status = answer.result_int();
        const auto type = answer.find(http::field::content_type);
        response.content_type = type == answer.end() ? std::string() : detail::to_std_string(type->value());
        response.body = std::move(answer.body());
        if (!answer.keep_alive()) close();
        return response;
      }
      // A kept-alive connection may have been closed by the server while idle (its read
      // timeout): if it ended before any byte of an answer, the request was not served,
      // and it is sent once more on a fresh connection.
      const bool nothing_received = !parser || !parser->got_some();
      const auto& ec = outcome.ec;
      const bool stale = reused && attempt == 0 && !outcome.timed_out && nothing_received &&
                         (ec == http::error::end_of_stream || ec == detail::asio::error::eof ||
                          ec == detail::asio::error::connection_reset || ec == detail::asio::error::broken_pipe);
      close();
      if (stale) continue;
      throw HttpClientError(describe(method, target) + ": " + failure(outcome, step));
    }
  }

  HttpResponse get(std::string_view target) { return request("GET", target); }
  HttpResponse post(std::string_view target, std::string_view body,
                    std::string_view content_type = "application/octet-stream") {
    return request("POST", target, body, content_type);
  }

  bool connected() const noexcept { return socket_.is_open(); }
  /// Connections opened so far: stays 1 while keep-alive holds.
  std::size_t connection_count() const noexcept { return connections_; }

  void close() noexcept {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    buffer_.clear();
  }

 private:
  using Clock = std::chrono::steady_clock;
  using error_code = boost::system::error_code;
  using tcp = boost::asio::ip::tcp;

  struct Outcome {
    error_code ec;
    bool timed_out = false;
  };

  // Beast's synchronous calls cannot time out: each step is asynchronous, run on our own
  // io_context until it completes or the deadline passes, when `cancel` aborts it.
  template <class Initiate, class Cancel>
  Outcome run_until(Clock::time_point deadline, Initiate&& initiate, Cancel&& cancel) {
    Outcome outcome;
    bool done = false;
    initiate([&outcome, &done](error_code ec) {
      outcome.ec = ec;
      done = true;
    });
    ioc_.restart();
    ioc_.run_until(deadline);
    if (!done) {
      cancel();
      ioc_.restart();
      ioc_.run();  // the aborted operation completes
      outcome.ec = detail::asio::error::timed_out;
      outcome.timed_out = true;
    }
    return outcome;
  }

  void connect() {
    close();
    const auto deadline = Clock::now() + options_.connect_timeout;
    tcp::resolver::results_type endpoints;
    Outcome outcome = run_until(
        deadline,
        [&](auto done) {
          resolver_.async_resolve(host_, std::to_string(port_),
                                  [done, &endpoints](error_code ec, tcp::resolver::results_type results) mutable {
                                    endpoints = std::move(results);
                                    done(ec);
                                  });
        },
        [&] { resolver_.cancel(); });
    if (!outcome.ec) {
      outcome = run_until(
          deadline,
          [&](auto done) {
            detail::asio::async_connect(socket_, endpoints,
                                        [done](error_code ec, const tcp::endpoint&) mutable { done(ec); });
          },
          [&] { close(); });
    }
    if (outcome.ec) {
      close();
      const std::string reason =
          outcome.timed_out ? "no connection within " + std::to_string(options_.connect_timeout.count()) + " ms"
                            : outcome.ec.message();
      throw HttpClientError("fhetensor: HTTP client cannot connect to " + authority() + ": " + reason);
    }
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);  // each request is sent whole, then awaited
    ++connections_;
    requests_on_connection_ = 0;
  }

  std::string failure(const Outcome& outcome, const char* step) const {
    namespace http = detail::http;
    if (outcome.timed_out) {
      return "no complete response within " + std::to_string(options_.request_timeout.count()) + " ms (while " +
             step + ")";
    }
    if (outcome.ec == http::error::body_limit) {
      return "response body larger than " + std::to_string(options_.max_body_bytes) + " bytes";
    }
    if (outcome.ec == http::error::header_limit) {
      return "response header larger than " + std::to_string(options_.max_header_bytes) + " bytes";
    }
    if (outcome.ec == http::error::end_of_stream || outcome.ec == http::error::partial_message) {
      return std::string("the server closed the connection (while ") + step + ")";
    }
    if (detail::is_http_parse_error(outcome.ec)) return "malformed response: " + outcome.ec.message();
    return std::string(step) + ": " + outcome.ec.message();
  }

  // Refuses what would corrupt the request line or a header (spaces, CR, LF, controls).
  static void check_request(std::string_view method, std::string_view target, std::string_view content_type) {
    const auto token_char = [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    };
    const auto visible = [](char c) { return static_cast<unsigned char>(c) > 0x20 && c != 0x7f; };
    bool ok = !method.empty();
    for (char c : method) ok = ok && token_char(c);
    if (!ok) throw std::invalid_argument("fhetensor: HttpClient: invalid method '" + std::string(method) + "'");
    ok = !target.empty() && target.front() == '/';
    for (char c : target) ok = ok && visible(c);
    if (!ok) throw std::invalid_argument("fhetensor: HttpClient: invalid target '" + std::string(target) + "'");
    for (char c : content_type) {
      if (!visible(c) && c != ' ' && c != '\t') throw std::invalid_argument("fhetensor: HttpClient: invalid content type");
    }
  }

  std::string host_header() const {
    const bool ipv6 = host_.find(':') != std::string::npos;
    return (ipv6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
  }
  std::string authority() const { return host_header(); }
  std::string describe(std::string_view method, std::string_view target) const {
    return "fhetensor: HTTP " + std::string(method) + " http://" + authority() + std::string(target.substr(0, 200));
  }

  std::string host_;
  unsigned short port_;
  Options options_;
  boost::asio::io_context ioc_{1};
  tcp::resolver resolver_{ioc_};
  tcp::socket socket_{ioc_};
  boost::beast::flat_buffer buffer_;
  std::size_t connections_ = 0;
  std::size_t requests_on_connection_ = 0;
};

}  // namespace server
FHETENSOR_END_NAMESPACE
