// libFuzzer: the same bytes into both framers, fed whole, in pieces whose sizes the
// input picks, and byte by byte; each way holding frames whole and streaming them
// (the caller discarding all it may after every read). Input: one byte of flags
// (bit 0: authenticated; the rest: the largest piece), one byte seeding the cuts,
// then the stream. Checked: the same frames however the bytes arrived and whether
// or not the caller discards; sizes, offsets and droppable() inside the input,
// sticky errors, a request's head stable and equal to its frame's (resp_driver.hpp);
// work linear in the input; and request_args agreeing with the frame's argc and name.
// The same bytes also into the client side: parse_value, a value read as a
// command table (the share policy), and INFO replication.
#include "proxy/info.hpp"
#include "proxy/resp_value.hpp"
#include "proxy/share_policy.hpp"
#include "resp_driver.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>

using namespace redvip::proxy;
using namespace redvip::proxy::test;

namespace {

void require(bool ok, const char* what, const std::string& detail = {}) {
    if (ok) return;
    std::fprintf(stderr, "invariant broken: %s %s\n", what, detail.c_str());
    std::abort();
}

std::vector<std::size_t> cuts_from(std::uint8_t flags, std::uint32_t seed, std::size_t total) {
    const std::size_t largest = 1 + (flags >> 1);
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0;;) {
        seed = seed * 1103515245u + 12345u;
        at += 1 + (seed >> 16) % largest;
        if (at >= total) return cuts;
        cuts.push_back(at);
    }
}

Run requests(std::string_view stream, const std::vector<std::size_t>& cuts, bool authenticated,
             Mode mode = Mode::hold) {
    RequestFramer framer(authenticated);
    return drive(
        framer, stream, cuts,
        [](RequestFramer& f, const RequestResult& r, std::string_view frame) {
            const Request& q = r.request;
            const std::vector<std::string> args = request_args(frame);
            require(args.size() == q.argc, "request_args count", std::to_string(args.size()));
            if (q.argc > 0 && !q.name.too_long()) {
                std::string upper = args[0];
                for (char& c : upper)
                    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
                require(upper == q.name.view(), "request_args name");
            }
            if (q.name.view() == "AUTH") f.set_authenticated(true);
        },
        mode);
}

void check_same(const Run& a, const Run& b, const char* what) {
    require(a.violation.empty(), a.violation.c_str());
    require(b.violation.empty(), b.violation.c_str());
    require(a.text() == b.text(), what, a.text() + " vs " + b.text());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::uint8_t flags = data[0];
    const bool authenticated = (flags & 1) != 0;
    const std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);
    const std::vector<std::size_t> cuts = cuts_from(flags, data[1], stream.size());
    const std::vector<std::size_t> bytes = every(1, stream.size());

    const Run whole = requests(stream, {}, authenticated);
    const Run pieces = requests(stream, cuts, authenticated);
    const Run one_by_one = requests(stream, bytes, authenticated);
    check_same(whole, pieces, "requests in pieces");
    check_same(whole, one_by_one, "requests byte by byte");
    // Each byte is searched at most twice (terminator, then NUL) and tokenized once.
    require(one_by_one.scanned <= 3 * stream.size() + one_by_one.feeds,
            "requests scanned too much");
    check_same(whole, requests(stream, {}, authenticated, Mode::discard), "requests streamed");
    check_same(whole, requests(stream, cuts, authenticated, Mode::discard),
               "requests streamed in pieces");
    const Run streamed_bytes = requests(stream, bytes, authenticated, Mode::discard);
    check_same(whole, streamed_bytes, "requests streamed byte by byte");
    require(streamed_bytes.scanned <= 3 * stream.size() + streamed_bytes.feeds,
            "streamed requests scanned too much");

    const Run replies = run_replies(stream, {});
    check_same(replies, run_replies(stream, cuts), "replies in pieces");
    const Run reply_bytes = run_replies(stream, bytes);
    check_same(replies, reply_bytes, "replies byte by byte");
    require(reply_bytes.scanned <= stream.size() + reply_bytes.feeds, "replies scanned too much");
    check_same(replies, run_replies(stream, cuts, Mode::discard), "replies streamed in pieces");
    const Run streamed_replies = run_replies(stream, bytes, Mode::discard);
    check_same(replies, streamed_replies, "replies streamed byte by byte");
    require(streamed_replies.scanned <= stream.size() + streamed_replies.feeds,
            "streamed replies scanned too much");

    // The client side: a value uses bytes inside the input, the same bytes
    // alone give the same value, one byte fewer is "need more" (never an
    // error); an error's offset is inside the input. INFO text never throws.
    const ValueResult value = parse_value(stream);
    if (value.status == Status::done) {
        require(value.used > 0 && value.used <= stream.size(), "value size");
        const ValueResult alone = parse_value(stream.substr(0, value.used));
        require(alone.status == Status::done && alone.used == value.used, "value alone");
        require(parse_value(stream.substr(0, value.used - 1)).status == Status::need_more,
                "a value cut short");
        // Any value read as a server's command table: a policy or nothing, and
        // a policy answers for any command without throwing.
        if (const auto policy = SharePolicy::from_command_table(value.value))
            (void)policy->pin_reason("GET", "", classify("GET", ""), false);
    } else if (value.status == Status::error) {
        require(value.offset <= stream.size(), "value error offset");
    }
    (void)parse_info_replication(stream);
    return 0;
}
