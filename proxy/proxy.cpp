// The listener and the threads. One listener hands connections round-robin
// to the threads; each thread has its own backend pool and buffers, so no
// lock is taken on the request path. (No SO_REUSEPORT: with it a second,
// stale redvip could bind the same port and take half the clients.)
#include "proxy/proxy.hpp"

#include "proxy/bound_link.hpp"
#include "proxy/session.hpp"
#include "proxy/worker.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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

// Connections taken in one go before the thread's sessions get their turn.
constexpr int kAcceptsPerTurn = 64;
// Out of descriptors (EMFILE) or memory: connections wait in the backlog
// until this much later, instead of a busy loop on a listener that stays readable.
constexpr std::chrono::milliseconds kAcceptRetry{50};

// A listening socket for `endpoint`, non-blocking. FREEBIND lets it bind the
// VIP before the VIP is on the interface, so the node serves the moment the
// address arrives.
int open_listener(const tcp::endpoint& endpoint) {
    const bool v6 = endpoint.address().is_v6();
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "socket");
    const int one = 1;
    const char* step = nullptr;
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        step = "setsockopt(SO_REUSEADDR)";
    else if (::setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_FREEBIND : IP_FREEBIND, &one, sizeof one) != 0)
        step = "setsockopt(FREEBIND)";
    else if (::bind(fd, endpoint.data(), static_cast<socklen_t>(endpoint.size())) != 0)
        step = "bind";
    else if (::listen(fd, SOMAXCONN) != 0)
        step = "listen";
    if (step != nullptr) {
        const int error = errno;
        ::close(fd);
        throw std::system_error(error, std::generic_category(), step);
    }
    return fd;
}

// An accepted descriptor on its way to another thread: closed if that thread
// ends before it is admitted.
struct HandedFd {
    explicit HandedFd(int fd) noexcept : fd(fd) {}
    ~HandedFd() {
        if (fd >= 0)
            ::close(fd);
    }
    HandedFd(const HandedFd&) = delete;
    HandedFd& operator=(const HandedFd&) = delete;
    int release() noexcept { return std::exchange(fd, -1); }
    int fd;
};

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

// A fresh socket takes a line at once: one write, then FIN, and the socket is
// closed once the client has (it may have sent its first command already).
void reject(Worker& w, Socket socket, std::string_view why) {
    ++w.counters.rejected;
    if (socket.write(why).bytes == why.size())
        w.linger.adopt(std::move(socket));
}

} // namespace

// (Proxy::stop() did all this already, on the thread: here for the rest.)
Worker::~Worker() {
    backends.stop(); // attempts in flight answer their sessions, which are alive
    end_relay(*this);
    for (auto& s : snapshot(*this))
        s->stop();
    loop.release_now();
}

Worker::Worker(Shared& shared, int spares, BackendEvents events)
    : shared(shared)
    , backends(loop, session_backend(shared.config, shared.config.redis.address), shared.config.proxy.backend_timeout,
               spares, std::move(events))
    , sweep(loop)
    , linger(loop) {
    if (!shared.config.proxy.multiplex)
        return;
    for (int i = 0; i < shared.config.redis.shared_links; ++i) {
        SharedLinkEvents events;
        events.on_policy = [this](SharePolicy policy) {
            SPDLOG_LOGGER_DEBUG(this->shared.log, "shared link: {} commands in Redis's table, {} pin a session",
                                policy.commands(), policy.flagged());
            share_policy = std::move(policy);
        };
        events.on_failure = [this](const std::string& why) {
            this->shared.log->warn("shared link to Redis lost: {}", why);
        };
        shared_links.push_back(std::make_unique<SharedLink>(loop, backends, buffers, shared.config.proxy.hold_timeout,
                                                            std::move(events)));
    }
}

std::shared_ptr<BackendLink> Worker::shared_view() {
    if (shared_links.empty())
        return nullptr;
    SharedLink& link = *shared_links[next_shared++ % shared_links.size()];
    return link.view();
}

