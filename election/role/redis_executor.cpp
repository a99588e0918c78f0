#include "election/role/redis_executor.hpp"

#include "proxy/redis_client.hpp"

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace redvip::election {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using std::chrono::milliseconds;

// ---- pure helpers -----------------------------------------------------------

RoleCheck check_role(const proxy::OwnedValue& role, const std::optional<conf::Endpoint>& master) {
    if (role.kind == proxy::ValueKind::error) return {false, role.text};
    if (role.kind != proxy::ValueKind::array || role.elements.empty() ||
        role.elements[0].kind != proxy::ValueKind::bulk)
        return {false, "an unexpected ROLE reply"};
    const auto& e = role.elements;
    const std::string& name = e[0].text;
    if (name == "master") return {!master, "master"};
    if (name != "slave" || e.size() < 4 || e[1].kind != proxy::ValueKind::bulk ||
        e[2].kind != proxy::ValueKind::integer || e[2].integer < 0 || e[2].integer > 65535)
        return {false, name};
    ReplicationFacts facts;
    facts.role = RedisRole::replica;
    facts.master_host = e[1].text;
    facts.master_port = static_cast<std::uint16_t>(e[2].integer);
    const bool ok = master && replicates_from(facts, *master);
    return {ok, fmt::format("slave of {}:{} ({})", e[1].text, e[2].integer, e[3].text)};
}

// ---- the adapter --------------------------------------------------------------

namespace {

struct Reply {
    std::optional<proxy::OwnedValue> value; // set on success (may be an error reply)
    std::string error;                      // the connection's failure
};

// One connection to a Redis (proxy::RedisClient), with the error texts the
// role steps put in their failures, and whether the connect was refused.
class Link {
public:
    explicit Link(const asio::any_io_executor& ex) : client_(ex) {}

    awaitable<std::string> connect(const tcp::endpoint& to, milliseconds timeout) {
        const auto error = co_await client_.connect(to.address().to_string(), to.port(), timeout);
        refused = error.failure == proxy::ClientFailure::refused;
        co_return error.text;
    }

    // Sends one command and reads its reply.
    awaitable<Reply> call(std::string request, milliseconds timeout) {
        auto result = co_await client_.call(request, timeout);
        if (result.error) co_return Reply{{}, std::move(result.error.text)};
        co_return Reply{std::move(result.value), {}};
    }

    awaitable<void> sleep(milliseconds duration) { co_await client_.sleep(duration); }

    // Ends whatever waits on this link.
    void close() { client_.close(); }

    bool refused = false;

private:
    proxy::RedisClient client_;
};

// The requests, built outside the coroutines: g++ 12 miscompiles an
// initializer_list's backing array in a coroutine frame ("array used as
// initializer").
std::string auth_request(const std::string& password) {
    return encode_command({"AUTH", password});
}
std::string role_request() {
    return encode_command({"ROLE"});
}
std::string info_request() {
    return encode_command({"INFO", "replication"});
}
std::string replicaof_request(const std::optional<conf::Endpoint>& master) {
    if (!master) return encode_command({"REPLICAOF", "NO", "ONE"});
    return encode_command({"REPLICAOF", master->host.to_string(), std::to_string(master->port)});
}

std::string pause_request(milliseconds timeout) {
    return encode_command({"CLIENT", "PAUSE", std::to_string(timeout.count()), "WRITE"});
}
std::string unpause_request() {
    return encode_command({"CLIENT", "UNPAUSE"});
}
std::string config_set_request(const std::string& key, const std::string& value) {
    return encode_command({"CONFIG", "SET", key, value});
}

struct Settings {
    tcp::endpoint redis;
    std::string password;
    RedisExecutorTimeouts timeouts;
};

// Connects and authenticates; an error text, or empty.
awaitable<std::string> open(Link& link, const Settings& s) {
    auto error = co_await link.connect(s.redis, s.timeouts.connect);
    if (!error.empty() || s.password.empty()) co_return error;
    const auto reply = co_await link.call(auth_request(s.password), s.timeouts.command);
    if (!reply.error.empty()) co_return "AUTH: " + reply.error;
    if (reply.value->kind == proxy::ValueKind::error) co_return "AUTH: " + reply.value->text;
    co_return std::string{};
}

// ROLE until it says `master` (nullopt: master), or `within` has passed.
awaitable<StepResult> poll_role(Link& link, const Settings& s,
                                const std::optional<conf::Endpoint>& master, milliseconds within,
                                std::string what) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
        const auto reply = co_await link.call(role_request(), s.timeouts.command);
        if (!reply.error.empty()) co_return StepResult::failure("ROLE: " + reply.error);
        const auto check = check_role(*reply.value, master);
        if (check.confirmed) co_return StepResult::success();
        if (std::chrono::steady_clock::now() >= deadline)
            co_return StepResult::failure(fmt::format("{}: ROLE still says {} after {} ms", what,
                                                      check.seen, within.count()));
        co_await link.sleep(s.timeouts.confirm_poll);
    }
}

