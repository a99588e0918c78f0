// The data-safety rules of a failover, pure: which node may become master,
// how it takes the role without losing acknowledged writes, and what a node
// that lost a partition could have acknowledged. Facts in (INFO replication of
// the local Redis and of each peer's, as last read), decisions out; the
// controller (controller.hpp) applies them, the driver reads the facts.
//
// The rules, in one place:
//  * Eligibility (may this node preempt, or be elected at all): ineligible
//    while a peer's Redis that answered is a master this node has not caught
//    up with (its replica, master_link_status up, offset within
//    catch_up_bytes), or a replica whose history is ahead of ours (we
//    restarted empty or from an older dataset). The election sees an
//    ineligible node at priority 1: it never preempts, yet still takes over
//    when the master goes silent, and then the promotion rule below decides.
//  * Promotion (the election made this node master; peers read afresh): a
//    peer's Redis still alive as master hands over (RedisExecutor::async_switch_to:
//    writes paused there, our offset awaited, no acknowledged write lost);
//    a peer ahead of us refuses the promotion; otherwise REPLICAOF NO ONE.
//  * Divergence: a node that was master and now follows a peer could have
//    acknowledged the bytes between where the peer's history forked from
//    ours (its second_repl_offset) and our last offset as master.
#pragma once

#include "conf/config.hpp"
#include "proxy/info.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace redvip::election {

// INFO replication as the protocol library parses it (proxy/info.hpp):
// role and link typed, offsets and ids as Redis reports them.
using ReplicationFacts = proxy::ReplicationInfo;
using proxy::MasterLink;
using proxy::RedisRole;

// True when `facts` say "replica of exactly `master`" (addresses compared as
// addresses, so "::1" and "0:0::1" agree).
bool replicates_from(const ReplicationFacts& facts, const conf::Endpoint& master);

// A peer's Redis as last read: `facts` empty when it did not answer.
// `remembered`: the peer does not answer now, and `facts` are what it said
// when it last did (a Redis that died takes its data out of reach, not out
// of account: a replica known to be behind it must not be promoted).
struct PeerFacts {
    std::string name;
    conf::Endpoint redis;
    std::optional<ReplicationFacts> facts;
    std::string error; // why it did not answer
    bool remembered = false;
};

// True when `a`'s dataset holds `b`'s history and more than `slack` bytes
// beyond it: the same history further on, or a history that continued from
// b's (a was promoted after following b) past b's offset. Datasets of
// unrelated histories compare by offset: a Redis restarted empty starts a new
// history at offset 0.
bool history_ahead(const ReplicationFacts& a, const ReplicationFacts& b, std::int64_t slack = 0);

// Why a node is not eligible, as a kind: the log and the election hear of a
// change of kind, not of every new offset in the reason's text.
enum class Ineligible : std::uint8_t {
    none,
    not_read,
    catching_up,
    peer_newer,
    peer_was_newer, // a peer that no longer answers held data we lack
    preempt_suspended
};
std::string_view to_string(Ineligible why); // "peer_was_newer"

struct Eligibility {
    bool eligible = true;
    std::string reason; // why not, with the figures
    Ineligible why = Ineligible::none;
    friend bool operator==(const Eligibility&, const Eligibility&) = default;
    bool same_verdict(const Eligibility& o) const { return eligible == o.eligible && why == o.why; }
};
// May this node (whose Redis says `local`) take the master role now?
Eligibility assess_eligibility(const std::optional<ReplicationFacts>& local,
                               const std::vector<PeerFacts>& peers, std::int64_t catch_up_bytes);

// How the election's new master takes the role, from facts read just now.
struct PromoteLocally {};    // REPLICAOF NO ONE: no peer's Redis is master
struct PromoteByTakeOver {   // the hand-over from this master's Redis (async_switch_to)
    conf::Endpoint master;
};
struct RefusePromotion {
    std::string reason;
};
using PromotionPath = std::variant<PromoteLocally, PromoteByTakeOver, RefusePromotion>;
// `self`: the local Redis's address. A peer's Redis that replicates from it
// on the same history holds nothing of its own: read after ours while
// writes flow (relayed by the old master during a switchover), it is only
// further along our own stream, never newer data.
// A remembered peer (one that no longer answers) refuses when it was ahead
// of us by more than `catch_up_bytes` on the history we streamed from it, or
// by a byte on another (we never synced with it): promoting would drop what
// only it held. `redvip promote --force` leaves remembered peers out.
PromotionPath promotion_path(const std::optional<ReplicationFacts>& local,
                             const std::vector<PeerFacts>& peers, const conf::Endpoint& self,
                             std::int64_t catch_up_bytes = 1 << 20);

// Bytes this node acknowledged as master (`ours`, read while it was) that
// the winner's history (`winner`, read after) does not hold; nullopt when the
// histories cannot be compared (the winner never followed ours).
std::optional<std::int64_t> divergent_bytes(const ReplicationFacts& ours,
                                            const ReplicationFacts& winner);

} // namespace redvip::election