std::shared_ptr<BackendLink> Worker::new_link() {
    return std::make_shared<BoundLink>(loop, current_pool(), buffers, shared.config.proxy.hold_timeout, relay);
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

struct Proxy::Impl final : private IoHandler {
    Impl(const conf::Config& config, std::shared_ptr<spdlog::logger> log, BackendObserver observer)
        : shared{config, std::move(log)}, observer(std::move(observer)) {}

    void listen();
    void on_io() override; // the listener: accept
    void accept();
    void hand_over(int fd);
    void admit(Worker& w, int fd);
    void sweep(Worker& w);

    Shared shared;
    BackendObserver observer;
    HealthCallback on_health;
    std::unique_ptr<HealthChecker> health; // on workers[0]
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<std::thread> threads;
    Socket listener;                   // on workers[0]
    std::optional<Timer> accept_retry; // on workers[0]
    bool stopping = false;             // read and written on workers[0]
    std::size_t next_worker = 0;
    tcp::endpoint bound;
    std::uint64_t state_changes = 0;
    std::optional<conf::Endpoint> relay_target; // set by relay_to(), ended by SERVING or FENCED
    int spares = 0; // per thread, for the local pool and a relay's
    bool started = false;
};

void Proxy::Impl::listen() {
    const auto& address = shared.config.proxy.listen;
    tcp::endpoint endpoint(address.host, address.port);
    EventLoop& first = workers.front()->loop;
    try {
        listener = Socket(first, open_listener(endpoint), false);
    } catch (const std::system_error& e) {
        throw std::system_error(e.code(), fmt::format("cannot listen on {}", address.to_string()));
    }
    listener.set_handler(this);
    accept_retry.emplace(first);
    socklen_t size = static_cast<socklen_t>(bound.capacity());
    if (::getsockname(listener.fd(), bound.data(), &size) == 0)
        bound.resize(size);
    else
        bound = endpoint;
}

// Edge-triggered: every new connection wakes the loop, and each wake accepts
// until the backlog is empty (or the turn's share is used, then the rest
// comes after the sessions' turn).
void Proxy::Impl::on_io() { accept(); }

void Proxy::Impl::accept() {
    for (int n = 0; n < kAcceptsPerTurn && !stopping; ++n) {
        const int fd = ::accept4(listener.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            hand_over(fd);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        // EMFILE and friends: log, and try again once descriptors may have freed up.
        shared.log->warn("accept: {}", error_text(errno));
        accept_retry->after(kAcceptRetry, [this] { accept(); });
        return;
    }
    if (!stopping)
        accept_retry->after(Clock::duration::zero(), [this] { accept(); });
}

// Round-robin over the threads; the first admits its own at once.
void Proxy::Impl::hand_over(int fd) {
    Worker& target = *workers[next_worker];
    next_worker = (next_worker + 1) % workers.size();
    if (&target == workers.front().get())
        return admit(target, fd);
    target.loop.post([this, &target, handed = std::make_shared<HandedFd>(fd)] { admit(target, handed->release()); });
}

void Proxy::Impl::admit(Worker& w, int fd) {
    ++w.counters.accepted;
    Socket socket;
    try {
        socket = Socket(w.loop, fd, true);
    } catch (const std::system_error& e) {
        shared.log->warn("accept: {}", e.what()); // (the descriptor is closed)
        return;
    }
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
    w.sweep.after(kSweepInterval, [this, &w] {
        if (w.stopping)
            return;
        auto now = std::chrono::steady_clock::now();
        const bool hold_expires = w.state == ServingState::holding && !w.hold_expired && now >= w.hold_until;
        if (hold_expires) {
            w.hold_expired = true;
            shared.log->warn("held commands for {} ms and still HOLDING: answering them {}",
                             shared.config.proxy.hold_timeout.count(), kHoldExpired.substr(0, 9));
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
    const int spares = (cfg.redis.pool_size + threads - 1) / threads;
    im.spares = spares;
    for (int i = 0; i < threads; ++i) {
        BackendEvents events;
        // Pool events come from every thread; the observer posts them where it
        // needs, health reports go to the first thread.
        events.on_failure = [&im](const std::string& error, bool refused) {
            if (im.observer.on_failure)
                im.observer.on_failure(error);
            if (im.on_health)
                im.workers.front()->loop.post([&im, error, refused] {
                    HealthReport report;
                    report.source = HealthReport::Source::pool;
                    report.error = error;
                    report.refused = refused;
                    im.on_health(report);
                });
        };
        events.on_success = im.observer.on_success;
        im.workers.push_back(std::make_unique<Worker>(im.shared, spares, std::move(events)));
    }
    if (im.on_health) {
        Worker& first = *im.workers.front();
        // The pool's connections carry no credentials when clients bring their own.
        const std::string password = cfg.proxy.password.empty() ? cfg.redis.password : std::string();
        im.health = std::make_unique<HealthChecker>(first.loop, first.backends, cfg.health.interval,
                                                    cfg.health.timeout, im.on_health, password);
    }
    im.listen(); // connections wait in the backlog until the first thread runs
    for (auto& w : im.workers) {
        Worker& worker = *w;
        worker.loop.post([&im, &worker] {
            worker.backends.start();
            im.sweep(worker);
            if (im.health && &worker == im.workers.front().get())
                im.health->start();
        });
        im.threads.emplace_back([&worker] { worker.loop.run(); });
    }
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
        worker.loop.post([&im, &worker] {
            if (&worker == im.workers.front().get()) {
                im.stopping = true;
                im.listener.close();
                im.accept_retry.reset();
                if (im.health)
                    im.health->stop();
            }
            worker.stopping = true;
            worker.sweep.cancel();
            worker.backends.stop();
            end_relay(worker);
            for (auto& s : snapshot(worker))
                s->stop();
            worker.loop.stop(); // after this turn, which frees the sessions
        });
    }
    for (auto& t : im.threads)
        t.join();
    im.threads.clear();
    im.health.reset(); // before its thread's loop
    im.workers.clear();
}

void Proxy::set_state(ServingState state) {
    auto& im = *impl_;
    if (state == ServingState::relaying)
        throw std::invalid_argument("Proxy::set_state: RELAYING needs relay_to()");
    if (state == ServingState::serving || state == ServingState::fenced)
        im.relay_target.reset();
    if (im.shared.state.exchange(state) == state)
        return;
    ++im.state_changes;
    im.shared.log->info("serving state: {}", to_string(state));
    for (auto& w : im.workers) {
        Worker& worker = *w;
        worker.loop.post([&worker, state] {
            const auto now = std::chrono::steady_clock::now();
            worker.state = state;
            worker.state_since = now;
            worker.hold_until = now + worker.shared.config.proxy.hold_timeout;
            worker.hold_expired = false;
            if (state == ServingState::serving || state == ServingState::fenced)
                end_relay(worker); // clean sessions come back at their next command
            for (auto& s : snapshot(worker))
                s->on_state_change();
        });
    }
}

void Proxy::relay_to(const conf::Endpoint& redis, ServingState then) {
    auto& im = *impl_;
    if (then != ServingState::relaying && then != ServingState::closing)
        throw std::invalid_argument("Proxy::relay_to: RELAYING or CLOSING");
    if (im.relay_target == redis && then == ServingState::closing) // keep the relay's connections
        return set_state(then);
    im.relay_target = redis;
    im.shared.state.store(then);
    ++im.state_changes;
    im.shared.log->info("serving state: {} to {}", to_string(then), redis.to_string());
    const conf::RedisConfig target = session_backend(im.shared.config, redis);
    for (auto& w : im.workers) {
        Worker& worker = *w;
        worker.loop.post([&worker, target, then, spares = im.spares] {
            end_relay(worker);
            // No events: the peer's Redis is not this node's health.
            worker.relay = std::make_shared<BackendPool>(worker.loop, target, worker.shared.config.proxy.backend_timeout,
                                                         spares, BackendEvents{});
            worker.relay->start();
            worker.state = then;
            worker.state_since = std::chrono::steady_clock::now();
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
        worker.loop.post([&worker, join] {
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

namespace {

// One thread's figures, taken on that thread.
struct WorkerSnapshot {
    WorkerCounters counters;
    std::uint64_t sessions_shared = 0, sessions_pinned = 0, links_ready = 0;
    SharedLinkCounters links;
};

WorkerSnapshot snapshot_of(const Worker& worker) {
    WorkerSnapshot snap;
    snap.counters = worker.counters;
    for (const Session* s : worker.sessions)
        ++(s->shared() ? snap.sessions_shared : snap.sessions_pinned);
    for (const auto& link : worker.shared_links) {
        const SharedLinkCounters& c = link->counters();
        snap.links_ready += link->ready() ? 1 : 0;
        snap.links.connects += c.connects;
        snap.links.failures += c.failures;
        snap.links.pauses += c.pauses;
        snap.links.requests += c.requests;
        snap.links.writes += c.writes;
        snap.links.reads += c.reads;
    }
    return snap;
}

} // namespace

ProxyStats Proxy::stats() const {
    auto& im = *impl_;
    ProxyStats total;
    for (auto& w : im.workers) {
        Worker& worker = *w;
        std::promise<WorkerSnapshot> promise;
        auto future = promise.get_future();
        worker.loop.post([&worker, &promise] { promise.set_value(snapshot_of(worker)); });
        const WorkerSnapshot snap = future.get();
        const WorkerCounters& c = snap.counters;
        total.sessions_shared += snap.sessions_shared;
        total.sessions_pinned += snap.sessions_pinned;
        for (std::size_t i = 0; i < kPinReasons; ++i)
            total.pins[i] += c.pins[i];
        total.shared_links_ready += snap.links_ready;
        total.shared_link_connects += snap.links.connects;
        total.shared_link_failures += snap.links.failures;
        total.shared_link_pauses += snap.links.pauses;
        total.shared_link_requests += snap.links.requests;
        total.shared_link_writes += snap.links.writes;
        total.shared_link_reads += snap.links.reads;
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
