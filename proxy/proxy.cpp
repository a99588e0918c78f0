// The listener and the threads. One acceptor hands connections round-robin
// to the threads; each thread has its own backend pool and buffers, so no
// lock is taken on the request path. (No SO_REUSEPORT: with it a second,
// stale redvip could bind the same port and take half the clients.)
#include "proxy/proxy.hpp"

#include "proxy/bound_link.hpp"
#include "proxy/session.hpp"
#include "proxy/worker.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

namespace redvip::proxy {

namespace {

// How often each thread checks its sessions' idle and backend deadlines: a
// timeout fires at most this late, and no timer is armed per request.
constexpr std::chrono::milliseconds kSweepInterval{50};

constexpr std::string_view kMaxClients = "-ERR max number of clients reached\r\n";

// Lets the listener bind the VIP before it is on the interface, so the node
// serves the moment the address arrives.
void set_freebind(asio::ip::tcp::acceptor& acceptor, bool v6) {
    int one = 1;
    int level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
    int name = v6 ? IPV6_FREEBIND : IP_FREEBIND;
    if (::setsockopt(acceptor.native_handle(), level, name, &one, sizeof one) != 0)
        throw std::system_error(errno, std::generic_category(), "setsockopt(FREEBIND)");
}

// The thread's sessions, held: what is done to one may end it (and so erase it).
std::vector<std::shared_ptr<Session>> snapshot(Worker& w) {
    std::vector<std::shared_ptr<Session>> sessions;
    sessions.reserve(w.sessions.size());
    for (Session* s : w.sessions)
        sessions.push_back(s->shared_from_this());
    return sessions;
}

// Relaying is over (SERVING or FENCED): spares to the peer
// close now; links still on it keep the pool until they end.
void end_relay(Worker& w) {
    if (!w.relay)
        return;
    w.relay->stop();
    w.relay.reset();
}

void reject(Worker& w, tcp::socket socket, std::string_view why) {
    ++w.counters.rejected;
    auto s = std::make_shared<tcp::socket>(std::move(socket));
    asio::async_write(*s, asio::buffer(why), [s](const boost::system::error_code&, std::size_t) {
        boost::system::error_code ignored;
        s->close(ignored);
    });
}

} // namespace

std::shared_ptr<BackendLink> Worker::new_link() {
    return std::make_shared<BoundLink>(io, current_pool(), buffers, relay);
}

void Worker::check_drained(std::chrono::steady_clock::time_point now) {
    if (drains.empty())
        return;
    std::size_t busy = 0;
    for (const Session* s : sessions)
        busy += s->busy() ? 1 : 0;
    if (busy > 0 && now < drain_until)
        return;
    for (auto& done : std::exchange(drains, {}))
        done(busy);
}

std::string_view to_string(ServingState state) noexcept {
    switch (state) {
    case ServingState::serving: return "SERVING";
    case ServingState::holding: return "HOLDING";
    case ServingState::fenced: return "FENCED";
    case ServingState::relaying: return "RELAYING";
    case ServingState::closing: return "CLOSING";
    }
    return "?";
}

struct Proxy::Impl {
    Impl(const conf::Config& config, std::shared_ptr<spdlog::logger> log, BackendObserver observer)
        : shared{config, std::move(log)}, observer(std::move(observer)) {}

    void open_acceptor();
    void accept();
    void admit(Worker& w, tcp::socket socket);
    void sweep(Worker& w);

    Shared shared;
    BackendObserver observer;
    HealthCallback on_health;
    std::unique_ptr<HealthChecker> health; // on workers[0]
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<std::thread> threads;
    std::optional<tcp::acceptor> acceptor; // runs on workers[0]
    bool stopping = false;                 // read and written on workers[0]
    std::size_t next_worker = 0;
    tcp::endpoint bound;
    std::uint64_t state_changes = 0;
    int spares = 1; // per thread, for the local pool and a relay's
    bool started = false;
};

void Proxy::Impl::open_acceptor() {
    const auto& listen = shared.config.proxy.listen;
    tcp::endpoint endpoint(listen.host, listen.port);
    auto& a = acceptor.emplace(workers.front()->io);
    try {
        a.open(endpoint.protocol());
        a.set_option(tcp::acceptor::reuse_address(true));
        set_freebind(a, endpoint.address().is_v6());
        a.bind(endpoint);
        a.listen(asio::socket_base::max_listen_connections);
    } catch (const boost::system::system_error& e) {
        throw std::system_error(e.code().value(), std::generic_category(),
                                fmt::format("cannot listen on {}", listen.to_string()));
    } catch (const std::system_error& e) {
        throw std::system_error(e.code(), fmt::format("cannot listen on {}", listen.to_string()));
    }
    bound = a.local_endpoint();
}

void Proxy::Impl::accept() {
    Worker& target = *workers[next_worker];
    next_worker = (next_worker + 1) % workers.size();
    acceptor->async_accept(target.io, [this, &target](const boost::system::error_code& ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || stopping)
            return;
        if (ec) {
            // EMFILE and friends: log, and keep accepting once descriptors free up.
            shared.log->warn("accept: {}", ec.message());
            return accept();
        }
        asio::post(target.io, [this, &target, s = std::make_shared<tcp::socket>(std::move(socket))]() mutable {
            admit(target, std::move(*s));
        });
        accept();
    });
}

