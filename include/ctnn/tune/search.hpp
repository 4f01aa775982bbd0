// ctnn/tune/search.hpp: grid and random search over run-time hyperparameters.
//
// A Space names hyperparameters and their candidate values: a list (grid), or for random search
// a uniform, log-uniform or integer range. The objective is any callable double(const Params&)
// that builds a model, trains it with those settings and returns a score measured on held-out
// data, typically `fit(...).best("val_accuracy").val_accuracy`. The model's topology is a type,
// fixed at compile time; what is searched is everything fit() and the optimizer take at run time
// (learning rate, batch size, epochs, Adam's betas, schedules, ...).
//
// Every trial is kept: its parameters, score, time, and, if the objective threw ctnn::Error (a
// diverged run, say), the message; a failed trial does not end the search. The result prints
// as a table with the best trial marked.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/core/rng.hpp"

namespace ctnn::tune {

// One point of a search space: hyperparameter names and values, in the Space's order.
class Params {
 public:
  double operator[](std::string_view name) const {
    for (const auto& [n, v] : items_)
      if (n == name) return v;
    std::string names;
    for (const auto& [n, v] : items_) names += (names.empty() ? "" : ", ") + n;
    fail("The search space has no hyperparameter \"", name, "\"; it has: ", names, ".");
  }
  // The value as a count (batch size, epochs): an error unless it is a whole number >= 0.
  std::size_t count(std::string_view name) const {
    const double v = (*this)[name];
    if (!(v >= 0) || v != std::floor(v) || v > 1e15)
      fail("Hyperparameter \"", name, "\" is ", v, ", not a whole number >= 0.");
    return std::size_t(v);
  }
  const std::vector<std::pair<std::string, double>>& items() const { return items_; }
  void set(std::string name, double v) { items_.emplace_back(std::move(name), v); }

 private:
  std::vector<std::pair<std::string, double>> items_;
};

class Space {
 public:
  enum class Kind { list, uniform, log_uniform, integer };
  struct Dimension {
    std::string name;
    Kind kind;
    std::vector<double> values;  // list
    double lo = 0, hi = 0;       // ranges (inclusive)
  };

  // A list of candidate values: every one in grid search, one drawn uniformly in random search.
  Space& grid(std::string name, std::vector<double> values) {
    if (values.empty()) fail("Hyperparameter \"", name, "\" has an empty list of values.");
    return add({std::move(name), Kind::list, std::move(values)});
  }
  Space& uniform(std::string name, double lo, double hi) { return range(std::move(name), Kind::uniform, lo, hi); }
  // log-uniform over [lo, hi], lo > 0: the usual prior for learning rates.
  Space& log_uniform(std::string name, double lo, double hi) {
    if (!(lo > 0)) fail("log_uniform \"", name, "\" needs lo > 0, got ", lo, ".");
    return range(std::move(name), Kind::log_uniform, lo, hi);
  }
  Space& integer(std::string name, double lo, double hi) {
    if (lo != std::floor(lo) || hi != std::floor(hi))
      fail("integer \"", name, "\" needs whole bounds, got [", lo, ", ", hi, "].");
    return range(std::move(name), Kind::integer, lo, hi);
  }
  const std::vector<Dimension>& dimensions() const { return dims_; }

 private:
  Space& range(std::string name, Kind k, double lo, double hi) {
    if (!(std::isfinite(lo) && std::isfinite(hi) && lo <= hi))
      fail("Hyperparameter \"", name, "\" has the range [", lo, ", ", hi, "]; it needs finite lo <= hi.");
    return add({std::move(name), k, {}, lo, hi});
  }
  Space& add(Dimension d) {
    for (const Dimension& e : dims_)
      if (e.name == d.name) fail("Hyperparameter \"", d.name, "\" is in the search space twice.");
    dims_.push_back(std::move(d));
    return *this;
  }
  std::vector<Dimension> dims_;
};

struct Trial {
  std::size_t index = 0;  // 1-based, in the order run
  Params params;
  double score = std::numeric_limits<double>::quiet_NaN();
  double seconds = 0;
  std::string error;      // empty unless the objective threw
  bool ok() const { return error.empty() && std::isfinite(score); }
};

struct SearchOptions {
  std::string score_name = "score";  // the column title, e.g. "val_accuracy"
  bool maximize = true;              // false for a loss
  std::ostream* out = &std::cout;    // one line per trial as it ends; nullptr for silence
};

struct SearchResult {
  std::vector<Trial> trials;
  SearchOptions options;

