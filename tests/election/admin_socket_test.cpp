// The admin socket with real unix sockets in a temporary directory: round
// trip, mode 0600, directory creation, a stale socket replaced, a live
// daemon or a non-socket refused, the client's errors, the status command.
#include "election/node/admin.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <future>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

using namespace redvip::election;
using nlohmann::json;
namespace fs = std::filesystem;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<spdlog::logger> quiet() {
    return std::make_shared<spdlog::logger>("admin",
                                            std::make_shared<spdlog::sinks::null_sink_mt>());
}

struct TempDir {
    fs::path path;
    TempDir() {
        char pattern[] = "/tmp/redvip-admin-XXXXXX";
        path = ::mkdtemp(pattern);
    }
    ~TempDir() { fs::remove_all(path); }
};

// An AdminServer on its own io_context thread; the test talks to it as a client.
struct Daemon {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    AdminServer server;
    std::thread thread;

    explicit Daemon(const std::string& path) : server(io.get_executor(), path, quiet()) {
        server.handle("status", [](const json&, AdminServer::Reply reply) {
            reply({{"vrrp_state", "BACKUP"}, {"priority", 100}, {"proxy_state", "FENCED"}});
        });
        // Answers later from the executor, as a real switchover would.
        server.handle("slow", [this](const json& request, AdminServer::Reply reply) {
            asio::post(io, [request, reply] {
                reply({{"echo", request}});
                reply({{"second", "ignored"}});
            });
        });
    }
    std::string start() {
        return on_thread([this] { return server.start(); });
    }
    void run() {
        thread = std::thread([this] { io.run(); });
    }
    ~Daemon() {
        if (thread.joinable()) {
            on_thread([this] {
                server.stop();
                return std::string{};
            });
            work.reset();
            thread.join();
        }
    }
    // Runs f on the io thread once it runs, or here before it does.
    std::string on_thread(std::function<std::string()> f) {
        if (!thread.joinable()) return f();
        std::promise<std::string> done;
        asio::post(io, [&] { done.set_value(f()); });
        return done.get_future().get();
    }
};

// A bound unix socket nobody listens on or accepts from: a crashed run's file.
void make_stale_socket(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd); // the file stays, nothing answers: ECONNREFUSED
}

} // namespace

TEST_CASE("a request and its reply, one line each, several on one connection") {
    TempDir dir;
    const auto path = (dir.path / "run" / "redvip.sock").string(); // "run" does not exist yet
    Daemon d(path);
    REQUIRE(d.start() == "");
    d.run();

    const auto r = admin_request(path, {{"cmd", "status"}}, 2s);
    REQUIRE(r.reply);
    CHECK((*r.reply)["vrrp_state"] == "BACKUP");

    const auto slow = admin_request(path, {{"cmd", "slow"}, {"n", 1}}, 2s);
    REQUIRE(slow.reply);
    CHECK((*slow.reply)["echo"]["n"] == 1);

    const auto unknown = admin_request(path, {{"cmd", "frobnicate"}}, 2s);
    REQUIRE(unknown.reply);
    CHECK((*unknown.reply)["error"] == "unknown command \"frobnicate\" (known: slow, status)");
    const auto no_cmd = admin_request(path, {{"command", "status"}}, 2s);
    CHECK((*no_cmd.reply)["error"] == "the request has no \"cmd\" string");
}

TEST_CASE("the socket is 0600 and its new directory 0750; stop removes the socket") {
    TempDir dir;
    const auto path = (dir.path / "run" / "redvip.sock").string();
    {
        Daemon d(path);
        REQUIRE(d.start() == "");
        struct stat st {};
        REQUIRE(::lstat(path.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 07777) == 0600);
        REQUIRE(::stat((dir.path / "run").c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == 0750);
        d.run();
    }
    CHECK_FALSE(fs::exists(path));
    CHECK(fs::is_empty(dir.path / "run")); // no temporary name left behind
}

TEST_CASE("a stale socket from a crashed run is replaced") {
    TempDir dir;
    const auto path = (dir.path / "redvip.sock").string();
    make_stale_socket(path);
    CHECK(admin_request(path, {{"cmd", "status"}}, 1s).error ==
          "redvip is not running: nothing answers on " + path + " (a stale socket)");
    Daemon d(path);
    REQUIRE(d.start() == "");
    d.run();
    CHECK(admin_request(path, {{"cmd", "status"}}, 2s).reply);
}

TEST_CASE("a second daemon refuses to start while the first answers") {
    TempDir dir;
    const auto path = (dir.path / "redvip.sock").string();
    Daemon first(path);
    REQUIRE(first.start() == "");
    first.run();
    Daemon second(path);
    CHECK(second.start() == "another redvip is running: " + path + " answers (stop it first)");
    CHECK(admin_request(path, {{"cmd", "status"}}, 2s).reply); // the first still serves
}

TEST_CASE("a file that is not a socket is never replaced") {
    TempDir dir;
    const auto path = (dir.path / "redvip.sock").string();
    std::ofstream(path) << "precious";
    Daemon d(path);
    CHECK(d.start() == path + " exists and is not a socket: refusing to replace it");
    CHECK(fs::file_size(path) == 8);
}

TEST_CASE("the client when no daemon runs, and when it does not answer") {
    TempDir dir;
    const auto path = (dir.path / "redvip.sock").string();
    CHECK(admin_request(path, {{"cmd", "status"}}, 1s).error ==
          "redvip is not running: no socket at " + path);

    // Listening but never answering: the timeout, not a hang.
    std::vector<AdminServer::Reply> held; // kept uncalled (touched on the io thread only)
    Daemon d(path);
    d.server.handle("status", [&held](const json&, AdminServer::Reply r) { held.push_back(r); });
    d.server.handle("drop", [](const json&, AdminServer::Reply) {}); // dropped: closes
    REQUIRE(d.start() == "");
    d.run();
    const auto start = std::chrono::steady_clock::now();
    CHECK(admin_request(path, {{"cmd", "status"}}, 200ms).error ==
          "no reply from redvip on " + path + " within 200 ms");
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    CHECK(admin_request(path, {{"cmd", "drop"}}, 2s).error ==
          "redvip closed the connection without a reply");
    d.on_thread([&held] {
        held.clear();
        return std::string{};
    });
}

TEST_CASE("redvip status: JSON, table, and a clear error with exit code 1") {
    TempDir dir;
    const auto path = (dir.path / "redvip.sock").string();
    std::ostringstream out, err;
    CHECK(status_command(path, false, out, err) == 1);
    CHECK(err.str() == "redvip status: redvip is not running: no socket at " + path + "\n");

    Daemon d(path);
    REQUIRE(d.start() == "");
    d.run();
    std::ostringstream json_out, table_out;
    CHECK(status_command(path, true, json_out, err) == 0);
    CHECK(json::parse(json_out.str())["proxy_state"] == "FENCED");
    CHECK(status_command(path, false, table_out, err) == 0);
    CHECK(table_out.str().find("proxy               FENCED") != std::string::npos);
}