void Proxy::Impl::admit(Worker& w, tcp::socket socket) {
    ++w.counters.accepted;
    if (w.state == ServingState::fenced || (w.state == ServingState::closing && !w.relay)) {
        reject(w, std::move(socket), kFencedReply);
    } else if (shared.clients.fetch_add(1, std::memory_order_relaxed) >= shared.config.proxy.max_clients) {
        shared.clients.fetch_sub(1, std::memory_order_relaxed);
        reject(w, std::move(socket), kMaxClients);
    } else {
        std::make_shared<Session>(w, std::move(socket))->start(); // its link comes with its first command
    }
}

void Proxy::Impl::sweep(Worker& w) {
    w.sweep.expires_after(kSweepInterval);
    w.sweep.async_wait([this, &w](const boost::system::error_code& ec) {
        // cancel() cannot recall a handler already queued: the flag can.
        if (ec || w.stopping)
            return;
        auto now = std::chrono::steady_clock::now();
        const bool hold_expires = w.state == ServingState::holding && !w.hold_expired && now >= w.hold_until;
        if (hold_expires) {
            w.hold_expired = true;
            shared.log->warn("held commands for {} ms and still HOLDING: answering them {}",
                             shared.config.proxy.backend_timeout.count(), kHoldExpired.substr(0, 9));
        }
        // check_timeouts may stop (and so erase) a session: walk a copy.
        for (auto& s : snapshot(w)) {
            if (hold_expires)
                s->on_state_change();
            s->check_timeouts(now);
        }
        w.check_drained(now);
        sweep(w);
    });
}

Proxy::Proxy(const conf::Config& config, std::shared_ptr<spdlog::logger> log, BackendObserver observer)
    : impl_(std::make_unique<Impl>(config, std::move(log), std::move(observer))) {}

Proxy::~Proxy() { stop(); }

void Proxy::start() {
    auto& im = *impl_;
    const auto& cfg = im.shared.config;
    int threads = cfg.proxy.threads;
    int spares = std::max(1, (cfg.redis.pool_size + threads - 1) / threads);
    im.spares = spares;
    for (int i = 0; i < threads; ++i) {
        BackendEvents events;
        // Pool events come from every thread; the observer posts them where it
        // needs, health reports go to the first thread.
        events.on_failure = [&im](const std::string& error) {
            if (im.observer.on_failure)
                im.observer.on_failure(error);
            if (im.on_health)
                asio::post(im.workers.front()->io, [&im, error] {
                    HealthReport report;
                    report.source = HealthReport::Source::pool;
                    report.error = error;
                    im.on_health(report);
                });
        };
        events.on_success = im.observer.on_success;
        im.workers.push_back(std::make_unique<Worker>(im.shared, spares, std::move(events)));
    }
    if (im.on_health) {
        Worker& first = *im.workers.front();
        im.health = std::make_unique<HealthChecker>(first.io, first.backends, cfg.health.interval,
                                                    cfg.health.timeout, im.on_health);
    }
    im.open_acceptor();
    for (auto& w : im.workers) {
        Worker& worker = *w;
        asio::post(worker.io, [&im, &worker] {
            worker.backends.start();
            im.sweep(worker);
            if (im.health && &worker == im.workers.front().get())
                im.health->start();
        });
        im.threads.emplace_back([&worker] { worker.io.run(); });
    }
    asio::post(im.workers.front()->io, [&im] { im.accept(); });
    im.started = true;
    im.shared.log->info("listening on {} ({} threads, {} pooled Redis connections each)",
                        cfg.proxy.listen.to_string(), threads, spares);
}

void Proxy::stop() {
    auto& im = *impl_;
    if (!im.started)
        return;
    im.started = false;
    for (auto& w : im.workers) {
        Worker& worker = *w;
        asio::post(worker.io, [&im, &worker] {
            boost::system::error_code ignored;
            if (&worker == im.workers.front().get()) {
                im.stopping = true;
                im.acceptor->close(ignored);
                if (im.health)
                    im.health->stop();
            }
            worker.stopping = true;
            worker.sweep.cancel();
            worker.backends.stop();
            end_relay(worker);
            for (auto& s : snapshot(worker))
                s->stop();
        });
    }
    for (auto& t : im.threads)
        t.join();
    im.threads.clear();
    im.acceptor.reset();
    im.health.reset(); // before its thread's io_context
    im.workers.clear();
}

