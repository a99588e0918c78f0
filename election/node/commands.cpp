// The admin socket's commands (commands.hpp).
#include "election/node/commands.hpp"

#include <string>

namespace redvip::election {

namespace {

AdminServer::Handler replying(std::function<void(const nlohmann::json&, SwitchoverReply)> run) {
    return [run = std::move(run)](const nlohmann::json& request, AdminServer::Reply reply) {
        run(request, [reply = std::move(reply)](bool ok, const std::string& text) {
            reply(nlohmann::json{{"ok", ok}, {"text", text}});
        });
    };
}

} // namespace

void serve_node_commands(AdminServer& admin, ControllerDriver& driver,
                         std::function<nlohmann::json()> status) {
    admin.handle("status",
                 [status = std::move(status)](const nlohmann::json&, AdminServer::Reply reply) {
                     reply(status());
                 });
    admin.handle(
        "switchover", replying([&driver](const nlohmann::json& request, SwitchoverReply reply) {
            const auto it = request.find("to");
            driver.switchover(it != request.end() && it->is_string() ? it->get<std::string>()
                                                                     : std::string{},
                              std::move(reply));
        }));
    admin.handle(
        "promote", replying([&driver](const nlohmann::json& request, SwitchoverReply reply) {
            if (!request.value("force", false))
                return reply(
                    false, "promote needs --force: it accepts losing what unreachable peers held");
            driver.force_promotion(std::move(reply));
        }));
}

} // namespace redvip::election
