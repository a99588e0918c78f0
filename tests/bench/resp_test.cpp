#include "bench/resp.hpp"

#include <doctest/doctest.h>
#include <string>

using namespace redvip::bench;

namespace {

// The reply's text views into `s`: callers keep it alive.
ParseResult parse(const std::string& s) {
    return parse_reply(s);
}

} // namespace

TEST_CASE("each reply type parses with the bytes it used") {
    const std::string extra = "+NEXT\r\n";
    struct Case {
        std::string bytes;
        ReplyKind kind;
        std::string text;
        std::int64_t integer;
    };
    const Case cases[] = {
        {"+PONG\r\n", ReplyKind::simple, "PONG", 0},
        {"-READONLY You can't write against a read only replica.\r\n", ReplyKind::error,
         "READONLY You can't write against a read only replica.", 0},
        {":-42\r\n", ReplyKind::integer, "", -42},
        {"$5\r\nhe\r\no\r\n", ReplyKind::bulk, "he\r\no", 0},
        {"$0\r\n\r\n", ReplyKind::bulk, "", 0},
        {"$-1\r\n", ReplyKind::null, "", 0},
        {"*-1\r\n", ReplyKind::null, "", 0},
    };
    for (const Case& c : cases) {
        CAPTURE(c.bytes);
        const std::string input = c.bytes + extra; // the reply views into it
        const ParseResult r = parse(input);
        REQUIRE(r.status == ParseStatus::done);
        CHECK(r.used == c.bytes.size());
        CHECK(r.reply.kind == c.kind);
        CHECK(r.reply.text == c.text);
        CHECK(r.reply.integer == c.integer);
    }
}

TEST_CASE("an MGET reply: an array of bulks and nulls") {
    const std::string bytes = "*3\r\n$1\r\n0\r\n$-1\r\n$2\r\n12\r\n";
    const ParseResult r = parse(bytes);
    REQUIRE(r.status == ParseStatus::done);
    CHECK(r.used == bytes.size());
    REQUIRE(r.reply.elements.size() == 3);
    CHECK(r.reply.elements[0].text == "0");
    CHECK(r.reply.elements[1].kind == ReplyKind::null);
    CHECK(r.reply.elements[2].text == "12");
}

TEST_CASE("every proper prefix needs more, at every split point") {
    for (const std::string bytes :
         {"+OK\r\n", "$5\r\nhello\r\n", "*2\r\n:1\r\n$3\r\nabc\r\n", ":123\r\n"}) {
        for (std::size_t n = 0; n < bytes.size(); ++n) {
            CAPTURE(bytes.substr(0, n));
            CHECK(parse(bytes.substr(0, n)).status == ParseStatus::need_more);
        }
        CHECK(parse(bytes).status == ParseStatus::done);
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
        {"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", 20},
    };
    for (const Case& c : cases) {
        CAPTURE(c.bytes);
        const ParseResult r = parse(c.bytes);
        CHECK(r.status == ParseStatus::error);
        CHECK(r.offset == c.offset);
        CHECK_FALSE(r.reason.empty());
    }
}

TEST_CASE("a line without CRLF within the cap is an error, not an endless wait") {
    CHECK(parse("+" + std::string(kMaxReplyLine + 1, 'a')).status == ParseStatus::error);
    CHECK(parse("+" + std::string(100, 'a')).status == ParseStatus::need_more);
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
