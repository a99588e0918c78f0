#include "election/vrrp/socket.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <optional>
#include <sys/socket.h>

namespace redvip::election {

namespace {

// RFC 5798 §5.1.1.1 / RFC 2474: adverts are network control traffic, as
// keepalived marks them (tos 0xc0), so a congested queue drops them last.
constexpr int kTosNetworkControl = 0xc0;
// A readable socket is drained up to this many datagrams per wake-up, so a
// flood on the segment cannot keep the timer's handler from running.
constexpr int kMaxDatagramsPerWakeup = 64;
// The largest IPv4 header (60) plus the largest advert we accept, with room
// to spare so that an oversized datagram still shows its real length.
constexpr std::size_t kReceiveBufferSize = 2048;

std::string errno_sentence(std::string_view what, int error) {
    return fmt::format("{}: {}", what, std::strerror(error));
}

// One setsockopt; an error sentence naming the option when it fails.
template <typename T>
std::string set_option(int fd, int level, int name, const T& value, std::string_view what) {
    if (::setsockopt(fd, level, name, &value, sizeof value) == 0) return {};
    return errno_sentence(fmt::format("setsockopt({})", what), errno);
}

in_addr to_in_addr(const IpAddr& a) {
    in_addr out{};
    std::memcpy(&out, a.bytes.data(), 4);
    return out;
}

in6_addr to_in6_addr(const IpAddr& a) {
    in6_addr out{};
    std::memcpy(&out, a.bytes.data(), 16);
    return out;
}

IpAddr from_sockaddr(const sockaddr_storage& s) {
    IpAddr out;
    if (s.ss_family == AF_INET6) {
        out.family = Family::ipv6;
        std::memcpy(out.bytes.data(), &reinterpret_cast<const sockaddr_in6&>(s).sin6_addr, 16);
    } else {
        std::memcpy(out.bytes.data(), &reinterpret_cast<const sockaddr_in&>(s).sin_addr, 4);
    }
    return out;
}

bool is_link_local_v6(const IpAddr& a) {
    return a.family == Family::ipv6 && a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80;
}

// The IPv4 part of a received datagram: the kernel gives raw IPv4 sockets
// the whole packet, header included. A header that does not fit leaves the
// payload empty, which the codec counts as a packet length error.
void strip_ipv4_header(std::span<const std::uint8_t> packet, Datagram& d) {
    if (packet.size() < sizeof(iphdr) || (packet[0] >> 4) != 4) return;
    const std::size_t ihl = static_cast<std::size_t>(packet[0] & 0x0f) * 4;
    if (ihl < sizeof(iphdr) || ihl > packet.size()) return;
    std::copy_n(packet.begin() + 12, 4, d.source.bytes.begin());
    std::copy_n(packet.begin() + 16, 4, d.destination.bytes.begin());
    d.ttl = packet[8]; // overwritten by IP_TTL's cmsg when present
    d.payload = packet.subspan(ihl);
}

void read_control(msghdr& msg, Datagram& d) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
            int ttl = 0;
            std::memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
            d.ttl = static_cast<std::uint8_t>(ttl);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) {
            int hops = 0;
            std::memcpy(&hops, CMSG_DATA(c), sizeof hops);
            d.ttl = static_cast<std::uint8_t>(hops);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            in6_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(c), sizeof info);
            std::memcpy(d.destination.bytes.data(), &info.ipi6_addr, 16);
        }
    }
}

} // namespace

VrrpSocket::VrrpSocket(boost::asio::any_io_executor executor, SocketConfig config, unsigned ifindex)
    : config_(std::move(config))
    , ifindex_(ifindex)
    , socket_(std::move(executor)) {
    if (config_.unicast_peers.empty())
        destinations_.push_back(config_.source.family == Family::ipv4 ? kMulticastGroupV4
                                                                      : kMulticastGroupV6);
    else
        destinations_ = config_.unicast_peers;
}

std::variant<std::shared_ptr<VrrpSocket>, std::string>
VrrpSocket::open(boost::asio::any_io_executor executor, SocketConfig config) {
    const unsigned ifindex = ::if_nametoindex(config.interface.c_str());
    if (ifindex == 0) return errno_sentence("interface " + config.interface, errno);
    for (const auto& peer : config.unicast_peers)
        if (peer.family != config.source.family)
            return "vrrp.unicast_peers must be of vrrp.unicast_src's family";
    auto socket = std::make_shared<VrrpSocket>(std::move(executor), std::move(config), ifindex);
    if (auto error = socket->configure(); !error.empty()) return error;
    return socket;
}

