// The node's status rendered as JSON, as a text table and as metric
// families (status.hpp).
#include "election/node/status.hpp"

#include <algorithm>
#include <ctime>
#include <fmt/format.h>
#include <initializer_list>

namespace redvip::election {

using nlohmann::json;

namespace {

double to_ms(Duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

std::string_view status_state_name(State state) {
    switch (state) {
    case State::initialize:
        return "INIT";
    case State::backup:
        return "BACKUP";
    case State::master:
        return "MASTER";
    case State::fault:
        return "FAULT";
    }
    return "?";
}

json step_json(const StepRecord& s) {
    json out = {{"name", s.name},
                {"status", to_string(s.status)},
                {"attempts", s.attempts},
                {"duration_ms", to_ms(s.took)}};
    if (!s.error.empty()) out["error"] = s.error;
    return out;
}

json transition_json(const RoleTransition& t, const StatusClock& clock) {
    json steps = json::array();
    for (const auto& s : t.steps)
        steps.push_back(step_json(s));
    json out = {{"time", clock.format(t.started)},
                {"goal", to_string(t.goal)},
                {"master", t.master ? json(t.master->to_string()) : json(nullptr)},
                {"cause", t.cause},
                {"outcome", to_string(t.outcome)},
                {"duration_ms", t.finished ? json(to_ms(*t.finished - t.started)) : json(nullptr)},
                {"steps", steps}};
    return out;
}

json facts_json(const std::optional<ReplicationFacts>& f) {
    if (!f) return nullptr;
    json out = {{"role", proxy::redis_name(f->role)},
                {"master_replid", f->master_replid},
                {"master_repl_offset", f->master_repl_offset},
                {"connected_slaves", f->connected_slaves}};
    if (f->role == RedisRole::replica) {
        out["master_host"] = f->master_host;
        out["master_port"] = f->master_port;
        out["master_link_status"] =
            f->master_link_status ? json(proxy::to_string(*f->master_link_status)) : json(nullptr);
    }
    return out;
}

json health_json(const HealthStatus& h) {
    return {{"ok", h.ok},
            {"fault", h.fault},
            {"effective_priority", h.effective_priority},
            {"consecutive_ok", h.consecutive_ok},
            {"consecutive_failed", h.consecutive_failed},
            {"last_error", h.last_error},
            {"role_fault_reason", h.role_fault_reason},
            {"link_down", h.link_down},
            {"link_down_reason", h.link_down_reason},
            {"rise", h.rise},
            {"fall", h.fall},
            {"weight", h.weight}};
}

} // namespace

std::string StatusClock::format(TimePoint t) const {
    const auto wall =
        wall_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(steady_now - t);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch());
    const std::time_t seconds = static_cast<std::time_t>(ms.count() / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                       ms.count() % 1000);
}

json election_status(const ElectionStatus& s, const StatusClock& clock) {
    json transitions = json::array();
    for (const auto& t : s.transitions)
        transitions.push_back({{"time", clock.format(t.at)},
                               {"from", status_state_name(t.from)},
                               {"to", status_state_name(t.to)},
                               {"reason", to_string(t.reason)}});
    json discards = json::object();
    for (std::size_t i = 0; i < kDiscardReasonCount; ++i) {
        const auto reason = static_cast<DiscardReason>(i);
        discards[std::string(mib_name(reason))] = s.discards[reason];
    }
    json master = nullptr;
    if (s.master)
        master = {{"address", to_string(s.master->address)}, {"priority", s.master->priority}};
    return {{"vrrp_state", status_state_name(s.state)},
            {"priority", s.base_priority},
            {"effective_priority", s.effective_priority},
            {"master", master},
            {"transitions", transitions},
            {"discards", discards},
            {"vrrp_counters",
             {{"datagrams_received", s.counters.datagrams_received},
              {"adverts_accepted", s.counters.adverts_accepted},
              {"adverts_sent", s.counters.adverts_sent},
              {"send_errors", s.counters.send_errors},
              {"unknown_peer", s.counters.unknown_peer}}}};
}

static json peers_json(const std::vector<PeerFacts>& peers) {
    json out = json::array();
    for (const auto& p : peers)
        out.push_back({{"name", p.name},
                       {"redis", p.redis.to_string()},
                       {"reachable", p.facts.has_value()},
                       {"error", p.facts ? std::string{} : p.error},
                       {"replication", facts_json(p.facts)}});
    return out;
}

json role_status_json(const RoleStatus& c, const StatusClock& clock) {
    json history = json::array();
    json last_done = nullptr;
    for (const auto& t : c.transitions) {
        history.push_back(transition_json(t, clock));
        if (t.outcome == Outcome::done) last_done = history.back();
    }
    json steps = json::array();
    if (!c.transitions.empty())
        for (const auto& s : c.transitions.back().steps)
            steps.push_back(step_json(s));
    return {{"proxy_state", to_string(c.proxy_mode)},
            {"vip_held", c.vip_held},
            {"redis_role", facts_json(c.facts)},
            {"role_goal", to_string(c.goal)},
            {"role_master", c.goal_master ? json(c.goal_master->to_string()) : json(nullptr)},
            {"role_fault", c.role_fault},
            {"role_settled", c.settled},
            {"role_steps", steps},
            {"role_last_transition", last_done},
            {"role_transitions", history},
            {"health", health_json(c.health)},
            {"eligible", c.eligibility.eligible},
            {"eligibility_reason", c.eligibility.reason},
            {"ineligible_why", to_string(c.eligibility.why)},
            {"preempt_suspended", c.preempt_suspended},
            {"witness_ok", c.witness_ok},
            {"switchover_running", c.switchover_running},
            {"divergent_bytes_total", c.divergent_bytes_total},
            {"last_divergence", c.last_divergence},
            {"peers", peers_json(c.peers)}};
}

json to_json(const NodeStatus& s, const StatusClock& clock) {
    json out = election_status(s.election, clock);
    out.update(role_status_json(s.role, clock));
    out["node"] = s.node;
    out["proxy_serving_state"] = s.proxy_state;
    const auto& v = s.vip;
    out["vip_counters"] = {{"addresses_added", v.addresses_added},
                           {"addresses_removed", v.addresses_removed},
                           {"garp_sent", v.garp_sent},
                           {"na_sent", v.na_sent},
                           {"announce_errors", v.announce_errors},
                           {"repairs", v.repairs},
                           {"link_down", v.link_down},
                           {"netlink_overruns", v.netlink_overruns}};
    const auto& h = s.hooks;
    out["hook_counters"] = {{"started", h.started},
                            {"succeeded", h.succeeded},
                            {"failed", h.failed},
                            {"timed_out", h.timed_out},
                            {"dropped", h.dropped}};
    return out;
}

// ---- the text table -----------------------------------------------------------

namespace {

// A value as text: strings bare, numbers as they are, null as "-".
std::string text(const json& v) {
    if (v.is_null()) return "-";
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_float()) return fmt::format("{:.1f}", v.get<double>());
    return v.dump();
}

const json& at(const json& object, const char* key) {
    static const json null_value = nullptr;
    if (!object.is_object()) return null_value;
    const auto it = object.find(key);
    return it == object.end() ? null_value : *it;
}

void row(std::string& out, std::string_view name, const std::string& value) {
    out += fmt::format("{:<20}{}\n", name, value);
}

std::string redis_text(const json& r) {
    if (r.is_null()) return "- (not read yet)";
    std::string role = text(at(r, "role"));
    if (role == "slave")
        return fmt::format("replica of {}:{}, link {}, offset {}", text(at(r, "master_host")),
                           text(at(r, "master_port")), text(at(r, "master_link_status")),
                           text(at(r, "master_repl_offset")));
    return fmt::format("{}, offset {}, {} replica(s)", role, text(at(r, "master_repl_offset")),
                       text(at(r, "connected_slaves")));
}

std::string steps_text(const json& steps) {
    std::string out;
    for (const auto& s : steps.is_array() ? steps : json::array()) {
        if (!out.empty()) out += ", ";
        out += fmt::format("{} {} ms", text(at(s, "name")), text(at(s, "duration_ms")));
        if (text(at(s, "status")) != "done") out += " (" + text(at(s, "status")) + ")";
    }
    return out.empty() ? "-" : out;
}

std::string health_text(const json& h) {
    if (h.is_null()) return "-";
    if (at(h, "fault").is_boolean() && at(h, "fault").get<bool>()) {
        const auto& role_reason = at(h, "role_fault_reason");
        const bool role = role_reason.is_string() && !role_reason.get<std::string>().empty();
        return "FAULT: " + text(role ? role_reason : at(h, "last_error"));
    }
    if (at(h, "ok").is_boolean() && !at(h, "ok").get<bool>())
        return "failing: " + text(at(h, "last_error")) + " (priority " +
               text(at(h, "effective_priority")) + ")";
    return fmt::format("ok ({} good checks in a row)", text(at(h, "consecutive_ok")));
}

void election_rows(std::string& out, const json& s) {
    if (!at(s, "vrrp_state").is_null())
        row(out, "VRRP state",
            fmt::format("{} (priority {}, effective {})", text(at(s, "vrrp_state")),
                        text(at(s, "priority")), text(at(s, "effective_priority"))));
    const auto& master = at(s, "master");
    if (master.is_object())
        row(out, "master",
            fmt::format("{} (priority {})", text(at(master, "address")),
                        text(at(master, "priority"))));
}

void list_rows(std::string& out, const json& s) {
    const auto& transitions = at(s, "transitions");
    if (transitions.is_array() && !transitions.empty()) {
        out += "VRRP transitions\n";
        for (const auto& t : transitions)
            out += fmt::format("  {}  {} -> {}  {}\n", text(at(t, "time")), text(at(t, "from")),
                               text(at(t, "to")), text(at(t, "reason")));
    }
    const auto& discards = at(s, "discards");
    if (discards.is_object()) {
        std::string counts;
        for (const auto& [reason, count] : discards.items())
            if (!count.is_number() || count.get<std::uint64_t>() != 0)
                counts += fmt::format("  {} {}\n", reason, text(count));
        out += counts.empty() ? "discards            none\n" : "discards\n" + counts;
    }
}

} // namespace

