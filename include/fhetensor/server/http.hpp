#pragma once
// The HTTP transport of the encrypted-inference server: HttpServer, HttpClient and the
// messages they exchange. Needs Boost (headers only) and threads: link fhetensor::server.
#include <fhetensor/server/http_client.hpp>
#include <fhetensor/server/http_message.hpp>
#include <fhetensor/server/http_server.hpp>
