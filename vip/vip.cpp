// VipManager: the order of steps (resolve the link, add, announce, watch and
// repair). The kernel calls live in netlink.cpp, the frames in frames.cpp,
// the sending in announcer.cpp, the event socket in watcher.cpp.
//
// Why add/remove are synchronous libnl calls inside a post(): an address
// change is one rtnetlink request answered by the kernel in microseconds; it
// never waits on the network or on another process. Running it in the posted
// handler keeps the completion asynchronous (never inline, so the caller's
// ordering holds) without a second socket state machine, and the io_context
// is held for no longer than a timer handler takes.
#include "vip/vip.hpp"

#include "vip/announcer.hpp"
#include "vip/netlink.hpp"
#include "vip/watcher.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace redvip::vip {

Status Status::from_errno(int err, std::string what) {
    std::string message = std::move(what);
    message += ": ";
    message += std::strerror(err);
    return {std::error_code(err, std::system_category()), std::move(message)};
}

class VipManager::Impl : public std::enable_shared_from_this<Impl> {
public:
    Impl(boost::asio::any_io_executor executor, conf::VipConfig config,
         std::shared_ptr<spdlog::logger> log, VipEvents events)
        : executor_(std::move(executor))
        , config_(std::move(config))
        , log_(std::move(log))
        , events_(std::move(events))
        , counters_(std::make_shared<VipCounters>())
        , announcer_(std::make_shared<Announcer>(executor_, config_, log_, counters_)) {}

    // Runs `step` in a handler of its own and hands its Status to `done`
    // there: exactly once, never inline, ECANCELED once stopped.
    void run(Status (Impl::*step)(), Completion done) {
        boost::asio::post(executor_, [self = shared_from_this(), step, done = std::move(done)] {
            const Status s = self->stopped_ ? Status::from_errno(ECANCELED, "vip: stopped")
                                            : (self.get()->*step)();
            if (done) done(s);
        });
    }

    Status acquire();
    Status release() { return remove_configured(false); }
    Status cleanup_stale() { return remove_configured(true); }
    Status start_watch();
    void stop();

    bool held() const { return held_; }
    bool link_up() const { return link_up_; }
    const VipCounters& counters() const { return *counters_; }

private:
    Status remove_configured(bool stale);
    void on_address(const AddressEvent& event);
    void on_link(const LinkEvent& event);
    void set_link_state(bool usable, const std::string& reason);
    void resync();
    void repair(bool announce_anyway);
    bool is_vip(const conf::IpAddress& address) const;
    std::string label_for(const conf::Prefix& prefix) const;
    Status for_every_vip(std::string_view verb, std::string_view preposition, Status s) const;

    boost::asio::any_io_executor executor_;
    conf::VipConfig config_;
    std::shared_ptr<spdlog::logger> log_;
    VipEvents events_;
    std::shared_ptr<VipCounters> counters_;
    RouteSocket route_;
    std::shared_ptr<Announcer> announcer_;
    std::shared_ptr<Watcher> watcher_;
    int ifindex_ = 0; // of the interface as last resolved, to match events
    bool held_ = false;
    bool link_up_ = true; // until the watch knows better
    bool stopped_ = false;
};

bool VipManager::Impl::is_vip(const conf::IpAddress& address) const {
    return std::any_of(config_.addresses.begin(), config_.addresses.end(),
                       [&](const conf::Prefix& p) { return p.address == address; });
}

// A failed interface lookup, reworded to name what was asked ("add
// 10.77.0.100/24 fd77::100/64 on eth9: No such device"), not only the lookup.
Status VipManager::Impl::for_every_vip(std::string_view verb, std::string_view preposition,
                                       Status s) const {
    std::string what(verb);
    for (const conf::Prefix& vip : config_.addresses) {
        what += ' '; // not `" " + string`: g++ 12's false -Wrestrict (GCC bug 105329)
        what += vip.to_string();
    }
    s.message = fmt::format("{} {} {}: {}", what, preposition, config_.interface, s.code.message());
    return s;
}

