// Test driver for the controller's Redis executor (RedisExecutor), for
// test_redis_role.py: runs one operation against a real redis-server and
// prints one JSON line.
//
//   role_driver --redis 127.0.0.1:PORT [--password P] promote
//   role_driver --redis 127.0.0.1:PORT replicate 127.0.0.1:OTHER
//   role_driver --redis 127.0.0.1:PORT info
//
// Output: {"ok": bool, "error": "...", "refused": bool, "facts": {...} | null,
// "completions": n, "elapsed_ms": n}. "completions" counts how often the
// completion ran (must be 1). Exit code 0 once the io_context ran dry.
#include "election/role/redis_executor.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

using namespace redvip::election;
using nlohmann::json;

namespace {

json facts_json(const std::optional<ReplicationFacts>& f) {
    if (!f) return nullptr;
    return {{"role", redvip::proxy::redis_name(f->role)},
            {"master_host", f->master_host},
            {"master_port", f->master_port},
            {"master_link_status",
             f->master_link_status ? std::string(redvip::proxy::to_string(*f->master_link_status)) : ""},
            {"master_repl_offset", f->master_repl_offset},
            {"connected_slaves", f->connected_slaves}};
}

// Runs one operation to completion; its result, completion count and time.
json run(const redvip::conf::RedisConfig& config, const RedisExecutorTimeouts& t, bool info,
         const std::optional<redvip::conf::Endpoint>& master) {
    boost::asio::io_context io;
    auto log = spdlog::stderr_logger_mt("role");
    RedisExecutor role(io.get_executor(), config, t, log);
    json out = {{"completions", 0}, {"refused", false}, {"facts", nullptr}};
    auto step_done = [&out](const StepResult& r) {
        out["completions"] = out["completions"].get<int>() + 1;
        out["ok"] = r.ok;
        out["error"] = r.error;
    };
    const auto start = std::chrono::steady_clock::now();
    if (info) {
        role.async_read_replication([&out](const ReplicationRead& r) {
            out["completions"] = out["completions"].get<int>() + 1;
            out["ok"] = r.facts.has_value();
            out["error"] = r.error;
            out["refused"] = r.refused;
            out["facts"] = facts_json(r.facts);
        });
    } else if (master) {
        role.async_replicate(*master, step_done);
    } else {
        role.async_promote(step_done);
    }
    io.run();
    out["elapsed_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count();
    return out;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"role_driver: one RedisExecutor operation against a real Redis"};
    std::string redis, password, master;
    RedisExecutorTimeouts t;
    int connect_ms = 500, command_ms = 1000, confirm_ms = 3000;
    app.add_option("--redis", redis)->required();
    app.add_option("--password", password);
    app.add_option("--connect-ms", connect_ms);
    app.add_option("--command-ms", command_ms);
    app.add_option("--confirm-ms", confirm_ms);
    auto* promote = app.add_subcommand("promote");
    auto* replicate = app.add_subcommand("replicate");
    replicate->add_option("master", master)->required();
    auto* info = app.add_subcommand("info");
    app.require_subcommand(1);
    CLI11_PARSE(app, argc, argv);
    (void)promote;

    const auto endpoint = redvip::conf::parse_endpoint(redis);
    const auto master_endpoint = redvip::conf::parse_endpoint(master);
    if (!endpoint || (replicate->parsed() && !master_endpoint)) {
        std::cerr << "bad address\n";
        return 2;
    }
    t.connect = std::chrono::milliseconds{connect_ms};
    t.command = std::chrono::milliseconds{command_ms};
    t.confirm = std::chrono::milliseconds{confirm_ms};
    redvip::conf::RedisConfig config;
    config.address = *endpoint;
    config.password = password;

    const json out =
        run(config, t, info->parsed(), replicate->parsed() ? master_endpoint : std::nullopt);
    std::cout << out.dump() << std::endl;
    return 0;
}
