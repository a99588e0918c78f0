// One client connection and the backend connection it is bound to.
//
// Two directions, each with one buffer and at most one operation in flight:
//   client -> in_ -> RequestFramer -> backend   (requests, in order)
//   backend -> out_ -> ReplyFramer -> client    (one reply pops one pending)
// A direction stops reading while its write is in flight or its buffer is
// full, so a slow reader on either side holds the other back (backpressure)
// instead of growing memory. Replies the proxy makes itself (AUTH, QUIT,
// errors) are written only when every earlier reply has been, so the client
// sees them in request order.
//
// Ownership: handlers hold a shared_ptr; stop() closes both sockets, after
// which every handler returns at once and the session is freed with the last.
#pragma once

#include "proxy/buffer.hpp"
#include "proxy/pending.hpp"
#include "proxy/resp.hpp"
#include "proxy/worker.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace redvip::proxy {

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(Worker& worker, tcp::socket client);
    ~Session();

    void start();
    void stop();
    // The worker's serving state changed: held commands may go, or be refused.
    void on_state_change();
    // Called by the worker's sweep: idle and backend timeouts.
    void check_timeouts(std::chrono::steady_clock::time_point now);

private:
    using error_code = boost::system::error_code;

    std::size_t read_ready(tcp::socket& socket, Buffer& buffer, error_code& ec);

    // client -> backend
    void read_client();
    void on_client_readable(const error_code& ec);
    void process_requests();
    bool dispatch(const Request& request, std::string_view frame, std::chrono::steady_clock::time_point now);
    bool run_local(const Request& request, std::string_view frame);
    bool run_auth(const std::vector<std::string>& args);
    bool run_hello(std::vector<std::string> args, std::size_t frame_size);
    void forward();
    void bind_backend();
    void fail_unsent(const std::string& error);

    // backend -> client
    void read_backend();
    void on_backend_readable(const error_code& ec);
    void write_client();
    void after_client_write();
    void backend_lost(const std::string& why);

    // replies made by the proxy
    bool replies_outstanding() const noexcept;
    void emit_local(std::string_view bytes, bool close_after = false);
    void flush_local();
    void go_idle_if_quiet();

    Worker& w_;
    tcp::socket client_;
    tcp::socket backend_;
    enum class Link : std::uint8_t { none, connecting, bound } link_ = Link::none;
    RequestFramer requests_;
    ReplyFramer replies_;
    Buffer in_;                 // [0, ready_) framed and to forward; then a partial frame
    std::size_t ready_ = 0;
    std::size_t in_flight_ = 0; // bytes of in_ being written to the backend
    Buffer out_;                // [0, replied_) framed replies to write; then a partial one
    std::size_t replied_ = 0;
    std::size_t out_flight_ = 0;
    std::string local_;         // the proxy's own replies, due after every earlier reply
    std::string local_writing_; // those being written now
    PendingQueue pending_;
    std::chrono::steady_clock::time_point last_activity_;
    bool reading_client_ = false;
    bool reading_backend_ = false;
    bool close_after_local_ = false;
    bool waiting_ = false;      // a proxy-answered command waits for earlier replies
    bool passthrough_ = false;  // replies no longer pair with requests (SUBSCRIBE, MONITOR...)
    bool dirty_ = false;        // state left on the backend connection
    bool authenticated_ = false;
    bool stopped_ = false;
};

} // namespace redvip::proxy
