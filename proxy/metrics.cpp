#include "proxy/metrics.hpp"

#include <utility> // Boost 1.74's Asio uses std::exchange without including it
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>

#include <chrono>
#include <system_error>
#include <thread>

namespace redvip::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// A scrape is one short GET; anything bigger is not Prometheus.
constexpr std::size_t kMaxRequestHeader = 8 * 1024;
constexpr std::uint64_t kMaxRequestBody = 1024;
// A client gets this long for each request (and an idle keep-alive ends).
constexpr std::chrono::seconds kReadTimeout{5};
// Scrapers are a handful; past this, new connections are closed at once.
constexpr int kMaxConnections = 32;

using HttpRequest = http::request<http::string_body>;
using Response = http::response<http::string_body>;

Response make_response(const HttpRequest& req, http::status status, std::string body,
                       std::string_view type = "text/plain; charset=utf-8") {
    Response res{status, req.version()};
    res.set(http::field::server, "redvip");
    res.set(http::field::content_type, beast::string_view(type.data(), type.size()));
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

} // namespace

struct MetricsServer::Impl {
    Impl(const conf::Endpoint& listen, Render render) : listen(listen), render(std::move(render)) {}

    asio::awaitable<void> accept_loop();
    asio::awaitable<void> serve(beast::tcp_stream stream);
    Response answer(const HttpRequest& req);

    conf::Endpoint listen;
    Render render;
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    std::thread thread;
    int connections = 0; // the metrics thread's only
    std::uint16_t port = 0;
    bool started = false;
};

Response MetricsServer::Impl::answer(const HttpRequest& req) {
    if (req.target() != "/metrics")
        return make_response(req, http::status::not_found, "not found: try /metrics\n");
    if (req.method() != http::verb::get && req.method() != http::verb::head)
        return make_response(req, http::status::method_not_allowed, "GET /metrics\n");
    std::string text;
    try {
        text = render();
    } catch (const std::exception& e) { // the owner's bug: a 500, not a dead metrics thread
        return make_response(req, http::status::internal_server_error, fmt::format("render: {}\n", e.what()));
    }
    Response res = make_response(req, http::status::ok, std::move(text), "text/plain; version=0.0.4; charset=utf-8");
    if (req.method() == http::verb::head)
        res.body().clear(); // Content-Length stays that of the GET
    return res;
}

asio::awaitable<void> MetricsServer::Impl::serve(beast::tcp_stream stream) {
    ++connections;
    beast::flat_buffer buffer(kMaxRequestHeader + kMaxRequestBody);
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(kMaxRequestHeader);
        parser.body_limit(kMaxRequestBody);
        stream.expires_after(kReadTimeout);
        beast::error_code ec;
        co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
        // The peer left, went quiet past the deadline, or we are stopping: nothing to say.
        if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
            ec == asio::error::connection_reset || ec == asio::error::eof)
            break;
        Response res;
        if (ec) {
            res = make_response(HttpRequest{}, http::status::bad_request, fmt::format("bad request: {}\n", ec.message()));
            res.keep_alive(false);
        } else {
            res = answer(parser.get());
        }
        stream.expires_after(kReadTimeout);
        co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
        if (ec || !res.keep_alive())
            break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    --connections;
}

asio::awaitable<void> MetricsServer::Impl::accept_loop() {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted)
            co_return;
        if (ec)
            continue; // EMFILE and friends: the next accept may succeed
        if (connections >= kMaxConnections)
            continue; // closed as `socket` goes out of scope
        asio::co_spawn(io, serve(beast::tcp_stream(std::move(socket))), asio::detached);
    }
}

MetricsServer::MetricsServer(const conf::Endpoint& listen, Render render)
    : impl_(std::make_unique<Impl>(listen, std::move(render))) {}

MetricsServer::~MetricsServer() {
    stop();
}

void MetricsServer::start() {
    auto& im = *impl_;
    tcp::endpoint endpoint(im.listen.host, im.listen.port);
    try {
        im.acceptor.open(endpoint.protocol());
        im.acceptor.set_option(tcp::acceptor::reuse_address(true));
        im.acceptor.bind(endpoint);
        im.acceptor.listen();
    } catch (const boost::system::system_error& e) {
        throw std::system_error(e.code().value(), std::generic_category(),
                                fmt::format("metrics: cannot listen on {}", im.listen.to_string()));
    }
    im.port = im.acceptor.local_endpoint().port();
    asio::co_spawn(im.io, im.accept_loop(), asio::detached);
    im.thread = std::thread([&im] { im.io.run(); });
    im.started = true;
}

void MetricsServer::stop() {
    auto& im = *impl_;
    if (!im.started)
        return;
    im.started = false;
    // Stopping the loop abandons every coroutine; their frames (and sockets)
    // are destroyed with the io_context's pending work below.
    im.io.stop();
    im.thread.join();
    boost::system::error_code ignored;
    im.acceptor.close(ignored);
}

std::uint16_t MetricsServer::port() const noexcept {
    return impl_->port;
}

} // namespace redvip::proxy
