// The request framer: golden frames fed whole, cut at every point and in pieces
// of every size down to one byte; pipelines; inline quoting; each malformed input
// its own case with Redis 7's exact error text and the offset; the caps, with no
// allocation whatever the wire declares; linear work for large frames.
#include "alloc_counter.hpp"
#include "resp_driver.hpp"

#include <cstdint>
#include <doctest/doctest.h>
#include <random>
#include <string>
#include <type_traits>

using namespace redvip::proxy;
using namespace redvip::proxy::test;
using namespace std::string_literals;

namespace {

// Whole, then cut once at every point, then in pieces of 1..64 bytes, each way
// holding frames whole and streaming them (discarding all it may after each
// read): every way must give the same frames. Returns the whole run's text.
std::string frame_everywhere(const std::string& stream, bool authenticated = true) {
    const Run whole = run_requests(stream, {}, authenticated);
    REQUIRE_MESSAGE(whole.violation.empty(), whole.violation);
    for (const Mode mode : {Mode::hold, Mode::discard}) {
        CAPTURE(static_cast<bool>(mode));
        const Run streamed = run_requests(stream, {}, authenticated, mode);
        CHECK(streamed.text() == whole.text());
        if (stream.size() <= 4096) {
            for (std::size_t cut = 1; cut < stream.size(); ++cut) {
                const Run split = run_requests(stream, {cut}, authenticated, mode);
                if (split.text() != whole.text()) {
                    FAIL_CHECK("cut at " << cut << ": " << split.text() << " vs " << whole.text());
                    break;
                }
            }
        }
        for (std::size_t chunk = 1; chunk <= 64 && chunk < stream.size(); ++chunk) {
            const Run pieces = run_requests(stream, every(chunk, stream.size()), authenticated, mode);
            if (pieces.text() != whole.text()) {
                FAIL_CHECK("pieces of " << chunk << ": " << pieces.text() << " vs " << whole.text());
                break;
            }
        }
    }
    return whole.text();
}

// Appends rather than chains operator+ (g++ 12's -Wrestrict misfires on the chain).
std::string bulk(std::string_view arg) {
    std::string s = "$";
    s.append(std::to_string(arg.size())).append("\r\n").append(arg).append("\r\n");
    return s;
}

std::string command(std::initializer_list<std::string_view> args) {
    std::string s = "*";
    s.append(std::to_string(args.size())).append("\r\n");
    for (auto a : args)
        s += bulk(a);
    return s;
}

struct Golden {
    const char* name;
    std::string input;
    std::string expected;
    bool authenticated = true;
};

void check_goldens(const std::vector<Golden>& table) {
    for (const Golden& g : table) {
        SUBCASE(g.name) {
            CAPTURE(g.input);
            CHECK(frame_everywhere(g.input, g.authenticated) == g.expected);
        }
    }
}

} // namespace