// REPLICAOF, then ROLE until it agrees or `confirm` has passed.
awaitable<StepResult> run_role_step(std::shared_ptr<Link> link, Settings s,
                                    std::optional<conf::Endpoint> master) {
    const std::string what = master ? describe(ReplicateRedis{*master}) : describe(PromoteRedis{});
    if (auto error = co_await open(*link, s); !error.empty()) co_return StepResult::failure(error);
    auto reply = co_await link->call(replicaof_request(master), s.timeouts.command);
    if (!reply.error.empty()) co_return StepResult::failure(what + ": " + reply.error);
    if (reply.value->kind == proxy::ValueKind::error)
        co_return StepResult::failure(what + ": " + reply.value->text);
    co_return co_await poll_role(*link, s, master, s.timeouts.confirm, what);
}

awaitable<std::optional<ReplicationFacts>> read_facts(Link& link, const Settings& s) {
    const auto reply = co_await link.call(info_request(), s.timeouts.command);
    if (!reply.error.empty() || reply.value->kind != proxy::ValueKind::bulk) co_return std::nullopt;
    auto parsed = proxy::parse_info_replication(reply.value->text);
    if (!parsed.ok) co_return std::nullopt;
    co_return std::move(parsed.info);
}

// The switchover, driven from the master's side (the proxy holds new
// commands meanwhile): pause writes here (Redis 7 also stops its replica
// PINGs and expiry then, so the offset stands still), wait until `to` has
// processed every byte, promote it, follow it, unpause. About as safe as
// Redis's FAILOVER and far quicker: FAILOVER waits for the replica's periodic ACK,
// up to a second. Until `to` is promoted every failure unpauses and leaves
// this Redis master; after, the step succeeds (the follower plan that comes
// next sets REPLICAOF again if needed).
awaitable<StepResult> run_switch(std::shared_ptr<Link> link, std::shared_ptr<Link> peer,
                                 Settings s, Settings peer_s, conf::Endpoint to,
                                 milliseconds timeout) {
    const std::string what = "switch to " + to.to_string();
    if (auto error = co_await open(*link, s); !error.empty()) co_return StepResult::failure(error);
    if (auto error = co_await open(*peer, peer_s); !error.empty())
        co_return StepResult::failure(what + ": " + error);
    auto fail = [&](std::string why) -> awaitable<StepResult> {
        (void)co_await link->call(unpause_request(), s.timeouts.command);
        co_return StepResult::failure(what + ": " + why);
    };
    auto reply = co_await link->call(pause_request(timeout), s.timeouts.command);
    if (!reply.error.empty() || reply.value->kind == proxy::ValueKind::error)
        co_return co_await fail("CLIENT PAUSE: " + (reply.error.empty() ? reply.value->text : reply.error));
    const auto ours = co_await read_facts(*link, s);
    if (!ours || ours->role != RedisRole::master) co_return co_await fail("this Redis is not master");
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto theirs = co_await read_facts(*peer, peer_s);
        if (theirs && theirs->role == RedisRole::replica && theirs->master_link_status == MasterLink::up &&
            theirs->master_replid == ours->master_replid &&
            theirs->master_repl_offset >= ours->master_repl_offset)
            break;
        if (std::chrono::steady_clock::now() >= deadline)
            co_return co_await fail(fmt::format("{} did not reach offset {} within {} ms",
                                                to.to_string(), ours->master_repl_offset,
                                                timeout.count()));
        co_await link->sleep(milliseconds{2});
    }
    const std::optional<conf::Endpoint> none;
    reply = co_await peer->call(replicaof_request(none), s.timeouts.command);
    if (!reply.error.empty() || reply.value->kind == proxy::ValueKind::error)
        co_return co_await fail("REPLICAOF NO ONE there: " +
                                (reply.error.empty() ? reply.value->text : reply.error));
    const std::optional<conf::Endpoint> target = to;
    reply = co_await link->call(replicaof_request(target), s.timeouts.command);
    if (reply.error.empty() && reply.value->kind != proxy::ValueKind::error)
        (void)co_await poll_role(*link, s, target, s.timeouts.confirm, what);
    (void)co_await link->call(unpause_request(), s.timeouts.command);
    co_return StepResult::success();
}

