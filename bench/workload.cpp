#include "bench/workload.hpp"

#include "proxy/resp_value.hpp"

#include <cmath>
#include <fmt/format.h>

namespace redvip::bench {

using proxy::encode_command;

std::optional<CommandMix> parse_command_mix(std::string_view name) {
    if (name == "ping") return CommandMix::ping;
    if (name == "get") return CommandMix::get;
    if (name == "set") return CommandMix::set;
    if (name == "mix") return CommandMix::mix;
    return std::nullopt;
}

std::string_view command_mix_name(CommandMix mix) {
    switch (mix) {
    case CommandMix::ping:
        return "ping";
    case CommandMix::get:
        return "get";
    case CommandMix::set:
        return "set";
    case CommandMix::mix:
        return "mix";
    }
    return "?";
}

std::string RequestGenerator::key_name(std::uint64_t key) {
    const std::string digits = std::to_string(key);
    std::string name = "key:";
    if (digits.size() < kKeyDigits) name.append(kKeyDigits - digits.size(), '0');
    return name.append(digits);
}

RequestGenerator::RequestGenerator(const WorkloadSpec& spec, std::uint64_t seed)
    : spec_(spec)
    , rng_(seed) {
    if (spec_.keyspace == 0) spec_.keyspace = 1;
    const std::string key = key_name(0);
    ping_ = encode_command({"PING"});
    get_ = encode_command({"GET", key});
    set_ = encode_command({"SET", key, std::string(spec_.value_size, 'x')});
    // The key is the second argument: its bytes start after "$<len>\r\n".
    const std::string key_header = fmt::format("${}\r\n", key.size());
    get_key_offset_ = get_.find(key_header) + key_header.size() + 4;
    set_key_offset_ = set_.find(key_header) + key_header.size() + 4;
}

std::uint64_t RequestGenerator::next_key() {
    return spec_.keyspace == 1 ? 0 : rng_.next() % spec_.keyspace;
}

void RequestGenerator::append_keyed(std::string& out, const std::string& templ,
                                    std::size_t key_offset) {
    const std::size_t at = out.size() + key_offset;
    out += templ;
    std::uint64_t key = next_key();
    for (std::size_t i = kKeyDigits; i-- > 0; key /= 10)
        out[at + i] = static_cast<char>('0' + key % 10);
}

void RequestGenerator::append_next(std::string& out) {
    switch (spec_.command) {
    case CommandMix::ping:
        out += ping_;
        return;
    case CommandMix::get:
        append_keyed(out, get_, get_key_offset_);
        return;
    case CommandMix::set:
        append_keyed(out, set_, set_key_offset_);
        return;
    case CommandMix::mix:
        if (rng_.next() % 100 < kMixSetPercent)
            append_keyed(out, set_, set_key_offset_);
        else
            append_keyed(out, get_, get_key_offset_);
        return;
    }
}

SendSchedule::SendSchedule(double rate_per_s, std::uint64_t connection, std::uint64_t connections)
    : ns_per_request_(1e9 / rate_per_s)
    , connection_(connection)
    , connections_(connections) {}

std::int64_t SendSchedule::intended_ns(std::uint64_t i) const {
    const double j = static_cast<double>(connection_ + i * connections_);
    return static_cast<std::int64_t>(j * ns_per_request_);
}

std::uint64_t SendSchedule::due_by(std::int64_t elapsed_ns) const {
    if (elapsed_ns < 0) return 0;
    // Requests of the whole run due by now: j <= elapsed / ns_per_request.
    const auto last_j =
        static_cast<std::uint64_t>(std::floor(static_cast<double>(elapsed_ns) / ns_per_request_));
    if (last_j < connection_) return 0;
    return (last_j - connection_) / connections_ + 1;
}

std::uint64_t share_of(std::uint64_t total, std::uint64_t connection, std::uint64_t connections) {
    return total / connections + (connection < total % connections ? 1 : 0);
}

} // namespace redvip::bench