std::string render_status_text(const json& s) {
    std::string out;
    election_rows(out, s);
    if (!at(s, "proxy_state").is_null()) row(out, "proxy", text(at(s, "proxy_state")));
    if (at(s, "vip_held").is_boolean())
        row(out, "VIP", at(s, "vip_held").get<bool>() ? "held" : "not held");
    if (s.contains("redis_role")) row(out, "Redis", redis_text(at(s, "redis_role")));
    if (!at(s, "role_goal").is_null()) {
        std::string goal = text(at(s, "role_goal"));
        if (!at(s, "role_master").is_null()) goal += " of " + text(at(s, "role_master"));
        if (at(s, "role_settled").is_boolean() && !at(s, "role_settled").get<bool>())
            goal += " (in progress)";
        row(out, "role", goal);
        row(out, "  steps", steps_text(at(s, "role_steps")));
    }
    const auto& last = at(s, "role_last_transition");
    if (last.is_object())
        row(out, "last transition",
            fmt::format("{} at {} in {} ms", text(at(last, "goal")), text(at(last, "time")),
                        text(at(last, "duration_ms"))));
    if (s.contains("health")) row(out, "health", health_text(at(s, "health")));
    list_rows(out, s);
    return out;
}

// ---- metrics ---------------------------------------------------------------------

