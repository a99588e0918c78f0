// The reply framer: every RESP2 and RESP3 type, attributes and pushes, fed whole,
// cut at every point and in pieces down to one byte; each malformed reply its own
// case; the depth cap; no allocation; linear work for large replies.
#include "alloc_counter.hpp"
#include "resp_driver.hpp"

#include <doctest/doctest.h>
#include <random>
#include <string>
#include <type_traits>

using namespace redvip::proxy;
using namespace redvip::proxy::test;
using namespace std::string_literals;

namespace {

// Whole, cut once everywhere and in pieces of 1..64 bytes, holding frames whole
// and streaming them: the same frames every way.
std::string frame_everywhere(const std::string& stream) {
    const Run whole = run_replies(stream, {});
    REQUIRE_MESSAGE(whole.violation.empty(), whole.violation);
    for (const Mode mode : {Mode::hold, Mode::discard}) {
        CAPTURE(static_cast<bool>(mode));
        CHECK(run_replies(stream, {}, mode).text() == whole.text());
        for (std::size_t cut = 1; cut < stream.size() && stream.size() <= 4096; ++cut) {
            const Run split = run_replies(stream, {cut}, mode);
            if (split.text() != whole.text()) {
                FAIL_CHECK("cut at " << cut << ": " << split.text() << " vs " << whole.text());
                break;
            }
        }
        for (std::size_t chunk = 1; chunk <= 64 && chunk < stream.size(); ++chunk) {
            const Run pieces = run_replies(stream, every(chunk, stream.size()), mode);
            if (pieces.text() != whole.text()) {
                FAIL_CHECK("pieces of " << chunk << ": " << pieces.text() << " vs " << whole.text());
                break;
            }
        }
    }
    return whole.text();
}

struct Golden {
    const char* name;
    std::string input;
    std::string expected;
};

void check_goldens(const std::vector<Golden>& table) {
    for (const Golden& g : table) {
        SUBCASE(g.name) {
            CAPTURE(g.input);
            CHECK(frame_everywhere(g.input) == g.expected);
        }
    }
}

const std::string attributed =
    "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
    "*2\r\n:2039123\r\n:9543892\r\n";

} // namespace