std::string VrrpSocket::configure() {
    const bool v4 = config_.source.family == Family::ipv4;
    boost::system::error_code ec;
    socket_.open(boost::asio::generic::raw_protocol(v4 ? AF_INET : AF_INET6, kIpProtocolVrrp), ec);
    if (ec) return "raw socket for IP protocol 112: " + ec.message();
    socket_.non_blocking(true, ec);
    if (ec) return "raw socket: non-blocking: " + ec.message();
    const int fd = socket_.native_handle();
    // Only this interface's traffic: adverts are link-local by definition.
    if (::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, config_.interface.c_str(),
                     static_cast<socklen_t>(config_.interface.size())) != 0)
        return errno_sentence("setsockopt(SO_BINDTODEVICE " + config_.interface + ")", errno);
    return v4 ? configure_v4() : configure_v6();
}

std::string VrrpSocket::configure_v4() {
    const int fd = socket_.native_handle();
    const int ttl = kRequiredTtl, off = 0, on = 1;
    ip_mreqn group{};
    group.imr_multiaddr = to_in_addr(kMulticastGroupV4);
    group.imr_ifindex = static_cast<int>(ifindex_);
    // RFC 5798 §5.1.1.3: "The TTL MUST be set to 255"; multicast and unicast.
    for (auto error : {set_option(fd, IPPROTO_IP, IP_MULTICAST_TTL, ttl, "IP_MULTICAST_TTL"),
                       set_option(fd, IPPROTO_IP, IP_TTL, ttl, "IP_TTL"),
                       set_option(fd, IPPROTO_IP, IP_MULTICAST_IF, group, "IP_MULTICAST_IF"),
                       // our own adverts are never a peer's opinion
                       set_option(fd, IPPROTO_IP, IP_MULTICAST_LOOP, off, "IP_MULTICAST_LOOP"),
                       // only the groups joined here, not every group of the host
                       set_option(fd, IPPROTO_IP, IP_MULTICAST_ALL, off, "IP_MULTICAST_ALL"),
                       set_option(fd, IPPROTO_IP, IP_RECVTTL, on, "IP_RECVTTL"),
                       set_option(fd, IPPROTO_IP, IP_TOS, kTosNetworkControl, "IP_TOS")})
        if (!error.empty()) return error;
    if (config_.unicast_peers.empty())
        return set_option(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, group, "IP_ADD_MEMBERSHIP 224.0.0.18");
    return {};
}

std::string VrrpSocket::configure_v6() {
    const int fd = socket_.native_handle();
    const int hops = kRequiredTtl, off = 0, on = 1;
    const int ifindex = static_cast<int>(ifindex_);
    for (auto error :
         {set_option(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, hops, "IPV6_MULTICAST_HOPS"),
          set_option(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, hops, "IPV6_UNICAST_HOPS"),
          set_option(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, ifindex, "IPV6_MULTICAST_IF"),
          set_option(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, off, "IPV6_MULTICAST_LOOP"),
          set_option(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, off, "IPV6_MULTICAST_ALL"),
          set_option(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, on, "IPV6_RECVHOPLIMIT"),
          // the destination is part of the checksum's pseudo-header
          set_option(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, on, "IPV6_RECVPKTINFO"),
          set_option(fd, IPPROTO_IPV6, IPV6_TCLASS, kTosNetworkControl, "IPV6_TCLASS")})
        if (!error.empty()) return error;
    if (!config_.unicast_peers.empty()) return {};
    ipv6_mreq group{};
    group.ipv6mr_multiaddr = to_in6_addr(kMulticastGroupV6);
    group.ipv6mr_interface = ifindex_;
    return set_option(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, group, "IPV6_JOIN_GROUP ff02::12");
}

void VrrpSocket::start(DatagramHandler on_datagram) {
    on_datagram_ = std::move(on_datagram);
    wait_readable();
}

void VrrpSocket::wait_readable() {
    // The handler keeps the socket alive while a wait is queued, so close()
    // followed by the owner's release never leaves it dangling.
    socket_.async_wait(Socket::wait_read,
                       [self = shared_from_this()](boost::system::error_code ec) {
                           if (ec || self->closed_) return; // operation_aborted after close()
                           self->drain();
                           if (!self->closed_) self->wait_readable();
                       });
}

