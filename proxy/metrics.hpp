// The Prometheus endpoint: GET /metrics on [metrics] listen, on a thread of its
// own, so a scrape never waits on, or makes wait, a proxy thread.
//
// The text comes from a render callback the owner gives (the proxy's
// render_prometheus() plus the election's and the VIP's families, written
// with PrometheusText), called on the metrics thread once per scrape. Any
// other path gets 404, another method 405, a malformed or oversized request
// 400; each connection has a read deadline and their number is capped.
#pragma once

#include "conf/config.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace redvip::proxy {

class MetricsServer {
public:
    using Render = std::function<std::string()>;

    MetricsServer(const conf::Endpoint& listen, Render render);
    ~MetricsServer(); // stop()s
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // Binds and starts the thread. Throws std::system_error naming the address.
    void start();
    // Closes the listener and every connection, joins the thread. Idempotent.
    // Stop it before what the render callback reads (e.g. the Proxy).
    void stop();

    std::uint16_t port() const noexcept; // the bound port (listen may say 0)

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace redvip::proxy
