// The protocol library's client side: replies as values, commands encoded.
#include "proxy/resp_value.hpp"

#include <doctest/doctest.h>
#include <string>

using namespace redvip::proxy;

namespace {

// The reply's text views into `s`: callers keep it alive.
ValueResult parse(const std::string& s) {
    return parse_value(s);
}

} // namespace

TEST_CASE("each reply type parses with the bytes it used") {
    const std::string extra = "+NEXT\r\n";
    struct Case {
        std::string bytes;
        ValueKind kind;
        std::string text;
        std::int64_t integer;
    };
    const Case cases[] = {
        {"+PONG\r\n", ValueKind::simple, "PONG", 0},
        {"-READONLY You can't write against a read only replica.\r\n", ValueKind::error,
         "READONLY You can't write against a read only replica.", 0},
        {":-42\r\n", ValueKind::integer, "", -42},
        {"$5\r\nhe\r\no\r\n", ValueKind::bulk, "he\r\no", 0},
        {"$0\r\n\r\n", ValueKind::bulk, "", 0},
        {"$-1\r\n", ValueKind::null, "", 0},
        {"*-1\r\n", ValueKind::null, "", 0},
    };
    for (const Case& c : cases) {
        CAPTURE(c.bytes);
        const std::string input = c.bytes + extra; // the reply views into it
        const ValueResult r = parse(input);
        REQUIRE(r.status == Status::done);
        CHECK(r.used == c.bytes.size());
        CHECK(r.value.kind == c.kind);
        CHECK(r.value.text == c.text);
        CHECK(r.value.integer == c.integer);
    }
}

TEST_CASE("an MGET reply: an array of bulks and nulls") {
    const std::string bytes = "*3\r\n$1\r\n0\r\n$-1\r\n$2\r\n12\r\n";
    const ValueResult r = parse(bytes);
    REQUIRE(r.status == Status::done);
    CHECK(r.used == bytes.size());
    REQUIRE(r.value.elements.size() == 3);
    CHECK(r.value.elements[0].text == "0");
    CHECK(r.value.elements[1].kind == ValueKind::null);
    CHECK(r.value.elements[2].text == "12");
}

TEST_CASE("every proper prefix needs more, at every split point") {
    for (const std::string bytes :
         {"+OK\r\n", "$5\r\nhello\r\n", "*2\r\n:1\r\n$3\r\nabc\r\n", ":123\r\n"}) {
        for (std::size_t n = 0; n < bytes.size(); ++n) {
            CAPTURE(bytes.substr(0, n));
            CHECK(parse(bytes.substr(0, n)).status == Status::need_more);
        }
        CHECK(parse(bytes).status == Status::done);
    }
}

TEST_CASE("malformed replies are errors with their offset") {
    struct Case {
        std::string bytes;
        std::size_t offset;
    };
    const Case cases[] = {
        {"HTTP/1.1 400 Bad Request\r\n", 0},
        {"+OK\rX", 4},
        {":12a\r\n", 1},
        {"$-2\r\n", 1},
        {"$3\r\nabcXY", 7},
        {"*1\r\n?\r\n", 4},
        {"$99999999999\r\n", 1},
        {"*2000000\r\n", 1},
        {"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", 36}, // deeper than kMaxValueDepth
    };
    for (const Case& c : cases) {
        CAPTURE(c.bytes);
        const ValueResult r = parse(c.bytes);
        CHECK(r.status == Status::error);
        CHECK(r.offset == c.offset);
        CHECK_FALSE(r.reason.empty());
    }
}

TEST_CASE("a line without CRLF within the cap is an error, not an endless wait") {
    CHECK(parse("+" + std::string(kMaxValueLine + 1, 'a')).status == Status::error);
    CHECK(parse("+" + std::string(100, 'a')).status == Status::need_more);
}

TEST_CASE("commands encode as RESP arrays of bulk strings") {
    CHECK(encode_command({"PING"}) == "*1\r\n$4\r\nPING\r\n");
    CHECK(encode_command({"SET", "k", ""}) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    CHECK(encode_command(std::vector<std::string>{"GET", "key"}) ==
          "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
}

TEST_CASE("samples of bad bytes are printable and short") {
    CHECK(sanitize_sample("HTTP/1.1\r\n\x01", 40) == "HTTP/1.1...");
    CHECK(sanitize_sample(std::string(100, 'x'), 10).size() == 10);
}
