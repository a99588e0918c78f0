#pragma once
// The failover benchmark's verdict, computed from what the run recorded and
// what was read back afterwards: no socket, no clock (times are nanoseconds
// since the run's start, passed in).

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace redvip::bench {

// Client-visible errors. Redis error replies are told apart by their first
// word; socket errors by their errno.
enum class ErrorKind {
    readonly,   // -READONLY: wrote to a replica
    loading,    // -LOADING: a restarted server still loading its dataset
    masterdown, // -MASTERDOWN: a replica whose link to the master is down
    busy,       // -BUSY: a script or DEBUG SLEEP holding the server
    noauth,     // -NOAUTH / -WRONGPASS after a reconnect
    err_other,  // any other error reply (-ERR, -OOM, ...)
    refused,    // ECONNREFUSED while reconnecting
    reset,      // ECONNRESET, EPIPE
    closed,     // the server closed the connection (EOF)
    timeout,    // no reply (or no connection) within the deadline
    other,      // any other socket error
};
constexpr std::size_t kErrorKindCount = 11;

std::string_view error_kind_name(ErrorKind kind);
ErrorKind classify_error_reply(std::string_view text);
ErrorKind classify_errno(int errno_value);

using ErrorCounts = std::array<std::uint64_t, kErrorKindCount>;

struct AckRecord {
    std::uint64_t seq = 0;
    std::int64_t sent_ns = 0;
    std::int64_t acked_ns = 0;
    std::uint32_t connection = 0; // which of the run's connections
};

struct FailoverRecord {
    std::uint64_t issued = 0;    // writes sent: seqs 0 .. issued-1
    std::vector<AckRecord> acks; // in any order
    ErrorCounts errors{};
    std::uint64_t reconnects = 0;
    std::optional<std::int64_t> fault_ns; // when --fault was started
    std::int64_t end_ns = 0;              // when writing stopped
};

struct Window {
    std::int64_t start_ns = 0; // the last acknowledgement before the outage
    std::int64_t end_ns = 0;   // the first after it (or the run's end if none came)
    bool recovered = true;
    std::int64_t length_ns() const { return end_ns - start_ns; }
};

struct FailoverVerdict {
    std::uint64_t issued = 0;
    std::uint64_t acked = 0;
    std::uint64_t lost = 0;            // acknowledged but not read back
    std::uint64_t unacked_present = 0; // read back but never acknowledged
    Window window;                     // over all connections: what the best of them saw
    // Each connection's own window (same rule, its own acknowledgements), by
    // connection; the worst of them is what the unluckiest client saw.
    std::vector<Window> connection_windows;
    std::size_t worst_connection = 0;
    const Window* worst() const {
        return connection_windows.empty() ? nullptr : &connection_windows[worst_connection];
    }
};

// With a fault: the longest gap between consecutive acknowledgements (over all
// connections) that ends after the fault started; none after it means the
// window runs to the end, unrecovered. Without: the longest gap in the run,
// or the silence at its end if that is longer.
Window unavailability_window(std::vector<std::int64_t> ack_times,
                             std::optional<std::int64_t> fault_ns, std::int64_t end_ns);

// present[seq]: the key of write `seq` was read back with its value.
// `connections`: how many the run had (a connection with no acknowledgement
// at all still has its window: the whole run, unrecovered).
FailoverVerdict judge_failover(const FailoverRecord& record, const std::vector<bool>& present,
                               std::size_t connections = 1);

} // namespace redvip::bench
