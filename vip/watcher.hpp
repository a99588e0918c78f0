// Watches rtnetlink address and link events (the multicast groups
// RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR and RTMGRP_LINK) on a NETLINK_ROUTE
// socket read through an asio posix::stream_descriptor. Decodes with libnl
// and hands plain events to its owner; decides nothing itself.
#pragma once

#include "conf/config.hpp"
#include "vip/netlink.hpp"
#include "vip/vip.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <memory>

struct nl_msg;
struct nl_object;

namespace redvip::vip {

struct AddressEvent {
    bool removed = false; // RTM_DELADDR; else RTM_NEWADDR
    int ifindex = 0;
    conf::Prefix prefix;
};

struct LinkEvent {
    bool removed = false; // RTM_DELLINK; else RTM_NEWLINK
    LinkInfo link;        // ifindex, name and flags (no MAC)
};

struct WatcherHandlers {
    std::function<void(const AddressEvent&)> on_address;
    std::function<void(const LinkEvent&)> on_link;
    // The socket dropped messages (ENOBUFS) or failed: state must be re-read.
    std::function<void()> on_overrun;
};

class Watcher : public std::enable_shared_from_this<Watcher> {
public:
    Watcher(boost::asio::any_io_executor executor, std::shared_ptr<spdlog::logger> log,
            WatcherHandlers handlers);
    Watcher(const Watcher&) = delete;
    Watcher& operator=(const Watcher&) = delete;

    Status start();
    void stop(); // idempotent; handlers are not called afterwards

private:
    void wait();
    void read();
    static int on_message(nl_msg* msg, void* self);
    static void on_object(nl_object* obj, void* self);

    std::shared_ptr<spdlog::logger> log_;
    WatcherHandlers handlers_;
    NlSockPtr sock_;
    boost::asio::posix::stream_descriptor readable_; // a dup of sock_'s fd, for readiness only
    int message_type_ = 0;                           // of the message being parsed
    bool stopped_ = false;
    bool reading_ = false;
};

} // namespace redvip::vip
