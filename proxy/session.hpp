// One client connection and the backend link its requests go to (link.hpp).
//
// Two directions, each with one buffer and at most one operation in flight:
//   client -> in_ -> RequestFramer -> link.send()        (requests, in order)
//   link (frames replies, pops pending) -> lend_replies() -> client
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
// Serving states (proxy.hpp): HOLDING frames nothing new, so requests wait in
// in_ (at most kMaxHeldFrame, then the client is not read) until SERVING sends
// them in order or FENCED refuses each; a hold past hold_timeout refuses
// them with kHoldExpired. RELAYING sends them to the peer's Redis instead:
// a session's link is bound to one pool (Worker::current_pool()), and a
// session whose pool is no longer the current one moves to a new link when
// it holds no state there (movable()), or is answered READONLY and closed
// (retired) unless it closes first, once quiet. CLOSING relays as RELAYING
// does, and closes each session once it is quiet (leave_if_quiet()).
//
// Buffers: a session takes its request buffer (and its link its reply
// buffer) only when its socket turns readable, and reads straight into it;
// one idle for kBufferIdle gives them back, so thousands of idle clients hold
// none.
//
// Ownership: a session owns itself from start() to stop(), which hands it to
// the loop's release_later(); the link's operations hold it too (its
// keepalive). Reads and writes happen at once; only what the client socket
// does not take waits for EPOLLOUT (on_io()).
#pragma once

#include "proxy/buffer.hpp"
#include "proxy/command.hpp"
#include "proxy/link.hpp"
#include "proxy/resp_request.hpp"
#include "proxy/worker.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace redvip::proxy {

// The answer to commands held longer than hold_timeout while this node is
// HOLDING: nothing of them ran, and the client may try again (Redis's
// TRYAGAIN, which cluster clients already retry).
inline constexpr std::string_view kHoldExpired =
    "-TRYAGAIN redvip: this node is still changing role, try again\r\n";

// A session to close (CLOSING, or retired) closes right after its next reply
// is written, or once the state has lasted this long (leave_if_quiet()).
inline constexpr std::chrono::milliseconds kClosingPatience{50};

class Session : public std::enable_shared_from_this<Session>, private ReplySink, private IoHandler {
public:
    // `link` is this session's alone (a test's fake); without one, the
    // session takes Worker::new_link() at its first command for Redis, so an
    // idle client holds no link.
    Session(Worker& worker, Socket client, std::shared_ptr<BackendLink> link = nullptr);
    ~Session();

    void start();
    void stop();
    // The worker's serving state changed: held commands may go, or be refused.
    void on_state_change();
    // Called by the worker's sweep: idle and backend timeouts.
    void check_timeouts(std::chrono::steady_clock::time_point now);
    bool shared() const noexcept { return sharing_ == Sharing::shared; }
    // A request sent to the local Redis awaits its reply (when_drained()).
    bool busy() const noexcept;

private:
    enum class Writing : std::uint8_t { none, replies, local };

    // The session's life, in this order (half_closed may be skipped).
    enum class Life : std::uint8_t {
        open,        // the client may send more: it is read (while Intake::open)
        half_closed, // the client sent its last byte: answer what it sent, then close (end_if_done())
        stopped,     // stop() ran: sockets closed, timers cancelled; freed after the loop's turn
    };
    // Whether the client's requests are taken: read (while Life::open) and framed.
    enum class Intake : std::uint8_t {
        open,    // taken
        waiting, // not yet: a command the proxy answers waits for earlier replies (resume_if_quiet())
        closing, // never again: the proxy's last reply is due, then stop() (emit_local(.., true))
    };
    // How the request being framed is handled.
    enum class Frame : std::uint8_t {
        whole,              // held in in_ until framed whole or start_partial() decides (or none begun)
        streaming,          // goes to Redis as it arrives; its reply is expected once it ends
        streaming_blocking, // the same, for a blocking command (exempt from the backend timeout)
        dropping,           // consumed unforwarded as it arrives, then answered with drop_reply_
    };
    // Where the session's requests go ([proxy] multiplex); never back to shared.
    enum class Sharing : std::uint8_t {
        shared, // a share of one of the thread's shared links (shared_link.hpp)
        pinned, // a connection of its own (BoundLink), for the rest of its life
    };
    // Whether replies pair with requests; never back to paired.
    enum class Pairing : std::uint8_t {
        paired,      // each reply answers the oldest pending request
        passthrough, // replies flow unframed (after SUBSCRIBE, MONITOR, CLIENT REPLY OFF...: expect())
        quit_sent,   // passthrough, and QUIT went to Redis: its close is no failure
    };
    bool stopped() const noexcept { return life_ == Life::stopped; }
    bool passthrough() const noexcept { return pairing_ != Pairing::paired; }
    bool streaming() const noexcept {
        return frame_ == Frame::streaming || frame_ == Frame::streaming_blocking;
    }