awaitable<StepResult> run_confirm(std::shared_ptr<Link> link, Settings s,
                                  std::optional<conf::Endpoint> master, milliseconds within) {
    if (auto error = co_await open(*link, s); !error.empty()) co_return StepResult::failure(error);
    const std::string what = master ? "replica of " + master->to_string() : "master";
    co_return co_await poll_role(*link, s, master, within, what);
}

awaitable<StepResult> run_config_set(std::shared_ptr<Link> link, Settings s,
                                     std::vector<std::pair<std::string, std::string>> settings) {
    if (auto error = co_await open(*link, s); !error.empty()) co_return StepResult::failure(error);
    for (const auto& [key, value] : settings) {
        const auto reply = co_await link->call(config_set_request(key, value), s.timeouts.command);
        if (!reply.error.empty()) co_return StepResult::failure("CONFIG SET " + key + ": " + reply.error);
        if (reply.value->kind == proxy::ValueKind::error)
            co_return StepResult::failure("CONFIG SET " + key + ": " + reply.value->text);
    }
    co_return StepResult::success();
}

awaitable<ReplicationRead> run_read(std::shared_ptr<Link> link, Settings s) {
    if (auto error = co_await open(*link, s); !error.empty())
        co_return ReplicationRead{std::nullopt, error, link->refused};
    const auto reply = co_await link->call(info_request(), s.timeouts.command);
    if (!reply.error.empty())
        co_return ReplicationRead{std::nullopt, "INFO: " + reply.error, false};
    if (reply.value->kind != proxy::ValueKind::bulk)
        co_return ReplicationRead{std::nullopt, "INFO: " + reply.value->text, false};
    auto parsed = proxy::parse_info_replication(reply.value->text);
    if (!parsed.ok) co_return ReplicationRead{std::nullopt, "INFO replication: " + parsed.error, false};
    co_return ReplicationRead{std::move(parsed.info), {}, false};
}

std::string exception_text(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (...) {
        return "unknown exception";
    }
}

} // namespace

class RedisExecutor::Impl : public std::enable_shared_from_this<Impl> {
public:
    Impl(asio::any_io_executor ex, const conf::RedisConfig& redis, RedisExecutorTimeouts timeouts,
         std::shared_ptr<spdlog::logger> log)
        : executor(std::move(ex))
        , settings{tcp::endpoint(redis.address.host, redis.address.port), redis.password, timeouts}
        , log(std::move(log)) {}

