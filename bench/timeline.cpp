#include "bench/timeline.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace redvip::bench {

namespace {

double p99_of(std::vector<std::int64_t>& latencies_ns) {
    if (latencies_ns.empty()) return 0;
    const auto rank =
        static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(latencies_ns.size())));
    auto nth = latencies_ns.begin() + static_cast<std::ptrdiff_t>(rank - 1);
    std::nth_element(latencies_ns.begin(), nth, latencies_ns.end());
    return static_cast<double>(*nth) / 1000.0;
}

// Geometry of one panel: the data box inside the SVG, in pixels.
struct Panel {
    double left, top, width, height;
    double x_max, y_max;
    double x(double t) const { return left + width * (x_max > 0 ? t / x_max : 0); }
    double y(double v) const { return top + height * (1.0 - (y_max > 0 ? v / y_max : 0)); }
};

constexpr double kBinMid = static_cast<double>(kTimelineBinNs) / 2e9; // seconds

// A round number >= value for the axis top (1, 2, 5 x 10^k).
double nice_ceiling(double value) {
    if (value <= 0) return 1;
    const double magnitude = std::pow(10.0, std::floor(std::log10(value)));
    for (double step : {1.0, 2.0, 5.0, 10.0})
        if (step * magnitude >= value) return step * magnitude;
    return 10 * magnitude;
}

// Each bin is drawn at its midpoint. A bin without acknowledgements has no
// p99: the p99 line breaks there (a new "M") instead of dropping to zero.
std::string series_path(const Panel& p, const std::vector<TimelinePoint>& points,
                        double TimelinePoint::*field, bool skip_empty) {
    std::string d;
    bool pen_down = false;
    for (const TimelinePoint& point : points) {
        if (skip_empty && point.acked == 0) {
            pen_down = false;
            continue;
        }
        d += fmt::format("{}{:.1f},{:.1f} ", pen_down ? 'L' : 'M', p.x(point.t_s + kBinMid),
                         p.y(point.*field));
        pen_down = true;
    }
    return d.empty() ? "M0,0" : d;
}

std::string panel_svg(const Panel& p, const std::vector<TimelinePoint>& points, const char* id,
                      const char* colour, const char* label, double TimelinePoint::*field,
                      bool skip_empty) {
    std::string out = fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" "
                                  "height=\"{:.1f}\" fill=\"none\" stroke=\"#999\"/>\n",
                                  p.left, p.top, p.width, p.height);
    out +=
        fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\">{} (max axis {:g})</text>\n",
                    p.left, p.top - 6, label, p.y_max);
    out += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"end\">{:g}</text>\n",
        p.left - 4, p.top + 10, p.y_max);
    out += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"end\">0</text>\n",
        p.left - 4, p.top + p.height);
    out +=
        fmt::format("<path id=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" d=\"{}\"/>\n",
                    id, colour, series_path(p, points, field, skip_empty));
    return out;
}

std::string marker_svg(const char* id, const char* colour, double t_s, double x, double top,
                       double bottom) {
    return fmt::format(
        "<line id=\"{0}\" x1=\"{1:.1f}\" y1=\"{2:.1f}\" x2=\"{1:.1f}\" y2=\"{3:.1f}\" "
        "stroke=\"{4}\" stroke-dasharray=\"4 3\"/>\n"
        "<text x=\"{5:.1f}\" y=\"{6:.1f}\" font-size=\"11\" fill=\"{4}\">{0} {7:.2f}s</text>\n",
        id, x, top, bottom, colour, x + 3, top + 12, t_s);
}

// Tick marks and labels in whole seconds (or coarser) under the bottom panel.
std::string time_axis(const Panel& p, double y) {
    const double step = std::max(1.0, nice_ceiling(p.x_max / 10));
    std::string out;
    for (double t = 0; t <= p.x_max + 1e-9; t += step)
        out += fmt::format(
            "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#999\"/>\n"
            "<text x=\"{0:.1f}\" y=\"{3:.1f}\" font-size=\"10\" text-anchor=\"middle\">{4:g} "
            "s</text>\n",
            p.x(t), y, y + 4, y + 15, t);
    return out;
}

} // namespace

