// The admin socket: a unix stream socket at [admin] socket (mode 0600)
// speaking one JSON request per line and one JSON reply per line, e.g.
//   -> {"cmd":"status"}
//   <- {"vrrp_state":"MASTER", ...}
// A failed request is answered {"error":"..."}. The daemon registers one
// handler per command (status, switchover, promote: node/commands.hpp);
// `redvip status`, `redvip switchover` and `redvip promote` are the clients.
// The status itself is node/status.hpp.
#pragma once

#include "conf/command_line.hpp"
#include "conf/config.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility> // Boost 1.74's Asio uses std::exchange without including it

namespace spdlog {
class logger;
}

namespace redvip::election {

// ---- server ---------------------------------------------------------------------

class AdminServer {
public:
    // A request may be at most this long: status and switchover requests are
    // tens of bytes, and a line is buffered whole before parsing.
    static constexpr std::size_t kMaxRequest = 64 * 1024;
    // Connections at once: one operator or a monitoring script, rarely more.
    static constexpr std::size_t kMaxConnections = 16;
    // A connection with no request for this long is closed.
    static constexpr std::chrono::seconds kIdleTimeout{30};

    using Reply = std::function<void(nlohmann::json reply)>;
    // Called on the server's executor; calls `reply` once (later calls are
    // ignored), from that executor, now or later. Dropping `reply` uncalled
    // closes the connection (the client sees it closed, not a hang).
    using Handler = std::function<void(const nlohmann::json& request, Reply reply)>;

    AdminServer(boost::asio::any_io_executor executor, std::string path,
                std::shared_ptr<spdlog::logger> log);
    ~AdminServer(); // stop()
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    // Register before start().
    void handle(const std::string& cmd, Handler handler);

    // Creates the socket's directory if missing (0750), refuses to start when
    // a live daemon answers on the path (or the path is not a socket),
    // replaces a stale socket file, binds with mode 0600 and listens. An
    // error sentence, or empty on success.
    std::string start();
    // Closes the listener and every connection; removes the socket file if it
    // is still the one we bound. Idempotent.
    void stop();

    const std::string& path() const;

private:
    class Impl;
    std::shared_ptr<Impl> impl_;
};

// ---- client ---------------------------------------------------------------------

struct AdminResult {
    std::optional<nlohmann::json> reply;
    std::string error; // "redvip is not running: no socket at /run/redvip/redvip.sock", ...
};

// Connects, sends `request` as one line and reads one line back, all within
// `timeout`. Blocking: for the `redvip status` command line.
AdminResult admin_request(const std::string& path, const nlohmann::json& request,
                          std::chrono::milliseconds timeout);

// `redvip status`: asks the daemon on `socket_path`, prints the reply as JSON
// or as a table to `out`, errors to `err`. Exit code: 0, or 1 on any error.
int status_command(const std::string& socket_path, bool as_json, std::ostream& out,
                   std::ostream& err,
                   std::chrono::milliseconds timeout = std::chrono::milliseconds{2000});

// `redvip switchover [--to NODE]`: asks the daemon (the current master) to
// hand the master role over, waits for the answer, prints its sentence.
// Exit code: 0 when the peer holds the role, 1 otherwise.
int switchover_command(const std::string& socket_path, const std::string& to, std::ostream& out,
                       std::ostream& err, std::chrono::milliseconds timeout);

// `redvip promote --force`: 0 when the daemon forgot what dead peers held.
int promote_command(const std::string& socket_path, bool force, std::ostream& out,
                    std::ostream& err);

// The command line's status, switchover or promote, against the daemon of
// `config`; a switchover waits [failover] switchover_timeout plus 5 s (the
// election's hand-over: a few adverts). Exit code as above.
int admin_command(const conf::CommandLine& command, const conf::Config& config, std::ostream& out,
                  std::ostream& err);

} // namespace redvip::election