    std::shared_ptr<Link> new_link() {
        auto link = std::make_shared<Link>(executor);
        std::erase_if(links, [](const std::weak_ptr<Link>& l) { return l.expired(); });
        links.push_back(link);
        return link;
    }

    // Runs `op` on a new link; `finish(result)` once, with "stopped" when
    // stop() ended it.
    template <typename Result, typename Op, typename Finish> void spawn(Op op, Finish finish) {
        if (stopped) {
            Result r{};
            set_error(r, "stopped");
            return asio::post(executor, [finish = std::move(finish), r] { finish(r); });
        }
        auto link = new_link();
        asio::co_spawn(executor, op(link),
                       [self = shared_from_this(), link,
                        finish = std::move(finish)](std::exception_ptr e, Result r) {
                           if (e)
                               set_error(r, "internal error: " + exception_text(e));
                           else if (self->stopped && !ok(r))
                               set_error(r, "stopped");
                           link->close();
                           finish(r);
                       });
    }
    static void set_error(StepResult& r, std::string e) { r = StepResult::failure(std::move(e)); }
    static void set_error(ReplicationRead& r, std::string e) {
        r = {std::nullopt, std::move(e), false};
    }
    static bool ok(const StepResult& r) { return r.ok; }
    static bool ok(const ReplicationRead& r) { return r.facts.has_value(); }

    asio::any_io_executor executor;
    Settings settings;
    std::shared_ptr<spdlog::logger> log;
    std::vector<std::weak_ptr<Link>> links; // in flight, ended by stop()
    bool stopped = false;
};

RedisExecutor::RedisExecutor(asio::any_io_executor executor, conf::RedisConfig redis,
                             RedisExecutorTimeouts timeouts, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_shared<Impl>(std::move(executor), redis, timeouts, std::move(log))) {}

RedisExecutor::~RedisExecutor() {
    stop();
}

void RedisExecutor::async_promote(Done done) {
    auto s = impl_->settings;
    impl_->spawn<StepResult>(
        [s](std::shared_ptr<Link> l) { return run_role_step(l, s, std::nullopt); },
        std::move(done));
}

void RedisExecutor::async_replicate(const conf::Endpoint& master, Done done) {
    auto s = impl_->settings;
    impl_->spawn<StepResult>(
        [s, master](std::shared_ptr<Link> l) { return run_role_step(l, s, master); },
        std::move(done));
}

void RedisExecutor::async_switch_to(const conf::Endpoint& to, std::chrono::milliseconds timeout,
                                    Done done) {
    auto s = impl_->settings;
    auto peer_s = s;
    peer_s.redis = tcp::endpoint(to.host, to.port);
    impl_->spawn<StepResult>(
        [impl = impl_, s, peer_s, to, timeout](std::shared_ptr<Link> l) {
            return run_switch(l, impl->new_link(), s, peer_s, to, timeout);
        },
        std::move(done));
}

void RedisExecutor::async_confirm_role(const std::optional<conf::Endpoint>& master,
                                       std::chrono::milliseconds within, Done done) {
    auto s = impl_->settings;
    impl_->spawn<StepResult>(
        [s, master, within](std::shared_ptr<Link> l) { return run_confirm(l, s, master, within); },
        std::move(done));
}

void RedisExecutor::async_config_set(std::vector<std::pair<std::string, std::string>> settings,
                                     Done done) {
    auto s = impl_->settings;
    impl_->spawn<StepResult>([s, settings = std::move(settings)](std::shared_ptr<Link> l) {
        return run_config_set(l, s, settings);
    }, std::move(done));
}

void RedisExecutor::async_read_replication(ReadDone done) {
    auto s = impl_->settings;
    impl_->spawn<ReplicationRead>([s](std::shared_ptr<Link> l) { return run_read(l, s); },
                                  std::move(done));
}

void RedisExecutor::stop() {
    impl_->stopped = true;
    for (auto& weak : impl_->links)
        if (auto link = weak.lock()) link->close();
    impl_->links.clear();
}

} // namespace redvip::election