namespace {

struct Counter {
    const char* name;
    const char* help;
    std::uint64_t value;
};

void counters(const MetricsWriter& out, std::initializer_list<Counter> list) {
    for (const auto& c : list) {
        out.family(c.name, "counter", c.help);
        out.sample(c.name, "", c.value);
    }
}

void gauge(const MetricsWriter& out, const char* name, const char* help, std::uint64_t value) {
    out.family(name, "gauge", help);
    out.sample(name, "", value);
}

void election_metrics(const ElectionStatus& s, const MetricsWriter& out) {
    out.family("redvip_vrrp_state", "gauge", "1 for the VRRP state this node is in");
    for (State state : {State::initialize, State::backup, State::master, State::fault})
        out.sample("redvip_vrrp_state", fmt::format("state=\"{}\"", status_state_name(state)),
                   std::uint64_t{s.state == state});
    out.family("redvip_vrrp_priority", "gauge", "Configured and effective VRRP priority");
    out.sample("redvip_vrrp_priority", "kind=\"base\"", s.base_priority);
    out.sample("redvip_vrrp_priority", "kind=\"effective\"", s.effective_priority);
    out.family("redvip_vrrp_discards_total", "counter",
               "VRRP packets discarded, by RFC 6527 reason");
    for (std::size_t i = 0; i < kDiscardReasonCount; ++i) {
        const auto reason = static_cast<DiscardReason>(i);
        out.sample("redvip_vrrp_discards_total", fmt::format("reason=\"{}\"", mib_name(reason)),
                   s.discards[reason]);
    }
    const auto& c = s.counters;
    counters(
        out,
        {{"redvip_vrrp_datagrams_received_total", "Datagrams the VRRP socket received",
          c.datagrams_received},
         {"redvip_vrrp_adverts_accepted_total", "Adverts that passed every check",
          c.adverts_accepted},
         {"redvip_vrrp_adverts_sent_total", "Adverts sent, one per destination", c.adverts_sent},
         {"redvip_vrrp_send_errors_total", "Adverts the kernel refused to send", c.send_errors},
         {"redvip_vrrp_unknown_peer_total", "Unicast adverts from an address not in unicast_peers",
          c.unknown_peer}});
}

void role_metrics(const RoleStatus& s, const MetricsWriter& out) {
    out.family("redvip_eligible", "gauge",
               "1 while this node may take the master role; 0 with the reason's kind as label");
    out.sample("redvip_eligible", fmt::format("why=\"{}\"", to_string(s.eligibility.why)),
               std::uint64_t{s.eligibility.eligible});
    gauge(out, "redvip_vip_held", "1 while this node holds the VIP", s.vip_held);
    gauge(out, "redvip_role_fault",
          "1 while a role step keeps failing (the election is told Fault)", s.role_fault);
    gauge(out, "redvip_role_settled", "1 while no role transition is running", s.settled);
    gauge(out, "redvip_switchover_running", "1 while a switchover is running",
          s.switchover_running);
    gauge(out, "redvip_preempt_suspended", "1 while preemption is suspended after a switchover",
          s.preempt_suspended);
    gauge(out, "redvip_health_ok", "1 while the Redis checks pass (rise/fall verdict)",
          s.health.ok);
    gauge(out, "redvip_health_fault",
          "1 while the election is told Fault (checks, role steps or link)", s.health.fault);
    gauge(out, "redvip_health_consecutive_failed", "Failed Redis checks in a row",
          static_cast<std::uint64_t>(std::max(0, s.health.consecutive_failed)));
    gauge(out, "redvip_link_down", "1 while the VIP's interface is down", s.health.link_down);
    counters(out,
             {{"redvip_divergent_bytes_total",
               "Bytes acknowledged here as master that the next master's history lacks",
               static_cast<std::uint64_t>(std::max<std::int64_t>(0, s.divergent_bytes_total))}});
}

} // namespace

