#pragma once
// Names shared by http_server.hpp and http_client.hpp, kept out of fhetensor::server.
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace server::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

inline std::string to_std_string(beast::string_view s) { return std::string(s.data(), s.size()); }

// Errors of the HTTP parser (as opposed to the network): the peer sent something that is
// not HTTP, or too much of it.
inline bool is_http_parse_error(const boost::system::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

}  // namespace server::detail
FHETENSOR_END_NAMESPACE