void Proxy::set_state(ServingState state) {
    auto& im = *impl_;
    if (state == ServingState::relaying)
        throw std::invalid_argument("Proxy::set_state: RELAYING needs relay_to()");
    if (im.shared.state.exchange(state) == state)
        return;
    ++im.state_changes;
    im.shared.log->info("serving state: {}", to_string(state));
    for (auto& w : im.workers) {
        Worker& worker = *w;
        asio::post(worker.io, [&worker, state] {
            const auto now = std::chrono::steady_clock::now();
            worker.state = state;
            worker.hold_until = now + worker.shared.config.proxy.backend_timeout;
            worker.hold_expired = false;
            if (state == ServingState::serving || state == ServingState::fenced)
                end_relay(worker); // clean sessions come back at their next command
            for (auto& s : snapshot(worker))
                s->on_state_change();
        });
    }
}

void Proxy::relay_to(const conf::Endpoint& redis) {
    auto& im = *impl_;
    im.shared.state.store(ServingState::relaying);
    ++im.state_changes;
    im.shared.log->info("serving state: RELAYING to {}", redis.to_string());
    conf::RedisConfig target = im.shared.config.redis;
    target.address = redis;
    for (auto& w : im.workers) {
        Worker& worker = *w;
        asio::post(worker.io, [&worker, target, spares = im.spares] {
            end_relay(worker);
            // No events: the peer's Redis is not this node's health.
            worker.relay = std::make_shared<BackendPool>(worker.io, target, worker.shared.config.proxy.backend_timeout,
                                                         spares, BackendEvents{});
            worker.relay->start();
            worker.state = ServingState::relaying;
            for (auto& s : snapshot(worker))
                s->on_state_change();
        });
    }
}

void Proxy::when_drained(std::function<void(std::size_t busy)> done) {
    auto& im = *impl_;
    struct Join {
        Join(std::function<void(std::size_t)> d, std::size_t n) : done(std::move(d)), left(n) {}
        std::function<void(std::size_t)> done;
        std::atomic<std::size_t> left;
        std::atomic<std::size_t> busy{0};
    };
    auto join = std::make_shared<Join>(std::move(done), im.workers.size());
    for (auto& w : im.workers) {
        Worker& worker = *w;
        asio::post(worker.io, [&worker, join] {
            const auto now = std::chrono::steady_clock::now();
            if (worker.drains.empty())
                worker.drain_until = now + kDrainTimeout;
            worker.drains.push_back([join](std::size_t busy) {
                join->busy += busy;
                if (--join->left == 0)
                    join->done(join->busy.load());
            });
            worker.check_drained(now);
        });
    }
}

void Proxy::on_health(HealthCallback callback) {
    impl_->on_health = std::move(callback);
}

ServingState Proxy::state() const noexcept { return impl_->shared.state.load(); }

tcp::endpoint Proxy::local_endpoint() const { return impl_->bound; }

ProxyStats Proxy::stats() const {
    auto& im = *impl_;
    ProxyStats total;
    for (auto& w : im.workers) {
        Worker& worker = *w;
        std::promise<WorkerCounters> promise;
        auto future = promise.get_future();
        asio::post(worker.io, [&worker, &promise] { promise.set_value(worker.counters); });
        WorkerCounters c = future.get();
        total.connections_accepted += c.accepted;
        total.connections_rejected += c.rejected;
        total.commands += c.commands;
        total.bytes_from_clients += c.bytes_in;
        total.bytes_to_clients += c.bytes_out;
        total.protocol_errors += c.protocol_errors;
        total.auth_failures += c.auth_failures;
        total.backend_errors += c.backend_errors;
        total.backend_timeouts += c.backend_timeouts;
        total.idle_timeouts += c.idle_timeouts;
        total.fenced_replies += c.fenced_replies;
        total.hold_expired_replies += c.hold_expired_replies;
        total.relayed_sessions += c.relayed_sessions;
        total.retired_sessions += c.retired_sessions;
        for (std::size_t i = 0; i < kCommandClasses; ++i)
            total.latency[i].merge(c.latency[i]);
    }
    total.state = im.shared.state.load();
    total.connections_active = static_cast<std::uint64_t>(im.shared.clients.load());
    total.state_changes = im.state_changes;
    return total;
}

} // namespace redvip::proxy
