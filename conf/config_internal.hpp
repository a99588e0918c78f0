// Shared between the reader (config.cpp) and the cross-field checks
// (config_check.cpp); not part of conf's public interface.
#pragma once

#include "conf/config.hpp"

#include <map>
#include <string>
#include <vector>

namespace redvip::conf::detail {

struct Place {
    int line = 0;
    int column = 0;
};

// Where each key was read ("vrrp.priority", "peer[1].redis"), so that a
// cross-field error points at the line a user must edit.
class Diagnostics {
public:
    explicit Diagnostics(std::string source) : source_(std::move(source)) {}

    void remember(const std::string& key, Place place) { places_[key] = place; }
    bool has(const std::string& key) const { return places_.count(key) != 0; }
    Place place_of(const std::string& key) const;

    void error(Place place, std::string message);
    // An error at the place a key was read (or at 0:0 if it was defaulted).
    void error_at(const std::string& key, std::string message) {
        error(place_of(key), std::move(message));
    }

    const std::string& source() const { return source_; }
    std::vector<Error> take() { return std::move(errors_); }
    bool empty() const { return errors_.empty(); }

private:
    std::string source_;
    std::map<std::string, Place> places_;
    std::vector<Error> errors_;
};

// Rules that span keys or sections; run after every key read cleanly.
void check_config(Config& config, Diagnostics& diag);

} // namespace redvip::conf::detail
