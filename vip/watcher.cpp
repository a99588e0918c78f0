#include "vip/watcher.hpp"

#include <cerrno>
#include <cstring>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/object.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>
#include <spdlog/spdlog.h>
#include <string_view>
#include <unistd.h>

namespace redvip::vip {
namespace {

// A burst of events (an interface flush removes every address at once)
// must not overflow the socket; 1 MiB holds thousands of messages. If it
// overflows anyway, the owner re-reads the state (on_overrun).
constexpr int kReceiveBufferBytes = 1 << 20;

} // namespace

Watcher::Watcher(boost::asio::any_io_executor executor, std::shared_ptr<spdlog::logger> log,
                 WatcherHandlers handlers)
    : log_(std::move(log))
    , handlers_(std::move(handlers))
    , readable_(executor) {}

Status Watcher::start() {
    NlSockPtr sock(nl_socket_alloc());
    if (!sock) return Status::from_errno(ENOMEM, "watch: netlink socket");
    // Notifications carry no sequence number of ours.
    nl_socket_disable_seq_check(sock.get());
    nl_socket_modify_cb(sock.get(), NL_CB_VALID, NL_CB_CUSTOM, &Watcher::on_message, this);
    nl_join_groups(sock.get(), RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR);
    if (const int rc = nl_connect(sock.get(), NETLINK_ROUTE); rc < 0)
        return Status::from_errno(EIO, std::string("watch: netlink connect: ") + nl_geterror(rc));
    nl_socket_set_nonblocking(sock.get());
    nl_socket_set_buffer_size(sock.get(), kReceiveBufferBytes, 0);
    const int fd = ::dup(nl_socket_get_fd(sock.get()));
    if (fd < 0) return Status::from_errno(errno, "watch: dup");
    readable_.assign(fd);
    sock_ = std::move(sock);
    wait();
    return Status::success();
}

void Watcher::stop() {
    stopped_ = true;
    boost::system::error_code ignored;
    readable_.close(ignored);
    // A handler may stop us from inside nl_recvmsgs: free the socket after it returns.
    if (!reading_) sock_.reset();
}

void Watcher::wait() {
    readable_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                         [self = shared_from_this()](boost::system::error_code ec) {
                             if (self->stopped_ || ec == boost::asio::error::operation_aborted)
                                 return;
                             if (ec) {
                                 self->log_->error("vip: watch socket: {}", ec.message());
                                 return;
                             }
                             self->read();
                             self->wait();
                         });
}

void Watcher::read() {
    // One datagram per wake-up; the next async_wait completes at once while
    // more are queued, so a storm of events cannot starve the io_context.
    reading_ = true;
    const int rc = nl_recvmsgs_default(sock_.get());
    reading_ = false;
    if (stopped_) {
        sock_.reset();
        return;
    }
    if (rc >= 0 || rc == -NLE_AGAIN) return;
    log_->warn("vip: netlink events lost ({}); re-reading the interface state", nl_geterror(rc));
    if (handlers_.on_overrun) handlers_.on_overrun();
}

int Watcher::on_message(nl_msg* msg, void* self) {
    auto* watcher = static_cast<Watcher*>(self);
    watcher->message_type_ = nlmsg_hdr(msg)->nlmsg_type;
    nl_msg_parse(msg, &Watcher::on_object, self);
    return NL_OK;
}

void Watcher::on_object(nl_object* obj, void* self) {
    auto* watcher = static_cast<Watcher*>(self);
    if (watcher->stopped_) return;
    const std::string_view type = nl_object_get_type(obj);
    if (type == "route/addr" && watcher->handlers_.on_address) {
        auto* addr = reinterpret_cast<rtnl_addr*>(obj); // libnl's documented downcast
        const auto ip = from_nl_addr(rtnl_addr_get_local(addr));
        if (!ip) return;
        watcher->handlers_.on_address(
            {watcher->message_type_ == RTM_DELADDR,
             rtnl_addr_get_ifindex(addr),
             {*ip, static_cast<std::uint8_t>(rtnl_addr_get_prefixlen(addr))}});
    } else if (type == "route/link" && watcher->handlers_.on_link) {
        auto* link = reinterpret_cast<rtnl_link*>(obj);
        LinkEvent event;
        event.removed = watcher->message_type_ == RTM_DELLINK;
        event.link.ifindex = rtnl_link_get_ifindex(link);
        const char* name = rtnl_link_get_name(link);
        event.link.name = name != nullptr ? name : "";
        event.link.flags = rtnl_link_get_flags(link);
        watcher->handlers_.on_link(event);
    }
}

} // namespace redvip::vip
