// The state file: the pure codec's accept and reject paths, then the atomic
// save/load adapter in temporary directories.
#include "election/node/state_file.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/resource.h>
#include <sys/stat.h>

using namespace redvip::election;
namespace fs = std::filesystem;

namespace {

const NodeState kState{"redis-b", "10.77.0.2:6379", "8e3c2b1d9f0a4c5e6b7a8d9c0e1f2a3b4c5d6e7f", 123456789, 42};

// A fresh directory under the system's temp dir, removed at the end.
struct TempDir {
    fs::path path;
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "redvip-state-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    std::string str() const { return path.string(); }
};

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string decode_error(std::string_view text) {
    auto r = decode_node_state(text);
    CHECK_FALSE(r.state.has_value());
    return r.error;
}

} // namespace

TEST_CASE("node state: encode and decode round-trip") {
    auto text = encode_node_state(kState);
    CHECK(text == "{\"epoch\":42,\"last_master\":\"redis-b\",\"master_redis\":\"10.77.0.2:6379\",\"offset\":123456789,"
                  "\"replid\":\"8e3c2b1d9f0a4c5e6b7a8d9c0e1f2a3b4c5d6e7f\",\"version\":1}\n");
    auto decoded = decode_node_state(text);
    REQUIRE_MESSAGE(decoded, decoded.error);
    CHECK(*decoded.state == kState);

    NodeState empty; // nothing known yet is a valid state too
    auto again = decode_node_state(encode_node_state(empty));
    REQUIRE_MESSAGE(again, again.error);
    CHECK(*again.state == empty);

    NodeState big = kState;
    big.offset = std::numeric_limits<std::int64_t>::max();
    big.epoch = std::numeric_limits<std::uint64_t>::max();
    CHECK(*decode_node_state(encode_node_state(big)).state == big);

    // Unknown keys are a newer redvip's: ignored.
    auto newer = decode_node_state(R"({"version":1,"last_master":"a","master_redis":"","replid":"","offset":1,
                                       "epoch":2,"added_later":[1,2]})");
    REQUIRE_MESSAGE(newer, newer.error);
    CHECK(newer.state->epoch == 2);
}

TEST_CASE("node state: decode rejects garbage, truncation and wrong types with a reason") {
    const std::string good = encode_node_state(kState);
    CHECK(decode_error("") == "empty");
    CHECK(decode_error("\x7f" "ELF\x02\x01") == "not valid JSON (truncated or overwritten?)");
    for (std::size_t cut = 0; cut + 1 < good.size(); ++cut) { // every truncation: "}\n" is the last useful byte
        CAPTURE(cut);
        CHECK_FALSE(decode_node_state(good.substr(0, cut)).state.has_value());
    }
    CHECK(decode_error(good.substr(0, good.size() / 2)) == "not valid JSON (truncated or overwritten?)");
    CHECK(decode_error("[1,2]") == "not a JSON object");
    CHECK(decode_error("null") == "not a JSON object");
    CHECK(decode_error(R"({"last_master":"a"})") == "version: expected 1, not missing");
    CHECK(decode_error(R"({"version":2})") == "version: expected 1, not 2");
    CHECK(decode_error(R"({"version":"1"})") == "version: expected 1, not \"1\"");

    const std::string base = R"({"version":1,"last_master":"a","master_redis":"10.0.0.1:6379","replid":"")";
    CHECK(decode_error(base + R"(,"offset":1})") == "epoch: missing");
    CHECK(decode_error(R"({"version":1,"master_redis":"","replid":"","offset":1,"epoch":1})") ==
          "last_master: missing");
    CHECK(decode_error(base + R"(,"offset":"5","epoch":1})") ==
          "offset: expected an integer between 0 and 9223372036854775807");
    CHECK(decode_error(base + R"(,"offset":-5,"epoch":1})") ==
          "offset: expected an integer between 0 and 9223372036854775807");
    CHECK(decode_error(base + R"(,"offset":1.5,"epoch":1})") ==
          "offset: expected an integer between 0 and 9223372036854775807");
    CHECK(decode_error(base + R"(,"offset":9223372036854775808,"epoch":1})") ==
          "offset: expected an integer between 0 and 9223372036854775807");
    CHECK(decode_error(base + R"(,"offset":1,"epoch":true})") ==
          "epoch: expected an integer between 0 and 18446744073709551615");
    CHECK(decode_error(R"({"version":1,"last_master":7,"master_redis":"","replid":"","offset":1,"epoch":1})") ==
          "last_master: expected a string of at most 256 bytes");
    CHECK(decode_error(R"({"version":1,"last_master":"a","master_redis":"","replid":"XYZ","offset":1,"epoch":1})") ==
          "replid: expected 40 lowercase hex digits or \"\", not \"XYZ\"");
    CHECK(decode_error(std::string(kMaxNodeStateBytes + 1, ' ')) ==
          "65537 bytes, more than the 65536 a state file can hold");
}

