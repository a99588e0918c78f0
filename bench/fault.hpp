#pragma once
// `--fault 'COMMAND'`: run by /bin/sh while the benchmark goes on. Its
// stdout goes to our stderr so that our stdout stays the report.

#include <optional>
#include <string>
#include <sys/types.h>

namespace redvip::bench {

class FaultProcess {
public:
    // Starts `/bin/sh -c command`; throws BenchError if it cannot be started.
    static FaultProcess start(const std::string& command);
    // The exit status (128+signal if killed) once it has ended, else nullopt.
    std::optional<int> poll();

private:
    explicit FaultProcess(pid_t pid) : pid_(pid) {}
    pid_t pid_;
    std::optional<int> status_;
};

} // namespace redvip::bench
