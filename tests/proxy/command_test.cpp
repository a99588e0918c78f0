// The command table: what each stateful, intercepted, blocking or pub/sub command
// means for the session, subcommand rows over command rows, and the framer's
// uppercase tokens as its keys.
#include "proxy/command.hpp"
#include "proxy/resp_request.hpp"

#include <doctest/doctest.h>

using namespace redvip::proxy;

namespace {

std::uint8_t traits_of(std::string_view name, std::string_view sub = "") {
    return classify(name, sub).bits;
}

constexpr std::uint8_t operator|(Trait a, Trait b) {
    return static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b);
}
constexpr std::uint8_t operator|(std::uint8_t a, Trait b) {
    return a | static_cast<std::uint8_t>(b);
}
constexpr std::uint8_t only(Trait t) {
    return static_cast<std::uint8_t>(t);
}

constexpr auto state = Trait::connection_state;
constexpr auto intercepted = Trait::intercepted;

} // namespace

TEST_CASE("commands that leave state on the backend connection") {
    for (const char* name :
         {"SELECT", "MULTI", "WATCH", "READONLY", "READWRITE", "ASKING", "REPLCONF"}) {
        CAPTURE(name);
        CHECK(traits_of(name) == only(state));
    }
    for (const char* sub : {"SETNAME", "TRACKING", "CACHING", "NO-EVICT", "NO-TOUCH", "SETINFO"}) {
        CAPTURE(sub);
        CHECK(traits_of("CLIENT", sub) == only(state));
    }
    CHECK(traits_of("CLIENT", "REPLY") == (state | Trait::unpaired_replies));
    CHECK(traits_of("MONITOR") == (state | Trait::unpaired_replies));
    CHECK(traits_of("SYNC") == (state | Trait::unpaired_replies));
    CHECK(traits_of("PSYNC") == (state | Trait::unpaired_replies));
}

TEST_CASE("commands the proxy answers itself") {
    CHECK(traits_of("AUTH") == (state | intercepted));
    CHECK(traits_of("HELLO", "3") == (state | intercepted));
    CHECK(traits_of("RESET") == (state | intercepted));
    CHECK(traits_of("QUIT") == only(intercepted));
}

TEST_CASE("blocking commands") {
    for (const char* name : {"BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN",
                             "BZPOPMAX", "BZMPOP", "WAIT", "WAITAOF"}) {
        CAPTURE(name);
        CHECK(traits_of(name) == only(Trait::blocking));
    }
    CHECK(traits_of("XREAD", "BLOCK") == only(Trait::blocking_with_option));
    CHECK(traits_of("XREADGROUP", "GROUP") == only(Trait::blocking_with_option));
}

TEST_CASE("pub/sub commands") {
    for (const char* name : {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"}) {
        CAPTURE(name);
        CHECK(traits_of(name, "news") == (state | Trait::pubsub | Trait::unpaired_replies));
    }
    for (const char* name : {"UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"}) {
        CAPTURE(name);
        CHECK(traits_of(name) == (Trait::pubsub | Trait::unpaired_replies));
    }
}

TEST_CASE("everything else is plain") {
    for (const char* name :
         {"GET", "SET", "EXEC", "DISCARD", "UNWATCH", "PING", "CONFIG", "SCRIPT", "", "ZZZ", "A"}) {
        CAPTURE(name);
        CHECK(classify(name, "").plain());
    }
    CHECK(classify("CLIENT", "").plain());
    CHECK(classify("CLIENT", "LIST").plain());
    CHECK(classify("CLIENT", "GETNAME").plain());
    CHECK(classify("CONFIG", "SET").plain());
    CHECK(classify("SCRIPT", "LOAD").plain());
    // Keys are the framer's uppercase tokens; lowercase never reaches the table.
    CHECK(classify("select", "").plain());
}

TEST_CASE("the framer's tokens are the table's keys") {
    RequestFramer framer(true);
    const auto inline_request = framer.feed("client setname app\r\n");
    REQUIRE(inline_request.status == Status::done);
    CHECK(classify(inline_request.request.name.view(), inline_request.request.subcommand.view())
              .has(state));
    const auto multibulk = framer.feed("*2\r\n$6\r\nselect\r\n$1\r\n1\r\n");
    REQUIRE(multibulk.status == Status::done);
    CHECK(classify(multibulk.request.name.view(), multibulk.request.subcommand.view()).has(state));
}
