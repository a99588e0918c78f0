#include "vip/announcer.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

namespace redvip::vip {

Announcer::Announcer(boost::asio::any_io_executor executor, const conf::VipConfig& config,
                     std::shared_ptr<spdlog::logger> log, std::shared_ptr<VipCounters> counters)
    : config_(config)
    , log_(std::move(log))
    , counters_(std::move(counters))
    , burst_timer_(executor)
    , refresh_timer_(executor) {}

Announcer::~Announcer() {
    if (fd_ >= 0) ::close(fd_);
}

Status Announcer::open() {
    if (fd_ >= 0) return Status::success();
    // Protocol 0: a send-only packet socket, so the kernel never queues the
    // interface's traffic to us. Non-blocking: a full queue drops one
    // announcement, it must never stall the io_context.
    fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return Status::from_errno(errno, "announce: AF_PACKET socket");
    return Status::success();
}

Status Announcer::start(const LinkInfo& link, std::vector<conf::Prefix> vips) {
    stop();
    if (Status s = open(); !s.ok()) return s;
    link_ = link;
    vips_ = std::move(vips);
    burst_step(generation_, config_.garp_count);
    if (config_.garp_refresh.count() > 0) schedule_refresh(generation_);
    return Status::success();
}

void Announcer::stop() {
    ++generation_;
    burst_timer_.cancel();
    refresh_timer_.cancel();
}

void Announcer::burst_step(std::uint64_t generation, int remaining) {
    if (remaining <= 0) return;
    send_round();
    if (remaining == 1) return;
    burst_timer_.expires_after(config_.garp_interval);
    burst_timer_.async_wait(
        [self = shared_from_this(), generation, remaining](boost::system::error_code ec) {
            if (!ec && generation == self->generation_) self->burst_step(generation, remaining - 1);
        });
}

void Announcer::schedule_refresh(std::uint64_t generation) {
    refresh_timer_.expires_after(config_.garp_refresh);
    refresh_timer_.async_wait(
        [self = shared_from_this(), generation](boost::system::error_code ec) {
            if (ec || generation != self->generation_) return;
            self->send_round();
            self->schedule_refresh(generation);
        });
}

void Announcer::send_round() {
    int failed = 0;
    int last_error = 0;
    for (const conf::Prefix& vip : vips_) {
        const bool v4 = vip.address.is_v4();
        const int err = v4 ? send_frame(build_garp(link_.mac, vip.address.to_v4()))
                           : send_frame(build_unsolicited_na(link_.mac, vip.address.to_v6()));
        if (err != 0) {
            ++failed;
            last_error = err;
            ++counters_->announce_errors;
        } else {
            ++(v4 ? counters_->garp_sent : counters_->na_sent);
        }
    }
    // One line per round, not per frame: a dead link must not flood the log.
    if (failed > 0)
        log_->warn("vip: {} of {} announcements on {} failed: {}", failed, vips_.size(), link_.name,
                   std::strerror(last_error));
    else
        log_->debug("vip: announced {} address(es) on {}", vips_.size(), link_.name);
}

int Announcer::send_frame(std::span<const std::uint8_t> frame) {
    // Ethertype is at bytes 12..13 of the frame; SOCK_RAW sends the frame as
    // is, the address only picks the interface.
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = link_.ifindex;
    to.sll_protocol = htons(static_cast<std::uint16_t>(frame[12] << 8 | frame[13]));
    to.sll_halen = ETH_ALEN;
    std::memcpy(to.sll_addr, frame.data(), ETH_ALEN);
    const ssize_t n = ::sendto(fd_, frame.data(), frame.size(), 0,
                               reinterpret_cast<const sockaddr*>(&to), sizeof to);
    if (n < 0) return errno;
    return n == static_cast<ssize_t>(frame.size()) ? 0 : EMSGSIZE;
}

} // namespace redvip::vip