TEST_CASE("multibulk requests") {
    check_goldens({
        {"PING", "*1\r\n$4\r\nPING\r\n", "done 14 argc=1 PING"},
        {"names are uppercased", "*2\r\n$3\r\nget\r\n$1\r\nk\r\n", "done 20 argc=2 GET K"},
        {"binary payload with CRLF and NUL", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n\r\n\0\xff\r\n"s,
         "done 30 argc=3 SET K"},
        {"empty argument", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", "done 20 argc=2 ECHO "},
        {"subcommand", command({"client", "setname", "app"}), "done 38 argc=3 CLIENT SETNAME"},
        {"*0 is skipped without a reply", "*0\r\n", "done 4 argc=0"},
        {"*-1 is skipped", "*-1\r\n", "done 5 argc=0"},
        {"*-10 is skipped", "*-10\r\n", "done 6 argc=0"},
        {"name of 32 bytes", command({std::string(32, 'x')}),
         "done 43 argc=1 " + std::string(32, 'X')},
        {"name of 33 bytes is unknown", command({std::string(33, 'x'), "a"}),
         "done 51 argc=2 <long> A"},
        // Redis skips the byte after a header's CR and the two after a payload
        // without looking; framing them otherwise would part ways with Redis.
        {"any byte after a header CR", "*1\rX$4\rYPING\r\n", "done 14 argc=1 PING"},
        {"payload CRLF unchecked", "*1\r\n$4\r\nPINGxx", "done 14 argc=1 PING"},
        {"incomplete header waits", "*2\r\n$3\r\nGET\r\n$1", "need_more 15"},
        {"CR without the byte after waits", "*1\r", "need_more 3"},
        {"incomplete payload waits", "*1\r\n$4\r\nPIN", "need_more 11"},
        {"payload without its CRLF waits", "*1\r\n$4\r\nPING", "need_more 12"},
    });
}

TEST_CASE("inline requests") {
    check_goldens({
        {"CRLF", "PING\r\n", "done 6 inline argc=1 PING"},
        {"LF alone", "ping\n", "done 5 inline argc=1 PING"},
        {"words", "set k v\r\n", "done 9 inline argc=3 SET K"},
        {"runs of blanks", "  get \t  k  \r\n", "done 14 inline argc=2 GET K"},
        {"empty line is skipped", "\r\n", "done 2 inline argc=0"},
        {"bare LF is skipped", "\n", "done 1 inline argc=0"},
        {"blank line is skipped", " \t \v\f\r\n", "done 7 inline argc=0"},
        {"quoted words", "\"client\" 'setname' x\r\n", "done 22 inline argc=3 CLIENT SETNAME"},
        {"quotes inside a word join it", "a\"b c\"\r\n", "done 8 inline argc=1 AB C"},
        {"empty quoted word", "\"\"\r\n", "done 4 inline argc=1 "},
        {"VT splits no word", "pi\vng\r\n", "done 7 inline argc=1 PI\vNG"},
        {"leading VT is blank", "\vping\r\n", "done 7 inline argc=1 PING"},
        {"CR inside a line splits", "get\rk\r\n", "done 7 inline argc=2 GET K"},
        {"escapes", "echo \"\\x41\\x4a\\q\"\r\n", "done 19 inline argc=2 ECHO AJQ"},
        {"no line end waits", "PING", "need_more 4"},
        {"a '$' line is inline too", "$4\r\n", "done 4 inline argc=1 $4"},
    });
}

TEST_CASE("inline lines up to 64 KiB") {
    const std::string longest = std::string(kMaxInlineLen, 'a') + "\n";
    CHECK(run_requests(longest, {}, true).text() == "done 65537 inline argc=1 <long>");
    CHECK(run_requests(longest, every(1, longest.size()), true).text() ==
          "done 65537 inline argc=1 <long>");
    const std::string too_long = std::string(kMaxInlineLen + 1, 'a') + "\n";
    CHECK(run_requests(too_long, {}, true).text() ==
          "error@0 -ERR Protocol error: too big inline request");
    CHECK(run_requests(too_long, every(1000, too_long.size()), true).text() ==
          "error@0 -ERR Protocol error: too big inline request");
}

TEST_CASE("request_args undoes inline quoting and reads multibulk payloads") {
    CHECK(request_args("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n\r\n\0\xff\r\n"s) ==
          std::vector<std::string>{"SET", "k", "\r\n\0\xff"s});
    CHECK(request_args(R"(set "a\x41\n\"b" 'it\'s' "x\y" '\n')"
                       "\r\n") == std::vector<std::string>{"set", "aA\n\"b", "it's", "xy", "\\n"});
    CHECK(request_args("AUTH pw\n") == std::vector<std::string>{"AUTH", "pw"});
    CHECK(request_args("*0\r\n").empty());
    CHECK(request_args("\r\n").empty());
}

