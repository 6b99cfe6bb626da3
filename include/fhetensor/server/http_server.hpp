#pragma once
// HttpServer: the HTTP/1.1 transport of the encrypted-inference server (Boost.Beast over
// Asio), independent of any cryptography: a handler maps an HttpRequest to an
// HttpResponse.
//
// Threads: `io_threads` threads do all the socket work; handlers run on a separate pool of
// `handler_threads`, because an encrypted inference takes minutes and must not stall the
// other connections. A quick request (a progress query) is answered during a long one as
// long as a handler thread is free: the service should cap its concurrent long jobs below
// handler_threads (and answer 503 beyond). The handler is called from several threads at
// once and must be thread-safe.
//
// The peer is untrusted: header and body sizes are checked before anything is allocated
// (a Content-Length over max_body_bytes is answered 413 without reading the body), the
// connections are counted (503 beyond max_connections), a client has read_timeout to
// send each header (idle keep-alive included) and each body and write_timeout to take
// each response, and malformed HTTP gets 400 and the connection closed.
//
// Handler exceptions: HttpError -> its status and message; std::invalid_argument,
// out_of_range, length_error and domain_error -> 400 with the message (they describe the
// client's input); anything else -> 500 with a generic body, the detail going to the
// error log only (it may say more than a client should see).
//
// Needs Boost (headers only) and threads: link fhetensor::server.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fhetensor/core/version.hpp>
#include <fhetensor/server/http_detail.hpp>
#include <fhetensor/server/http_message.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace server {

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  unsigned short port = 0;  // 0: an ephemeral port, HttpServer::port() tells which
  std::uint64_t max_body_bytes = std::uint64_t{64} << 20;
  std::uint32_t max_header_bytes = 16 * 1024;  // request line and header fields together
  std::size_t max_connections = 128;
  std::chrono::milliseconds read_timeout{30'000};   // for each header, then for each body
  std::chrono::milliseconds write_timeout{30'000};  // for each response
  unsigned io_threads = 1;
  unsigned handler_threads = 4;
  // Receives handler failures (the detail behind a 500); empty: one line on stderr each.
  std::function<void(const std::string&)> error_log;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

namespace detail {

// The server whose I/O or handler thread this is, so that stop() called from inside the
// server only requests the stop (joining its own thread would deadlock).
inline thread_local const void* http_server_of_this_thread = nullptr;

struct ServerThreadMark {
  const void* previous;
  explicit ServerThreadMark(const void* server) : previous(http_server_of_this_thread) {
    http_server_of_this_thread = server;
  }
  ~ServerThreadMark() { http_server_of_this_thread = previous; }
  ServerThreadMark(const ServerThreadMark&) = delete;
  ServerThreadMark& operator=(const ServerThreadMark&) = delete;
};

inline HttpResponse text_response(unsigned status, std::string message) {
  return HttpResponse{status, "text/plain; charset=utf-8", std::move(message)};
}

// Long enough for a client to read an error response and close, short enough that a
// client streaming a rejected body cannot hold the connection.
inline constexpr std::chrono::milliseconds http_linger_time{2'000};

class HttpSession;

// What the sessions share. Owned by HttpServer; outlives every session, since the server
// drains its io_context and joins its threads before destroying it. Member order matters:
// the io_context and the handler pool may destroy queued sessions, which unregister
// themselves, so they are declared (and destroyed) after the registry.
struct HttpServerCore {
  HttpServerOptions options;
  HttpHandler handler;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> connections{0};  // sessions being served
  std::atomic<std::size_t> rejected{0};     // sessions only waiting to be told 503
  std::mutex sessions_mutex;
  std::unordered_map<const HttpSession*, std::weak_ptr<HttpSession>> sessions;
  asio::io_context ioc;
  asio::thread_pool handlers;
  asio::strand<asio::io_context::executor_type> acceptor_strand;
  tcp::acceptor acceptor;
  asio::steady_timer accept_retry;
  std::optional<asio::signal_set> signals;
  unsigned short bound_port = 0;

  HttpServerCore(HttpServerOptions opts, HttpHandler h);

  void accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void request_stop();
  void shut_down();  // on acceptor_strand
  void remember(const std::shared_ptr<HttpSession>& session);
  void forget(const HttpSession* session, bool was_rejected) noexcept;
  HttpResponse call_handler(const HttpRequest& request);
  void log(const std::string& line) noexcept;
  void run_io() noexcept;

  static HttpServerOptions checked(HttpServerOptions o) {
    if (o.io_threads == 0 || o.handler_threads == 0) {
      throw std::invalid_argument("fhetensor: HttpServer needs at least one I/O and one handler thread");
    }
    if (o.max_connections == 0) throw std::invalid_argument("fhetensor: HttpServer max_connections must be positive");
    if (o.read_timeout.count() <= 0 || o.write_timeout.count() <= 0) {
      throw std::invalid_argument("fhetensor: HttpServer timeouts must be positive");
    }
    return o;
  }
};

// One connection: read a request, hand it to the handler pool, write the response, and
// again while keep-alive holds. Everything but the handler call runs on the connection's
// strand, so the state needs no lock.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, HttpServerCore& core, bool rejected)
      : core_(core), stream_(std::move(socket)), rejected_(rejected) {}
  ~HttpSession() { core_.forget(this, rejected_); }
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  auto executor() { return stream_.get_executor(); }

  void start() {
    core_.remember(shared_from_this());
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
  }

  // Server shutdown, on the strand: a connection waiting for (or in the middle of) a
  // request is closed; one whose request is being handled or answered gets its response,
  // with Connection: close.
  void shut_down() {
    if (state_ == State::reading || state_ == State::lingering) close();
  }

 private:
  enum class State { reading, handling, writing, lingering, closed };

  void read_header() {
    if (state_ == State::closed) return;
    if (core_.stopping) return close();
    state_ = State::reading;
    version_ = 11;
    parser_.emplace();
    parser_->header_limit(core_.options.max_header_bytes);
    // Checked against Content-Length as soon as the header is parsed, before the body
    // storage is reserved, and against the sum of the chunks of a chunked body.
    parser_->body_limit(core_.options.max_body_bytes);
    stream_.expires_after(core_.options.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&HttpSession::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (state_ == State::closed) return;
    if (ec) return on_read_error(ec);
    const auto& request = parser_->get();
    version_ = request.version();
    if (rejected_) return respond_error(503, "server busy: too many connections");
    if (core_.stopping) return respond_error(503, "server shutting down");
    // The parser has refused this already (body_limit); checked again because Boost 1.74
    // gets it wrong for responses, and a body must never be reserved past the limit.
    if (const auto length = parser_->content_length(); length && *length > core_.options.max_body_bytes) {
      return on_read_error(http::error::body_limit);
    }
    if (parser_->is_done()) return dispatch();
    const auto expect = request.find(http::field::expect);
    if (expect != request.end() && beast::iequals(expect->value(), "100-continue")) {
      // The client waits for this before sending the body (curl does for large ones).
      continue_ = http::response<http::empty_body>(http::status::continue_, version_);
      stream_.expires_after(core_.options.write_timeout);
      http::async_write(stream_, continue_, [self = shared_from_this()](beast::error_code wec, std::size_t) {
        if (self->state_ == State::closed) return;
        if (wec) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(core_.options.read_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (self->state_ == State::closed) return;
      if (ec) return self->on_read_error(ec);
      if (self->core_.stopping) return self->respond_error(503, "server shutting down");
      self->dispatch();
    });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return respond_error(413, "request body larger than " + std::to_string(core_.options.max_body_bytes) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return respond_error(431, "request header larger than " + std::to_string(core_.options.max_header_bytes) +
                                    " bytes");
    }
    // A peer that closed (between requests or mid-request) or timed out gets no answer;
    // a peer that sent something that is not HTTP is told so.
    if (is_http_parse_error(ec)) return respond_error(400, "malformed HTTP request");
    close();
  }

  void dispatch() {
    state_ = State::handling;
    stream_.expires_never();  // the handler may take minutes
    auto& message = parser_->get();
    keep_alive_ = message.keep_alive();
    head_ = message.method() == http::verb::head;
    HttpRequest request;
    request.method = to_std_string(message.method_string());
    request.target = to_std_string(message.target());
    if (const auto type = message.find(http::field::content_type); type != message.end()) {
      request.content_type = to_std_string(type->value());
    }
    request.body = std::move(message.body());
    parser_.reset();
    // The work guard keeps the I/O threads running until the response is handed back.
    asio::post(core_.handlers, [self = shared_from_this(), request = std::move(request),
                                work = asio::make_work_guard(core_.ioc)]() mutable {
      HttpResponse response;
      try {
        response = self->core_.call_handler(request);
      } catch (...) {  // only an allocation failure gets here
        response = HttpResponse{500, {}, {}};
      }
      request = HttpRequest{};
      auto executor = self->executor();
      asio::post(executor, [self = std::move(self), response = std::move(response)]() mutable {
        if (self->state_ != State::closed) self->respond(std::move(response), false);
      });
    });
  }

  void respond_error(unsigned status, std::string message) {
    head_ = false;
    respond(text_response(status, std::move(message)), true);
  }

  void respond(HttpResponse response, bool close_after) {
    if (response.status == 204 || response.status == 304) {  // these cannot carry a body
      response.body.clear();
      response.content_type.clear();
    }
    response_ = http::response<http::string_body>();
    response_.version(version_);
    response_.result(response.status);
    if (!response.content_type.empty()) response_.set(http::field::content_type, response.content_type);
    response_.body() = std::move(response.body);
    response_.keep_alive(keep_alive_ && !close_after && !core_.stopping);
    response_.prepare_payload();
    if (head_) response_.body().clear();  // Content-Length stays: a HEAD answer has no body
    state_ = State::writing;
    stream_.expires_after(core_.options.write_timeout);
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (self->state_ == State::closed) return;
      if (ec) return self->close();
      const bool keep = self->response_.keep_alive();
      self->response_ = {};
      if (keep) return self->read_header();
      self->linger();
    });
  }

  // After the last response, the rest of what the client sends (a rejected body, say) is
  // read and dropped for a moment before closing: closing with unread input makes the
  // kernel send a reset, which can destroy the response before the client reads it.
  void linger() {
    if (core_.stopping) return close();
    state_ = State::lingering;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    stream_.expires_after(std::min<std::chrono::milliseconds>(http_linger_time, core_.options.read_timeout));
    discard();
  }

  void discard() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(16 * 1024), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (self->state_ == State::closed) return;
      if (ec) return self->close();
      self->discard();
    });
  }

  void close() {
    state_ = State::closed;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  HttpServerCore& core_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::empty_body> continue_;
  http::response<http::string_body> response_;
  State state_ = State::reading;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
  const bool rejected_;
};

inline HttpServerCore::HttpServerCore(HttpServerOptions opts, HttpHandler h)
    : options(checked(std::move(opts))),
      handler(std::move(h)),
      ioc(static_cast<int>(options.io_threads)),
      handlers(options.handler_threads),
      acceptor_strand(asio::make_strand(ioc)),
      acceptor(acceptor_strand),
      accept_retry(acceptor_strand) {
  if (!handler) throw std::invalid_argument("fhetensor: HttpServer needs a handler");
  beast::error_code ec;
  const auto address = asio::ip::make_address(options.address, ec);
  if (ec) throw std::invalid_argument("fhetensor: HttpServer address '" + options.address + "' is not an IP address");
  const tcp::endpoint endpoint(address, options.port);
  const auto fail = [&](const char* step) {
    throw std::runtime_error("fhetensor: HTTP server cannot listen on " + options.address + ":" +
                             std::to_string(options.port) + " (" + step + "): " + ec.message());
  };
  acceptor.open(endpoint.protocol(), ec);
  if (ec) fail("open");
  // Lets a restarted server bind while the previous one's connections are in TIME_WAIT.
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) fail("reuse_address");
  acceptor.bind(endpoint, ec);
  if (ec) fail("bind");
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("listen");
  bound_port = acceptor.local_endpoint().port();
  accept();  // completes once the I/O threads run
}

inline void HttpServerCore::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

inline void HttpServerCore::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || stopping) return;
  if (ec) {
    // Typically out of file descriptors: retry shortly rather than spin.
    log("fhetensor: HTTP server: accept failed: " + ec.message());
    accept_retry.expires_after(std::chrono::milliseconds(100));
    accept_retry.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && !stopping) accept();
    });
    return;
  }
  const bool over = connections.load() >= options.max_connections;
  if (!over || rejected.load() < options.max_connections) {
    ++(over ? rejected : connections);
    try {
      std::make_shared<HttpSession>(std::move(socket), *this, over)->start();
    } catch (const std::exception& e) {
      log(std::string("fhetensor: HTTP server: cannot serve a connection: ") + e.what());
    }
  }
  // else a flood of connections beyond twice the limit: closed unanswered (socket dtor).
  accept();
}

