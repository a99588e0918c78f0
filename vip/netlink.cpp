#include "vip/netlink.hpp"

// clang-format off
#include <net/if.h>    // before linux/if.h: glibc then keeps the two from clashing
#include <linux/if.h>  // IFF_LOWER_UP, which net/if.h lacks
// clang-format on

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

namespace redvip::vip {
namespace {

template <typename T, void (*Free)(T*)> struct FreeWith {
    void operator()(T* p) const { Free(p); }
};
using MsgPtr = std::unique_ptr<nl_msg, FreeWith<nl_msg, nlmsg_free>>;
using AddrObjPtr = std::unique_ptr<rtnl_addr, FreeWith<rtnl_addr, rtnl_addr_put>>;
using NlAddrPtr = std::unique_ptr<nl_addr, FreeWith<nl_addr, nl_addr_put>>;
using LinkPtr = std::unique_ptr<rtnl_link, FreeWith<rtnl_link, rtnl_link_put>>;
using CachePtr = std::unique_ptr<nl_cache, FreeWith<nl_cache, nl_cache_free>>;
using CbPtr = std::unique_ptr<nl_cb, FreeWith<nl_cb, nl_cb_put>>;

// libnl folds errno into its own codes; for failures that never reached the
// kernel (socket, memory) this recovers the errno a caller can act on.
int nl_to_errno(int nlerr) {
    switch (nlerr < 0 ? -nlerr : nlerr) {
    case NLE_PERM:
        return EPERM;
    case NLE_NOACCESS:
        return EACCES;
    case NLE_NODEV:
    case NLE_OBJ_NOTFOUND:
        return ENODEV;
    case NLE_BUSY:
        return EBUSY;
    case NLE_OPNOTSUPP:
        return EOPNOTSUPP;
    case NLE_AF_NOSUPPORT:
        return EAFNOSUPPORT;
    case NLE_NOMEM:
        return ENOMEM;
    case NLE_EXIST:
        return EEXIST;
    case NLE_NOADDR:
        return EADDRNOTAVAIL;
    case NLE_RANGE:
        return ERANGE;
    case NLE_INVAL:
        return EINVAL;
    default:
        return EIO;
    }
}

Status from_nl(int nlerr, const std::string& what) {
    return {std::error_code(nl_to_errno(nlerr), std::system_category()),
            fmt::format("{}: {}", what, nl_geterror(nlerr))};
}

// The kernel's answer to one request: its errno, or 0 for the ACK. Read
// through our own callbacks because libnl's return value loses the errno
// (EADDRINUSE and EEXIST, for one, become the same NLE_EXIST).
struct AckState {
    int error = 0;
    bool done = false;
};

int on_nlmsgerr(sockaddr_nl*, nlmsgerr* err, void* arg) {
    auto* state = static_cast<AckState*>(arg);
    state->error = -err->error;
    state->done = true;
    return NL_STOP;
}

int on_ack(nl_msg*, void* arg) {
    static_cast<AckState*>(arg)->done = true;
    return NL_STOP;
}

// Sends `msg` and waits for its ACK or error. Returns a Status only for a
// local failure; `kernel_errno` gets the kernel's verdict (0: done).
Status transact(nl_sock* sock, nl_msg* msg, const std::string& what, int& kernel_errno) {
    CbPtr cb(nl_cb_alloc(NL_CB_DEFAULT));
    if (!cb) return Status::from_errno(ENOMEM, what);
    AckState state;
    nl_cb_err(cb.get(), NL_CB_CUSTOM, on_nlmsgerr, &state);
    nl_cb_set(cb.get(), NL_CB_ACK, NL_CB_CUSTOM, on_ack, &state);
    if (const int rc = nl_send_auto(sock, msg); rc < 0) return from_nl(rc, what);
    while (!state.done) {
        const int rc = nl_recvmsgs(sock, cb.get());
        if (rc < 0 && !state.done) return from_nl(rc, what);
    }
    kernel_errno = state.error;
    return Status::success();
}

NlAddrPtr to_nl_addr(const conf::Prefix& prefix) {
    NlAddrPtr out;
    if (prefix.address.is_v4()) {
        const auto bytes = prefix.address.to_v4().to_bytes();
        out.reset(nl_addr_build(AF_INET, bytes.data(), bytes.size()));
    } else {
        const auto bytes = prefix.address.to_v6().to_bytes();
        out.reset(nl_addr_build(AF_INET6, bytes.data(), bytes.size()));
    }
    if (out) nl_addr_set_prefixlen(out.get(), prefix.length);
    return out;
}

std::string ifname_of(int ifindex) {
    char name[IF_NAMESIZE] = {};
    if (if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr)
        return fmt::format("ifindex {}", ifindex);
    return name;
}

// An rtnl_addr naming `prefix` on `ifindex`, the part add and delete share.
AddrObjPtr make_addr(int ifindex, const conf::Prefix& prefix) {
    AddrObjPtr addr(rtnl_addr_alloc());
    NlAddrPtr local = to_nl_addr(prefix);
    if (!addr || !local) return nullptr;
    rtnl_addr_set_ifindex(addr.get(), ifindex);
    rtnl_addr_set_family(addr.get(), prefix.address.is_v4() ? AF_INET : AF_INET6);
    if (rtnl_addr_set_local(addr.get(), local.get()) < 0) // takes its own reference
        return nullptr;
    rtnl_addr_set_prefixlen(addr.get(), prefix.length);
    return addr;
}

} // namespace

std::optional<conf::IpAddress> from_nl_addr(nl_addr* addr) {
    if (addr == nullptr) return std::nullopt;
    const auto* data = static_cast<const std::uint8_t*>(nl_addr_get_binary_addr(addr));
    const unsigned len = nl_addr_get_len(addr);
    if (nl_addr_get_family(addr) == AF_INET && len == 4) {
        boost::asio::ip::address_v4::bytes_type b;
        std::memcpy(b.data(), data, b.size());
        return boost::asio::ip::address_v4(b);
    }
    if (nl_addr_get_family(addr) == AF_INET6 && len == 16) {
        boost::asio::ip::address_v6::bytes_type b;
        std::memcpy(b.data(), data, b.size());
        return boost::asio::ip::address_v6(b);
    }
    return std::nullopt;
}

void NlSockDeleter::operator()(nl_sock* sock) const {
    nl_socket_free(sock);
}

bool LinkInfo::usable() const {
    return (flags & IFF_UP) != 0 && (flags & IFF_RUNNING) != 0;
}

std::string LinkInfo::down_reason() const {
    if ((flags & IFF_UP) == 0) return "administratively down";
    if ((flags & IFF_LOWER_UP) == 0) return "no carrier";
    return (flags & IFF_RUNNING) == 0 ? "not running (operstate)" : "up";
}

Status RouteSocket::connect() {
    if (sock_) return Status::success();
    NlSockPtr sock(nl_socket_alloc());
    if (!sock) return Status::from_errno(ENOMEM, "netlink socket");
    if (const int rc = nl_connect(sock.get(), NETLINK_ROUTE); rc < 0)
        return from_nl(rc, "netlink connect");
    sock_ = std::move(sock);
    return Status::success();
}

Status RouteSocket::link(const std::string& name, LinkInfo& out) {
    if (Status s = connect(); !s.ok()) return s;
    rtnl_link* raw = nullptr;
    if (const int rc = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw); rc < 0)
        return from_nl(rc, fmt::format("interface {}", name));
    const LinkPtr link(raw);
    nl_addr* mac = rtnl_link_get_addr(link.get());
    if (mac == nullptr || nl_addr_get_len(mac) != out.mac.size())
        return Status::from_errno(EOPNOTSUPP,
                                  fmt::format("interface {}: no Ethernet address", name));
    std::memcpy(out.mac.data(), nl_addr_get_binary_addr(mac), out.mac.size());
    out.ifindex = rtnl_link_get_ifindex(link.get());
    out.name = name;
    out.flags = rtnl_link_get_flags(link.get());
    return Status::success();
}