TEST_CASE("pipelines") {
    SUBCASE("multibulk, inline and skipped requests back to back") {
        const std::string stream =
            "*1\r\n$4\r\nPING\r\nPING\r\n*0\r\n" + command({"GET", "k"}) + "\r\n*1\r\n$4\r\nPI";
        CHECK(frame_everywhere(stream) ==
              "done 14 argc=1 PING | done 6 inline argc=1 PING | done 4 argc=0 | "
              "done 20 argc=2 GET K | done 2 inline argc=0 | need_more 10");
    }
    SUBCASE("an error after good frames is reported from its frame's start") {
        CHECK(frame_everywhere("PING\r\n*1\r\n$x\r\n") ==
              "done 6 inline argc=1 PING | error@4 -ERR Protocol error: invalid bulk length");
    }
    SUBCASE("AUTH lifts the unauthenticated caps for what follows") {
        std::string eleven = "*11\r\n";
        for (int i = 0; i < 11; ++i)
            eleven += bulk("a");
        const std::string value(kMaxUnauthenticatedBulkLen + 1, 'v');
        CHECK(frame_everywhere(command({"AUTH", "pw"}) + eleven + command({"SET", "k", value}),
                               false) ==
              "done 22 argc=2 AUTH PW | done 82 argc=11 A A | done 16415 argc=3 SET K");
        CHECK(frame_everywhere(eleven, false) ==
              "error@0 -ERR Protocol error: unauthenticated multibulk length");
    }
}

TEST_CASE("malformed requests") {
    const std::string no_cr(kMaxInlineLen + 1, '1');
    check_goldens({
        {"non-digit count", "*x\r\n", "error@0 -ERR Protocol error: invalid multibulk length"},
        {"empty count", "*\r\n", "error@0 -ERR Protocol error: invalid multibulk length"},
        {"plus sign", "*+1\r\n", "error@0 -ERR Protocol error: invalid multibulk length"},
        {"leading zero", "*01\r\n", "error@0 -ERR Protocol error: invalid multibulk length"},
        {"space in count", "*1 \r\n", "error@0 -ERR Protocol error: invalid multibulk length"},
        {"minus zero", "*-0\r\n", "error@0 -ERR Protocol error: invalid multibulk length"},
        {"count past INT_MAX", "*2147483648\r\n",
         "error@0 -ERR Protocol error: invalid multibulk length"},
        {"count overflowing int64", "*99999999999999999999\r\n",
         "error@0 -ERR Protocol error: invalid multibulk length"},
        {"LF without CR ends no header", "*1\n$4\r\nPING\r\n",
         "error@0 -ERR Protocol error: invalid multibulk length"},
        {"count line never ends", "*" + no_cr,
         "error@0 -ERR Protocol error: too big mbulk count string"},
        {"non-digit bulk length", "*1\r\n$x\r\n",
         "error@4 -ERR Protocol error: invalid bulk length"},
        {"empty bulk length", "*1\r\n$\r\n", "error@4 -ERR Protocol error: invalid bulk length"},
        {"negative bulk length", "*1\r\n$-1\r\n",
         "error@4 -ERR Protocol error: invalid bulk length"},
        {"bulk past 512 MiB", "*1\r\n$536870913\r\n",
         "error@4 -ERR Protocol error: invalid bulk length"},
        {"huge bulk length", "*1\r\n$9223372036854775808\r\n",
         "error@4 -ERR Protocol error: invalid bulk length"},
        {"bulk line never ends", "*1\r\n$" + no_cr,
         "error@4 -ERR Protocol error: too big bulk count string"},
        {"'$' expected", "*1\r\n+OK\r\n", "error@4 -ERR Protocol error: expected '$', got '+'"},
        {"'$' expected after an argument", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
         "error@20 -ERR Protocol error: expected '$', got 'f'"},
        {"'$' expected, got CR, shown as a space", "*1\r\n\r\n",
         "error@4 -ERR Protocol error: expected '$', got ' '"},
        {"inline never ends", std::string(kMaxInlineLen + 1, 'a'),
         "error@0 -ERR Protocol error: too big inline request"},
        {"unterminated double quote", "SET \"a b\r\n",
         "error@4 -ERR Protocol error: unbalanced quotes in request"},
        {"unterminated single quote", "'a\r\n",
         "error@0 -ERR Protocol error: unbalanced quotes in request"},
        {"closing quote glued to a word", "get \"k\"x\r\n",
         "error@4 -ERR Protocol error: unbalanced quotes in request"},
        {"trailing backslash in quotes", "\"a\\\r\n",
         "error@0 -ERR Protocol error: unbalanced quotes in request"},
        {"unauthenticated count", "*11\r\n",
         "error@0 -ERR Protocol error: unauthenticated multibulk length", false},
        {"unauthenticated count past our cap", "*2000000000\r\n",
         "error@0 -ERR Protocol error: unauthenticated multibulk length", false},
        {"unauthenticated count past INT_MAX", "*2147483648\r\n",
         "error@0 -ERR Protocol error: invalid multibulk length", false},
        {"unauthenticated bulk", "*1\r\n$16385\r\n",
         "error@4 -ERR Protocol error: unauthenticated bulk length", false},
        {"unauthenticated invalid bulk", "*1\r\n$536870913\r\n",
         "error@4 -ERR Protocol error: invalid bulk length", false},
    });
}