TEST_CASE("RESP2 replies") {
    check_goldens({
        {"simple string", "+OK\r\n", "done 5 +"},
        {"error", "-ERR unknown\r\n", "done 14 -"},
        {"integer", ":-1000\r\n", "done 8 :"},
        {"bulk", "$3\r\nfoo\r\n", "done 9 $"},
        {"bulk holding CRLF", "$4\r\na\r\nb\r\n", "done 10 $"},
        {"empty bulk", "$0\r\n\r\n", "done 6 $"},
        {"null bulk", "$-1\r\n", "done 5 $"},
        {"null array", "*-1\r\n", "done 5 *"},
        {"empty array", "*0\r\n", "done 4 *"},
        {"array", "*2\r\n$3\r\nfoo\r\n:1\r\n", "done 17 *"},
        {"nested arrays", "*2\r\n*1\r\n+a\r\n*0\r\n", "done 16 *"},
        {"null inside an array", "*2\r\n$-1\r\n*-1\r\n", "done 14 *"},
        {"pipeline", "+OK\r\n:1\r\n$-1\r\n*1\r\n+a\r\n",
         "done 5 + | done 4 : | done 5 $ | done 8 *"},
        // Arrays of blobs take a fast path when whole (skip_plain_blobs): these
        // are framed whole and cut everywhere, so both paths meet each case.
        {"array of blobs", "*4\r\n$3\r\nfoo\r\n$0\r\n\r\n$12\r\nhello\r\nworld\r\n$1\r\nx\r\n",
         "done 45 *"},
        {"blobs around a null and an integer", "*4\r\n$1\r\na\r\n$-1\r\n:7\r\n$1\r\nb\r\n", "done 27 *"},
        {"blobs in a nested array", "*2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", "done 29 *"},
        {"a pipeline of blob arrays", "*2\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$1\r\nc\r\n$1\r\nd\r\n",
         "done 18 * | done 18 *"},
        {"incomplete array of blobs", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\n", "need_more 22"},
        {"incomplete line", "+OK\r", "need_more 4"},
        {"incomplete bulk", "$3\r\nfoo\r", "need_more 8"},
        {"incomplete array", "*2\r\n+a\r\n", "need_more 8"},
    });
}

TEST_CASE("RESP3 replies") {
    check_goldens({
        {"null", "_\r\n", "done 3 _"},
        {"double", ",3.14\r\n", "done 7 ,"},
        {"boolean", "#t\r\n", "done 4 #"},
        {"big number", "(3492890328409238509324850943850943825024385\r\n", "done 46 ("},
        {"blob error", "!21\r\nSYNTAX invalid syntax\r\n", "done 28 !"},
        {"verbatim string", "=15\r\ntxt:Some string\r\n", "done 22 ="},
        {"map", "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", "done 29 %"},
        {"empty map", "%0\r\n", "done 4 %"},
        {"set", "~2\r\n+a\r\n+b\r\n", "done 12 ~"},
        {"push", ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", "done 33 > push"},
        {"attribute belongs to the reply after it", attributed, "done 81 *"},
        {"attribute inside an array is no element", "*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n",
         "done 29 *"},
        {"empty attribute", "|0\r\n+OK\r\n", "done 9 +"},
        {"attribute before a push", "|1\r\n+a\r\n+b\r\n>2\r\n+x\r\n+y\r\n", "done 24 > push"},
        {"a push nested in an array answers a request", "*1\r\n>1\r\n+x\r\n", "done 12 *"},
        {"push between replies", "+OK\r\n>2\r\n+invalidate\r\n*1\r\n+k\r\n:1\r\n",
         "done 5 + | done 25 > push | done 4 :"},
        {"attribute waits for its value", "|1\r\n+a\r\n+b\r\n", "need_more 12"},
        {"map of aggregates", "%1\r\n*1\r\n+k\r\n~1\r\n%1\r\n+a\r\n+b\r\n", "done 28 %"},
    });
}

TEST_CASE("error replies are flagged") {
    ReplyFramer framer;
    CHECK(framer.feed("-ERR x\r\n").reply.is_error());
    CHECK(framer.feed("!1\r\nx\r\n").reply.is_error());
    CHECK_FALSE(framer.feed("+OK\r\n").reply.is_error());
    CHECK_FALSE(framer.feed("*1\r\n-ERR x\r\n").reply.is_error());
}

TEST_CASE("malformed replies") {
    check_goldens({
        {"unknown type, known at once", "x",
         "error@0 -ERR Protocol error from backend: unknown type"},
        {"blank line", "\r\n", "error@0 -ERR Protocol error from backend: unknown type"},
        {"unknown type inside an array", "*2\r\n:1\r\n?\r\n",
         "error@8 -ERR Protocol error from backend: unknown type"},
        {"streamed string", "$?\r\n;4\r\nabcd\r\n;0\r\n",
         "error@0 -ERR Protocol error from backend: streamed type"},
        {"streamed array", "*?\r\n:1\r\n.\r\n",
         "error@0 -ERR Protocol error from backend: streamed type"},
        {"streamed map", "%?\r\n", "error@0 -ERR Protocol error from backend: streamed type"},
        {"chunk", ";4\r\nabcd\r\n", "error@0 -ERR Protocol error from backend: streamed type"},
        {"end of stream", ".\r\n", "error@0 -ERR Protocol error from backend: streamed type"},
        {"bulk length -2", "$-2\r\n", "error@0 -ERR Protocol error from backend: invalid length"},
        {"array length -2", "*-2\r\n", "error@0 -ERR Protocol error from backend: invalid length"},
        {"null map", "%-1\r\n", "error@0 -ERR Protocol error from backend: invalid length"},
        {"null blob error", "!-1\r\n", "error@0 -ERR Protocol error from backend: invalid length"},
        {"non-digit length", "$abc\r\n",
         "error@0 -ERR Protocol error from backend: invalid length"},
        {"leading zero", "*01\r\n", "error@0 -ERR Protocol error from backend: invalid length"},
        {"empty length", "$\r\n", "error@0 -ERR Protocol error from backend: invalid length"},
        {"bulk past the cap", "$4294967297\r\n",
         "error@0 -ERR Protocol error from backend: invalid length"},
        {"aggregate past the cap", "*4294967296\r\n",
         "error@0 -ERR Protocol error from backend: invalid length"},
        {"length line never ends", "*1\r\n$" + std::string(40, '1'),
         "error@4 -ERR Protocol error from backend: invalid length"},
        {"payload longer than declared", "$3\r\nfoobar\r\n",
         "error@7 -ERR Protocol error from backend: missing CRLF"},
        {"blob in an array longer than declared", "*3\r\n$1\r\na\r\n$1\r\nbc\r\n$1\r\nd\r\n",
         "error@16 -ERR Protocol error from backend: missing CRLF"},
        {"leading zero in an array's blob", "*3\r\n$1\r\na\r\n$01\r\nb\r\n$1\r\nc\r\n",
         "error@11 -ERR Protocol error from backend: invalid length"},
        {"blob length without LF in an array", "*3\r\n$1\r\na\r\n$1\rxb\r\n$1\r\nc\r\n",
         "error@13 -ERR Protocol error from backend: missing CRLF"},
        {"CR without LF", "+OK\rX", "error@3 -ERR Protocol error from backend: missing CRLF"},
        {"CR without LF in a length", "*1\rX",
         "error@2 -ERR Protocol error from backend: missing CRLF"},
    });
}

TEST_CASE("nesting goes as deep as the bytes do") {
    // What Redis sends for a script's recursive table: arrays of one element
    // until Lua's stack runs out, then an error inside (redis-cli's `eval
    // 'local a = {}; local b = {a}; a[1] = b; return a' 0`).
    for (std::size_t depth : {std::size_t{1}, kReplyInlineDepth, kReplyInlineDepth + 1, std::size_t{5000}}) {
        std::string deep;
        for (std::size_t i = 0; i < depth; ++i)
            deep += "*1\r\n";
        deep += "-ERR reached lua stack limit\r\n";
        CHECK(frame_everywhere(deep) == "done " + std::to_string(deep.size()) + " *");
    }
    // Attributes nest too, and maps count pairs at every depth.
    // (Each attribute annotates its parent's key: the innermost has its key and
    // value, then every level its annotated key and its value, then the top value.)
    std::string attributes;
    for (std::size_t i = 0; i < 100; ++i)
        attributes += "|1\r\n";
    for (std::size_t i = 0; i < 2 * 100 + 1; ++i)
        attributes += ":1\r\n";
    CHECK(frame_everywhere(attributes) == "done " + std::to_string(attributes.size()) + " :");
    std::string maps;
    for (std::size_t i = 0; i < 100; ++i)
        maps += "%1\r\n+k\r\n";
    maps += ":1\r\n";
    CHECK(frame_everywhere(maps) == "done " + std::to_string(maps.size()) + " %");
}

TEST_CASE("a deep reply leaves the framer as it found it") {
    ReplyFramer framer;
    std::string deep;
    for (std::size_t i = 0; i < 2 * kReplyKeptDepth; ++i)
        deep += "*1\r\n";
    deep += ":1\r\n";
    const auto r = framer.feed(deep);
    REQUIRE(r.status == Status::done);
    CHECK(r.reply.size == deep.size());
    // The next reply frames from scratch, and an ordinary one allocates nothing.
    const auto before = allocations();
    const auto next = framer.feed("*2\r\n*1\r\n:1\r\n$1\r\nx\r\n");
    CHECK(next.status == Status::done);
    CHECK(allocations() == before);
}

TEST_CASE("an error is sticky") {
    ReplyFramer framer;
    REQUIRE(framer.feed("$-2\r\n").status == Status::error);
    const auto again = framer.feed("+OK\r\n");
    CHECK(again.status == Status::error);
    CHECK(again.error.code() == ErrorCode::reply_invalid_length);
}

TEST_CASE("declared sizes cost nothing") {
    static_assert(sizeof(ReplyFramer) < 256);
    ReplyFramer framer;
    const auto before = allocations();
    CHECK(framer.feed("*4294967295\r\n").status == Status::need_more);
    CHECK(ReplyFramer().feed("$4294967296\r\n").status == Status::need_more);
    CHECK(ReplyFramer().feed("%4294967295\r\n").status == Status::need_more);
    CHECK(allocations() == before);
}

TEST_CASE("no allocation on the hot path") {
    std::string stream;
    for (int i = 0; i < 200; ++i)
        stream += "+OK\r\n$100\r\n" + std::string(100, 'v') + "\r\n" + attributed;
    ReplyFramer framer;
    const auto before = allocations();
    std::size_t frames = 0;
    for (std::string_view rest = stream; !rest.empty(); ++frames) {
        const auto r = framer.feed(rest);
        REQUIRE(r.status == Status::done);
        rest.remove_prefix(r.reply.size);
    }
    CHECK(allocations() == before);
    CHECK(frames == 600);
}

TEST_CASE("work is linear in the bytes received") {
    SUBCASE("a 64 MiB value in 16 KiB reads: the payload is never scanned") {
        const std::size_t size = 64 << 20;
        const std::string stream =
            "$" + std::to_string(size) + "\r\n" + std::string(size, 'v') + "\r\n";
        const Run run = run_replies(stream, every(16 << 10, stream.size()));
        CHECK(run.text() == "done " + std::to_string(stream.size()) + " $");
        CHECK(run.scanned < 16);
    }
    SUBCASE("an array of 100000 integers byte by byte") {
        std::string stream = "*100000\r\n";
        for (int i = 0; i < 100000; ++i)
            stream.append(":").append(std::to_string(i)).append("\r\n");
        const Run run = run_replies(stream, every(1, stream.size()));
        CHECK(run.text() == "done " + std::to_string(stream.size()) + " *");
        CHECK(run.scanned <= stream.size());
    }
}

TEST_CASE("random bytes frame the same however they are cut") {
    std::mt19937 rng(20240602);
    const std::string alphabet = "+-:$*%~>|_,#(!=\r\n\r\n\r\n0123456789-?ab";
    for (int round = 0; round < 3000; ++round) {
        std::string stream(rng() % 48, '\0');
        const bool any_byte = round % 4 == 0;
        for (char& c : stream)
            c = any_byte ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
        const Run whole = run_replies(stream, {});
        REQUIRE_MESSAGE(whole.violation.empty(), whole.violation);
        for (const Mode mode : {Mode::hold, Mode::discard}) {
            for (std::size_t cut = 1; cut < stream.size(); ++cut)
                REQUIRE_MESSAGE(run_replies(stream, {cut}, mode).text() == whole.text(),
                                "cut " << cut << " of " << stream);
            REQUIRE(run_replies(stream, every(1, stream.size()), mode).text() == whole.text());
        }
    }
}

TEST_CASE("streaming: large replies pass through a small buffer") {
    SUBCASE("a 64 MiB blob: the caller keeps at most a length line") {
        const std::size_t size = 64 << 20;
        const std::string stream =
            "*2\r\n$" + std::to_string(size) + "\r\n" + std::string(size, 'v') + "\r\n:1\r\n";
        const Run run = run_replies(stream, every(16 << 10, stream.size()), Mode::discard);
        CHECK(run.text() == "done " + std::to_string(stream.size()) + " *");
        CHECK(run.max_held < 16);
    }
    SUBCASE("a 4 MiB status line (a script's) is searched once and kept by none") {
        const std::string stream = "+" + std::string(4 << 20, 's') + "\r\n";
        const Run run = run_replies(stream, every(16 << 10, stream.size()), Mode::discard);
        CHECK(run.text() == "done " + std::to_string(stream.size()) + " +");
        CHECK(run.max_held <= 1);
        CHECK(run.scanned <= stream.size());
    }
    SUBCASE("a blob held back only for its CRLF") {
        ReplyFramer framer;
        CHECK(framer.feed("$5\r\nhel").status == Status::need_more);
        CHECK(framer.droppable() == 7);
        framer.discard(7);
        CHECK(framer.feed("lo\r").status == Status::need_more);
        CHECK(framer.droppable() == 2); // "lo"; the CR waits for its LF
        framer.discard(2);
        const auto r = framer.feed("\r\n");
        REQUIRE(r.status == Status::done);
        CHECK(r.reply.size == 2);
        CHECK(r.reply.type == '$');
    }
    SUBCASE("a simple line past the cap is refused; its start was discarded") {
        ReplyFramer framer;
        const std::string chunk(1 << 20, 'x');
        CHECK(framer.feed("+").status == Status::need_more);
        framer.discard(framer.droppable());
        ReplyResult r;
        for (std::size_t fed = 0; fed <= kMaxReplyLineLen && r.status == Status::need_more;
             fed += chunk.size()) {
            r = framer.feed(chunk);
            framer.discard(framer.droppable());
        }
        REQUIRE(r.status == Status::error);
        CHECK(r.error.code() == ErrorCode::reply_line_too_long);
        CHECK(r.error.offset() == 0);
    }
}
