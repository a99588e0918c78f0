#pragma once
// What the latency benchmark sends, with no socket and no clock: requests are
// encoded once into templates and only the key's digits are patched per
// request, and the open-loop schedule says when each request is due.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace redvip::bench {

enum class CommandMix { ping, get, set, mix };

std::optional<CommandMix> parse_command_mix(std::string_view name);
std::string_view command_mix_name(CommandMix mix);

struct WorkloadSpec {
    CommandMix command = CommandMix::get;
    std::size_t value_size = 32;
    std::uint64_t keyspace = 100000; // keys are key:000000000000 .. key:<keyspace-1>
};

// A small, fast, seedable generator (splitmix64): the same seed gives the same keys.
class SplitMix64 {
public:
    explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

private:
    std::uint64_t state_;
};

class RequestGenerator {
public:
    // Keys have this many digits, as redis-benchmark's __rand_int__.
    static constexpr std::size_t kKeyDigits = 12;
    // In the mix, this many requests in 100 are SET, the rest GET.
    static constexpr std::uint64_t kMixSetPercent = 20;

    RequestGenerator(const WorkloadSpec& spec, std::uint64_t seed);

    // Appends the next request's RESP bytes to `out`.
    void append_next(std::string& out);

    static std::string key_name(std::uint64_t key);

private:
    void append_keyed(std::string& out, const std::string& templ, std::size_t key_offset);
    std::uint64_t next_key();

    WorkloadSpec spec_;
    SplitMix64 rng_;
    std::string ping_;
    std::string get_;
    std::string set_;
    std::size_t get_key_offset_ = 0;
    std::size_t set_key_offset_ = 0;
};

// Open loop: request j of the whole run is due at j / rate seconds after the
// start, and connection c of n sends requests c, c+n, c+2n, ... Latency is
// measured from that intended time, so a stalled server cannot hide its
// stall by slowing the sender (coordinated omission).
class SendSchedule {
public:
    SendSchedule(double rate_per_s, std::uint64_t connection, std::uint64_t connections);

    // Nanoseconds after the start at which this connection's i-th request is due.
    std::int64_t intended_ns(std::uint64_t i) const;
    // How many of this connection's requests are due by `elapsed_ns`.
    std::uint64_t due_by(std::int64_t elapsed_ns) const;

private:
    double ns_per_request_;
    std::uint64_t connection_;
    std::uint64_t connections_;
};

// Of `total` requests spread round-robin over `connections`, how many are connection c's.
std::uint64_t share_of(std::uint64_t total, std::uint64_t connection, std::uint64_t connections);

} // namespace redvip::bench