  // The best successful trial (first on ties); throws ctnn::Error when every trial failed.
  const Trial& best() const {
    const Trial* b = nullptr;
    for (const Trial& t : trials)
      if (t.ok() && (!b || (options.maximize ? t.score > b->score : t.score < b->score))) b = &t;
    if (!b) fail("No trial of the search succeeded (", trials.size(), " trials); see their errors.");
    return *b;
  }
};

namespace detail {

inline std::string format_value(double v) {
  std::ostringstream os;
  os << std::setprecision(6) << v;
  return os.str();
}

inline void print_trial_line(std::ostream& os, const Trial& t, std::size_t total,
                             const SearchOptions& o) {
  os << "Trial " << t.index << "/" << total << ":";
  for (const auto& [n, v] : t.params.items()) os << " " << n << "=" << format_value(v);
  if (t.ok())
    os << " -> " << o.score_name << " " << std::fixed << std::setprecision(4) << t.score
       << std::defaultfloat;
  else
    os << " -> failed: " << (t.error.empty() ? "the score is not finite" : t.error);
  os << " (" << std::fixed << std::setprecision(1) << t.seconds << " s)" << std::defaultfloat << "\n"
     << std::flush;
}

template <class Objective>
SearchResult run_trials(std::vector<Params> points, Objective& objective, const SearchOptions& o) {
  SearchResult r;
  r.options = o;
  for (std::size_t i = 0; i < points.size(); ++i) {
    Trial t;
    t.index = i + 1;
    t.params = std::move(points[i]);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      t.score = double(objective(static_cast<const Params&>(t.params)));
    } catch (const Error& e) {
      t.error = e.what();
    }
    t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (o.out) print_trial_line(*o.out, t, points.size(), o);
    r.trials.push_back(std::move(t));
  }
  return r;
}

}  // namespace detail

// Every combination of the listed values (the first dimension varies slowest).
template <class Objective>
SearchResult grid_search(const Space& space, Objective objective, SearchOptions o = {}) {
  std::vector<Params> points(1);
  for (const Space::Dimension& d : space.dimensions()) {
    if (d.kind != Space::Kind::list)
      fail("grid_search needs a list of values for \"", d.name,
           "\"; ranges (uniform, log_uniform, integer) are for random_search.");
    std::vector<Params> next;
    for (const Params& p : points)
      for (double v : d.values) {
        Params q = p;
        q.set(d.name, v);
        next.push_back(std::move(q));
      }
    points = std::move(next);
  }
  if (space.dimensions().empty()) fail("grid_search got an empty search space.");
  return detail::run_trials(std::move(points), objective, o);
}

// `trials` points drawn independently from the space with ctnn::Rng(seed): the same seed draws
// the same points on every platform.
template <class Objective>
SearchResult random_search(const Space& space, std::size_t trials, std::uint64_t seed,
                           Objective objective, SearchOptions o = {}) {
  if (space.dimensions().empty()) fail("random_search got an empty search space.");
  if (trials == 0) fail("random_search needs at least one trial.");
  Rng rng(seed);
  std::vector<Params> points(trials);
  for (Params& p : points)
    for (const Space::Dimension& d : space.dimensions()) {
      const double u = rng.uniform01();  // [0, 1)
      double v = 0;
      switch (d.kind) {
        case Space::Kind::list:
          v = d.values[std::min(d.values.size() - 1, std::size_t(u * double(d.values.size())))];
          break;
        case Space::Kind::uniform: v = d.lo + u * (d.hi - d.lo); break;
        case Space::Kind::log_uniform:
          v = std::exp(std::log(d.lo) + u * (std::log(d.hi) - std::log(d.lo)));
          break;
        case Space::Kind::integer: v = std::min(d.hi, std::floor(d.lo + u * (d.hi - d.lo + 1))); break;
      }
      p.set(d.name, v);
    }
  return detail::run_trials(std::move(points), objective, o);
}

// The table of every trial, best marked with '*', failures with their error.
inline std::ostream& operator<<(std::ostream& os, const SearchResult& r) {
  if (r.trials.empty()) return os << "(no trials)\n";
  std::vector<std::string> head{"trial"};
  for (const auto& [n, v] : r.trials.front().params.items()) head.push_back(n);
  head.push_back(r.options.score_name);
  head.push_back("seconds");
  std::vector<std::vector<std::string>> rows;
  const Trial* best = nullptr;
  for (const Trial& t : r.trials)
    if (t.ok() && (!best || (r.options.maximize ? t.score > best->score : t.score < best->score)))
      best = &t;
  for (const Trial& t : r.trials) {
    std::vector<std::string> row{std::to_string(t.index) + (&t == best ? " *" : "")};
    for (const auto& [n, v] : t.params.items()) row.push_back(detail::format_value(v));
    std::ostringstream s;
    if (t.ok()) s << std::fixed << std::setprecision(4) << t.score;
    else s << "failed";
    row.push_back(s.str());
    std::ostringstream sec;
    sec << std::fixed << std::setprecision(1) << t.seconds;
    row.push_back(sec.str());
    rows.push_back(std::move(row));
  }
  std::vector<std::size_t> w(head.size());
  for (std::size_t c = 0; c < head.size(); ++c) {
    w[c] = head[c].size();
    for (const auto& row : rows) w[c] = std::max(w[c], row[c].size());
  }
  const auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t c = 0; c < cells.size(); ++c)
      os << (c ? "  " : "") << std::setw(int(w[c])) << cells[c];
    os << "\n";
  };
  line(head);
  for (const auto& row : rows) line(row);
  for (const Trial& t : r.trials)
    if (!t.error.empty()) os << "trial " << t.index << " failed: " << t.error << "\n";
  if (best) os << "best: trial " << best->index << " (" << r.options.score_name << " "
               << std::fixed << std::setprecision(4) << best->score << std::defaultfloat << ")\n";
  return os;
}

}  // namespace ctnn::tune
