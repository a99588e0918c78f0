#include "conf/config.hpp"

namespace redvip::conf {
LoadResult load_file(const std::string&) { return {}; }
LoadResult load_string(std::string_view, const std::string&) { return {}; }
std::string to_toml(const Config&) { return {}; }
} // namespace redvip::conf
