// RESP2 values and commands (resp_value.hpp).
#include "proxy/resp_value.hpp"

#include <algorithm>
#include <charconv>

namespace redvip::proxy {

namespace {

ValueResult need_more() {
    return {};
}

ValueResult fail(std::size_t offset, std::string_view reason) {
    ValueResult r;
    r.status = Status::error;
    r.offset = offset;
    r.reason = reason;
    return r;
}

ValueResult done(Value reply, std::size_t used) {
    ValueResult r;
    r.status = Status::done;
    r.value = std::move(reply);
    r.used = used;
    return r;
}

struct Line {
    bool complete = false;
    bool too_long = false;
    std::string_view body; // without the type byte and CRLF
    std::size_t end = 0;   // offset just past CRLF
};

// The line starting at `pos` (its type byte included), up to CRLF.
Line read_line(std::string_view in, std::size_t pos) {
    Line line;
    const std::size_t limit = std::min(in.size(), pos + kMaxValueLine);
    const std::size_t cr = in.substr(0, limit).find('\r', pos);
    if (cr == std::string_view::npos) {
        line.too_long = limit - pos >= kMaxValueLine;
        return line;
    }
    if (cr + 1 >= in.size()) return line; // the LF has not arrived yet
    line.complete = true;
    line.body = in.substr(pos + 1, cr - pos - 1);
    line.end = cr + 2;
    return line;
}

bool parse_int(std::string_view s, std::int64_t& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size();
}

ValueResult parse_at(std::string_view in, std::size_t pos, int depth);

ValueResult parse_array(std::string_view in, std::size_t pos, std::int64_t n, std::size_t at,
                        int depth) {
    Value reply;
    reply.kind = ValueKind::array;
    reply.integer = n;
    reply.elements.reserve(static_cast<std::size_t>(std::min<std::int64_t>(n, 1024)));
    for (std::int64_t i = 0; i < n; ++i) {
        ValueResult element = parse_at(in, pos, depth + 1);
        if (element.status != Status::done) return element;
        pos += element.used;
        reply.elements.push_back(std::move(element.value));
    }
    return done(std::move(reply), pos - at);
}

ValueResult parse_at(std::string_view in, std::size_t at, int depth) {
    if (depth > kMaxValueDepth) return fail(at, "reply nested too deeply");
    if (at >= in.size()) return need_more();
    const char type = in[at];
    if (type != '+' && type != '-' && type != ':' && type != '$' && type != '*')
        return fail(at, "not a RESP reply type byte");
    const Line line = read_line(in, at);
    if (!line.complete) return line.too_long ? fail(at, "reply line too long") : need_more();
    if (in[line.end - 1] != '\n') return fail(line.end - 1, "line not terminated by CRLF");
    Value reply;
    if (type == '+' || type == '-') {
        reply.kind = type == '+' ? ValueKind::simple : ValueKind::error;
        reply.text = line.body;
        return done(std::move(reply), line.end - at);
    }
    std::int64_t n = 0;
    if (!parse_int(line.body, n)) return fail(at + 1, "invalid integer");
    if (type == ':') {
        reply.kind = ValueKind::integer;
        reply.integer = n;
        return done(std::move(reply), line.end - at);
    }
    if (n < 0) return n == -1 ? done(Value{}, line.end - at) : fail(at + 1, "negative length");
    if (type == '*') {
        if (n > kMaxValueArray) return fail(at + 1, "array too long");
        return parse_array(in, line.end, n, at, depth);
    }
    if (n > kMaxValueBulk) return fail(at + 1, "bulk string too long");
    const auto len = static_cast<std::size_t>(n);
    if (in.size() < line.end + len + 2) return need_more();
    if (in[line.end + len] != '\r' || in[line.end + len + 1] != '\n')
        return fail(line.end + len, "bulk string not terminated by CRLF");
    reply.kind = ValueKind::bulk;
    reply.text = in.substr(line.end, len);
    return done(std::move(reply), line.end + len + 2 - at);
}

template <typename Range> std::string encode_range(const Range& args) {
    std::string out;
    out += '*';
    out += std::to_string(args.size());
    out += "\r\n";
    for (std::string_view arg : args) {
        out += '$';
        out += std::to_string(arg.size());
        out += "\r\n";
        out += arg;
        out += "\r\n";
    }
    return out;
}

} // namespace

ValueResult parse_value(std::string_view input) {
    return parse_at(input, 0, 0);
}

OwnedValue own(const Value& value) {
    OwnedValue out{value.kind, std::string(value.text), value.integer, {}};
    out.elements.reserve(value.elements.size());
    for (const Value& element : value.elements)
        out.elements.push_back(own(element));
    return out;
}

std::string encode_command(std::initializer_list<std::string_view> args) {
    return encode_range(args);
}

std::string encode_command(const std::vector<std::string>& args) {
    return encode_range(args);
}

std::string sanitize_sample(std::string_view bytes, std::size_t max_len) {
    std::string out;
    for (char c : bytes.substr(0, max_len)) {
        const auto u = static_cast<unsigned char>(c);
        out += (u >= 0x20 && u < 0x7f) ? c : '.';
    }
    return out;
}

} // namespace redvip::proxy
