// TOML into Config: every key is read through a SectionReader, which checks
// the type and range, remembers where the key was, and finally reports every
// key nobody asked for, so that a typo is an error and never a silent default.
#include "conf/config.hpp"
#include "conf/config_internal.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace redvip::conf {
namespace detail {

Place Diagnostics::place_of(const std::string& key) const {
    auto it = places_.find(key);
    return it == places_.end() ? Place{} : it->second;
}

void Diagnostics::error(Place place, std::string message) {
    errors_.push_back(Error{source_, place.line, place.column, std::move(message)});
}

} // namespace detail

namespace {

using detail::Diagnostics;
using detail::Place;

Place place_of(const toml::source_region& region) {
    return Place{static_cast<int>(region.begin.line), static_cast<int>(region.begin.column)};
}

// The value as the user wrote it, for messages: 300, "eth0", [...].
std::string show(const toml::node& node) {
    std::ostringstream out;
    if (node.is_table())
        return "{...}";
    out << toml::toml_formatter{node, toml::format_flags::none};
    std::string text = out.str();
    if (text.size() > 60)
        text = text.substr(0, 57) + "...";
    return text;
}

std::string_view type_name(const toml::node& node) {
    switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
    }
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string suggest(std::string_view key, const std::vector<std::string_view>& known) {
    for (auto candidate : known)
        if (edit_distance(key, candidate) <= 2)
            return fmt::format("did you mean '{}'?", candidate);
    std::string list;
    for (auto candidate : known)
        list += (list.empty() ? "" : ", ") + std::string(candidate);
    return fmt::format("expected one of: {}", list);
}

// Reads one TOML table: typed getters with ranges, then reject_unknown().
class SectionReader {
public:
    // broken: the section exists but is not a table (already reported), so
    // its keys are not reported missing once more.
    SectionReader(const toml::table* table, std::string path, Place place, Diagnostics& diag,
                  bool broken = false)
        : table_(table), path_(std::move(path)), place_(place), diag_(diag), broken_(broken) {}

    bool present() const { return table_ != nullptr; }

    void string(std::string_view key, std::string& out, bool required = false) {
        if (auto* node = fetch(key, required, toml::node_type::string, "a string"))
            out = node->as_string()->get();
    }

    void boolean(std::string_view key, bool& out) {
        if (auto* node = fetch(key, false, toml::node_type::boolean, "true or false"))
            out = node->as_boolean()->get();
    }

    void integer(std::string_view key, int& out, long long min, long long max,
                 bool required = false) {
        if (auto value = ranged(key, min, max, required))
            out = static_cast<int>(*value);
    }

    void integer(std::string_view key, std::int64_t& out, long long min, long long max) {
        if (auto value = ranged(key, min, max, false))
            out = *value;
    }

    void millis(std::string_view key, milliseconds& out, long long min, long long max) {
        if (auto value = ranged(key, min, max, false))
            out = milliseconds{*value};
    }

    void secs(std::string_view key, std::chrono::seconds& out, long long min, long long max) {
        if (auto value = ranged(key, min, max, false))
            out = std::chrono::seconds{*value};
    }

    template <typename T, typename Parse>
    void parsed(std::string_view key, T& out, Parse parse, std::string_view expected,
                bool required = false) {
        auto* node = fetch(key, required, toml::node_type::string, "a string");
        if (!node)
            return;
        if (auto value = parse(node->as_string()->get()))
            out = *value;
        else
            fail(key, *node, std::string(expected));
    }

    // An array of strings, each parsed; items are remembered as key[i].
    template <typename T, typename Parse>
    void parsed_list(std::string_view key, std::vector<T>& out, Parse parse,
                     std::string_view expected, bool required = false) {
        auto* node = fetch(key, required, toml::node_type::array, "an array of strings");
        if (!node)
            return;
        out.clear();
        std::size_t index = 0;
        for (const auto& item : *node->as_array()) {
            std::string item_key = fmt::format("{}[{}]", key, index++);
            diag_.remember(path_ + "." + item_key, place_of(item.source()));
            if (auto* text = item.as_string()) {
                if (auto value = parse(text->get())) {
                    out.push_back(*value);
                    continue;
                }
            }
            fail(item_key, item, std::string(expected));
        }
    }

