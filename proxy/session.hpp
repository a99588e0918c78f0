// One client connection and the backend connection it is bound to.
//
// Two directions, each with one buffer and at most one operation in flight:
//   client -> in_ -> RequestFramer -> backend   (requests, in order)
//   backend -> out_ -> ReplyFramer -> client    (one reply pops one pending)
// Both directions stream: a frame's bytes go on as they arrive, so a 512 MiB
// SET or GET crosses a standard-size buffer (kBufferSize). A request is held
// whole only while the proxy may answer it itself (AUTH, HELLO, anything before
// AUTH or while fenced) or must read its options (XREAD's BLOCK), up to
// kMaxHeldFrame; no byte of a request goes on before its command is classified.
// A direction stops reading while its buffer is full and its write in flight,
// so a slow reader on either side holds the other back (backpressure) instead
// of growing memory. Replies the proxy makes itself (AUTH, QUIT, errors) are
// written only when every earlier reply has been, so the client sees them in
// request order.
//
// Buffers: a busy session keeps its two and reads straight into them
// (async_read_some costs no epoll_ctl; async_wait re-arms epoll every time);
// one idle for kBufferIdle gives them back and waits for readability without
// a buffer, so thousands of idle clients hold none.
//
// Ownership: handlers hold a shared_ptr; stop() closes both sockets, after
// which every handler returns at once and the session is freed with the last.
#pragma once

#include "proxy/buffer.hpp"
#include "proxy/command.hpp"
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
    void client_gone(const error_code& ec);
    void on_client_readable(const error_code& ec);
    void on_client_read(const error_code& ec, std::size_t n);
    void on_client_data(std::size_t n);
    void process_requests();
    bool end_of_frame(const Request& request, std::chrono::steady_clock::time_point now);
    bool dispatch(const Request& request, std::string_view frame, std::chrono::steady_clock::time_point now);
    bool start_partial();
    void pass_on_partial();
    void begin_forward(CommandTraits traits);
    bool answered_locally(CommandTraits traits) const noexcept;
    void protocol_error(const ProtocolError& error);
    bool run_local(const Request& request, std::string_view frame);
    bool run_auth(const std::vector<std::string>& args);
    bool run_hello(std::vector<std::string> args, std::size_t frame_size);
    void forward();
    void bind_backend();
    void fail_unsent(const std::string& error);

    // backend -> client
    void read_backend();
    void on_backend_readable(const error_code& ec);
    void on_backend_read(const error_code& ec, std::size_t n);
    void on_backend_data();
    void frame_replies(std::chrono::steady_clock::time_point now);
    void write_client();
    void after_client_write();
    void backend_lost(const std::string& why);

    // replies made by the proxy
    bool replies_outstanding() const noexcept;
    void resume_if_quiet();
    void emit_local(std::string_view bytes, bool close_after = false);
    void flush_local();
    void release_buffers();

    Worker& w_;
    tcp::socket client_;
    tcp::socket backend_;
    enum class Link : std::uint8_t { none, connecting, bound } link_ = Link::none;
    RequestFramer requests_;
    ReplyFramer replies_;
    Buffer in_;                 // [0, ready_) framed and to forward; then what the framer holds
    std::size_t ready_ = 0;
    std::size_t in_flight_ = 0; // bytes of in_ being written to the backend
    Buffer out_;                // [0, replied_) framed replies to write; then a partial one
    std::size_t replied_ = 0;
    std::size_t out_flight_ = 0;
    std::string local_;         // the proxy's own replies, due after every earlier reply
    std::string local_writing_; // those being written now
    PendingQueue pending_;
    std::chrono::steady_clock::time_point last_activity_;
    std::chrono::steady_clock::time_point backend_progress_; // a byte from Redis, or a reply written
    std::string drop_reply_;    // answers the frame being dropped, once it ends
    bool reading_client_ = false;
    bool reading_backend_ = false;
    bool close_after_local_ = false;
    bool waiting_ = false;      // a proxy-answered command waits for earlier replies
    bool passthrough_ = false;  // replies no longer pair with requests (SUBSCRIBE, MONITOR...)
    bool dirty_ = false;        // state left on the backend connection
    bool authenticated_ = false;
    bool streaming_ = false;    // the current request goes to Redis as it arrives
    bool frame_blocking_ = false; // ...and is a blocking command
    CommandClass frame_class_ = CommandClass::other; // ...of this class
    bool dropping_ = false;     // the current request is consumed unforwarded, then drop_reply_
    bool reply_started_ = false; // part of the current reply is on its way to the client
    bool stopped_ = false;
};

} // namespace redvip::proxy
