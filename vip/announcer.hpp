// Sends the GARP / unsolicited NA bursts and the periodic refresh through a
// raw AF_PACKET socket: a thin adapter over the pure builders in frames.hpp.
// Timer-driven on the executor (never a sleep); owned through a shared_ptr
// so that a timer handler already queued when the owner goes away finds its
// object alive and, seeing the generation moved on, does nothing.
#pragma once

#include "conf/config.hpp"
#include "vip/netlink.hpp"
#include "vip/vip.hpp"

#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <vector>

namespace redvip::vip {

class Announcer : public std::enable_shared_from_this<Announcer> {
public:
    Announcer(boost::asio::any_io_executor executor, const conf::VipConfig& config,
              std::shared_ptr<spdlog::logger> log, std::shared_ptr<VipCounters> counters);
    ~Announcer();
    Announcer(const Announcer&) = delete;
    Announcer& operator=(const Announcer&) = delete;

    // Announces `vips` from `link`'s MAC: one round now, garp_count - 1 more
    // every garp_interval, then (garp_refresh > 0) one round per refresh
    // until stop(). Replaces whatever was running. Errors: the socket could
    // not be opened (CAP_NET_RAW); a frame the kernel refuses is only
    // counted and logged, as announcements are best effort by nature.
    Status start(const LinkInfo& link, std::vector<conf::Prefix> vips);
    void stop();

private:
    Status open();
    void send_round();
    int send_frame(std::span<const std::uint8_t> frame); // 0 or errno
    void burst_step(std::uint64_t generation, int remaining);
    void schedule_refresh(std::uint64_t generation);

    conf::VipConfig config_;
    std::shared_ptr<spdlog::logger> log_;
    std::shared_ptr<VipCounters> counters_;
    boost::asio::steady_timer burst_timer_;
    boost::asio::steady_timer refresh_timer_;
    int fd_ = -1;
    LinkInfo link_;
    std::vector<conf::Prefix> vips_;
    std::uint64_t generation_ = 0; // bumped by start/stop: stale handlers return
};

} // namespace redvip::vip