inline void HttpServerCore::request_stop() {
  if (stopping.exchange(true)) return;
  asio::post(acceptor_strand, [this] { shut_down(); });
}

inline void HttpServerCore::shut_down() {
  beast::error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  if (signals) signals->cancel(ignored);
  std::vector<std::shared_ptr<HttpSession>> live;
  {
    std::lock_guard lock(sessions_mutex);
    for (const auto& entry : sessions) {
      if (auto session = entry.second.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) {
    auto executor = session->executor();
    asio::post(executor, [session = std::move(session)] { session->shut_down(); });
  }
}

inline void HttpServerCore::remember(const std::shared_ptr<HttpSession>& session) {
  std::lock_guard lock(sessions_mutex);
  sessions.emplace(session.get(), session);
}

inline void HttpServerCore::forget(const HttpSession* session, bool was_rejected) noexcept {
  {
    std::lock_guard lock(sessions_mutex);
    sessions.erase(session);
  }
  --(was_rejected ? rejected : connections);
}

inline HttpResponse HttpServerCore::call_handler(const HttpRequest& request) {
  ServerThreadMark mark(this);
  const auto internal_error = [&](const std::string& detail) {
    std::string target = request.target.substr(0, 200);
    log("fhetensor: HTTP handler for " + request.method.substr(0, 20) + " " + target + ": " + detail);
    return text_response(500, "internal server error");
  };
  const auto checked_status = [&](unsigned status) { return status >= 200 && status <= 599; };
  try {
    HttpResponse response = handler(request);
    if (!checked_status(response.status)) {
      return internal_error("returned status " + std::to_string(response.status) + ", outside [200, 599]");
    }
    return response;
  } catch (const HttpError& e) {
    if (!checked_status(e.status())) {
      return internal_error("threw HttpError with status " + std::to_string(e.status()) + ", outside [200, 599]");
    }
    return text_response(e.status(), e.what());
  } catch (const std::invalid_argument& e) {
    return text_response(400, e.what());
  } catch (const std::out_of_range& e) {
    return text_response(400, e.what());
  } catch (const std::length_error& e) {
    return text_response(400, e.what());
  } catch (const std::domain_error& e) {
    return text_response(400, e.what());
  } catch (const std::exception& e) {
    return internal_error(e.what());
  } catch (...) {
    return internal_error("threw something that is not a std::exception");
  }
}

inline void HttpServerCore::log(const std::string& line) noexcept {
  try {
    if (options.error_log) {
      options.error_log(line);
    } else {
      std::cerr << (line + '\n') << std::flush;  // one write, not interleaved with others
    }
  } catch (...) {
  }
}

inline void HttpServerCore::run_io() noexcept {
  ServerThreadMark mark(this);
  // A throwing completion handler (out of memory) must not take the thread down with it.
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      log(std::string("fhetensor: HTTP server I/O thread: ") + e.what());
    } catch (...) {
      log("fhetensor: HTTP server I/O thread: unknown exception");
    }
  }
}

}  // namespace detail

