// The virtual IP: add it to the configured interface and announce it (GARP /
// unsolicited NA), remove it, clean up after a crashed run, and watch the
// kernel so that a VIP deleted behind our back is put back and a dead link is
// reported. Knows nothing of the election: the daemon's main adapts the
// election's VIP port onto VipManager.
//
// Threading: every member function and every callback runs on the executor
// given at construction (pass a strand if several threads run the context).
// Completion handlers are called exactly once and never from inside the call
// that started the operation.
#pragma once

#include "conf/config.hpp"
#include "vip/counters.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace spdlog {
class logger;
}

namespace redvip::vip {

// The outcome of an operation: an errno (system_category) or success, and a
// message naming the step, interface and address ("add 10.77.0.100/24 on
// eth0: Address already in use (already on eth1)").
struct Status {
    std::error_code code;
    std::string message;

    bool ok() const { return !code; }
    static Status success() { return {}; }
    static Status from_errno(int err, std::string what); // "what: strerror(err)"
};

using Completion = std::function<void(const Status&)>;

// What the watch reports. Unset members are not called.
struct VipEvents {
    // The interface went down, lost its carrier or disappeared ("no carrier").
    std::function<void(std::string_view reason)> on_link_down;
    // The interface is up with carrier again (after on_link_down).
    std::function<void()> on_link_up;
    // A held VIP was found missing and added back (status ok) or could not be.
    std::function<void(const conf::Prefix&, const Status&)> on_repaired;
};


class VipManager {
public:
    VipManager(boost::asio::any_io_executor executor, conf::VipConfig config,
               std::shared_ptr<spdlog::logger> log, VipEvents events = {});
    // Stops timers and the watch; does NOT remove the VIPs: removal is a step
    // the caller orders (after fencing the proxy, say) and whose error it
    // must see, which a destructor cannot report. Call async_release first.
    ~VipManager();
    VipManager(const VipManager&) = delete;
    VipManager& operator=(const VipManager&) = delete;

    // Adds every configured VIP (an address already there is fine), then
    // starts the garp_count x garp_interval announcement burst and, with
    // garp_refresh > 0, the periodic refresh. Completes once every address is
    // on the interface and the first round of announcements was sent; the
    // rest of the burst follows on timers. On a link that is down it
    // completes without announcing; the watch announces when the link comes
    // up. On error the addresses added so far stay: call async_release.
    void async_acquire(Completion done);

    // Stops announcing and removes every configured VIP from the interface
    // (whatever its prefix length); a VIP that is not there is fine. Also the
    // shutdown path (SIGTERM). Tries every address; reports the first error.
    void async_release(Completion done);

    // At start-up, before anything is held: removes this config's VIPs left
    // on the interface by a crashed run, each logged as stale.
    void async_cleanup_stale(Completion done);

    // Starts watching address and link events (RTMGRP_IPV4_IFADDR,
    // RTMGRP_IPV6_IFADDR, RTMGRP_LINK). Reports the interface's current
    // state through on_link_down when it is already down. Errors: the socket.
    Status start_watch();

    // Cancels timers and the watch; operations not yet run complete with
    // ECANCELED. Idempotent; the destructor calls it.
    void stop();

    bool held() const;
    bool link_up() const;
    const VipCounters& counters() const;

private:
    class Impl;
    std::shared_ptr<Impl> impl_; // shared with in-flight handlers, so they outlive us safely
};

} // namespace redvip::vip
