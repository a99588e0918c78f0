// The protocol errors both framers report: each one's reply text, made at
// compile time (resp.hpp).
#include "proxy/resp.hpp"

#include <array>

namespace redvip::proxy {
namespace {

std::string_view error_text(ErrorCode code) noexcept {
    switch (code) {
    case ErrorCode::invalid_multibulk_length:
        return "-ERR Protocol error: invalid multibulk length\r\n";
    case ErrorCode::unauthenticated_multibulk_length:
        return "-ERR Protocol error: unauthenticated multibulk length\r\n";
    case ErrorCode::too_big_mbulk_count:
        return "-ERR Protocol error: too big mbulk count string\r\n";
    case ErrorCode::invalid_bulk_length:
        return "-ERR Protocol error: invalid bulk length\r\n";
    case ErrorCode::unauthenticated_bulk_length:
        return "-ERR Protocol error: unauthenticated bulk length\r\n";
    case ErrorCode::too_big_bulk_count:
        return "-ERR Protocol error: too big bulk count string\r\n";
    case ErrorCode::expected_dollar:
        return "-ERR Protocol error: expected '$', got '";
    case ErrorCode::too_big_inline:
        return "-ERR Protocol error: too big inline request\r\n";
    case ErrorCode::unbalanced_quotes:
        return "-ERR Protocol error: unbalanced quotes in request\r\n";
    case ErrorCode::reply_unknown_type:
        return "-ERR Protocol error from backend: unknown type\r\n";
    case ErrorCode::reply_streamed:
        return "-ERR Protocol error from backend: streamed type\r\n";
    case ErrorCode::reply_invalid_length:
        return "-ERR Protocol error from backend: invalid length\r\n";
    case ErrorCode::reply_missing_crlf:
        return "-ERR Protocol error from backend: missing CRLF\r\n";
    case ErrorCode::reply_line_too_long:
        return "-ERR Protocol error from backend: line too long\r\n";
    }
    return "-ERR Protocol error\r\n";
}

// "-ERR Protocol error: expected '$', got 'X'\r\n" for every byte X, made at
// compile time, so an error costs the framer no text buffer. Redis's
// addReplyErrorFormat turns CR and LF into spaces to keep the reply one line.
constexpr std::string_view kExpectedDollar = "-ERR Protocol error: expected '$', got '";
constexpr std::size_t kExpectedDollarLen = kExpectedDollar.size() + 4;
constexpr auto kExpectedDollarReplies = [] {
    std::array<std::array<char, kExpectedDollarLen>, 256> texts{};
    for (std::size_t c = 0; c < 256; ++c) {
        auto& t = texts[c];
        std::size_t i = 0;
        for (char p : kExpectedDollar)
            t[i++] = p;
        const char got = static_cast<char>(c);
        t[i++] = got == '\r' || got == '\n' ? ' ' : got;
        t[i++] = '\'';
        t[i++] = '\r';
        t[i++] = '\n';
    }
    return texts;
}();

} // namespace

ProtocolError::ProtocolError(ErrorCode code, std::size_t offset, char got) noexcept
    : code_(code)
    , got_(got)
    , offset_(offset) {}

std::string_view ProtocolError::reply() const noexcept {
    if (code_ != ErrorCode::expected_dollar)
        return error_text(code_);
    const auto& text = kExpectedDollarReplies[static_cast<unsigned char>(got_)];
    return {text.data(), text.size()};
}

} // namespace redvip::proxy
