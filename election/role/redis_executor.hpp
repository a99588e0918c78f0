// The controller's Redis executor: a small async RESP client to the local
// Redis ([redis] address and password) that runs the role steps and reads
// INFO replication. The connection is the shared proxy::RedisClient
// (proxy/redis_client.hpp); commands, replies and INFO come from the
// protocol library. The pure helpers around them are declared first and
// unit-tested.
//
// Each operation uses a fresh connection (connect, AUTH, commands, close):
// nothing is left over from a Redis that restarted between two steps, and a
// few loopback connections per second cost nothing.
//
// Threading: every call and every completion runs on the executor given at
// construction (a strand if several threads run the context). Completions
// are called exactly once, never from inside the call that started the
// operation, also after stop() (with the error "stopped").
#pragma once

#include "conf/config.hpp"
#include "election/role/controller.hpp"
#include "proxy/resp_value.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility> // Boost 1.74's Asio uses std::exchange without including it
#include <vector>

namespace spdlog {
class logger;
}

namespace redvip::election {

// ---- pure helpers -----------------------------------------------------------

using proxy::encode_command;

// ROLE says what a completed step wants: "master" (master == nullopt) or
// "slave" of exactly `master`. Otherwise what it says, for the error text.
struct RoleCheck {
    bool confirmed = false;
    std::string seen; // "master", "slave of 10.0.0.2:6379 (connecting)", or the odd reply
};
RoleCheck check_role(const proxy::OwnedValue& role, const std::optional<conf::Endpoint>& master);

// ---- the adapter --------------------------------------------------------------

struct RedisExecutorTimeouts {
    std::chrono::milliseconds connect{500};  // a local Redis answers in well under that
    std::chrono::milliseconds command{1000}; // one command and its reply
    std::chrono::milliseconds confirm{3000}; // a role step end to end, ROLE polls included
    std::chrono::milliseconds confirm_poll{20};
};

struct ReplicationRead {
    std::optional<ReplicationFacts> facts; // set on success
    std::string error;
    bool refused = false; // nothing listens on the Redis port: the health fast path
};

class RedisExecutor {
public:
    using Done = std::function<void(const StepResult&)>;
    using ReadDone = std::function<void(const ReplicationRead&)>;

    RedisExecutor(boost::asio::any_io_executor executor, conf::RedisConfig redis,
              RedisExecutorTimeouts timeouts, std::shared_ptr<spdlog::logger> log);
    ~RedisExecutor(); // stop()
    RedisExecutor(const RedisExecutor&) = delete;
    RedisExecutor& operator=(const RedisExecutor&) = delete;

    // REPLICAOF NO ONE, then ROLE until it says master (bounded by confirm).
    void async_promote(Done done);
    // REPLICAOF host port, then ROLE until it says slave of host:port.
    void async_replicate(const conf::Endpoint& master, Done done);
    // The switchover to `to` (a replica of this Redis, same password): CLIENT
    // PAUSE WRITE here, `to` caught up, `to` promoted, this Redis follows it,
    // unpaused. Fails (this Redis still master, unpaused) until `to` is
    // promoted; succeeds once it is.
    void async_switch_to(const conf::Endpoint& to, std::chrono::milliseconds timeout, Done done);
    // ROLE until it says master (nullopt) or replica of `master`, changing nothing.
    void async_confirm_role(const std::optional<conf::Endpoint>& master,
                            std::chrono::milliseconds within, Done done);
    // CONFIG SET each key to its value, in order.
    void async_config_set(std::vector<std::pair<std::string, std::string>> settings, Done done);
    // INFO replication, parsed. Bounded by connect + command.
    void async_read_replication(ReadDone done);

    // Ends every operation in flight (each completes with "stopped") and
    // refuses new ones. Idempotent.
    void stop();

private:
    class Impl;
    std::shared_ptr<Impl> impl_; // shared with in-flight operations
};

} // namespace redvip::election
