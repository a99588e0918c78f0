// Health checks of the local Redis, riding the proxy's backend pool.
//
// Every interval the checker sends PING and INFO replication, pipelined, on a
// connection borrowed from its thread's pool (kept between checks while they
// pass, watched while idle, dropped on any failure), and reports the outcome:
// ok with the replication facts, or the error and how long it took. Besides
// these periodic reports, every connection the pools fail to make or see
// closed is reported at once (Source::pool): a dead Redis is news within
// milliseconds, not at the next check.
#pragma once

#include "proxy/backend.hpp"
#include "proxy/info.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace redvip::proxy {

struct HealthReport {
    enum class Source : std::uint8_t {
        check, // a periodic check's outcome: what rise/fall counting is for
        pool,  // a connection refused, timed out or closed by Redis, seen as it happened
    };
    Source source = Source::check;
    bool ok = false;
    std::string error;                    // when !ok: why, as text for logs
    bool refused = false;                 // a refused connect: nothing listens on Redis's port
    std::chrono::microseconds latency{0}; // check: its start to the answer, or to the failure
    ReplicationInfo replication;          // when ok
};

// Called exactly once per check and once per pool event, on the thread named
// where it is set (Proxy::on_health).
using HealthCallback = std::function<void(const HealthReport&)>;

class HealthChecker final : private IoHandler {
public:
    // `password`: the checker authenticates each connection it takes from the
    // pool itself (AUTH before its first check), for a pool whose connections
    // are not (clients authenticate to Redis themselves: session_backend()).
    HealthChecker(EventLoop& loop, BackendPool& pool, std::chrono::milliseconds interval,
                  std::chrono::milliseconds timeout, HealthCallback report, const std::string& password = {});
    ~HealthChecker();
    HealthChecker(const HealthChecker&) = delete;
    HealthChecker& operator=(const HealthChecker&) = delete;

    // The first check runs at once. Both on the loop's thread.
    void start();
    void stop();

private:
    using clock = std::chrono::steady_clock;
    enum class Answer : std::uint8_t { need_more, done };

    void on_io() override;
    void run_check();
    void begin(Socket socket, bool fresh);
    void send();
    void read();
    void watch();
    Answer evaluate();
    void fail(std::string error);
    void finish(HealthReport report);

    BackendPool& pool_;
    std::chrono::milliseconds interval_;
    std::chrono::milliseconds timeout_;
    HealthCallback report_;
    Socket socket_;                     // borrowed from the pool, kept while checks pass
    Timer tick_;
    Timer deadline_;
    std::uint64_t check_ = 0;           // the current check; a connection for an older one goes back
    bool running_ = false;
    bool stopped_ = false;
    clock::time_point started_;
    std::string auth_request_;          // AUTH, sent first on each new connection; empty: none
    std::string request_;               // the check's request (AUTH first on a new connection)
    std::string_view unsent_;           // ...of which not yet sent
    bool auth_due_ = false;             // the AUTH reply comes first
    bool closed_by_redis_ = false;      // since the last check that passed
    std::array<char, 4096> chunk_{};
    std::string reply_;                 // both replies, as they arrive
    std::shared_ptr<bool> alive_;       // for the pool's handler, which may outlive this
};

} // namespace redvip::proxy
