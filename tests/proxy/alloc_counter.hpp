// Counts global operator new calls in the test binary, to show a framer allocates
// nothing whatever the wire declares.
#pragma once

#include <cstddef>

namespace redvip::proxy::test {
std::size_t allocations() noexcept;
} // namespace redvip::proxy::test
