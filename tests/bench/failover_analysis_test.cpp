#include "bench/failover_analysis.hpp"
#include "tests/bench/ns.hpp"

#include <cerrno>
#include <doctest/doctest.h>

using namespace redvip::bench;

namespace {

// Acks every `step` ms from `from` to `to` (exclusive).
std::vector<std::int64_t> acks_every(std::int64_t step, std::int64_t from, std::int64_t to) {
    std::vector<std::int64_t> out;
    for (std::int64_t t = from; t < to; t += step)
        out.push_back(t * ms);
    return out;
}

std::vector<std::int64_t> join(std::vector<std::int64_t> a, const std::vector<std::int64_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

} // namespace

TEST_CASE("error replies are told apart by their first word") {
    CHECK(classify_error_reply("READONLY You can't write against a read only replica.") ==
          ErrorKind::readonly);
    CHECK(classify_error_reply("LOADING Redis is loading the dataset in memory") ==
          ErrorKind::loading);
    CHECK(classify_error_reply("MASTERDOWN Link with MASTER is down") == ErrorKind::masterdown);
    CHECK(classify_error_reply("BUSY Redis is busy running a script.") == ErrorKind::busy);
    CHECK(classify_error_reply("NOAUTH Authentication required.") == ErrorKind::noauth);
    CHECK(classify_error_reply("WRONGPASS invalid username-password pair") == ErrorKind::noauth);
    CHECK(classify_error_reply("ERR unknown command") == ErrorKind::err_other);
    CHECK(classify_error_reply("OOM command not allowed") == ErrorKind::err_other);
    CHECK(classify_errno(ECONNREFUSED) == ErrorKind::refused);
    CHECK(classify_errno(ECONNRESET) == ErrorKind::reset);
    CHECK(classify_errno(EPIPE) == ErrorKind::reset);
    CHECK(classify_errno(ETIMEDOUT) == ErrorKind::timeout);
    CHECK(classify_errno(EHOSTUNREACH) == ErrorKind::other);
    CHECK(error_kind_name(ErrorKind::readonly) == "readonly");
    CHECK(error_kind_name(ErrorKind::other) == "other");
}

TEST_CASE("with a fault: the outage after it, not an earlier hiccup") {
    // Acks every 1 ms, a 30 ms hiccup at 100 ms, the fault at 500 ms, acks
    // continuing for 3 ms after it (the fault takes effect late), then silence until 2000 ms.
    auto acks =
        join(join(acks_every(1, 0, 100), acks_every(1, 130, 503)), acks_every(1, 2000, 3000));
    const Window w = unavailability_window(acks, 500 * ms, 3000 * ms);
    CHECK(w.recovered);
    CHECK(w.start_ns == 502 * ms);
    CHECK(w.end_ns == 2000 * ms);
}

TEST_CASE("with a fault and no ack after it: unrecovered, to the end of the run") {
    const Window w = unavailability_window(acks_every(1, 0, 400), 500 * ms, 3000 * ms);
    CHECK_FALSE(w.recovered);
    CHECK(w.start_ns == 399 * ms);
    CHECK(w.end_ns == 3000 * ms);
}

TEST_CASE("without a fault: the longest gap; a silent end counts when longer") {
    auto acks =
        join(join(acks_every(1, 0, 100), acks_every(1, 130, 500)), acks_every(1, 700, 1000));
    Window w = unavailability_window(acks, std::nullopt, 1000 * ms);
    CHECK(w.start_ns == 499 * ms);
    CHECK(w.end_ns == 700 * ms);
    CHECK(w.recovered);
    w = unavailability_window(acks_every(1, 0, 100), std::nullopt, 1000 * ms);
    CHECK_FALSE(w.recovered);
    CHECK(w.length_ns() == 901 * ms);
    w = unavailability_window({}, std::nullopt, 1000 * ms);
    CHECK_FALSE(w.recovered);
    CHECK(w.length_ns() == 1000 * ms);
}

TEST_CASE("lost and unacknowledged-but-present writes") {
    FailoverRecord record;
    record.issued = 6;
    record.end_ns = 10 * ms;
    // 0..3 acked; 4 sent, no reply (timeout) but applied; 5 sent, no reply, not applied.
    for (std::uint64_t seq = 0; seq < 4; ++seq)
        record.acks.push_back(
            {seq, static_cast<std::int64_t>(seq) * ms, static_cast<std::int64_t>(seq) * ms + 1000});
    // 1 and 2 were lost in a failover.
    const std::vector<bool> present{true, false, false, true, true, false};
    const FailoverVerdict v = judge_failover(record, present);
    CHECK(v.issued == 6);
    CHECK(v.acked == 4);
    CHECK(v.lost == 2);
    CHECK(v.unacked_present == 1);
}

TEST_CASE("each connection's own gap: one stalled connection behind quick others") {
    // Three connections acking every 10 ms; a fault at 1000 ms; connections
    // 0 and 1 are back 60 ms later, connection 2 only after a lost SYN's
    // second (1060 ms later). The window over all connections is 70 ms; the
    // worst connection's gap is what its client saw.
    FailoverRecord record;
    record.fault_ns = 1000 * ms;
    record.end_ns = 3000 * ms;
    std::uint64_t seq = 0;
    auto acks = [&](std::uint32_t connection, std::int64_t from, std::int64_t to) {
        for (std::int64_t t = from; t < to; t += 10)
            record.acks.push_back({seq++, t * ms - ms, t * ms, connection});
    };
    for (std::uint32_t c = 0; c < 3; ++c)
        acks(c, 0, 1000);
    acks(0, 1060, 3000);
    acks(1, 1065, 3000);
    acks(2, 2050, 3000);
    record.issued = seq;
    const FailoverVerdict v = judge_failover(record, std::vector<bool>(seq, true), 3);
    CHECK(v.window.length_ns() == 70 * ms); // 990 (the last before) .. 1060
    REQUIRE(v.connection_windows.size() == 3);
    CHECK(v.connection_windows[0].length_ns() == 70 * ms);
    CHECK(v.connection_windows[1].length_ns() == 75 * ms);
    CHECK(v.worst_connection == 2);
    CHECK(v.worst()->length_ns() == 1060 * ms);
    CHECK(v.worst()->recovered);
}

TEST_CASE("a connection that never acknowledges again is the worst, unrecovered") {
    FailoverRecord record;
    record.fault_ns = 100 * ms;
    record.end_ns = 1000 * ms;
    for (std::uint64_t i = 0; i < 50; ++i)
        record.acks.push_back({i, static_cast<std::int64_t>(i) * 20 * ms, static_cast<std::int64_t>(i) * 20 * ms, 0});
    record.acks.push_back({50, 50 * ms, 50 * ms, 1}); // connection 1: once, before the fault
    record.issued = 51;
    const FailoverVerdict v = judge_failover(record, std::vector<bool>(51, true), 3);
    REQUIRE(v.connection_windows.size() == 3); // connection 2 never acknowledged at all
    CHECK(v.worst_connection == 1);
    CHECK_FALSE(v.worst()->recovered);
    CHECK(v.worst()->length_ns() == 950 * ms);
    CHECK_FALSE(v.connection_windows[2].recovered);
}