// Redis finds line ends with strchr, which stops at NUL: it never sees a line end
// behind a NUL, waits, and refuses once 64 KiB are pending. Forwarding such a line
// would leave Redis waiting on a shared connection.
TEST_CASE("a NUL hides the line end as from Redis") {
    const std::string padding(kMaxInlineLen, 'p');
    SUBCASE("count line") {
        CHECK(frame_everywhere("*1\0\r\n$4\r\nPING\r\n"s) == "need_more 15");
        CHECK(run_requests("*1\0\r\n"s + padding, {}, true).text() ==
              "error@0 -ERR Protocol error: too big mbulk count string");
    }
    SUBCASE("bulk line") {
        CHECK(frame_everywhere("*1\r\n$4\0\r\nPING\r\n"s) == "need_more 15");
        CHECK(run_requests("*1\r\n$4\0\r\n"s + padding, {}, true).text() ==
              "error@4 -ERR Protocol error: too big bulk count string");
    }
    SUBCASE("inline") {
        CHECK(frame_everywhere("PI\0NG\r\nPING\r\n"s) == "need_more 13");
        CHECK(run_requests("PI\0NG\r\n"s + padding, every(4096, kMaxInlineLen + 7), true).text() ==
              "error@0 -ERR Protocol error: too big inline request");
    }
    SUBCASE("in a payload it is data") {
        CHECK(frame_everywhere("*1\r\n$2\r\n\0\0\r\n"s) == "done 12 argc=1 \0\0"s);
    }
}

TEST_CASE("an error is sticky") {
    RequestFramer framer(true);
    const auto first = framer.feed("*x\r\n");
    REQUIRE(first.status == Status::error);
    const auto again = framer.feed("*1\r\n$4\r\nPING\r\n");
    CHECK(again.status == Status::error);
    CHECK(again.error.code() == ErrorCode::invalid_multibulk_length);
    CHECK(again.error.offset() == 0);
    CHECK(framer.feed("").status == Status::error);
}

TEST_CASE("declared sizes cost nothing") {
    // Plain integers and fixed arrays: nothing a declared length could size.
    static_assert(std::is_trivially_copyable_v<RequestFramer>);
    static_assert(sizeof(RequestFramer) < 512);

    SUBCASE("*2000000000 costs nothing: it waits for its arguments, as in Redis 7") {
        RequestFramer framer(true);
        const auto before = allocations();
        CHECK(framer.feed("*2000000000\r\n").status == Status::need_more);
        CHECK(framer.feed("*2000000000\r\n$4\r\nSADD\r\n").status == Status::need_more);
        CHECK(allocations() == before);
    }
    SUBCASE("past INT_MAX is refused from 13 bytes") {
        RequestFramer framer(true);
        const auto r = framer.feed("*2147483648\r\n");
        CHECK(r.status == Status::error);
        CHECK(r.error.reply() == "-ERR Protocol error: invalid multibulk length\r\n");
    }
    SUBCASE("the largest count waits for its arguments") {
        RequestFramer framer(true);
        const auto before = allocations();
        CHECK(framer.feed("*2147483647\r\n").status == Status::need_more);
        CHECK(framer.feed("*2147483647\r\n$3\r\nDEL\r\n$1\r\nk\r\n").status == Status::need_more);
        CHECK(allocations() == before);
        CHECK(framer.bytes_scanned() < 64);
    }
    SUBCASE("the largest bulk waits for its bytes; one more is refused") {
        RequestFramer framer(true);
        const auto before = allocations();
        CHECK(framer.feed("*1\r\n$536870912\r\n").status == Status::need_more);
        CHECK(allocations() == before);
        CHECK(run_requests("*1\r\n$536870913\r\n", {}, true).text() ==
              "error@4 -ERR Protocol error: invalid bulk length");
    }
}

