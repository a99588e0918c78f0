#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
    CLI::App app{"redvip-bench: latency and failover benchmarks for redvip"};
    app.set_version_flag("--version", std::string("redvip-bench ") + REDVIP_VERSION);
    CLI11_PARSE(app, argc, argv);
    return 0;
}
