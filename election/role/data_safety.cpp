#include "election/role/data_safety.hpp"

#include <algorithm>

namespace redvip::election {

namespace {

bool is_master(const ReplicationFacts& f) {
    return f.role == RedisRole::master;
}

std::string offsets(const ReplicationFacts& theirs, const ReplicationFacts& ours) {
    return "offset " + std::to_string(theirs.master_repl_offset) + ", ours " +
           std::to_string(ours.master_repl_offset);
}

// The bound is for a replica streaming from that very history; data of
// another history (we restarted empty, or it was promoted since) is newer by
// a single byte.
bool streaming_from(const PeerFacts& peer, const ReplicationFacts& local) {
    return is_master(*peer.facts) && replicates_from(local, peer.redis) &&
           peer.facts->master_replid == local.master_replid;
}

std::string was_newer(const PeerFacts& peer, const ReplicationFacts& local) {
    return peer.name + "'s Redis, unreachable now, had data we lack when last read (" +
           offsets(*peer.facts, local) + "): not taking the master role, which would drop it; " +
           "`redvip promote --force` accepts that loss";
}

} // namespace

std::string_view to_string(Ineligible why) {
    switch (why) {
    case Ineligible::none:
        return "none";
    case Ineligible::not_read:
        return "not_read";
    case Ineligible::catching_up:
        return "catching_up";
    case Ineligible::peer_newer:
        return "peer_newer";
    case Ineligible::peer_was_newer:
        return "peer_was_newer";
    case Ineligible::preempt_suspended:
        return "preempt_suspended";
    }
    return "?";
}

bool replicates_from(const ReplicationFacts& facts, const conf::Endpoint& master) {
    if (facts.role != RedisRole::replica || facts.master_port != master.port) return false;
    boost::system::error_code ec;
    const auto host = boost::asio::ip::make_address(facts.master_host, ec);
    return !ec && host == master.host;
}

bool history_ahead(const ReplicationFacts& a, const ReplicationFacts& b, std::int64_t slack) {
    const bool further = a.master_repl_offset > b.master_repl_offset + slack;
    if (a.master_replid == b.master_replid) return further;
    // a was promoted after following b: it holds b's history up to
    // second_repl_offset - 1, and its own after that.
    if (!b.master_replid.empty() && a.master_replid2 == b.master_replid)
        return further && b.master_repl_offset <= a.second_repl_offset - 1;
    // b continued from a's history: b is the newer one.
    if (!a.master_replid.empty() && b.master_replid2 == a.master_replid) return false;
    return further; // unrelated histories: a Redis restarted empty starts at 0
}

Eligibility assess_eligibility(const std::optional<ReplicationFacts>& local,
                               const std::vector<PeerFacts>& peers, std::int64_t catch_up_bytes) {
    if (!local) return {false, "the local Redis has not been read yet", Ineligible::not_read};
    for (const auto& peer : peers) {
        if (!peer.facts) continue; // a peer that does not answer has nothing to lose
        const auto& theirs = *peer.facts;
        const bool streaming = streaming_from(peer, *local);
        if (!history_ahead(theirs, *local, streaming ? catch_up_bytes : 0)) continue;
        if (peer.remembered) return {false, was_newer(peer, *local), Ineligible::peer_was_newer};
        if (streaming)
            return {false,
                    "catching up with " + peer.name + ": " +
                        std::to_string(theirs.master_repl_offset - local->master_repl_offset) + " bytes behind",
                    Ineligible::catching_up};
        return {false, peer.name + "'s Redis has newer data (" + offsets(theirs, *local) + ")",
                Ineligible::peer_newer};
    }
    return {};
}

PromotionPath promotion_path(const std::optional<ReplicationFacts>& local,
                             const std::vector<PeerFacts>& peers, const conf::Endpoint& self,
                             std::int64_t catch_up_bytes) {
    if (!local) return RefusePromotion{"the local Redis could not be read"};
    for (const auto& peer : peers) {
        if (!peer.facts) continue;
        const auto& theirs = *peer.facts;
        if (peer.remembered) {
            if (history_ahead(theirs, *local, streaming_from(peer, *local) ? catch_up_bytes : 0))
                return RefusePromotion{was_newer(peer, *local)};
            continue;
        }
        if (replicates_from(theirs, self) && theirs.master_replid == local->master_replid) continue;
        if (is_master(theirs) && replicates_from(*local, peer.redis) &&
            local->master_link_status == MasterLink::up)
            return PromoteByTakeOver{peer.redis};
        if (history_ahead(theirs, *local))
            return RefusePromotion{peer.name + "'s Redis is alive with newer data (" +
                                   offsets(theirs, *local) + ")"};
    }
    return PromoteLocally{};
}

std::optional<std::int64_t> divergent_bytes(const ReplicationFacts& ours,
                                            const ReplicationFacts& winner) {
    if (winner.master_replid == ours.master_replid)
        return std::max<std::int64_t>(0, ours.master_repl_offset - winner.master_repl_offset);
    if (winner.master_replid2 == ours.master_replid && winner.second_repl_offset > 0)
        return std::max<std::int64_t>(0,
                                      ours.master_repl_offset - (winner.second_repl_offset - 1));
    return std::nullopt;
}

} // namespace redvip::election
