// The commands the proxy answers itself: QUIT, RESET, anything the serving
// state refuses and, with [proxy] password, AUTH, HELLO's AUTH and anything
// before AUTH.
#include "proxy/redis_texts.hpp"
#include "proxy/session.hpp"

#include <fmt/format.h>

namespace redvip::proxy {

namespace {

// Password comparison that takes the same time wherever the first difference is.
bool same_secret(std::string_view a, std::string_view b) {
    if (b.empty())
        return a.empty();
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ b[i % b.size()]);
    return diff == 0;
}

std::string encode(const std::vector<std::string>& args) {
    std::string out = fmt::format("*{}\r\n", args.size());
    for (const auto& a : args)
        out += fmt::format("${}\r\n{}\r\n", a.size(), a);
    return out;
}

} // namespace

// Commands the proxy answers itself. Every earlier reply has been written.
bool Session::run_local(const Request& request, std::string_view frame) {
    std::string_view name = request.name.view();
    if (name == "QUIT") { // allowed before AUTH, as in Redis
        in_.consume(request.size);
        emit_local("+OK\r\n", true);
        return false;
    }
    // AUTH and HELLO are the proxy's only with [proxy] password (traits_of()).
    const bool own_auth = !w_.shared.config.proxy.password.empty();
    if (name == "AUTH" && own_auth) {
        auto args = request_args(frame);
        in_.consume(request.size);
        return run_auth(args);
    }
    if (!refusal().empty()) { // fenced, held too long, or retired
        in_.consume(request.size);
        // Retired (its state is on the Redis that was master): the error, then
        // the connection closes, so the client reconnects to the new master.
        const bool retire = stale() && w_.state != ServingState::fenced && refusal() == kFencedReply;
        if (retire)
            ++w_.counters.retired_sessions;
        emit_local(count_refusal(), retire);
        return false;
    }
    if (name == "HELLO" && own_auth)
        return run_hello(request_args(frame), request.size);
    in_.consume(request.size);
    if (name == "RESET") {
        // The backend connection's state goes with it; the next command binds
        // a clean one. The client is logged out, as Redis does.
        // (Only with [proxy] password, and replies paired: see traits_of().)
        if (shared())
            drop_link(); // (a shared link holds no state of the session's)
        else
            link_->release(false);
        dirty_ = false;
        authenticated_ = w_.shared.config.proxy.password.empty();
        requests_.set_authenticated(authenticated_);
        emit_local("+RESET\r\n");
        return false;
    }
    emit_local(kNoAuth); // any other command before AUTH
    return false;
}

bool Session::run_auth(const std::vector<std::string>& args) {
    const std::string& password = w_.shared.config.proxy.password;
    if (args.size() < 2 || args.size() > 3) {
        emit_local("-ERR wrong number of arguments for 'auth' command\r\n");
        return false;
    }
    // (Only with [proxy] password: without it AUTH goes to Redis.)
    const bool user_ok = args.size() == 2 || args[1] == "default";
    if (!user_ok || !same_secret(args.back(), password)) {
        ++w_.counters.auth_failures;
        emit_local(kWrongPass);
        return false;
    }
    authenticated_ = true;
    requests_.set_authenticated(true);
    emit_local("+OK\r\n");
    return false;
}

// HELLO [protover [AUTH user pass] [SETNAME name]]: the proxy checks AUTH and
// forwards the rest, so the backend switches protocol and takes the name.
bool Session::run_hello(std::vector<std::string> args, std::size_t frame_size) {
    std::size_t auth_at = 0;
    for (std::size_t i = 2; i + 2 < args.size() && auth_at == 0; ++i)
        if (iequals(args[i], "AUTH"))
            auth_at = i;
    if (auth_at == 0 && !authenticated_) {
        in_.consume(frame_size);
        emit_local(kHelloNoAuth);
        return false;
    }
    if (auth_at != 0) {
        const std::string& password = w_.shared.config.proxy.password;
        const bool ok = args[auth_at + 1] == "default" && same_secret(args[auth_at + 2], password);
        if (!ok) {
            ++w_.counters.auth_failures;
            in_.consume(frame_size);
            emit_local(kWrongPass);
            return false;
        }
        authenticated_ = true;
        requests_.set_authenticated(true);
        args.erase(args.begin() + static_cast<std::ptrdiff_t>(auth_at),
                   args.begin() + static_cast<std::ptrdiff_t>(auth_at + 3));
        std::string rewritten = encode(args);
        in_.replace_front(frame_size, rewritten); // shorter than what it replaces
        frame_size = rewritten.size();
    }
    // Forwarded like any command from here (ready_ is 0: nothing was before it),
    // on a connection of its own: the protocol and the name are its state.
    if (shared())
        pin(PinReason::connection_state);
    bind_link();
    expect(PendingRequest{std::chrono::steady_clock::now(), false, CommandClass::other}, CommandTraits{});
    ready_ = frame_size;
    dirty_ = true;
    return true;
}

} // namespace redvip::proxy
