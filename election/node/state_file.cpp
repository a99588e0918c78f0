// The state file (state_file.hpp): a pure JSON codec, then write-fsync-rename
// so that a crash at any point leaves either the old state or the new one.
#include "election/node/state_file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <limits>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

namespace redvip::election {
namespace {

using nlohmann::json;

constexpr int kVersion = 1;
constexpr std::size_t kMaxField = 256; // names, endpoints and replids are far shorter

std::string errno_text(const std::string& what, const std::string& path, int err) {
    return fmt::format("{} {}: {}", what, path, std::strerror(err));
}

// Each reader: nullopt when fine, else the reason.
std::optional<std::string> read_string(const json& doc, const char* key, std::string& out) {
    auto it = doc.find(key);
    if (it == doc.end())
        return fmt::format("{}: missing", key);
    if (!it->is_string() || it->get_ref<const std::string&>().size() > kMaxField)
        return fmt::format("{}: expected a string of at most {} bytes", key, kMaxField);
    out = it->get<std::string>();
    return std::nullopt;
}

template <typename T>
std::optional<std::string> read_count(const json& doc, const char* key, T& out) {
    auto it = doc.find(key);
    if (it == doc.end())
        return fmt::format("{}: missing", key);
    // nlohmann stores non-negative integers as unsigned; floats, negatives and
    // strings are not counts.
    if (!it->is_number_unsigned() || it->get<std::uint64_t>() > std::uint64_t(std::numeric_limits<T>::max()))
        return fmt::format("{}: expected an integer between 0 and {}", key, std::numeric_limits<T>::max());
    out = static_cast<T>(it->get<std::uint64_t>());
    return std::nullopt;
}

bool is_replid(std::string_view text) {
    if (text.empty())
        return true;
    if (text.size() != 40)
        return false;
    for (char c : text)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

// Writes all of text to fd, retrying short writes and EINTR; 0 or errno.
int write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        text.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

// mkdir -p with mode 0700 for what it creates; nullopt or the error text.
std::optional<std::string> make_dirs(const std::string& dir) {
    for (std::size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
        std::string prefix = dir.substr(0, slash);
        if (!prefix.empty() && ::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST)
            return errno_text("cannot create directory", prefix, errno);
        if (slash == std::string::npos)
            break;
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0)
        return errno_text("cannot create directory", dir, errno);
    if (!S_ISDIR(st.st_mode))
        return errno_text("cannot create directory", dir, ENOTDIR);
    return std::nullopt;
}

// Writes and fsyncs path; on failure removes it. nullopt or the error text.
std::optional<std::string> write_synced(const std::string& path, std::string_view text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errno_text("cannot create", path, errno);
    std::optional<std::string> error;
    if (int err = write_all(fd, text))
        error = errno_text("cannot write", path, err);
    else if (::fsync(fd) != 0)
        error = errno_text("cannot fsync", path, errno);
    if (::close(fd) != 0 && !error)
        error = errno_text("cannot close", path, errno);
    if (error)
        ::unlink(path.c_str());
    return error;
}

} // namespace

std::string encode_node_state(const NodeState& state) {
    json doc = {
        {"version", kVersion},         {"last_master", state.last_master}, {"master_redis", state.master_redis},
        {"replid", state.replid},      {"offset", state.offset},           {"epoch", state.epoch},
    };
    // Invalid UTF-8 (never expected here) is replaced rather than thrown.
    return doc.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

NodeStateDecode decode_node_state(std::string_view text) {
    auto fail = [](std::string why) { return NodeStateDecode{std::nullopt, std::move(why)}; };
    if (text.size() > kMaxNodeStateBytes)
        return fail(fmt::format("{} bytes, more than the {} a state file can hold", text.size(), kMaxNodeStateBytes));
    json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded())
        return fail(text.empty() ? "empty" : "not valid JSON (truncated or overwritten?)");
    if (!doc.is_object())
        return fail("not a JSON object");
    auto version = doc.find("version");
    if (version == doc.end() || !version->is_number_unsigned() || version->get<std::uint64_t>() != kVersion)
        return fail(fmt::format("version: expected {}, not {}", kVersion,
                                version == doc.end() ? "missing"
                                                     : version->dump(-1, ' ', false, json::error_handler_t::replace)));
    NodeState state;
    std::optional<std::string> why;
    (void)((why = read_string(doc, "last_master", state.last_master)) ||
           (why = read_string(doc, "master_redis", state.master_redis)) ||
           (why = read_string(doc, "replid", state.replid)) || (why = read_count(doc, "offset", state.offset)) ||
           (why = read_count(doc, "epoch", state.epoch)));
    if (why)
        return fail(*why);
    if (!is_replid(state.replid))
        return fail(fmt::format("replid: expected 40 lowercase hex digits or \"\", not \"{}\"", state.replid));
    return NodeStateDecode{std::move(state), {}};
}

std::optional<std::string> save_node_state(const std::string& dir, const NodeState& state) {
    if (auto error = make_dirs(dir))
        return error;
    const std::string path = dir + "/state.json";
    const std::string tmp = path + ".tmp";
    if (auto error = write_synced(tmp, encode_node_state(state)))
        return error;
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return fmt::format("cannot rename {} to {}: {}", tmp, path, std::strerror(err));
    }
    // The rename is durable only once the directory entry is.
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno_text("cannot open directory", dir, errno);
    std::optional<std::string> error;
    if (::fsync(fd) != 0)
        error = errno_text("cannot fsync directory", dir, errno);
    ::close(fd);
    return error;
}

NodeStateLoad load_node_state(const std::string& dir) {
    using Status = NodeStateLoad::Status;
    const std::string path = dir + "/state.json";
    auto fail = [&](std::string why) { return NodeStateLoad{Status::error, {}, std::move(why)}; };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return NodeStateLoad{Status::none, {}, {}};
        return fail(errno_text("cannot open", path, errno));
    }
    // Read at most one byte past the cap: enough to tell that it is too long.
    std::string text(kMaxNodeStateBytes + 1, '\0');
    std::size_t used = 0;
    int err = 0;
    while (used < text.size()) {
        ssize_t n = ::read(fd, text.data() + used, text.size() - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? errno : 0;
            break;
        }
        used += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (err)
        return fail(errno_text("cannot read", path, err));
    text.resize(used);
    auto decoded = decode_node_state(text);
    if (!decoded)
        return fail(fmt::format("{}: corrupt: {}", path, decoded.error));
    return NodeStateLoad{Status::loaded, std::move(*decoded.state), {}};
}

} // namespace redvip::election
