// ctnn/train/plot.hpp: the training curves of a History as an SVG picture a browser opens.
//
// plot_svg(history, os) draws one panel for the loss and, when the loss has an accuracy metric,
// one for the accuracy; each shows training (solid) and validation (dashed, when present) per
// epoch, with labelled axes. save_plot_svg(history, path) writes it atomically. SvgPlot is the
// callback that redraws the file after every epoch, so a browser shows training as it goes.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "ctnn/io/atomic_file.hpp"
#include "ctnn/train/callbacks.hpp"
#include "ctnn/train/history.hpp"

namespace ctnn {

namespace detail {

inline std::string svg_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Tick positions covering [lo, hi] at a 1, 2 or 5 times a power of ten step, about `target` of them.
inline std::vector<double> nice_ticks(double lo, double hi, int target = 5) {
  const double span = hi - lo;
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = mag * (raw / mag < 1.5 ? 1 : raw / mag < 3.5 ? 2 : raw / mag < 7.5 ? 5 : 10);
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

struct Series {
  const char* name;
  double (*get)(const EpochLog&);
  const char* dash;  // stroke-dasharray, "" for solid
  const char* color;
};

inline void svg_panel(std::ostream& os, const History& h, const char* title,
                      const std::vector<Series>& series, double x0, double y0, double w, double hgt) {
  const double left = 64, right = 16, top = 34, bottom = 48;
  const double pw = w - left - right, ph = hgt - top - bottom;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const Series& s : series)
    for (const EpochLog& e : h.epochs) {
      const double v = s.get(e);
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
  if (!std::isfinite(lo)) return;  // nothing to draw
  if (hi - lo < 1e-12) lo -= 0.5 * std::max(std::abs(lo), 1e-3), hi += 0.5 * std::max(std::abs(hi), 1e-3);
  const double pad = (hi - lo) * 0.06;
  lo -= pad, hi += pad;
  const std::size_t n = h.epochs.size();
  const double first = double(h.epochs.front().epoch), last = double(h.epochs.back().epoch);
  const double xspan = n > 1 ? last - first : 1;
  const auto X = [&](double epoch) { return x0 + left + (n > 1 ? (epoch - first) / xspan * pw : pw / 2); };
  const auto Y = [&](double v) { return y0 + top + (hi - v) / (hi - lo) * ph; };

  os << "<text x=\"" << x0 + left + pw / 2 << "\" y=\"" << y0 + 20
     << "\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">" << title << "</text>\n";
  os << "<rect x=\"" << x0 + left << "\" y=\"" << y0 + top << "\" width=\"" << pw << "\" height=\""
     << ph << "\" fill=\"none\" stroke=\"#444\"/>\n";
  for (double t : nice_ticks(lo, hi)) {
    os << "<line x1=\"" << x0 + left << "\" x2=\"" << x0 + left + pw << "\" y1=\"" << Y(t)
       << "\" y2=\"" << Y(t) << "\" stroke=\"#ddd\"/>"
       << "<text x=\"" << x0 + left - 6 << "\" y=\"" << Y(t) + 4
       << "\" text-anchor=\"end\" font-size=\"11\">" << svg_number(t) << "</text>\n";
  }
  const std::size_t every = std::max<std::size_t>(1, (n + 9) / 10);
  for (std::size_t i = 0; i < n; i += every) {
    const double ep = double(h.epochs[i].epoch);
    os << "<line x1=\"" << X(ep) << "\" x2=\"" << X(ep) << "\" y1=\"" << y0 + top + ph << "\" y2=\""
       << y0 + top + ph + 5 << "\" stroke=\"#444\"/><text x=\"" << X(ep) << "\" y=\""
       << y0 + top + ph + 18 << "\" text-anchor=\"middle\" font-size=\"11\">" << h.epochs[i].epoch
       << "</text>\n";
  }
  os << "<text x=\"" << x0 + left + pw / 2 << "\" y=\"" << y0 + hgt - 8
     << "\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n";

  // The curves first, then the legend on a white box over them.
  std::ostringstream legend;
  double legend_y = y0 + top + 16;
  std::size_t drawn = 0;
  for (const Series& s : series) {
    std::string points;
    std::string marks;
    for (const EpochLog& e : h.epochs) {
      const double v = s.get(e);
      if (!std::isfinite(v)) continue;
      const std::string px = svg_number(X(double(e.epoch))), py = svg_number(Y(v));
      points += px + "," + py + " ";
      marks += "<circle cx=\"" + px + "\" cy=\"" + py + "\" r=\"2.5\" fill=\"" + s.color + "\"/>";
    }
    if (points.empty()) continue;
    os << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\""
       << (*s.dash ? std::string(" stroke-dasharray=\"") + s.dash + "\"" : "") << " points=\""
       << points << "\"/>\n"
       << marks << "\n";
    ++drawn;
    legend << "<line x1=\"" << x0 + left + pw - 120 << "\" x2=\"" << x0 + left + pw - 96 << "\" y1=\""
       << legend_y - 4 << "\" y2=\"" << legend_y - 4 << "\" stroke=\"" << s.color
       << "\" stroke-width=\"2\"" << (*s.dash ? std::string(" stroke-dasharray=\"") + s.dash + "\"" : "")
       << "/><text x=\"" << x0 + left + pw - 90 << "\" y=\"" << legend_y
       << "\" font-size=\"12\">" << s.name << "</text>\n";
    legend_y += 16;
  }
  if (drawn)
    os << "<rect x=\"" << x0 + left + pw - 126 << "\" y=\"" << y0 + top + 4 << "\" width=\"120\" height=\""
       << 16 * double(drawn) + 4 << "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n"
       << legend.str();
}

}  // namespace detail

// Writes the SVG document of `h`'s curves to `os`. An empty history draws empty axes' titles only.
inline void plot_svg(const History& h, std::ostream& os) {
  const auto has = [&](double (*get)(const EpochLog&)) {
    return std::any_of(h.epochs.begin(), h.epochs.end(),
                       [&](const EpochLog& e) { return std::isfinite(get(e)); });
  };
  using detail::Series;
  const Series train_loss{"training", [](const EpochLog& e) { return e.loss; }, "", "#1f77b4"};
  const Series val_loss{"validation", [](const EpochLog& e) { return e.val_loss; }, "6,4", "#ff7f0e"};
  const Series train_acc{"training", [](const EpochLog& e) { return e.accuracy; }, "", "#1f77b4"};
  const Series val_acc{"validation", [](const EpochLog& e) { return e.val_accuracy; }, "6,4",
                       "#ff7f0e"};
  const bool accuracy = has(train_acc.get) || has(val_acc.get);
  const double panel_w = 480, panel_h = 340, width = accuracy ? 2 * panel_w : panel_w;
  os << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
     << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << panel_h
     << "\" viewBox=\"0 0 " << width << " " << panel_h << "\" font-family=\"sans-serif\">\n"
     << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  detail::svg_panel(os, h, "loss", {train_loss, val_loss}, 0, 0, panel_w, panel_h);
  if (accuracy) detail::svg_panel(os, h, "accuracy", {train_acc, val_acc}, panel_w, 0, panel_w, panel_h);
  os << "</svg>\n";
}

// Writes plot_svg(h) to `path` atomically (see io/atomic_file.hpp).
inline void save_plot_svg(const History& h, const std::string& path) {
  io::write_atomically(path, [&](std::ostream& os) { plot_svg(h, os); });
}

// Redraws `path` after every epoch.
class SvgPlot : public Callback {
 public:
  explicit SvgPlot(std::string path) : path_(std::move(path)) {}
  void on_epoch_end(const EpochLog&, TrainingState& s) override {
    if (s.history) save_plot_svg(*s.history, path_);
  }

 private:
  std::string path_;
};

}  // namespace ctnn