TEST_CASE("no allocation on the hot path") {
    std::string stream;
    for (int i = 0; i < 200; ++i)
        stream += command({"SET", "key:" + std::to_string(i), std::string(100, 'v')}) + "GET k\r\n";
    RequestFramer framer(true);
    const auto before = allocations();
    std::size_t frames = 0;
    for (std::string_view rest = stream; !rest.empty(); ++frames) {
        const auto r = framer.feed(rest);
        REQUIRE(r.status == Status::done);
        rest.remove_prefix(r.request.size);
    }
    CHECK(allocations() == before);
    CHECK(frames == 400);
}

TEST_CASE("work is linear in the bytes received") {
    SUBCASE("a 64 MiB value in 16 KiB reads: the payload is never scanned") {
        const std::size_t size = 64 << 20;
        const std::string header =
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + std::to_string(size) + "\r\n";
        std::string stream = header + std::string(size, 'v') + "\r\n";
        const Run run = run_requests(stream, every(16 << 10, stream.size()), true);
        CHECK(run.text() == "done " + std::to_string(stream.size()) + " argc=3 SET K");
        CHECK(run.feeds > 4096);
        CHECK(run.scanned < header.size());
    }
    SUBCASE("a 64 KiB inline line byte by byte") {
        const std::string stream = "SET k " + std::string(kMaxInlineLen - 8, 'v') + "\r\n";
        const Run run = run_requests(stream, every(1, stream.size()), true);
        CHECK(run.text() == "done 65536 inline argc=3 SET K");
        CHECK(run.scanned <= 3 * stream.size());
    }
    SUBCASE("a thousand arguments byte by byte") {
        std::string stream = "*1000\r\n";
        for (int i = 0; i < 1000; ++i)
            stream += bulk(std::to_string(i));
        const Run run = run_requests(stream, every(1, stream.size()), true);
        CHECK(run.text() == "done " + std::to_string(stream.size()) + " argc=1000 0 1");
        CHECK(run.scanned <= 3 * stream.size());
    }
}

TEST_CASE("random bytes frame the same however they are cut") {
    std::mt19937 rng(20240601);
    const std::string alphabet = "*$\r\n\r\n0123456789--  \"'\\xaZ\t"s + '\0';
    for (int round = 0; round < 3000; ++round) {
        std::string stream(rng() % 48, '\0');
        const bool any_byte = round % 4 == 0;
        for (char& c : stream)
            c = any_byte ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
        const bool authenticated = round % 2 == 0;
        const Run whole = run_requests(stream, {}, authenticated);
        REQUIRE_MESSAGE(whole.violation.empty(), whole.violation);
        for (const Mode mode : {Mode::hold, Mode::discard}) {
            for (std::size_t cut = 1; cut < stream.size(); ++cut) {
                const Run split = run_requests(stream, {cut}, authenticated, mode);
                REQUIRE_MESSAGE(split.text() == whole.text(), "cut " << cut << " of " << stream);
            }
            const Run bytes = run_requests(stream, every(1, stream.size()), authenticated, mode);
            REQUIRE(bytes.text() == whole.text());
        }
    }
}

