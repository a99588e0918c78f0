#include "bench/timeline.hpp"
#include "tests/bench/ns.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <regex>

using namespace redvip::bench;

namespace {

// Well-formedness for what render_svg writes: every tag closes, in order,
// attribute values are quoted, and no stray '<' or '&' is left in text.
bool well_formed(const std::string& xml, std::string& why) {
    std::vector<std::string> open;
    std::size_t pos = xml.find("<svg");
    const std::regex tag(R"(^<(/?)([a-zA-Z]+)((?:\s+[a-zA-Z0-9:-]+="[^"<&]*")*)\s*(/?)>)");
    while (pos < xml.size()) {
        const std::size_t lt = xml.find('<', pos);
        const std::string text =
            xml.substr(pos, lt == std::string::npos ? std::string::npos : lt - pos);
        if (std::regex_search(text, std::regex(R"(&(?!(lt|gt|amp|quot);))")))
            return why = "bare & in " + text, false;
        if (lt == std::string::npos) break;
        std::smatch m;
        const std::string rest = xml.substr(lt, 2000);
        if (!std::regex_search(rest, m, tag))
            return why = "bad tag at " + rest.substr(0, 60), false;
        if (m[1] == "/") {
            if (open.empty() || open.back() != m[2])
                return why = "unbalanced </" + m[2].str() + ">", false;
            open.pop_back();
        } else if (m[4] != "/") {
            open.push_back(m[2]);
        }
        pos = lt + static_cast<std::size_t>(m.length(0));
    }
    if (!open.empty()) return why = "unclosed <" + open.back() + ">", false;
    return true;
}

std::vector<AckRecord> steady_acks(std::int64_t from_ms, std::int64_t to_ms,
                                   std::int64_t latency_us) {
    std::vector<AckRecord> acks;
    for (std::int64_t t = from_ms; t < to_ms; ++t)
        acks.push_back({0, t * ms - latency_us * 1000, t * ms});
    return acks;
}

} // namespace

TEST_CASE("the timeline bins acknowledgements per 100 ms with their p99") {
    auto acks = steady_acks(0, 300, 100);
    acks.push_back({0, 150 * ms, 150 * ms + 5 * ms}); // one slow write in bin 1: 5000 us
    const auto points = build_timeline(acks, 400 * ms);
    REQUIRE(points.size() == 4);
    CHECK(points[0].t_s == doctest::Approx(0.0));
    CHECK(points[1].t_s == doctest::Approx(0.1));
    CHECK(points[0].acked == 100);
    CHECK(points[0].throughput_rps == doctest::Approx(1000));
    CHECK(points[0].p99_us == doctest::Approx(100));
    CHECK(points[1].acked == 101);
    CHECK(points[1].p99_us == doctest::Approx(100)); // rank 100 of 101: the slow one is above p99
    CHECK(points[3].acked == 0);
    CHECK(points[3].p99_us == 0);
}

TEST_CASE("the SVG is well-formed and has both series and both markers") {
    auto acks = steady_acks(0, 1000, 150);
    auto after = steady_acks(2500, 4000, 400);
    acks.insert(acks.end(), after.begin(), after.end());
    const auto points = build_timeline(acks, 4000 * ms);
    const std::string svg = render_svg(points, {1.0, 2.5, {}}, "failover via <proxy> & \"vip\"");
    std::string why;
    CHECK_MESSAGE(well_formed(svg, why), why);
    CHECK(svg.rfind("<?xml", 0) == 0);
    CHECK(svg.find("<path id=\"throughput\"") != std::string::npos);
    CHECK(svg.find("<path id=\"p99\"") != std::string::npos);
    CHECK(svg.find("<line id=\"fault\"") != std::string::npos);
    CHECK(svg.find("<line id=\"recovery\"") != std::string::npos);
    CHECK(svg.find("&lt;proxy&gt; &amp; &quot;vip&quot;") != std::string::npos);
    // Throughput: one point per 100 ms bin, one stroke. p99: the 15 empty
    // bins (1.0 s .. 2.5 s) break it in two strokes of 10 and 15 points.
    const auto path_of = [&](const char* id) {
        const std::size_t d = svg.find(" d=\"", svg.find(std::string("id=\"") + id + "\"")) + 4;
        return svg.substr(d, svg.find('"', d) - d);
    };
    const std::string throughput = path_of("throughput"), p99 = path_of("p99");
    CHECK(std::count(throughput.begin(), throughput.end(), ',') == 40);
    CHECK(std::count(throughput.begin(), throughput.end(), 'M') == 1);
    CHECK(std::count(p99.begin(), p99.end(), ',') == 25);
    CHECK(std::count(p99.begin(), p99.end(), 'M') == 2);
}

TEST_CASE("one lane per connection, its outage as a bar with its length") {
    const auto points = build_timeline(steady_acks(0, 4000, 150), 4000 * ms);
    ChartMarkers markers{1.0, 1.07, {{0.99, 1.06, true}, {0.995, 2.05, true}, {1.0, 4.0, false}}};
    const std::string svg = render_svg(points, markers, "lanes");
    std::string why;
    CHECK_MESSAGE(well_formed(svg, why), why);
    CHECK(svg.find("id=\"conn-0\"") != std::string::npos);
    CHECK(svg.find("id=\"conn-2\"") != std::string::npos);
    CHECK(svg.find("id=\"conn-3\"") == std::string::npos);
    CHECK(svg.find(">70 ms</text>") != std::string::npos);
    CHECK(svg.find(">1055 ms</text>") != std::string::npos);
    CHECK(svg.find(">3000 ms (not recovered)</text>") != std::string::npos);
}

TEST_CASE("no markers when none are given; an empty timeline still renders") {
    const std::string svg = render_svg({}, {}, "empty");
    std::string why;
    CHECK_MESSAGE(well_formed(svg, why), why);
    CHECK(svg.find("id=\"fault\"") == std::string::npos);
    CHECK(svg.find("id=\"recovery\"") == std::string::npos);
}
