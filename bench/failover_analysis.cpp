#include "bench/failover_analysis.hpp"

#include <algorithm>
#include <cerrno>

namespace redvip::bench {

std::string_view error_kind_name(ErrorKind kind) {
    static constexpr std::array<std::string_view, kErrorKindCount> names = {
        "readonly", "loading", "masterdown", "busy",    "noauth", "err_other",
        "refused",  "reset",   "closed",     "timeout", "other"};
    return names[static_cast<std::size_t>(kind)];
}

ErrorKind classify_error_reply(std::string_view text) {
    const std::string_view word = text.substr(0, text.find(' '));
    if (word == "READONLY") return ErrorKind::readonly;
    if (word == "LOADING") return ErrorKind::loading;
    if (word == "MASTERDOWN") return ErrorKind::masterdown;
    if (word == "BUSY") return ErrorKind::busy;
    if (word == "NOAUTH" || word == "WRONGPASS") return ErrorKind::noauth;
    return ErrorKind::err_other;
}

ErrorKind classify_errno(int errno_value) {
    switch (errno_value) {
    case ECONNREFUSED:
        return ErrorKind::refused;
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
        return ErrorKind::reset;
    case ETIMEDOUT:
        return ErrorKind::timeout;
    default:
        return ErrorKind::other;
    }
}

Window unavailability_window(std::vector<std::int64_t> ack_times,
                             std::optional<std::int64_t> fault_ns, std::int64_t end_ns) {
    std::sort(ack_times.begin(), ack_times.end());
    const std::int64_t after = fault_ns.value_or(INT64_MIN);
    Window best{fault_ns.value_or(0), fault_ns.value_or(0), true};
    for (std::size_t i = 1; i < ack_times.size(); ++i) {
        if (ack_times[i] <= after) continue;
        const Window gap{ack_times[i - 1], ack_times[i], true};
        if (gap.length_ns() > best.length_ns()) best = gap;
    }
    const std::int64_t last = ack_times.empty() ? 0 : ack_times.back();
    const bool none_after_fault = fault_ns && last <= *fault_ns;
    const Window tail{ack_times.empty() ? fault_ns.value_or(0) : last, end_ns, false};
    if (ack_times.empty() || none_after_fault || tail.length_ns() > best.length_ns()) return tail;
    return best;
}

FailoverVerdict judge_failover(const FailoverRecord& record, const std::vector<bool>& present,
                               std::size_t connections) {
    FailoverVerdict verdict;
    verdict.issued = record.issued;
    verdict.acked = record.acks.size();
    std::vector<bool> acked(record.issued, false);
    std::vector<std::int64_t> times;
    times.reserve(record.acks.size());
    for (const AckRecord& ack : record.acks) {
        if (ack.seq < acked.size()) acked[ack.seq] = true;
        times.push_back(ack.acked_ns);
    }
    for (std::uint64_t seq = 0; seq < record.issued; ++seq) {
        const bool is_present = seq < present.size() && present[seq];
        if (acked[seq] && !is_present) ++verdict.lost;
        if (!acked[seq] && is_present) ++verdict.unacked_present;
    }
    verdict.window = unavailability_window(std::move(times), record.fault_ns, record.end_ns);
    std::vector<std::vector<std::int64_t>> by_connection(connections);
    for (const AckRecord& ack : record.acks) {
        if (ack.connection >= by_connection.size()) by_connection.resize(ack.connection + 1);
        by_connection[ack.connection].push_back(ack.acked_ns);
    }
    for (std::size_t c = 0; c < by_connection.size(); ++c) {
        verdict.connection_windows.push_back(
            unavailability_window(std::move(by_connection[c]), record.fault_ns, record.end_ns));
        const Window& w = verdict.connection_windows.back();
        const Window& worst = verdict.connection_windows[verdict.worst_connection];
        // Never recovered is worse than any gap that ended; then the longer.
        if (std::pair(!w.recovered, w.length_ns()) > std::pair(!worst.recovered, worst.length_ns()))
            verdict.worst_connection = c;
    }
    return verdict;
}

} // namespace redvip::bench
