// The role controller's inputs besides the election: what it learns of the
// local Redis (drift from the role it set), of the peers' (eligibility,
// divergence after a partition) and of the witness, and the operator's
// switchover and forced promotion. The decisions they lead to are in
// controller.cpp.
#include "election/role/controller.hpp"

#include "election/vrrp/conf.hpp"

#include <algorithm>

namespace redvip::election {

// A master was heard (Backup or Fault): a resignation has done its job, and
// a switchover to that master is complete.
void Controller::heard_master(const IpAddr& address, TimePoint now, ControllerActions& out) {
    if (switchover_ && address == switchover_->vrrp) {
        const auto took =
            std::chrono::duration_cast<std::chrono::milliseconds>(now - switchover_->started);
        finish_switchover(true,
                          "switched over to " + switchover_->name + " in " +
                              std::to_string(took.count()) + " ms",
                          out);
    }
    if (resigned_) {
        resigned_ = false;
        update_role_fault("a master took over: " + to_string(address), out);
    }
}

void Controller::finish_switchover(bool ok, std::string text, ControllerActions& out) {
    if (!switchover_) return;
    switchover_.reset();
    out.emplace_back(SwitchoverDone{ok, std::move(text)});
}

std::string Controller::switchover_name() const {
    return switchover_ ? switchover_->name : std::string("a peer");
}

ControllerActions Controller::request_switchover(const std::string& to, TimePoint now) {
    ControllerActions out;
    const auto refuse = [&](std::string why) {
        out.emplace_back(SwitchoverDone{false, std::move(why)});
        return out;
    };
    if (switchover_) return refuse("a switchover to " + switchover_->name + " is running");
    if (goal_ != Goal::master || !settled())
        return refuse("this node is not a settled master (goal " + std::string(to_string(goal_)) +
                      ")");
    const PeerFacts* best = nullptr;
    std::string why_not = "no [[peer]] is configured";
    const auto peers = fresh_peers(now); // `best` points into it
    for (const auto& peer : peers) {
        if (!to.empty() && peer.name != to) continue;
        if (!peer.facts) {
            why_not = peer.name + "'s Redis does not answer: " + peer.error;
        } else if (!replicates_from(*peer.facts, config_.self_redis) ||
                   peer.facts->master_link_status != MasterLink::up) {
            why_not = peer.name + "'s Redis is not a replica of ours with its link up";
        } else if (!best || peer.facts->master_repl_offset > best->facts->master_repl_offset) {
            best = &peer;
            continue;
        }
    }
    if (!best) {
        if (!to.empty() && std::none_of(config_.peers.begin(), config_.peers.end(),
                                        [&](const auto& p) { return p.name == to; }))
            why_not = "no [[peer]] named \"" + to + "\"";
        return refuse("cannot switch over: " + why_not);
    }
    const auto* peer = peer_by_redis(best->redis);
    switchover_ = Switchover{best->name, best->redis, to_ip_addr(peer->vrrp_address), now,
                             now + config_.switchover_timeout + std::chrono::seconds{2}};
    start(Goal::handoff, best->redis, "switchover to " + best->name, now, out);
    return out;
}

ControllerActions Controller::on_replication(const ReplicationFacts& facts, TimePoint polled_at,
                                             TimePoint now) {
    ControllerActions out;
    facts_ = facts;
    facts_at_ = polled_at;
    const auto* t = current();
    const bool done = t && t->outcome == Outcome::done && t->finished;
    if (goal_ == Goal::master && done && facts.role == RedisRole::master) divergence_.last_as_master = facts;
    // Leaving the role, our Redis may have acknowledged more after our last
    // read of it as master (the cut came between two reads): until it
    // follows the winner, what it holds on our history is what we may lose.
    if (goal_ != Goal::master && divergence_.last_as_master && facts.role == RedisRole::master &&
        facts.master_replid == divergence_.last_as_master->master_replid &&
        facts.master_repl_offset > divergence_.last_as_master->master_repl_offset)
        divergence_.last_as_master = facts;
    if (done && polled_at > *t->finished) check_drift(now, out);
    update_eligibility(now, out);
    return out;
}

ControllerActions Controller::on_peer(const PeerFacts& peer, TimePoint now) {
    ControllerActions out;
    for (std::size_t i = 0; i < peer_facts_.size(); ++i) {
        if (peer_facts_[i].redis != peer.redis) continue;
        peer_facts_[i] = peer;
        peer_facts_[i].name = config_.peers[i].name;
        peer_facts_[i].remembered = false;
        peer_memory_[i].read_at = now;
        if (peer.facts) peer_memory_[i].last_answer = peer.facts;
        check_divergence(peer_facts_[i], out);
        yield_if_stale(peer_facts_[i], now, out);
    }
    update_eligibility(now, out);
    return out;
}

ControllerActions Controller::on_witness(bool reachable, std::string detail, TimePoint now) {
    ControllerActions out;
    (void)now;
    if (reachable == witness_ok_) return out;
    witness_ok_ = reachable;
    witness_detail_ = std::move(detail);
    out.emplace_back(Notice{reachable ? "a witness is reachable again: " + witness_detail_
                                      : "no witness reachable: " + witness_detail_ +
                                            "; not master until one is"});
    update_role_fault(reachable ? "witness reachable" : "no witness reachable", out);
    return out;
}

// After a demotion from master: what the new master's history does not hold
// of ours is what a partition let this node acknowledge and lose.
void Controller::check_divergence(const PeerFacts& peer, ControllerActions& out) {
    if (!divergence_.peer || peer.redis != *divergence_.peer || !peer.facts || !divergence_.last_as_master)
        return;
    if (peer.facts->role != RedisRole::master) return; // not the winner (yet)
    const auto bytes = divergent_bytes(*divergence_.last_as_master, *peer.facts);
    divergence_.peer.reset();
    if (!bytes) {
        divergence_.last = peer.name + "'s history does not continue ours: divergence unknown";
        out.emplace_back(Notice{divergence_.last});
    } else {
        divergence_.total += *bytes;
        divergence_.last = std::to_string(*bytes) + " bytes acknowledged here as master are not in " +
                           peer.name + "'s history";
        if (*bytes > 0) out.emplace_back(Notice{divergence_.last});
    }
    divergence_.last_as_master.reset();
}

// Eligibility is for the election's sake only while not master: a master at
// priority 1 would invite every peer to preempt it.
void Controller::update_eligibility(TimePoint now, ControllerActions& out) {
    Eligibility e;
    const auto* t = transitions_.empty() ? nullptr : &transitions_.back();
    const bool refused = goal_ == Goal::master && t && t->outcome == Outcome::abandoned;
    if ((goal_ == Goal::master && !refused) || goal_ == Goal::handoff)
        e = {};
    else if (preempt_suspended_)
        e = {false, "preemption suspended after a switchover, until this node is master again",
             Ineligible::preempt_suspended};
    else
        e = assess_eligibility(facts_, known_peers(now), config_.catch_up_bytes);
    // Status shows the latest figures; the election and the log hear only of
    // a change of verdict (not every 100 ms of a replica catching up).
    const bool changed = !eligibility_reported_ || !e.same_verdict(eligibility_);
    eligibility_ = std::move(e);
    if (!changed) return;
    eligibility_reported_ = true;
    out.emplace_back(SetEligible{eligibility_});
}

std::vector<PeerFacts> Controller::fresh_peers(TimePoint now) const {
    auto peers = peer_facts_;
    for (std::size_t i = 0; i < peers.size(); ++i) {
        if (peers[i].facts && now - peer_memory_[i].read_at > config_.peer_facts_max_age) {
            peers[i].facts.reset();
            peers[i].error = "last read too long ago";
        }
    }
    return peers;
}

std::vector<PeerFacts> Controller::known_peers(TimePoint now) const {
    auto peers = fresh_peers(now);
    for (std::size_t i = 0; i < peers.size(); ++i) {
        if (peers[i].facts || !peer_memory_[i].last_answer) continue;
        peers[i].facts = peer_memory_[i].last_answer;
        peers[i].remembered = true;
    }
    return peers;
}

ControllerActions Controller::force_promotion(TimePoint now, std::string& text) {
    ControllerActions out;
    std::vector<std::string> forgotten;
    for (std::size_t i = 0; i < peer_memory_.size(); ++i) {
        if (!peer_memory_[i].last_answer) continue;
        forgotten.push_back(peer_facts_[i].name + " (offset " +
                            std::to_string(peer_memory_[i].last_answer->master_repl_offset) + ")");
        peer_memory_[i].last_answer.reset();
    }
    text = forgotten.empty() ? "no unreachable peer's data was standing in the way"
                             : "forgot what unreachable peers held: ";
    for (std::size_t i = 0; i < forgotten.size(); ++i)
        text += (i ? ", " : "") + forgotten[i];
    out.emplace_back(Notice{"redvip promote --force: " + text});
    // A promotion refused for that reason is tried again at once.
    if (role_fault_until_) {
        role_fault_until_.reset();
        update_role_fault("promotion forced by the operator", out);
    }
    update_eligibility(now, out);
    return out;
}

const conf::PeerConfig* Controller::peer_by_redis(const conf::Endpoint& redis) const {
    for (const auto& peer : config_.peers)
        if (peer.redis == redis) return &peer;
    return nullptr;
}

// The local Redis no longer has the role the last completed plan confirmed
// (restarted without its replicaof, changed by hand, or handed over by
// a hand-over): set it again, or follow the hand-over.
void Controller::check_drift(TimePoint now, ControllerActions& out) {
    const auto& f = *facts_;
    const bool follower = goal_ == Goal::backup || goal_ == Goal::fault;
    std::string found = f.role == RedisRole::replica
                            ? "a replica of " + f.master_host + ":" + std::to_string(f.master_port)
                            : std::string("master");
    if (f.role != RedisRole::master) follower_master_since_.reset();
    if (follower && goal_master_ && !replicates_from(f, *goal_master_)) {
        // A master while following: a peer may be handing the role to us
        // (the hand-over, then its resignation): give that a moment.
        if (f.role == RedisRole::master) {
            if (!follower_master_since_) follower_master_since_ = now;
            if (now - *follower_master_since_ < config_.follower_master_grace) return;
        }
        out.emplace_back(Notice{"the local Redis is " + found + ", not a replica of " +
                                goal_master_->to_string() + ": setting it again"});
        start(goal_, goal_master_, "repair: Redis was " + found, now, out);
    } else if (goal_ == Goal::master && f.role != RedisRole::master) {
        for (const auto& peer : config_.peers) {
            if (!replicates_from(f, peer.redis)) continue;
            out.emplace_back(Notice{"the local Redis was handed over to " + peer.name +
                                    "'s: fencing and resigning"});
            start(Goal::fault, peer.redis, "handed over to " + peer.name, now, out);
            return resign("the local Redis was handed over to " + peer.name, out);
        }
        out.emplace_back(Notice{"the local Redis is " + found + ", not master: promoting again"});
        start(Goal::master, std::nullopt, "repair: Redis was " + found, now, out);
    }
}

} // namespace redvip::election