/// Listens from construction (so port() is known at once); serves once start() or run()
/// is called. Not movable: the connections refer to it.
class HttpServer {
 public:
  using Options = HttpServerOptions;
  using Handler = HttpHandler;

  /// Binds and listens; throws std::invalid_argument for bad options and
  /// std::runtime_error when the address cannot be bound.
  HttpServer(Options options, Handler handler)
      : core_(std::make_unique<detail::HttpServerCore>(std::move(options), std::move(handler))) {}

  /// Stops and waits for the in-flight handlers. Must not run on one of the server's own
  /// threads (from inside a handler), which it would have to join.
  ~HttpServer() { stop(); }

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  unsigned short port() const noexcept { return core_->bound_port; }
  const Options& options() const noexcept { return core_->options; }

  /// True once a stop was requested: a long handler may poll this and give up early.
  bool stopping() const noexcept { return core_->stopping.load(); }

  /// Serves on io_threads background threads and returns.
  void start() {
    std::lock_guard lock(mutex_);
    begin(Mode::started);
    for (unsigned i = 0; i < core_->options.io_threads; ++i) spawn_io_thread();
  }

  /// Serves on the calling thread (and io_threads - 1 others) until stop(), then returns
  /// once the in-flight requests are answered.
  void run() {
    {
      std::lock_guard lock(mutex_);
      begin(Mode::running);
      for (unsigned i = 1; i < core_->options.io_threads; ++i) spawn_io_thread();
    }
    core_->run_io();
    // run_io returns only when nothing is left: the other I/O threads are finishing too.
    for (auto& thread : threads_) thread.join();
    core_->handlers.join();
    std::lock_guard lock(mutex_);
    mode_ = Mode::finished;
    finished_.notify_all();
  }

