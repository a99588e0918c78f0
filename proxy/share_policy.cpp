#include "proxy/share_policy.hpp"

#include <algorithm>

namespace redvip::proxy {

namespace {

bool is_flag_that_pins(std::string_view flag) noexcept {
    return flag == "blocking" || flag == "allow_busy" || flag == "no_multi" || flag == "module";
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    return out;
}

// What the server's table may lack or a fallback must still pin: commands
// that must reach a server busy with a script (the table says allow_busy).
bool busy_server_command(std::string_view name, std::string_view subcommand) noexcept {
    return name == "SHUTDOWN" || ((name == "SCRIPT" || name == "FUNCTION") && subcommand == "KILL");
}

// One row of COMMAND's reply: name, arity, flags, ...; subcommands at 9 (7.0+).
// Returns false on a shape that is not a command row.
bool add_row(const Value& row, std::vector<std::pair<std::string, std::string>>& flagged,
             std::size_t& commands) {
    if (row.kind != ValueKind::array || row.elements.size() < 3 || row.elements[0].kind != ValueKind::bulk ||
        row.elements[2].kind != ValueKind::array)
        return false;
    ++commands;
    const std::string name = upper(row.elements[0].text); // "client|kill" for a subcommand
    const bool pins = std::any_of(row.elements[2].elements.begin(), row.elements[2].elements.end(),
                                  [](const Value& flag) { return is_flag_that_pins(flag.text); });
    if (pins) {
        const std::size_t bar = name.find('|');
        if (bar == std::string::npos)
            flagged.emplace_back(name, std::string());
        else
            flagged.emplace_back(name.substr(0, bar), name.substr(bar + 1));
    }
    if (row.elements.size() > 9 && row.elements[9].kind == ValueKind::array)
        for (const Value& sub : row.elements[9].elements)
            if (!add_row(sub, flagged, commands))
                return false;
    return true;
}

} // namespace

std::string_view to_string(PinReason reason) noexcept {
    switch (reason) {
    case PinReason::none: return "none";
    case PinReason::connection_state: return "connection_state";
    case PinReason::transaction: return "transaction";
    case PinReason::blocking: return "blocking";
    case PinReason::subscribe: return "subscribe";
    case PinReason::server_flag: return "server_flag";
    case PinReason::large_request: return "large_request";
    case PinReason::slow_reader: return "slow_reader";
    case PinReason::large_reply: return "large_reply";
    }
    return "none";
}

std::optional<SharePolicy> SharePolicy::from_command_table(const Value& reply) {
    if (reply.kind != ValueKind::array || reply.elements.empty())
        return std::nullopt;
    SharePolicy policy;
    for (const Value& row : reply.elements)
        if (!add_row(row, policy.flagged_, policy.commands_))
            return std::nullopt;
    std::sort(policy.flagged_.begin(), policy.flagged_.end());
    return policy;
}

PinReason SharePolicy::pin_reason(std::string_view name, std::string_view subcommand, CommandTraits traits,
                                  bool blocking) const noexcept {
    if (traits.has(Trait::unpaired_replies) || traits.has(Trait::pubsub))
        return PinReason::subscribe;
    if (name == "MULTI" || name == "WATCH")
        return PinReason::transaction;
    if (blocking)
        return PinReason::blocking;
    if (traits.has(Trait::connection_state) || name == "CLIENT")
        return PinReason::connection_state;
    if (busy_server_command(name, subcommand))
        return PinReason::server_flag;
    // XREAD and XREADGROUP carry the server's `blocking` flag, but block only
    // with BLOCK: the session's verdict above decides.
    if (flagged_.empty() || traits.has(Trait::blocking_with_option))
        return PinReason::none;
    const auto less = [](const std::pair<std::string, std::string>& row,
                         const std::pair<std::string_view, std::string_view>& key) {
        return row.first != key.first ? std::string_view(row.first) < key.first
                                      : std::string_view(row.second) < key.second;
    };
    const auto flagged = [&](std::string_view sub) {
        const std::pair<std::string_view, std::string_view> key{name, sub};
        const auto it = std::lower_bound(flagged_.begin(), flagged_.end(), key, less);
        return it != flagged_.end() && it->first == name && it->second == sub;
    };
    if (flagged({}) || (!subcommand.empty() && flagged(subcommand)))
        return PinReason::server_flag;
    return PinReason::none;
}

} // namespace redvip::proxy
