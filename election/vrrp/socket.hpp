// The election's network adapter: a raw IP socket for protocol 112 that hands
// every received datagram to the codec as a plain Datagram (IPv4 header
// stripped, TTL or hop limit from the control message) and sends adverts
// encoded by the codec. Thin and dumb on purpose: it decides nothing about
// what it receives; the runner (election.hpp) decodes, checks and counts.
//
// Checksums are the codec's for both families: IPV6_CHECKSUM is NOT set, so
// that the kernel neither drops bad IPv6 checksums silently (they are counted
// like IPv4's, docs/style.md, practice 5) nor rewrites the field we computed.
#pragma once

#include "election/vrrp/packet.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/basic_raw_socket.hpp>
#include <boost/asio/generic/raw_protocol.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility> // Asio 1.18's headers need it first under g++ 12
#include <variant>
#include <vector>

namespace redvip::election {

struct SendResult {
    std::size_t sent = 0;   // destinations the kernel accepted
    std::size_t failed = 0; // destinations it refused (or the codec could not encode for)
    int error = 0;          // errno of the last refusal, 0 if none (EINVAL: encode error)
};

// What the runner needs from the network. Two implementations: VrrpSocket and
// the unit tests' FakeTransport (docs/style.md, practice 9).
class VrrpTransport {
public:
    // Called once per received datagram, on the executor, until close(); the
    // payload's bytes are only valid during the call.
    using DatagramHandler = std::function<void(const Datagram&)>;

    virtual ~VrrpTransport() = default;
    virtual void start(DatagramHandler on_datagram) = 0;
    // Encodes `advert` for every destination (the group, or each unicast
    // peer: the v3 checksum covers the destination) and sends it at once.
    virtual SendResult send(const Advertisement& advert) = 0;
    // Stops receiving; the handler is not called again. Idempotent.
    virtual void close() = 0;
};

struct SocketConfig {
    std::string interface;             // SO_BINDTODEVICE and the multicast interface
    IpAddr source;                     // our adverts' source: primary address or unicast_src
    std::vector<IpAddr> unicast_peers; // empty: multicast to 224.0.0.18 / ff02::12
};

class VrrpSocket final : public VrrpTransport, public std::enable_shared_from_this<VrrpSocket> {
public:
    // Opens and configures the socket; an error sentence (with the failing
    // call and strerror) when it cannot, e.g. without CAP_NET_RAW.
    static std::variant<std::shared_ptr<VrrpSocket>, std::string>
    open(boost::asio::any_io_executor executor, SocketConfig config);

    void start(DatagramHandler on_datagram) override;
    SendResult send(const Advertisement& advert) override;
    void close() override;

    VrrpSocket(boost::asio::any_io_executor executor, SocketConfig config, unsigned ifindex);

private:
    using Socket = boost::asio::basic_raw_socket<boost::asio::generic::raw_protocol>;

    std::string configure();
    std::string configure_v4();
    std::string configure_v6();
    void wait_readable();
    void drain();
    int send_to(std::span<const std::uint8_t> message, const IpAddr& destination);

    SocketConfig config_;
    unsigned ifindex_;
    std::vector<IpAddr> destinations_;
    Socket socket_;
    DatagramHandler on_datagram_;
    bool closed_ = false;
};

// The address our adverts come from when vrrp.unicast_src is not set: the
// interface's first IPv4 address, or for IPv6 its first link-local address
// (RFC 5798 §5.1.2.1: "the IPv6 link-local address of the interface"), never
// one of `exclude` (the VIPs: a master may already hold them). Error sentence
// when the interface has none.
std::variant<IpAddr, std::string> interface_primary_address(const std::string& interface,
                                                            Family family,
                                                            const std::vector<IpAddr>& exclude);

} // namespace redvip::election