    void on_io() override;

    // client -> backend
    void read_client();
    void client_gone(const IoResult& result);
    void client_done();
    void end_if_done();
    void on_client_data(std::size_t n);
    void process_requests();
    bool end_of_frame(const Request& request, std::chrono::steady_clock::time_point now);
    bool dispatch(const Request& request, std::string_view frame, std::chrono::steady_clock::time_point now);
    bool start_partial();
    void pass_on_partial();
    void begin_forward(CommandTraits traits);
    CommandTraits traits_of(const Request& request) const noexcept;
    bool answered_locally(CommandTraits traits) const noexcept;
    std::string_view refusal() const noexcept;
    std::string_view count_refusal() noexcept;
    bool holding() const noexcept;
    void bind_link();
    void drop_link();
    bool pin_if_needed(const Request& request, CommandTraits traits, bool blocking);
    bool pin(PinReason why);
    bool movable() const noexcept;
    bool stale() const noexcept;
    enum class Moment : std::uint8_t { any, after_reply };
    void leave_if_quiet(Moment moment);
    std::string redis_name() const;
    void protocol_error(const ProtocolError& error);
    void frame_requests();
    bool forward();
    void sent();

    // the commands the proxy answers itself (session_commands.cpp)
    bool run_local(const Request& request, std::string_view frame);
    bool run_auth(const std::vector<std::string>& args);
    bool run_hello(std::vector<std::string> args, std::size_t frame_size);

    // the link's calls (ReplySink; session_replies.cpp, as is what follows)
    void on_link_ready() override;
    void on_sent() override;
    void on_answered(const PendingRequest& answered, std::chrono::steady_clock::time_point now) override;
    void on_replies(std::chrono::steady_clock::time_point now) override;
    void on_unanswered(const PendingRequest& request, const LinkError& error) override;
    void on_link_failed(const LinkError& error) override;

    // -> client
    void write_client();
    bool write_out(std::string_view bytes, Writing kind);
    void continue_write();
    void replies_delivered();
    void local_written();
    void after_client_write();
    void expect(const PendingRequest& request, CommandTraits traits);
    bool owes_replies() const noexcept;
    bool replies_outstanding() const noexcept;
    void resume_if_quiet();
    void emit_local(std::string_view bytes, bool close_after = false);
    void flush_local();
    void release_buffers();

    Worker& w_;
    std::shared_ptr<Session> self_; // from start() to stop()
    Socket client_;
    Timer soon_;                    // a read past its turn's budget
    Timer later_;                   // a local reply's end, or a write's error: not inside the call
    std::string_view unwritten_;    // what the client socket has not taken yet...
    Writing writing_ = Writing::none; // ...of which write
    std::shared_ptr<BackendLink> link_;
    const BackendPool* link_pool_ = nullptr; // where link_'s connection comes from; null: no link yet
    RequestFramer requests_;
    Buffer in_;                 // [0, ready_) framed and to forward; then what the framer holds
    std::size_t ready_ = 0;
    std::size_t in_flight_ = 0; // bytes of in_ being sent by the link
    std::string local_;         // the proxy's own replies, due after every earlier reply
    std::string local_writing_; // those being written now
    std::chrono::steady_clock::time_point last_activity_;
    std::chrono::steady_clock::time_point backend_progress_; // a byte from Redis, or a reply written
    std::string drop_reply_;    // answers the frame being dropped, once it ends
    Life life_ = Life::open;
    Intake intake_ = Intake::open;
    Frame frame_ = Frame::whole;
    Pairing pairing_ = Pairing::paired;
    Sharing sharing_ = Sharing::pinned;
    CommandClass frame_class_ = CommandClass::other; // a streamed request's class...
    CommandTraits frame_traits_;                     // ...and traits
    bool reading_client_ = false; // read_client()'s loop is on the stack (it goes on)
    bool dirty_ = false;        // state left on the backend connection
    bool served_ = false;       // a command other than connection set-up went to Redis
    bool authenticated_ = false;
};

} // namespace redvip::proxy