  /// Graceful stop: no new connections; idle connections and requests still being read are
  /// closed; the requests being handled get their responses (with Connection: close)
  /// before it returns, so it waits for the running handlers. Safe from any thread and
  /// more than once; from a handler or I/O thread of this server it only requests the
  /// stop (run() or the destructor finishes it).
  void stop() {
    core_->request_stop();
    if (detail::http_server_of_this_thread == core_.get()) return;
    std::unique_lock lock(mutex_);
    switch (mode_) {
      case Mode::idle:  // never served: nothing runs
        mode_ = Mode::finished;
        return;
      case Mode::started: {
        mode_ = Mode::joining;
        lock.unlock();
        for (auto& thread : threads_) thread.join();
        core_->handlers.join();
        lock.lock();
        mode_ = Mode::finished;
        finished_.notify_all();
        return;
      }
      case Mode::running:
      case Mode::joining:
        finished_.wait(lock, [&] { return mode_ == Mode::finished; });
        return;
      case Mode::finished:
        return;
    }
  }

  /// Stops (as stop() from inside the server) when one of these signals arrives, e.g.
  /// {SIGINT, SIGTERM} around run(). Call before start() or run().
  void stop_on_signals(const std::vector<int>& signals) {
    std::lock_guard lock(mutex_);
    if (mode_ != Mode::idle) throw std::logic_error("fhetensor: HttpServer::stop_on_signals must precede start/run");
    auto& core = *core_;
    if (!core.signals) core.signals.emplace(core.acceptor_strand);
    for (int signal : signals) core.signals->add(signal);
    wait_for_signal();
  }

 private:
  enum class Mode { idle, started, running, joining, finished };

  void begin(Mode mode) {
    if (mode_ != Mode::idle) throw std::logic_error("fhetensor: HttpServer was already started or stopped");
    mode_ = mode;
  }

  void spawn_io_thread() {
    threads_.emplace_back([core = core_.get()] { core->run_io(); });
  }

  void wait_for_signal() {
    if (signal_waiting_) return;
    signal_waiting_ = true;
    core_->signals->async_wait([core = core_.get()](const boost::system::error_code& ec, int) {
      if (!ec) core->request_stop();
    });
  }

  std::unique_ptr<detail::HttpServerCore> core_;
  std::mutex mutex_;
  std::condition_variable finished_;
  Mode mode_ = Mode::idle;
  std::vector<std::thread> threads_;
  bool signal_waiting_ = false;
};

}  // namespace server
FHETENSOR_END_NAMESPACE