    // Every key the table holds that no getter asked for is an error.
    void reject_unknown() {
        if (!table_)
            return;
        for (const auto& [key, node] : *table_) {
            if (std::find(known_.begin(), known_.end(), key.str()) != known_.end())
                continue;
            diag_.error(place_of(key.source()),
                        fmt::format("{}.{}: unknown key, {}", path_, key.str(), suggest(key.str(), known_)));
        }
    }

private:
    const toml::node* fetch(std::string_view key, bool required, toml::node_type type,
                            std::string_view expected) {
        known_.push_back(key);
        const toml::node* node = table_ ? table_->get(key) : nullptr;
        if (!node) {
            if (required && !broken_)
                diag_.error(place_, fmt::format("{}.{}: required key missing", path_, key));
            return nullptr;
        }
        diag_.remember(path_ + "." + std::string(key), place_of(node->source()));
        if (node->type() != type) {
            fail(key, *node, fmt::format("expected {}, not {}", expected, type_name(*node)));
            return nullptr;
        }
        return node;
    }

    std::optional<long long> ranged(std::string_view key, long long min, long long max,
                                    bool required) {
        auto* node = fetch(key, required, toml::node_type::integer, "an integer");
        if (!node)
            return std::nullopt;
        long long value = node->as_integer()->get();
        if (value < min || value > max) {
            fail(key, *node, fmt::format("must be between {} and {}", min, max));
            return std::nullopt;
        }
        return value;
    }

    void fail(std::string_view key, const toml::node& node, const std::string& why) {
        diag_.error(place_of(node.source()), fmt::format("{}.{} = {}: {}", path_, key, show(node), why));
    }