TEST_CASE("streaming: a large request passes through a small buffer") {
    const std::size_t size = 64 << 20;
    const std::string header = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + std::to_string(size) + "\r\n";
    const std::string stream = header + std::string(size, 'v') + "\r\n";
    SUBCASE("the caller keeps at most a header line") {
        const Run run = run_requests(stream, every(16 << 10, stream.size()), true, Mode::discard);
        CHECK(run.text() == "done " + std::to_string(stream.size()) + " argc=3 SET K");
        CHECK(run.max_held < 16);
        CHECK(run.scanned < header.size());
    }
    SUBCASE("the head is known before any of the value, and is what the frame holds") {
        RequestFramer framer(true);
        CHECK(framer.feed(header.substr(0, 17)).status == Status::need_more); // "...$1\r\nk"
        CHECK(framer.head() == nullptr);
        CHECK(framer.feed(header).status == Status::need_more);
        REQUIRE(framer.head() != nullptr);
        CHECK(framer.head()->argc == 3);
        CHECK(framer.head()->name.view() == "SET");
        CHECK(framer.head()->subcommand.view() == "K");
        CHECK(framer.droppable() == header.size());
        framer.discard(header.size());
        CHECK(framer.feed("vvvv").status == Status::need_more);
        CHECK(framer.droppable() == 4);
        framer.discard(3);
        CHECK(framer.droppable() == 1);
        CHECK(framer.head()->name.view() == "SET"); // stable while the frame lasts
    }
    SUBCASE("the head is reset with each frame") {
        RequestFramer framer(true);
        const std::string two = "*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n";
        const auto r = framer.feed(two + header);
        REQUIRE(r.status == Status::done);
        CHECK(framer.head() == nullptr);
        CHECK(framer.feed(header).status == Status::need_more);
        REQUIRE(framer.head() != nullptr);
        CHECK(framer.head()->name.view() == "SET");
    }
}

TEST_CASE("streaming: the head of long or odd frames") {
    SUBCASE("a name past the token cap is final at once, with no subcommand") {
        RequestFramer framer(true);
        CHECK(framer.feed("*3\r\n$40\r\n" + std::string(33, 'x')).status == Status::need_more);
        REQUIRE(framer.head() != nullptr);
        CHECK(framer.head()->name.too_long());
        CHECK(framer.head()->subcommand.view().empty());
    }
    SUBCASE("a subcommand past the cap is final at once") {
        RequestFramer framer(true);
        CHECK(framer.feed("*3\r\n$6\r\nCLIENT\r\n$40\r\n" + std::string(33, 's')).status ==
              Status::need_more);
        REQUIRE(framer.head() != nullptr);
        CHECK(framer.head()->name.view() == "CLIENT");
        CHECK(framer.head()->subcommand.too_long());
    }
    SUBCASE("a single long argument") {
        RequestFramer framer(true);
        CHECK(framer.feed("*1\r\n$100000\r\n" + std::string(100, 'x')).status == Status::need_more);
        REQUIRE(framer.head() != nullptr);
        CHECK(framer.head()->argc == 1);
    }
    SUBCASE("inline requests have none and keep every byte") {
        RequestFramer framer(true);
        CHECK(framer.feed("SET k " + std::string(1000, 'v')).status == Status::need_more);
        CHECK(framer.head() == nullptr);
        CHECK(framer.droppable() == 0);
    }
    SUBCASE("none after an error") {
        RequestFramer framer(true);
        CHECK(framer.feed("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$x\r\n").status == Status::error);
        CHECK(framer.head() == nullptr);
        CHECK(framer.droppable() == 0);
    }
    SUBCASE("an error after a discard is reported where it is in what is left") {
        RequestFramer framer(true);
        const std::string head = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n";
        CHECK(framer.feed(head).status == Status::need_more);
        framer.discard(framer.droppable());
        const auto r = framer.feed("$x\r\n");
        REQUIRE(r.status == Status::error);
        CHECK(r.error.offset() == 0);
        CHECK(r.error.reply() == "-ERR Protocol error: invalid bulk length\r\n");
    }
}
