// The dedicated backend connection of one session (link.hpp's contract): taken
// from the pool at the session's first command and kept for its life, so
// every Redis feature behaves as with a direct connection.
//
// Replies are read straight into a pooled buffer, taken when the socket
// turns readable, and framed there; whole replies and the streamed head of an
// unfinished one are lent to the session, which writes them to its client
// from this buffer. A full buffer waits for that write (backpressure on a
// client that does not read). Idle, the buffer goes back to the pool.
#pragma once

#include "proxy/backend.hpp"
#include "proxy/buffer.hpp"
#include "proxy/link.hpp"
#include "proxy/resp_reply.hpp"

#include <memory>
#include <string>

namespace redvip::proxy {

class BoundLink final : public BackendLink, private IoHandler {
public:
    // `shared`, when given, is `pool` held for the link's life (a relay's pool).
    // `wait`: how long connect() keeps trying a Redis it cannot reach.
    BoundLink(EventLoop& loop, BackendPool& pool, BufferPool& buffers, std::chrono::milliseconds wait,
              std::shared_ptr<BackendPool> shared = nullptr);
    ~BoundLink() override;

    void attach(ReplySink& sink, std::weak_ptr<void> keepalive) override;
    void detach() noexcept override;

    bool connected() const noexcept override { return state_ == State::bound; }
    bool connecting() const noexcept override { return state_ == State::connecting; }
    void connect() override;
    void expect(const PendingRequest& request) override { pending_.push(request); }
    bool send(std::string_view bytes) override;
    void unpaired() override { passthrough_ = true; }
    const PendingQueue& pending() const noexcept override { return pending_; }

    std::string_view lend_replies() override;
    void replies_written() override;
    bool replies_lent() const noexcept override { return lent_ > 0; }
    bool replies_ready() const noexcept override { return replied_ > lent_; }
    bool holds_replies() const noexcept override { return out_.size() > 0; }

    bool holds_buffer() const noexcept override { return out_.allocated(); }
    void release_buffer() override;
    void release(bool clean) override;
    void abort(std::string_view why) override { fail(LinkFailure::timed_out, std::string(why)); }
    void stop_waiting(std::string_view why) override {
        if (state_ != State::connecting)
            return;
        retry_.cancel();
        fail(LinkFailure::unreachable, std::string(why));
    }

private:
    enum class State : std::uint8_t { none, connecting, bound };

    void on_io() override;
    void attempt();
    void read();
    void on_data();
    void frame_replies(std::chrono::steady_clock::time_point now);
    void fail(LinkFailure kind, const std::string& why);
    bool live() const noexcept { return sink_ != nullptr && state_ == State::bound; }

    BackendPool& pool_;
    std::shared_ptr<BackendPool> shared_pool_;
    BufferPool& buffers_;
    ReplySink* sink_ = nullptr;
    std::weak_ptr<void> keepalive_;
    Socket socket_;
    Timer soon_;                 // a read past its turn's budget
    Timer failing_;              // a send's error: reported from the loop, not inside send()
    Timer retry_;                // the next connection attempt while Redis cannot be reached
    std::chrono::milliseconds wait_;
    std::chrono::steady_clock::time_point give_up_{}; // of connect(): then it fails
    std::chrono::milliseconds retry_delay_{};
    std::string_view unsent_;    // of the last send(), what the socket has not taken
    State state_ = State::none;
    ReplyFramer replies_;
    PendingQueue pending_;
    Buffer out_;                 // [0, replied_) framed replies; then a partial one
    std::size_t replied_ = 0;
    std::size_t lent_ = 0;       // of those, being written to the client
    bool reading_ = false;       // read()'s loop is on the stack
    bool passthrough_ = false;   // replies no longer pair with requests
    bool reply_started_ = false; // part of the current reply is lent or written
};

} // namespace redvip::proxy
