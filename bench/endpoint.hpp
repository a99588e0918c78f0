#pragma once
// HOST:PORT as given on the command line ("[::1]:6379" for IPv6).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace redvip::bench {

struct Endpoint {
    std::string host;
    std::uint16_t port = 0;
    std::string text() const;
};

std::optional<Endpoint> parse_endpoint(std::string_view text);

} // namespace redvip::bench