void render_metrics(const NodeStatus& s, const MetricsWriter& out) {
    election_metrics(s.election, out);
    role_metrics(s.role, out);
    const auto& v = s.vip;
    counters(out,
             {{"redvip_vip_addresses_added_total", "VIP addresses added", v.addresses_added},
              {"redvip_vip_addresses_removed_total", "VIP addresses removed", v.addresses_removed},
              {"redvip_vip_garp_sent_total", "Gratuitous ARP frames sent", v.garp_sent},
              {"redvip_vip_na_sent_total", "Unsolicited neighbour adverts sent", v.na_sent},
              {"redvip_vip_announce_errors_total", "Announcement frames the kernel refused",
               v.announce_errors},
              {"redvip_vip_repairs_total", "VIPs put back while held", v.repairs},
              {"redvip_vip_link_down_total", "Times the VIP's interface went down", v.link_down},
              {"redvip_vip_netlink_overruns_total", "Netlink event overruns (full resync)",
               v.netlink_overruns}});
    const auto& h = s.hooks;
    counters(out, {{"redvip_hooks_started_total", "Hook commands started", h.started},
                   {"redvip_hooks_dropped_total", "Hooks dropped (queue full or shut down)",
                    h.dropped}});
    out.family("redvip_hooks_finished_total", "counter", "Hook commands finished, by outcome");
    out.sample("redvip_hooks_finished_total", "outcome=\"succeeded\"", h.succeeded);
    out.sample("redvip_hooks_finished_total", "outcome=\"failed\"", h.failed);
    out.sample("redvip_hooks_finished_total", "outcome=\"timed_out\"", h.timed_out);
}

} // namespace redvip::election