void VrrpSocket::drain() {
    const bool v4 = config_.source.family == Family::ipv4;
    for (int i = 0; i < kMaxDatagramsPerWakeup && !closed_; ++i) {
        std::array<std::uint8_t, kReceiveBufferSize> buffer;
        alignas(cmsghdr) std::array<char, 256> control;
        sockaddr_storage from{};
        iovec iov{buffer.data(), buffer.size()};
        msghdr msg{};
        msg.msg_name = &from;
        msg.msg_namelen = sizeof from;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        const ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT);
        if (n < 0) return; // EAGAIN: drained; anything else: wait again
        const std::span<const std::uint8_t> packet(buffer.data(), static_cast<std::size_t>(n));
        Datagram d;
        d.family = v4 ? Family::ipv4 : Family::ipv6;
        d.source = from_sockaddr(from);
        d.destination.family = d.family;
        if (v4)
            strip_ipv4_header(packet, d);
        else
            d.payload = packet;
        read_control(msg, d);
        on_datagram_(d);
    }
}

SendResult VrrpSocket::send(const Advertisement& advert) {
    SendResult result;
    std::array<std::uint8_t, kMaxPacketSize + kAuthDataSize> message;
    for (const auto& destination : destinations_) {
        const auto encoded = encode(advert, config_.source, destination, message);
        const int error =
            encoded ? send_to(std::span(message).first(encoded.size), destination) : EINVAL;
        if (error == 0) {
            ++result.sent;
        } else {
            ++result.failed;
            result.error = error;
        }
    }
    return result;
}

// sendmsg with the source address in IP_PKTINFO / IPV6_PKTINFO: binding the
// socket to it instead would make the kernel drop every received datagram
// not addressed to it, multicast adverts included.
int VrrpSocket::send_to(std::span<const std::uint8_t> message, const IpAddr& destination) {
    if (closed_) return EBADF;
    sockaddr_storage to{};
    socklen_t to_size = 0;
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(in6_pktinfo))> control{};
    msghdr msg{};
    iovec iov{const_cast<std::uint8_t*>(message.data()), message.size()};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    cmsghdr* c = nullptr;
    if (destination.family == Family::ipv4) {
        auto& sin = reinterpret_cast<sockaddr_in&>(to);
        sin.sin_family = AF_INET;
        sin.sin_addr = to_in_addr(destination);
        to_size = sizeof sin;
        msg.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
        c = CMSG_FIRSTHDR(&msg);
        *c = cmsghdr{CMSG_LEN(sizeof(in_pktinfo)), IPPROTO_IP, IP_PKTINFO};
        in_pktinfo info{};
        info.ipi_ifindex = static_cast<int>(ifindex_);
        info.ipi_spec_dst = to_in_addr(config_.source);
        std::memcpy(CMSG_DATA(c), &info, sizeof info);
    } else {
        auto& sin6 = reinterpret_cast<sockaddr_in6&>(to);
        sin6.sin6_family = AF_INET6;
        sin6.sin6_addr = to_in6_addr(destination);
        sin6.sin6_scope_id = ifindex_; // link-local and multicast need the interface
        to_size = sizeof sin6;
        msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
        c = CMSG_FIRSTHDR(&msg);
        *c = cmsghdr{CMSG_LEN(sizeof(in6_pktinfo)), IPPROTO_IPV6, IPV6_PKTINFO};
        in6_pktinfo info{};
        info.ipi6_ifindex = ifindex_;
        info.ipi6_addr = to_in6_addr(config_.source);
        std::memcpy(CMSG_DATA(c), &info, sizeof info);
    }
    msg.msg_name = &to;
    msg.msg_namelen = to_size;
    if (::sendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT) < 0) return errno;
    return 0;
}

void VrrpSocket::close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored); // cancels the wait: its handler sees operation_aborted
}

std::variant<IpAddr, std::string> interface_primary_address(const std::string& interface,
                                                            Family family,
                                                            const std::vector<IpAddr>& exclude) {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return errno_sentence("getifaddrs", errno);
    std::optional<IpAddr> first, link_local;
    const int af = family == Family::ipv4 ? AF_INET : AF_INET6;
    for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
        if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != af || interface != i->ifa_name)
            continue;
        sockaddr_storage storage{};
        std::memcpy(&storage, i->ifa_addr,
                    af == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
        const IpAddr address = from_sockaddr(storage);
        if (std::find(exclude.begin(), exclude.end(), address) != exclude.end()) continue;
        if (!first) first = address;
        if (!link_local && is_link_local_v6(address)) link_local = address;
    }
    ::freeifaddrs(list);
    if (family == Family::ipv6 && link_local) return *link_local;
    if (first) return *first;
    return fmt::format("interface {} has no {} address to send VRRP adverts from", interface,
                       family == Family::ipv4 ? "IPv4" : "IPv6");
}

} // namespace redvip::election