std::vector<TimelinePoint> build_timeline(const std::vector<AckRecord>& acks, std::int64_t end_ns,
                                          std::int64_t bin_ns) {
    const auto bins =
        static_cast<std::size_t>(std::max<std::int64_t>(1, (end_ns + bin_ns - 1) / bin_ns));
    std::vector<std::vector<std::int64_t>> latencies(bins);
    for (const AckRecord& ack : acks) {
        const auto bin = static_cast<std::size_t>(std::clamp<std::int64_t>(
            ack.acked_ns / bin_ns, 0, static_cast<std::int64_t>(bins) - 1));
        latencies[bin].push_back(ack.acked_ns - ack.sent_ns);
    }
    std::vector<TimelinePoint> points(bins);
    const double bin_s = static_cast<double>(bin_ns) / 1e9;
    for (std::size_t i = 0; i < bins; ++i) {
        points[i].t_s = static_cast<double>(i) * bin_s;
        points[i].acked = latencies[i].size();
        points[i].throughput_rps = static_cast<double>(latencies[i].size()) / bin_s;
        points[i].p99_us = p99_of(latencies[i]);
    }
    return points;
}

std::string xml_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '&':
            out += "&amp;";
            break;
        case '"':
            out += "&quot;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

namespace {

std::string lanes_svg(const Panel& p, const std::vector<ConnectionLane>& lanes, double lane_height) {
    std::string out = fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\">each connection's "
                                  "outage (last acknowledgement before the fault to first after)</text>\n",
                                  p.left, p.top - 6);
    for (std::size_t i = 0; i < lanes.size(); ++i) {
        const ConnectionLane& lane = lanes[i];
        const double y = p.top + static_cast<double>(i) * lane_height;
        const double x0 = p.x(lane.start_s), x1 = std::max(p.x(lane.end_s), x0 + 1);
        out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"9\" text-anchor=\"end\">{}</text>\n",
                           p.left - 4, y + lane_height - 3, i);
        out += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" "
                           "stroke=\"#ddd\"/>\n",
                           p.left, y + lane_height / 2, p.left + p.width);
        out += fmt::format("<rect id=\"conn-{}\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" "
                           "height=\"{:.1f}\" fill=\"{}\"/>\n",
                           i, x0, y + 1, x1 - x0, std::max(1.0, lane_height - 2),
                           lane.recovered ? "#d62728" : "#7f0000");
        out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"9\">{:.0f} ms{}</text>\n",
                           x1 + 3, y + lane_height - 3, (lane.end_s - lane.start_s) * 1e3,
                           lane.recovered ? "" : " (not recovered)");
    }
    return out;
}

} // namespace

std::string render_svg(const std::vector<TimelinePoint>& points, const ChartMarkers& markers,
                       const std::string& title) {
    constexpr double kWidth = 900, kLeft = 70, kPlotWidth = 800, kPlotHeight = 170;
    // Lanes of 12 px, shrinking so that at most 240 px hold them all.
    const auto lanes = markers.connections.size();
    const double lane_height =
        lanes == 0 ? 0 : std::min(12.0, 240.0 / static_cast<double>(lanes));
    const double lanes_height = lane_height * static_cast<double>(lanes);
    const double kHeight = 480 + (lanes == 0 ? 0 : 40 + lanes_height);
    const double t_max = points.empty() ? 1 : points.back().t_s + 2 * kBinMid;
    double rps_max = 0, p99_max = 0;
    for (const TimelinePoint& p : points) {
        rps_max = std::max(rps_max, p.throughput_rps);
        p99_max = std::max(p99_max, p.p99_us);
    }
    const Panel top{kLeft, 50, kPlotWidth, kPlotHeight, t_max, nice_ceiling(rps_max)};
    const Panel bottom{kLeft, 270, kPlotWidth, kPlotHeight, t_max, nice_ceiling(p99_max)};
    std::string out = fmt::format(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
        "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" "
        "fill=\"white\"/>\n"
        "<text x=\"{2}\" y=\"22\" font-size=\"14\" font-family=\"sans-serif\">{3}</text>\n",
        kWidth, kHeight, kLeft, xml_escape(title));
    out += panel_svg(top, points, "throughput", "#1f77b4", "acknowledged writes/s per 100 ms",
                     &TimelinePoint::throughput_rps, false);
    out += panel_svg(bottom, points, "p99", "#d62728",
                     "p99 latency (us) of the writes acknowledged per 100 ms",
                     &TimelinePoint::p99_us, true);
    out += time_axis(bottom, 440);
    const double marker_bottom = lanes == 0 ? 440 : 480 + 20 + lanes_height;
    if (lanes > 0)
        out += lanes_svg(Panel{kLeft, 500, kPlotWidth, lanes_height, t_max, 1}, markers.connections,
                         lane_height);
    if (markers.fault_s)
        out += marker_svg("fault", "#ff7f0e", *markers.fault_s, top.x(*markers.fault_s), top.top,
                          marker_bottom);
    if (markers.recovery_s)
        out += marker_svg("recovery", "#2ca02c", *markers.recovery_s, top.x(*markers.recovery_s),
                          top.top + 14, marker_bottom);
    out += "</svg>\n";
    return out;
}

} // namespace redvip::bench
