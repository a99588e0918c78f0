// The node's pure rules: which completed transition fires which hook, the
// state file's epoch, and the order a node stops in.
#include "election/node/daemon.hpp"
#include "election/node/records.hpp"

#include <doctest/doctest.h>
#include <string>
#include <vector>

using namespace redvip::election;

TEST_CASE("each completed transition fires its hook, with whom it names as master") {
    const std::string self = "a";
    CHECK(hook_for({Goal::master, "", "elected"}, self) == HookCall{HookEvent::master, "a"});
    CHECK(hook_for({Goal::backup, "b", "b is master"}, self) == HookCall{HookEvent::backup, "b"});
    CHECK(hook_for({Goal::fault, "", "redis down"}, self) == HookCall{HookEvent::fault, ""});
    // A completed switchover leaves this node fenced, following nobody yet.
    CHECK(hook_for({Goal::handoff, "b", "switchover"}, self) == HookCall{HookEvent::fault, "b"});
    CHECK(hook_for({Goal::stopped, "b", "shutdown"}, self) == HookCall{HookEvent::stop, "b"});
    CHECK_FALSE(hook_for({Goal::none, "", ""}, self).has_value());
}

TEST_CASE("the state file's epoch counts changes of master, none included") {
    NodeState s;
    s = next_node_state(s, {"a", "10.77.0.1:6379", std::string(40, 'a'), 100});
    CHECK(s == NodeState{"a", "10.77.0.1:6379", std::string(40, 'a'), 100, 1});
    // The same master again (a repair, a second transition): same epoch,
    // the newest offset.
    s = next_node_state(s, {"a", "10.77.0.1:6379", std::string(40, 'a'), 250});
    CHECK(s.epoch == 1);
    CHECK(s.offset == 250);
    // Facts not read: replid and offset stay.
    s = next_node_state(s, {"b", "10.77.0.2:6379", std::nullopt, 0});
    CHECK(s == NodeState{"b", "10.77.0.2:6379", std::string(40, 'a'), 250, 2});
    s = next_node_state(s, {"", "", std::nullopt, 0}); // fault: following nobody
    CHECK(s.epoch == 3);
    CHECK(s.last_master.empty());
    s = next_node_state(s, {"b", "10.77.0.2:6379", std::nullopt, 0});
    CHECK(s.epoch == 4);
}

TEST_CASE("a node stops in order: resign, settle, release the VIP, close") {
    std::vector<std::string> seen;
    std::vector<std::function<void()>> pending; // each stage completes later, as the real ones do
    auto stage = [&](std::string name) {
        return [&, name](std::function<void()> next) {
            seen.push_back(name);
            pending.push_back(std::move(next));
        };
    };
    stop_node(
        {stage("resign"), stage("settle"), stage("release_vip"), [&] { seen.push_back("close"); }});
    for (std::size_t i = 0; i < pending.size(); ++i) {
        CHECK(seen.size() == i + 1); // nothing runs ahead of the stage before it
        pending[i]();
    }
    CHECK(seen == std::vector<std::string>{"resign", "settle", "release_vip", "close"});
}