    const toml::table* table_;
    std::string path_;
    Place place_;
    Diagnostics& diag_;
    bool broken_;
    std::vector<std::string_view> known_;
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

constexpr std::string_view kEndpointExpected = "expected \"host:port\" with an IP address, e.g. \"10.77.0.1:6379\" or \"[fd00::1]:6379\"";
constexpr std::string_view kAddressExpected = "expected an IP address, e.g. \"10.77.0.2\"";
constexpr std::string_view kPrefixExpected = "expected \"address/length\", e.g. \"10.77.0.100/24\"";

std::optional<IpAddress> parse_address(std::string_view text) {
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(std::string(text), ec);
    if (ec)
        return std::nullopt;
    return address;
}

std::optional<std::string> parse_level(std::string_view text) {
    static constexpr std::string_view levels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (std::find(std::begin(levels), std::end(levels), text) == std::end(levels))
        return std::nullopt;
    return std::string(text);
}

std::optional<std::string> parse_name(std::string_view text) {
    // Names travel in logs, metrics labels and `switchover --to`: keep them plain.
    if (text.empty() || text.size() > 64)
        return std::nullopt;
    for (char c : text)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
            return std::nullopt;
    return std::string(text);
}

std::optional<std::string> parse_socket_path(std::string_view text) {
    // sockaddr_un.sun_path holds 108 bytes including the terminator.
    if (text.empty() || text.front() != '/' || text.size() > 107)
        return std::nullopt;
    return std::string(text);
}

std::optional<std::string> parse_absolute_path(std::string_view text) {
    if (text.empty() || text.front() != '/')
        return std::nullopt;
    return std::string(text);
}

SectionReader section(const toml::table& root, std::string_view name, Diagnostics& diag) {
    const toml::node* node = root.get(name);
    if (node && !node->is_table()) {
        diag.error(place_of(node->source()), fmt::format("{}: expected a table [{}], not {}", name, name, type_name(*node)));
        return SectionReader(nullptr, std::string(name), place_of(node->source()), diag, true);
    }
    Place place = node ? place_of(node->source()) : Place{1, 1};
    if (node)
        diag.remember(std::string(name), place);
    return SectionReader(node ? node->as_table() : nullptr, std::string(name), place, diag);
}

void read_node(const toml::table& root, Config& c, Diagnostics& diag) {
    auto s = section(root, "node", diag);
    s.parsed(
        "name", c.node.name, parse_name, "expected 1 to 64 letters, digits, '-', '_' or '.'");
    s.parsed("state_dir", c.node.state_dir, parse_absolute_path, "expected an absolute path");
    s.reject_unknown();
}

void read_proxy(const toml::table& root, Config& c, Diagnostics& diag) {
    auto s = section(root, "proxy", diag);
    s.parsed("listen", c.proxy.listen, parse_endpoint, kEndpointExpected, true);
    s.integer("threads", c.proxy.threads, 1, 64);
    s.integer("max_clients", c.proxy.max_clients, 1, 1'000'000);
    s.string("password", c.proxy.password);
    s.millis("idle_timeout_ms", c.proxy.idle_timeout, 0, 7LL * 24 * 3600 * 1000);
    s.millis("backend_timeout_ms", c.proxy.backend_timeout, 0, 3600 * 1000);
    s.millis("hold_timeout_ms", c.proxy.hold_timeout, 1, 3600 * 1000);
    s.secs("tcp_keepalive_s", c.proxy.tcp_keepalive, 0, 7 * 24 * 3600);
    s.boolean("multiplex", c.proxy.multiplex);
    s.reject_unknown();
}

void read_redis(const toml::table& root, Config& c, Diagnostics& diag) {
    auto s = section(root, "redis", diag);
    s.parsed("address", c.redis.address, parse_endpoint, kEndpointExpected, true);
    s.string("password", c.redis.password);
    s.integer("pool_size", c.redis.pool_size, 0, 1024);
    s.integer("shared_links", c.redis.shared_links, 1, 64);
    s.reject_unknown();
}

void read_vrrp(const toml::table& root, Config& c, Diagnostics& diag) {
    auto s = section(root, "vrrp", diag);
    if (!s.present())
        return;
    auto& v = c.vrrp.emplace();
    s.integer("version", v.version, 2, 3);
    s.string("interface", v.interface, true);
    s.integer("virtual_router_id", v.virtual_router_id, 1, 255, true);
    s.integer("priority", v.priority, 1, 254);
    // RFC 5798 5.2.7: 12 bits of centiseconds; RFC 3768 5.3.7: 8 bits of seconds.
    s.millis("advert_interval_ms", v.advert_interval, 10, 255'000);
    s.boolean("preempt", v.preempt);
    s.millis("preempt_delay_ms", v.preempt_delay, 0, 1'000'000);
    s.string("auth_pass", v.auth_pass);
    std::optional<IpAddress> src;
    s.parsed("unicast_src", src, [](std::string_view t) -> std::optional<std::optional<IpAddress>> {
        if (t.empty())
            return std::optional<IpAddress>{};
        if (auto a = parse_address(t))
            return std::optional<IpAddress>{*a};
        return std::nullopt;
    }, kAddressExpected);
    v.unicast_src = src;
    s.parsed_list("unicast_peers", v.unicast_peers, parse_address, kAddressExpected);
    s.reject_unknown();
}

void read_peers(const toml::table& root, Config& c, Diagnostics& diag) {
    const toml::node* node = root.get("peer");
    if (!node)
        return;
    const toml::array* peers = node->as_array();
    if (!peers || !peers->is_array_of_tables()) {
        diag.error(place_of(node->source()), "peer: expected [[peer]] tables");
        return;
    }
    for (std::size_t i = 0; i < peers->size(); ++i) {
        const toml::table* table = (*peers)[i].as_table();
        std::string path = fmt::format("peer[{}]", i);
        Place place = place_of(table->source());
        diag.remember(path, place);
        SectionReader s(table, path, place, diag);
        PeerConfig peer;
        s.parsed("name", peer.name, parse_name, "expected 1 to 64 letters, digits, '-', '_' or '.'");
        s.parsed("vrrp_address", peer.vrrp_address, parse_address, kAddressExpected, true);
        s.parsed("redis", peer.redis, parse_endpoint, kEndpointExpected, true);
        s.reject_unknown();
        if (peer.name.empty())
            peer.name = peer.vrrp_address.to_string();
        c.peers.push_back(std::move(peer));
    }
}

void read_vip(const toml::table& root, Config& c, Diagnostics& diag) {
    auto s = section(root, "vip", diag);
    if (!s.present())
        return;
    auto& v = c.vip.emplace();
    s.string("interface", v.interface);
    s.parsed_list("addresses", v.addresses, parse_prefix, kPrefixExpected, true);
    // IFA_LABEL is IFNAMSIZ (16) bytes with the terminator.
    s.parsed("label", v.label, [](std::string_view t) -> std::optional<std::string> {
        if (t.size() > 15)
            return std::nullopt;
        return std::string(t);
    }, "expected at most 15 characters, e.g. \"eth0:vip\"");
    s.integer("garp_count", v.garp_count, 0, 1000);
    s.millis("garp_interval_ms", v.garp_interval, 0, 60'000);
    s.millis("garp_refresh_ms", v.garp_refresh, 0, 24LL * 3600 * 1000);
    s.reject_unknown();
}

void read_failover(const toml::table& root, Config& c, Diagnostics& diag) {
    auto s = section(root, "failover", diag);
    FailoverConfig& f = c.failover;
    s.integer("catch_up_bytes", f.catch_up_bytes, 0, 1LL << 30);
    s.millis("switchover_timeout_ms", f.switchover_timeout, 100, 60'000);
    // Redis accepts any count; beyond 16 replicas a pair-oriented tool is the wrong tool.
    s.integer("min_replicas", f.min_replicas, 0, 16);
    s.secs("min_replicas_max_lag_s", f.min_replicas_max_lag, 1, 3600);
    s.parsed_list("witnesses", f.witnesses, parse_endpoint, kEndpointExpected);
    s.millis("witness_timeout_ms", f.witness_timeout, 10, 10'000);
    s.millis("witness_interval_ms", f.witness_interval, 10, 60'000);
    s.reject_unknown();
}

std::optional<std::string> parse_command(std::string_view text) {
    // argv strings end at the first NUL: a command cut there would run
    // something other than what the file says.
    if (text.find('\0') != std::string_view::npos)
        return std::nullopt;
    return std::string(text);
}

void read_hooks(const toml::table& root, Config& c, Diagnostics& diag) {
    auto s = section(root, "hooks", diag);
    HooksConfig& h = c.hooks;
    constexpr std::string_view expected = "expected a shell command without NUL bytes, or \"\" for none";
    s.parsed("on_master", h.on_master, parse_command, expected);
    s.parsed("on_backup", h.on_backup, parse_command, expected);
    s.parsed("on_fault", h.on_fault, parse_command, expected);
    s.parsed("on_stop", h.on_stop, parse_command, expected);
    s.millis("timeout_ms", h.timeout, 100, 600'000);
    s.reject_unknown();
}

void read_health(const toml::table& root, Config& c, Diagnostics& diag) {
    auto s = section(root, "health", diag);
    s.millis("interval_ms", c.health.interval, 10, 60'000);
    s.millis("timeout_ms", c.health.timeout, 10, 60'000);
    s.integer("rise", c.health.rise, 1, 100);
    s.integer("fall", c.health.fall, 1, 100);
    s.integer("weight", c.health.weight, -254, 0);
    s.reject_unknown();
}

void read_small_sections(const toml::table& root, Config& c, Diagnostics& diag) {
    auto metrics = section(root, "metrics", diag);
    std::optional<Endpoint> listen = parse_endpoint("127.0.0.1:9121");
    metrics.parsed("listen", listen, [](std::string_view t) -> std::optional<std::optional<Endpoint>> {
        if (t.empty())
            return std::optional<Endpoint>{};
        if (auto e = parse_endpoint(t))
            return std::optional<Endpoint>{*e};
        return std::nullopt;
    }, "expected \"host:port\" with an IP address, or \"\" for no metrics endpoint");
    c.metrics.listen = listen;
    metrics.reject_unknown();

    auto admin = section(root, "admin", diag);
    admin.parsed("socket", c.admin.socket, parse_socket_path, "expected an absolute path of at most 107 bytes");
    admin.reject_unknown();

    auto log = section(root, "log", diag);
    log.parsed("level", c.log.level, parse_level, "expected one of trace, debug, info, warn, error, critical, off");
    log.reject_unknown();
}

void reject_unknown_sections(const toml::table& root, Diagnostics& diag) {
    static const std::vector<std::string_view> known = {"node", "proxy", "redis", "vrrp", "peer", "vip",
                                                        "failover", "hooks", "health", "metrics", "admin",
                                                        "log"};
    for (const auto& [key, node] : root) {
        if (std::find(known.begin(), known.end(), key.str()) == known.end())
            diag.error(place_of(key.source()), fmt::format("{}: unknown section, {}", key.str(), suggest(key.str(), known)));
    }
}

} // namespace

LoadResult load_string(std::string_view text, const std::string& source_name) {
    Diagnostics diag(source_name);
    toml::table root;
    try {
        root = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
        diag.error(place_of(e.source()), fmt::format("not valid TOML: {}", e.description()));
        return LoadResult{std::nullopt, diag.take()};
    }
    if (root.empty()) {
        diag.error(Place{}, "empty configuration: at least [proxy] listen and [redis] address are required");
        return LoadResult{std::nullopt, diag.take()};
    }
    Config config;
    config.source = source_name;
    reject_unknown_sections(root, diag);
    read_node(root, config, diag);
    read_proxy(root, config, diag);
    read_redis(root, config, diag);
    read_vrrp(root, config, diag);
    read_peers(root, config, diag);
    read_vip(root, config, diag);
    read_failover(root, config, diag);
    read_hooks(root, config, diag);
    read_health(root, config, diag);
    read_small_sections(root, config, diag);
    if (diag.empty())
        detail::check_config(config, diag);
    if (!diag.empty())
        return LoadResult{std::nullopt, diag.take()};
    return LoadResult{std::move(config), {}};
}

std::string LoadResult::errors_text() const {
    std::string text;
    for (const auto& error : errors)
        text += error.to_string() + '\n';
    return text;
}

LoadResult load_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        int err = errno;
        return LoadResult{std::nullopt, {Error{path, 0, 0, fmt::format("cannot open: {}", std::strerror(err))}}};
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad())
        return LoadResult{std::nullopt, {Error{path, 0, 0, "cannot read the file"}}};
    return load_string(text.str(), path);
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return std::nullopt;
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        if (host.find(':') == std::string_view::npos)
            return std::nullopt; // brackets are for IPv6 only
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos || text.find(':') != colon)
            return std::nullopt; // IPv6 needs brackets: "[fd00::1]:6379"
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), is_digit))
        return std::nullopt;
    int number = std::stoi(std::string(port));
    auto address = parse_address(host);
    if (!address || number < 1 || number > 65535)
        return std::nullopt;
    return Endpoint{*address, static_cast<std::uint16_t>(number)};
}

std::optional<Prefix> parse_prefix(std::string_view text) {
    auto slash = text.find('/');
    auto address = parse_address(text.substr(0, slash));
    if (!address)
        return std::nullopt;
    int max = address->is_v4() ? 32 : 128;
    int length = max; // a bare address is a host route, as keepalived reads it
    if (slash != std::string_view::npos) {
        auto digits = text.substr(slash + 1);
        if (digits.empty() || digits.size() > 3 || !std::all_of(digits.begin(), digits.end(), is_digit))
            return std::nullopt;
        length = std::stoi(std::string(digits));
    }
    if (length < 1 || length > max)
        return std::nullopt;
    return Prefix{*address, static_cast<std::uint8_t>(length)};
}

} // namespace redvip::conf