std::string VipManager::Impl::label_for(const conf::Prefix& prefix) const {
    return prefix.address.is_v4() ? config_.label
                                  : std::string(); // labels are IPv4-only in the kernel
}

Status VipManager::Impl::acquire() {
    LinkInfo link;
    if (Status s = route_.link(config_.interface, link); !s.ok())
        return for_every_vip("add", "on", std::move(s));
    ifindex_ = link.ifindex;
    for (const conf::Prefix& vip : config_.addresses) {
        if (Status s = route_.add(link, vip, label_for(vip)); !s.ok()) return s;
        ++counters_->addresses_added;
        log_->info("vip: added {} on {}", vip.to_string(), link.name);
    }
    held_ = true;
    // On a dead link every frame would fail; the watch announces when the
    // link comes up (set_link_state), so the addresses are held meanwhile.
    if (!link.usable()) {
        log_->warn("vip: {} is {}; announcing once it is up", link.name, link.down_reason());
        return Status::success();
    }
    if (Status s = announcer_->start(link, config_.addresses); !s.ok()) {
        held_ = false;
        return s;
    }
    return Status::success();
}

Status VipManager::Impl::remove_configured(bool stale) {
    // Held no more before the first removal, so that the watch does not
    // "repair" what we are taking away.
    held_ = false;
    announcer_->stop();
    LinkInfo link;
    if (Status s = route_.link(config_.interface, link); !s.ok()) {
        if (s.code.value() != ENODEV) return for_every_vip("remove", "from", std::move(s));
        log_->info("vip: {} is gone, and its addresses with it", config_.interface);
        return Status::success();
    }
    ifindex_ = link.ifindex;
    std::vector<AddressEntry> all;
    if (Status s = route_.addresses(all); !s.ok()) return s;
    Status first_error;
    // Any prefix length: a run with another prefix length must not leave
    // its VIP behind (the kernel deletes by address and prefix length).
    for (const AddressEntry& e : all) {
        if (e.ifindex != link.ifindex || !is_vip(e.prefix.address)) continue;
        Status s = route_.remove(link.ifindex, link.name, e.prefix);
        if (!s.ok()) {
            log_->error("vip: {}", s.message);
            if (first_error.ok()) first_error = std::move(s);
            continue;
        }
        ++counters_->addresses_removed;
        if (stale)
            log_->warn("vip: removed stale {} from {} (left by an earlier run)",
                       e.prefix.to_string(), link.name);
        else
            log_->info("vip: removed {} from {}", e.prefix.to_string(), link.name);
    }
    return first_error;
}

Status VipManager::Impl::start_watch() {
    std::weak_ptr<Impl> weak = shared_from_this();
    WatcherHandlers handlers;
    handlers.on_address = [weak](const AddressEvent& e) {
        if (auto self = weak.lock()) self->on_address(e);
    };
    handlers.on_link = [weak](const LinkEvent& e) {
        if (auto self = weak.lock()) self->on_link(e);
    };
    handlers.on_overrun = [weak] {
        if (auto self = weak.lock()) {
            ++self->counters_->netlink_overruns;
            self->resync();
        }
    };
    if (watcher_) watcher_->stop();
    watcher_ = std::make_shared<Watcher>(executor_, log_, std::move(handlers));
    if (Status s = watcher_->start(); !s.ok()) return s;
    resync(); // events start now; the state before them is read once
    return Status::success();
}

void VipManager::Impl::stop() {
    stopped_ = true;
    announcer_->stop();
    if (watcher_) watcher_->stop();
}

void VipManager::Impl::on_address(const AddressEvent& event) {
    // Only a held VIP vanishing from our interface matters. While the link
    // is down the kernel flushes IPv6 addresses itself; those are put back
    // when it comes up (on_link), not fought over now.
    if (!event.removed || !held_ || !link_up_ || event.ifindex != ifindex_ ||
        !is_vip(event.prefix.address))
        return;
    repair(false);
}

