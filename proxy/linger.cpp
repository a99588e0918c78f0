#include "proxy/linger.hpp"

#include <array>

namespace redvip::proxy {

struct Lingerer::Entry final : IoHandler {
    Entry(Lingerer& owner, Socket s) : owner(owner), socket(std::move(s)), deadline(*socket.loop()) {}

    // Reads and drops until the client closes (or resets), or the budget is
    // spent. The first read does not wait for the readable flag: a session
    // that stopped reading (backpressure) left bytes the kernel will not
    // report again.
    void on_io() override {
        std::array<char, 16 * 1024> sink;
        do {
            const IoResult r = socket.read(sink.data(), sink.size());
            dropped += r.bytes;
            if (r.failed() || dropped > owner.limits_.budget)
                return owner.finish(*this);
        } while (socket.readable());
    }

    Lingerer& owner;
    Socket socket;
    Timer deadline;
    std::size_t dropped = 0;
};

void Lingerer::adopt(Socket socket) {
    if (!socket.is_open())
        return;
    if (entries_.size() >= limits_.most || !socket.shutdown_write())
        return; // (closed here, as before lingering)
    auto entry = std::make_shared<Entry>(*this, std::move(socket));
    Entry& e = *entry;
    entries_.emplace(&e, std::move(entry));
    e.socket.set_handler(&e);
    e.deadline.after(limits_.wait, [this, &e] { finish(e); });
    e.on_io(); // what came before the hand-over
}

void Lingerer::finish(Entry& entry) {
    auto found = entries_.find(&entry);
    if (found == entries_.end())
        return;
    entry.socket.close();
    entry.deadline.cancel();
    loop_.release_later(std::move(found->second)); // on_io() or the timer may be on the stack
    entries_.erase(found);
}

} // namespace redvip::proxy
