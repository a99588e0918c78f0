#pragma once
// RESP2 for the benchmark client: requests are encoded once, replies are
// parsed without a socket. parse_reply is three-valued: a complete reply and
// the bytes it used, need more bytes, or an error with its offset. The client
// closes the connection on the first error, so an error never recovers.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace redvip::bench {

// Caps: we only ever ask for PONG, OK, our own values and MGET batches, so
// anything much larger is a server that is not speaking the RESP we expect.
constexpr std::size_t kMaxReplyLine = 64 * 1024;          // status/error/length lines
constexpr std::int64_t kMaxBulkLength = 64 * 1024 * 1024; // our values are at most --value-size
constexpr std::int64_t kMaxArrayLength = 1 << 20;         // MGET batches are far smaller
constexpr int kMaxReplyDepth = 4;                         // we never ask for nested replies

enum class ReplyKind { simple, error, integer, bulk, null, array };

struct Reply {
    ReplyKind kind = ReplyKind::null;
    std::string_view text;       // simple, error, bulk: a view into the parsed input
    std::int64_t integer = 0;    // integer value, or the array's length
    std::vector<Reply> elements; // array only (empty vectors do not allocate)
};

enum class ParseStatus { done, need_more, error };

struct ParseResult {
    ParseStatus status = ParseStatus::need_more;
    Reply reply;             // when done
    std::size_t used = 0;    // when done: bytes of input this reply took
    std::size_t offset = 0;  // when error: where in the input
    std::string_view reason; // when error: a static description
};

ParseResult parse_reply(std::string_view input);

// "*N\r\n$len\r\narg\r\n..." for one command.
std::string encode_command(std::initializer_list<std::string_view> args);
std::string encode_command(const std::vector<std::string>& args);

// A short printable excerpt of bytes that did not parse, for one-line errors.
std::string sanitize_sample(std::string_view bytes, std::size_t max_len = 40);

} // namespace redvip::bench