void VipManager::Impl::on_link(const LinkEvent& event) {
    // By name as well as index: an interface deleted and re-created (a
    // restarted VM's tap, a re-plugged USB NIC) comes back under a new index.
    if (event.link.name != config_.interface && event.link.ifindex != ifindex_) return;
    if (event.removed) {
        set_link_state(false, "interface removed");
        return;
    }
    ifindex_ = event.link.ifindex;
    set_link_state(event.link.usable(), event.link.down_reason());
}

void VipManager::Impl::set_link_state(bool usable, const std::string& reason) {
    if (usable == link_up_) return; // RTM_NEWLINK also reports MTU, name and statistics changes
    link_up_ = usable;
    if (!usable) {
        // Nothing can be sent on a dead link; the announcements start over
        // when it comes back (below), rather than fail every refresh.
        announcer_->stop();
        ++counters_->link_down;
        log_->warn("vip: {} is down: {}", config_.interface, reason);
        if (events_.on_link_down) events_.on_link_down(reason);
        return;
    }
    log_->info("vip: {} is up", config_.interface);
    if (events_.on_link_up) events_.on_link_up();
    // Switches forget MACs on a dead port: announce again, after putting
    // back whatever the kernel flushed (IPv6 goes with an admin down).
    if (held_) repair(true);
}

void VipManager::Impl::resync() {
    LinkInfo link;
    const Status s = route_.link(config_.interface, link);
    if (!s.ok()) {
        set_link_state(false, s.code.value() == ENODEV ? "no such interface" : s.message);
        return;
    }
    ifindex_ = link.ifindex;
    set_link_state(link.usable(), link.down_reason());
    if (held_ && link_up_) repair(false);
}

// Puts back every held VIP missing from the interface, reporting each, and
// re-announces if anything changed (or `announce_anyway`). Reads the kernel
// first: an event may be stale (our own release, followed by an acquire).
void VipManager::Impl::repair(bool announce_anyway) {
    LinkInfo link;
    std::vector<AddressEntry> all;
    Status s = route_.link(config_.interface, link);
    if (s.ok()) s = route_.addresses(all);
    if (!s.ok()) {
        log_->error("vip: cannot check the VIPs on {}: {}", config_.interface, s.message);
        return;
    }
    bool changed = false;
    for (const conf::Prefix& vip : config_.addresses) {
        const bool present = std::any_of(all.begin(), all.end(), [&](const AddressEntry& e) {
            return e.ifindex == link.ifindex && e.prefix.address == vip.address;
        });
        if (present) continue;
        const Status added = route_.add(link, vip, label_for(vip));
        ++counters_->repairs;
        if (added.ok())
            log_->warn("vip: {} vanished from {} while held; added it back", vip.to_string(),
                       link.name);
        else
            log_->error("vip: {} vanished while held and cannot be put back: {}", vip.to_string(),
                        added.message);
        changed = changed || added.ok();
        if (events_.on_repaired) events_.on_repaired(vip, added);
    }
    if (changed || announce_anyway) {
        if (s = announcer_->start(link, config_.addresses); !s.ok())
            log_->error("vip: {}", s.message);
    }
}

VipManager::VipManager(boost::asio::any_io_executor executor, conf::VipConfig config,
                       std::shared_ptr<spdlog::logger> log, VipEvents events)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(config), std::move(log),
                                   std::move(events))) {}

VipManager::~VipManager() {
    impl_->stop();
}

void VipManager::async_acquire(Completion done) {
    impl_->run(&Impl::acquire, std::move(done));
}
void VipManager::async_release(Completion done) {
    impl_->run(&Impl::release, std::move(done));
}
void VipManager::async_cleanup_stale(Completion done) {
    impl_->run(&Impl::cleanup_stale, std::move(done));
}
Status VipManager::start_watch() {
    return impl_->start_watch();
}
void VipManager::stop() {
    impl_->stop();
}
bool VipManager::held() const {
    return impl_->held();
}
bool VipManager::link_up() const {
    return impl_->link_up();
}
const VipCounters& VipManager::counters() const {
    return impl_->counters();
}

} // namespace redvip::vip