Status RouteSocket::addresses(std::vector<AddressEntry>& out) {
    if (Status s = connect(); !s.ok()) return s;
    nl_cache* raw = nullptr;
    if (const int rc = rtnl_addr_alloc_cache(sock_.get(), &raw); rc < 0)
        return from_nl(rc, "list addresses");
    const CachePtr cache(raw);
    out.clear();
    for (nl_object* obj = nl_cache_get_first(cache.get()); obj != nullptr;
         obj = nl_cache_get_next(obj)) {
        auto* addr = reinterpret_cast<rtnl_addr*>(obj); // libnl's documented downcast
        const auto ip = from_nl_addr(rtnl_addr_get_local(addr));
        if (!ip) continue;
        const char* label = rtnl_addr_get_label(addr);
        const int ifindex = rtnl_addr_get_ifindex(addr);
        out.push_back({ifindex,
                       ifname_of(ifindex),
                       {*ip, static_cast<std::uint8_t>(rtnl_addr_get_prefixlen(addr))},
                       label != nullptr ? label : ""});
    }
    return Status::success();
}

Status RouteSocket::add(const LinkInfo& link, const conf::Prefix& prefix,
                        const std::string& label) {
    const std::string what = fmt::format("add {} on {}", prefix.to_string(), link.name);
    // The kernel lets one address sit on two interfaces; for a VIP that is a
    // split brain on one host (a leftover alias, another service), so refuse.
    std::vector<AddressEntry> all;
    if (Status s = addresses(all); !s.ok()) return s;
    for (const AddressEntry& e : all) {
        if (e.prefix.address == prefix.address && e.ifindex != link.ifindex)
            return {
                std::error_code(EADDRINUSE, std::system_category()),
                fmt::format("{}: {} (already on {})", what, std::strerror(EADDRINUSE), e.ifname)};
    }
    AddrObjPtr addr = make_addr(link.ifindex, prefix);
    if (!addr) return Status::from_errno(ENOMEM, what);
    if (prefix.address.is_v6())
        rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
    else if (!label.empty() && rtnl_addr_set_label(addr.get(), label.c_str()) < 0)
        return Status::from_errno(ERANGE, fmt::format("{}: label {} too long", what, label));
    nl_msg* raw = nullptr;
    if (const int rc = rtnl_addr_build_add_request(addr.get(), 0, &raw); rc < 0)
        return from_nl(rc, what);
    const MsgPtr msg(raw);
    int kernel_errno = 0;
    if (Status s = transact(sock_.get(), msg.get(), what, kernel_errno); !s.ok()) return s;
    if (kernel_errno != 0 && kernel_errno != EEXIST) return Status::from_errno(kernel_errno, what);
    return Status::success();
}

Status RouteSocket::remove(int ifindex, const std::string& ifname, const conf::Prefix& prefix) {
    const std::string what = fmt::format("remove {} from {}", prefix.to_string(), ifname);
    if (Status s = connect(); !s.ok()) return s;
    AddrObjPtr addr = make_addr(ifindex, prefix);
    if (!addr) return Status::from_errno(ENOMEM, what);
    nl_msg* raw = nullptr;
    if (const int rc = rtnl_addr_build_delete_request(addr.get(), 0, &raw); rc < 0)
        return from_nl(rc, what);
    const MsgPtr msg(raw);
    int kernel_errno = 0;
    if (Status s = transact(sock_.get(), msg.get(), what, kernel_errno); !s.ok()) return s;
    if (kernel_errno != 0 && kernel_errno != EADDRNOTAVAIL && kernel_errno != ENODEV)
        return Status::from_errno(kernel_errno, what);
    return Status::success();
}

} // namespace redvip::vip
