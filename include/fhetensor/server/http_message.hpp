#pragma once
// The request and response an HttpServer handler sees and an HttpClient returns, and the
// exception a handler throws to answer with an error status. Plain strings, no Boost: the
// inference service can be written and unit-tested against these types alone.
#include <stdexcept>
#include <string>
#include <utility>

#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace server {

struct HttpRequest {
  std::string method;        // as sent: "GET", "POST", ...
  std::string target;        // as sent, query included: "/infer?model=mnist"
  std::string content_type;  // empty when the request has no Content-Type
  std::string body;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "application/octet-stream";
  std::string body;
};

/// Thrown by a handler to answer with `status` and the message as a text/plain body. The
/// message goes to the client: it must not carry secrets.
class HttpError : public std::runtime_error {
 public:
  HttpError(unsigned status, std::string message) : std::runtime_error(std::move(message)), status_(status) {}
  unsigned status() const noexcept { return status_; }

 private:
  unsigned status_;
};

}  // namespace server
FHETENSOR_END_NAMESPACE