TEST_CASE("node state: save then load, in a directory it creates with mode 0700") {
    TempDir tmp;
    const std::string dir = tmp.str() + "/var/lib/redvip";
    REQUIRE_FALSE(save_node_state(dir, kState).has_value());
    struct stat st {};
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    REQUIRE(::stat((dir + "/state.json").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK_FALSE(fs::exists(dir + "/state.json.tmp"));

    auto loaded = load_node_state(dir);
    REQUIRE_MESSAGE(loaded.status == NodeStateLoad::Status::loaded, loaded.error);
    CHECK(loaded.state == kState);

    NodeState next = kState;
    next.epoch = 43;
    next.last_master = "redis-a";
    REQUIRE_FALSE(save_node_state(dir, next).has_value()); // replaces
    CHECK(load_node_state(dir).state == next);
}

TEST_CASE("node state: no file yet is 'none', not an error") {
    TempDir tmp;
    auto loaded = load_node_state(tmp.str());
    CHECK(loaded.status == NodeStateLoad::Status::none);
    CHECK(loaded.error.empty());
    CHECK(load_node_state(tmp.str() + "/missing-dir").status == NodeStateLoad::Status::none);
    // A tmp file a crash left behind is not the state.
    write_file(tmp.path / "state.json.tmp", encode_node_state(kState));
    CHECK(load_node_state(tmp.str()).status == NodeStateLoad::Status::none);
}

TEST_CASE("node state: a corrupt or truncated file is an error the caller can log") {
    TempDir tmp;
    const std::string path = tmp.str() + "/state.json";
    write_file(path, "garbage\n");
    auto loaded = load_node_state(tmp.str());
    CHECK(loaded.status == NodeStateLoad::Status::error);
    CHECK(loaded.error == path + ": corrupt: not valid JSON (truncated or overwritten?)");

    const std::string good = encode_node_state(kState);
    write_file(path, good.substr(0, 30));
    loaded = load_node_state(tmp.str());
    CHECK(loaded.status == NodeStateLoad::Status::error);
    CHECK(loaded.error == path + ": corrupt: not valid JSON (truncated or overwritten?)");

    write_file(path, "");
    CHECK(load_node_state(tmp.str()).error == path + ": corrupt: empty");

    write_file(path, std::string(kMaxNodeStateBytes + 10, 'x'));
    CHECK(load_node_state(tmp.str()).error ==
          path + ": corrupt: 65537 bytes, more than the 65536 a state file can hold");

    fs::remove(path);
    fs::create_directory(path); // unreadable as a file
    loaded = load_node_state(tmp.str());
    CHECK(loaded.status == NodeStateLoad::Status::error);
    CHECK(loaded.error == "cannot read " + path + ": Is a directory");
}

TEST_CASE("node state: a directory that cannot be made is an error text") {
    TempDir tmp;
    write_file(tmp.path / "file", "x");
    auto error = save_node_state(tmp.str() + "/file/sub", kState);
    REQUIRE(error.has_value());
    CHECK(*error == "cannot create directory " + tmp.str() + "/file/sub: Not a directory");
    error = save_node_state(tmp.str() + "/file", kState);
    REQUIRE(error.has_value());
    CHECK(*error == "cannot create directory " + tmp.str() + "/file: Not a directory");
}

TEST_CASE("node state: a failed save leaves the old state.json and no tmp file") {
    TempDir tmp;
    const std::string dir = tmp.str();
    REQUIRE_FALSE(save_node_state(dir, kState).has_value());
    const std::string before = read_file(tmp.path / "state.json");
    NodeState next = kState;
    next.epoch = 99;

    SUBCASE("the write fails (file size limit: EFBIG)") {
        struct rlimit old {};
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
        auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
        struct rlimit tiny = old;
        tiny.rlim_cur = 16; // fewer bytes than a state
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &tiny) == 0);
        auto error = save_node_state(dir, next);
        ::setrlimit(RLIMIT_FSIZE, &old);
        std::signal(SIGXFSZ, old_handler);
        REQUIRE(error.has_value());
        CHECK(*error == "cannot write " + dir + "/state.json.tmp: File too large");
    }
    SUBCASE("the tmp file cannot be created") {
        fs::create_directory(tmp.path / "state.json.tmp");
        auto error = save_node_state(dir, next);
        REQUIRE(error.has_value());
        CHECK(*error == "cannot create " + dir + "/state.json.tmp: Is a directory");
        fs::remove(tmp.path / "state.json.tmp");
    }
    SUBCASE("the rename fails") {
        // state.json replaced by a non-empty directory: rename cannot replace it.
        fs::remove(tmp.path / "state.json");
        fs::create_directories(tmp.path / "state.json" / "x");
        auto error = save_node_state(dir, next);
        REQUIRE(error.has_value());
        CHECK(*error == "cannot rename " + dir + "/state.json.tmp to " + dir + "/state.json: Is a directory");
        CHECK(fs::is_directory(tmp.path / "state.json"));
        CHECK_FALSE(fs::exists(tmp.path / "state.json.tmp"));
        return;
    }
    CHECK_FALSE(fs::exists(tmp.path / "state.json.tmp"));
    CHECK(read_file(tmp.path / "state.json") == before);
    CHECK(load_node_state(dir).state == kState);
}
