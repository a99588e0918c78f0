// The admin socket's commands: status, switchover and promote, served by the
// role driver and a status source the daemon hands in.
#pragma once

#include "election/node/admin.hpp"
#include "election/role/driver.hpp"

#include <functional>
#include <nlohmann/json.hpp>

namespace redvip::election {

// Registers on `admin` (before its start()):
//   status                  -> status(), the node's status as JSON
//   switchover [to: name]   -> {ok, text} once the peer holds the role or it failed
//   promote force: true     -> {ok, text}; without force, refused with the reason
void serve_node_commands(AdminServer& admin, ControllerDriver& driver,
                         std::function<nlohmann::json()> status);

} // namespace redvip::election
