// RESP2 replies as values, and commands as RESP arrays: the client side of
// the protocol library, for redvip's own small Redis clients (the health
// checks' AUTH, the election's role steps, redvip-bench). The proxy itself
// never decodes what it forwards: the framers (resp_request.hpp,
// resp_reply.hpp) only find where each message ends.
//
// parse_value is pure and answers three ways (docs/style.md, practice 1): a
// whole reply and the bytes it used, need more bytes, or an error with its
// offset. A client closes its connection on the first error.
#pragma once

#include "proxy/resp.hpp"

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace redvip::proxy {

// Caps (docs/style.md, practice 2): these clients ask for PONG, OK, INFO,
// ROLE, COMMAND (the proxy's share policy), their own values and MGET
// batches, so anything much larger is a server that is not speaking the
// RESP they expect.
inline constexpr std::size_t kMaxValueLine = 64 * 1024;          // status, error, length lines
inline constexpr std::int64_t kMaxValueBulk = 64 * 1024 * 1024;  // a value, or INFO's text
inline constexpr std::int64_t kMaxValueArray = 1 << 20;          // MGET batches are far smaller
inline constexpr int kMaxValueDepth = 8;                         // COMMAND's subcommands' key specs: 8

enum class ValueKind { simple, error, integer, bulk, null, array };

// One reply, decoded (the reply framer, resp_reply.hpp, only delimits it).
struct Value {
    ValueKind kind = ValueKind::null;
    std::string_view text;       // simple, error, bulk: a view into the parsed input
    std::int64_t integer = 0;    // integer value, or the array's length
    std::vector<Value> elements; // array only (empty vectors do not allocate)
};

struct ValueResult {
    Status status = Status::need_more; // resp.hpp's three answers
    Value value;             // when done
    std::size_t used = 0;    // when done: bytes of input this reply took
    std::size_t offset = 0;  // when error: where in the input
    std::string_view reason; // when error: a static description
};

ValueResult parse_value(std::string_view input);

// A value copied out of the input, for a caller that keeps it longer.
struct OwnedValue {
    ValueKind kind = ValueKind::null;
    std::string text;
    std::int64_t integer = 0;
    std::vector<OwnedValue> elements;
};
OwnedValue own(const Value& value);

// "*N\r\n$len\r\narg\r\n..." for one command.
std::string encode_command(std::initializer_list<std::string_view> args);
std::string encode_command(const std::vector<std::string>& args);

// A short printable excerpt of bytes that did not parse, for one-line errors.
std::string sanitize_sample(std::string_view bytes, std::size_t max_len = 40);

} // namespace redvip::proxy
