// ctnn/deploy/monitor.hpp: watching a model in service.
//
// ReferenceProfile: what the model met in training, fitted once on the training data and shipped
// with the model (save/load, a small text block; no training data needed to rebuild it):
//   - per input feature, the training minimum and maximum;
//   - the distribution of the model's own predictions on the training data:
//       classification: counts of the predicted class (arg-max; with one output, output >= 0.5
//                       is class 1), one distribution over max(2, outputs) classes;
//       regression:     per output, `bins` equal-width bins over the training output range
//                       [lo, hi], plus one bin below lo and one above hi: one distribution a output.
// Monitored<Model>: wraps a model (by reference) and, for every prediction,
//   - refuses an input holding NaN or Inf: the model is not run, the outputs are NaN and the
//     status says nonfinite_input (a service should answer "bad request", not a guess);
//   - flags NaN/Inf outputs (status nonfinite_output; they are not counted in the distribution);
//   - counts input features outside the training range widened by a margin:
//       feature j is out of range when x_j < min_j - m_j or x_j > max_j + m_j,
//       m_j = range_margin * (max_j - min_j) + range_margin_abs,
//     and flags the sample (out_of_range) when more than range_max_features features are; every
//     feature keeps a counter, and the largest excess beyond [min_j, max_j] is remembered;
//   - times the call (steady_clock, from entry to return, checks included) into a fixed
//     log-scale histogram: 8 buckets an octave, so a percentile is the upper edge of its bucket,
//     at most 12.5% above the true value, and never above the exact maximum. Single-sample and
//     batch calls have separate histograms (a batch is one observation). Refused calls are not
//     timed;
//   - counts the predicted category (class, or bin per output).
// Drift, computed on demand from the counts (no allocation):
//   PSI = sum_i (a_i - e_i) ln(a_i / e_i), the population stability index of the observed
//   distribution a against the training one e, each smoothed as p_i = (c_i + 0.5) / (n + 0.5 k)
//   (k categories, n samples) so an empty category gives a large finite term, not infinity;
//   TVD = (1/2) sum_i |a_i - e_i| on the raw fractions, in [0, 1]. For regression both are the
//   maximum over outputs. drifted() is PSI > psi_threshold (default 0.25, the customary
//   "significant shift" level; 0.1 to 0.25 is usually read as moderate) once at least
//   min_samples predictions (default 100) were counted; before that, and with no predictions,
//   the scores are NaN and drifted() is false.
// No heap allocation per call: every counter is sized in the constructor; stats() (a snapshot
// with vectors) and to_json() allocate. Call reserve(batch) on each serving thread before its
// first batch prediction (it sizes that thread's inference context).
// Thread safety: one Monitored, like the model it wraps, may serve predict() from any number of
// threads at once, and stats(), drift_score(), to_json() may be read meanwhile. A web server
// wants exactly that: one monitor per model with one set of numbers, whichever worker thread
// answered. So every counter and histogram bucket is a std::atomic updated with relaxed
// fetch_add (no lock: a few nanoseconds against a prediction's microseconds); only a new record
// for the largest excess, which happens a handful of times in a service's life, takes a mutex so
// its three fields stay together. A snapshot taken while predictions run is a consistent view of
// each counter, not of all at once (a call in flight may be counted in `samples` and not yet in
// the distribution). reset() and merge() may also run concurrently, with the same caveat.
// Separate monitors (e.g. per shard or per process) still combine with merge().
// Errors (sizes that disagree, a corrupt saved profile, bad options) are ctnn::Error sentences.
#pragma once
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <istream>
#include <limits>
#include <locale>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/data/dataset.hpp"
#include "ctnn/data/transform.hpp"

namespace ctnn {

enum class OutputKind { classification, regression };

inline const char* to_string(OutputKind k) {
  return k == OutputKind::classification ? "classification" : "regression";
}

struct ProfileOptions {
  // Unset: classification when the data has labels or the model ends in Softmax, else regression.
  std::optional<OutputKind> kind = std::nullopt;
  std::size_t bins = 10;  // regression: equal-width bins per output inside the training range
};

// The training reference a Monitored compares service traffic against; see the top of the file.
// Its members may be filled by hand (from saved numbers); check() says whether they agree.
struct ReferenceProfile {
  OutputKind kind = OutputKind::classification;
  std::size_t input_size = 0;
  std::size_t output_size = 0;
  std::size_t bins = 0;                    // regression only; 0 for classification
  std::vector<double> feature_min;         // input_size values
  std::vector<double> feature_max;         // input_size values
  std::vector<double> output_lo;           // regression: output_size values, else empty
  std::vector<double> output_hi;           // regression: output_size values, else empty
  std::vector<std::uint64_t> counts;       // distributions() x categories(), row-major

  std::size_t distributions() const { return kind == OutputKind::classification ? 1 : output_size; }
  std::size_t categories() const {
    if (kind == OutputKind::regression) return bins + 2;
    return std::max<std::size_t>(output_size, 2);
  }
  // Training samples behind the distribution.
  std::uint64_t samples() const {
    std::uint64_t n = 0;
    for (std::size_t c = 0; c < categories() && c < counts.size(); ++c) n += counts[c];
    return n;
  }

  // The category of output vector y in distribution d (see the top of the file).
  template <class T>
  std::size_t category(const T* y, std::size_t d) const {
    if (kind == OutputKind::classification) {
      if (output_size == 1) return y[0] >= T(0.5) ? 1 : 0;
      return std::size_t(std::max_element(y, y + output_size) - y);
    }
    const double v = double(y[d]), lo = output_lo[d], hi = output_hi[d];
    if (v < lo) return 0;
    if (v > hi) return bins + 1;
    if (!(hi > lo)) return 1;  // a constant training output: everything equal to it is bin 1
    const auto b = std::size_t((v - lo) / (hi - lo) * double(bins));
    return 1 + std::min(b, bins - 1);
  }

  // Throws unless the members agree with each other (sizes, finite ranges, min <= max, counts).
  void check(const char* who = "ReferenceProfile") const {
    if (input_size == 0 || output_size == 0)
      fail(who, ": the profile has ", input_size, " inputs and ", output_size,
           " outputs; both must be at least 1.");
    if (kind == OutputKind::regression && bins == 0)
      fail(who, ": a regression profile needs at least 1 bin per output, but bins is 0.");
    const auto sized = [&](const auto& v, std::size_t n, const char* name) {
      if (v.size() != n)
        fail(who, ": ", name, " holds ", v.size(), " values but the profile needs ", n, ".");
    };
    sized(feature_min, input_size, "feature_min");
    sized(feature_max, input_size, "feature_max");
    const bool reg = kind == OutputKind::regression;
    sized(output_lo, reg ? output_size : 0, "output_lo");
    sized(output_hi, reg ? output_size : 0, "output_hi");
    sized(counts, distributions() * categories(), "counts");
    const auto ranges = [&](const std::vector<double>& lo, const std::vector<double>& hi,
                            const char* what) {
      for (std::size_t j = 0; j < lo.size(); ++j)
        if (!std::isfinite(lo[j]) || !std::isfinite(hi[j]) || lo[j] > hi[j])
          fail(who, ": ", what, " ", j, " has the range [", lo[j], ", ", hi[j],
               "]; it must be finite with min <= max.");
    };
    ranges(feature_min, feature_max, "feature");
    ranges(output_lo, output_hi, "output");
    const std::uint64_t n = samples();
    if (n == 0) fail(who, ": the reference distribution counts no samples.");
    for (std::size_t d = 1; d < distributions(); ++d) {
      std::uint64_t m = 0;
      for (std::size_t c = 0; c < categories(); ++c) m += counts[d * categories() + c];
      if (m != n)
        fail(who, ": output ", d, "'s distribution counts ", m, " samples but output 0's counts ",
             n, "; every output sees the same samples.");
    }
  }

  // Fits the profile on the training data, running `model` over it in batches.
  template <class Model>
  static ReferenceProfile fit(Model& model, const data::Dataset& train, ProfileOptions opt = {}) {
    using T = typename Model::value_type;
    constexpr std::size_t D = Model::input_size, N = Model::output_size;
    if (train.size() == 0) fail("ReferenceProfile::fit: the training dataset has no samples.");
    data::validate(train, "training dataset");
    if (train.feature_size() != D)
      fail("ReferenceProfile::fit: the training samples have ", train.feature_size(),
           " features but the model's input ", Model::input_shape::str(), " takes ", D, ".");
    if (opt.bins == 0 || opt.bins > kMaxBins)
      fail("ReferenceProfile::fit: bins is ", opt.bins, "; it must lie in [1, ", kMaxBins, "].");
    using Last = typename Model::template layer<Model::num_layers - 1>;
    ReferenceProfile p;
    p.kind = opt.kind.value_or(train.has_labels() || layer_kind<Last> == LayerKind::softmax
                                   ? OutputKind::classification
                                   : OutputKind::regression);
    p.input_size = D;
    p.output_size = N;
    p.bins = p.kind == OutputKind::regression ? opt.bins : 0;
    const std::size_t n = train.size();
    p.feature_min.assign(train.x.begin(), train.x.begin() + D);
    p.feature_max = p.feature_min;
    for (std::size_t i = 1; i < n; ++i)
      for (std::size_t j = 0; j < D; ++j) {
        const double v = train.x[i * D + j];
        p.feature_min[j] = std::min(p.feature_min[j], v);
        p.feature_max[j] = std::max(p.feature_max[j], v);
      }
    // All outputs are kept: regression bins need the output range before counting.
    std::vector<T> y(n * N);
    constexpr std::size_t kChunk = 256;
    std::vector<T> xin(kChunk * D);
    for (std::size_t b = 0; b < n; b += kChunk) {
      const std::size_t m = std::min(kChunk, n - b);
      std::copy(train.x.begin() + std::ptrdiff_t(b * D), train.x.begin() + std::ptrdiff_t((b + m) * D),
                xin.begin());
      model.predict(std::span<const T>(xin.data(), m * D), std::span<T>(y.data() + b * N, m * N));
    }
    for (std::size_t k = 0; k < y.size(); ++k)
      if (!std::isfinite(y[k]))
        fail("ReferenceProfile::fit: the model's output ", k % N, " for training sample ", k / N,
             " is ", y[k], "; a profile needs finite predictions.");
    if (p.kind == OutputKind::regression) {
      p.output_lo.assign(N, std::numeric_limits<double>::infinity());
      p.output_hi.assign(N, -std::numeric_limits<double>::infinity());
      for (std::size_t k = 0; k < y.size(); ++k) {
        p.output_lo[k % N] = std::min(p.output_lo[k % N], double(y[k]));
        p.output_hi[k % N] = std::max(p.output_hi[k % N], double(y[k]));
      }
    }
    p.counts.assign(p.distributions() * p.categories(), 0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t d = 0; d < p.distributions(); ++d)
        ++p.counts[d * p.categories() + p.category(y.data() + i * N, d)];
    return p;
  }

  // A text block: a "ctnn-reference-profile 1" line, then one line a field (name, values),
  // then "end". Doubles are written with 17 significant digits, so load() gets them back exactly.
  void save(std::ostream& os) const {
    check("ReferenceProfile::save");
    std::ostringstream s;
    s.imbue(std::locale::classic());
    s << std::setprecision(17);
    s << kMagic << ' ' << kVersion << '\n'
      << "kind " << to_string(kind) << '\n'
      << "input_size " << input_size << '\n'
      << "output_size " << output_size << '\n'
      << "bins " << bins << '\n';
    const auto field = [&](const char* name, const auto& v) {
      s << name;
      for (const auto x : v) s << ' ' << x;
      s << '\n';
    };
    field("feature_min", feature_min);
    field("feature_max", feature_max);
    field("output_lo", output_lo);
    field("output_hi", output_hi);
    field("counts", counts);
    s << "end\n";
    os << s.str();
    if (!os) fail("ReferenceProfile::save: writing the profile to the stream failed.");
  }

  // Reads one block written by save(), leaving the stream after its "end" line, and checks it.
  static ReferenceProfile load(std::istream& is) {
    const auto bad = [](const auto&... parts) {
      fail("ReferenceProfile::load: ", parts...);
    };
    const std::locale old = is.imbue(std::locale::classic());
    std::string word;
    const auto expect = [&](const char* name) {
      if (!(is >> word)) bad("the block ends where the field '", name, "' was expected.");
      if (word != name) bad("expected the field '", name, "' but found '", word, "'.");
    };
    // A whole number >= 0. Not `is >> v`: a stream reads "-5" into an unsigned as 2^64 - 5.
    const auto count = [&](const char* name, std::uint64_t& v) {
      std::string tok;
      if (!(is >> tok)) return false;
      const auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
      if (ec != std::errc() || end != tok.data() + tok.size())
        bad("the field '", name, "' holds '", tok, "' where a count (a whole number >= 0) was expected.");
      return true;
    };
    const auto size = [&](const char* name, std::size_t limit) {
      expect(name);
      std::uint64_t v = 0;
      if (!count(name, v)) bad("the field '", name, "' has no readable count.");
      if (v > limit) bad("the field '", name, "' is ", v, ", more than the limit of ", limit, ".");
      return std::size_t(v);
    };
    const auto values = [&](const char* name, auto& v, std::size_t n) {
      expect(name);
      v.resize(n);
      for (std::size_t k = 0; k < n; ++k) {
        bool ok;
        if constexpr (std::is_same_v<std::decay_t<decltype(v[k])>, std::uint64_t>) ok = count(name, v[k]);
        else ok = bool(is >> v[k]);
        if (!ok)
          bad("the field '", name, "' ends after ", k, " of its ", n,
              " values (or holds a value that is not a finite number).");
      }
    };
    if (!(is >> word) || word != kMagic)
      bad("this is not a reference profile: it starts with '", word, "' where '", kMagic,
          "' was expected.");
    int version = 0;
    if (!(is >> version) || version != kVersion)
      bad("the profile has format version ", version, "; this build reads version ", kVersion, ".");
    ReferenceProfile p;
    expect("kind");
    if (!(is >> word) || (word != "classification" && word != "regression"))
      bad("the kind is '", word, "'; it must be 'classification' or 'regression'.");
    p.kind = word == "regression" ? OutputKind::regression : OutputKind::classification;
    p.input_size = size("input_size", kMaxSize);
    p.output_size = size("output_size", kMaxSize);
    p.bins = size("bins", kMaxBins);
    const bool reg = p.kind == OutputKind::regression;
    values("feature_min", p.feature_min, p.input_size);
    values("feature_max", p.feature_max, p.input_size);
    values("output_lo", p.output_lo, reg ? p.output_size : 0);
    values("output_hi", p.output_hi, reg ? p.output_size : 0);
    values("counts", p.counts, p.distributions() * p.categories());
    expect("end");
    is.imbue(old);
    p.check("ReferenceProfile::load");
    return p;
  }

  bool operator==(const ReferenceProfile&) const = default;

  static constexpr const char* kMagic = "ctnn-reference-profile";
  static constexpr int kVersion = 1;
  // Limits for load(): far beyond any real model, small enough that a corrupt size fails
  // instead of allocating without bound.
  static constexpr std::size_t kMaxSize = std::size_t{1} << 28;
  static constexpr std::size_t kMaxBins = 1024;
};

struct MonitorOptions {
  double range_margin = 0.05;            // of each feature's training range (max - min)
  double range_margin_abs = 0.0;         // added to it, in the feature's units
  std::size_t range_max_features = 0;    // a sample is out of range with more features outside
  double psi_threshold = 0.25;           // drifted() when PSI exceeds it
  std::uint64_t min_samples = 100;       // fewer counted predictions give no drift verdict
};

// What became of one sample. Out-of-range is a warning beside the status: the outputs are real.
enum class Status : std::uint8_t { ok, nonfinite_input, nonfinite_output };

inline const char* to_string(Status s) {
  switch (s) {
    case Status::ok: return "ok";
    case Status::nonfinite_input: return "nonfinite_input";
    case Status::nonfinite_output: return "nonfinite_output";
  }
  return "?";
}

struct SampleFlags {
  Status status = Status::ok;
  std::uint32_t out_of_range_features = 0;  // features outside the widened training range
  bool out_of_range = false;                // more than range_max_features of them
  bool ok() const { return status == Status::ok; }  // the outputs are finite model outputs
};

// One sample's outputs (all NaN when the input was refused) and its flags.
template <class T, std::size_t N>
struct Prediction {
  std::array<T, N> outputs;
  SampleFlags flags;
  bool ok() const { return flags.ok(); }
};

// Counts of one batch call.
struct BatchSummary {
  std::size_t samples = 0;
  std::size_t predicted = 0;  // samples the model ran on
  std::size_t nonfinite_inputs = 0, nonfinite_outputs = 0, out_of_range = 0;
};

// Percentiles of a latency histogram, in nanoseconds (NaN when nothing was timed).
struct LatencyStats {
  std::uint64_t count = 0;
  double mean_ns = NAN, p50_ns = NAN, p90_ns = NAN, p99_ns = NAN, min_ns = NAN, max_ns = NAN;
};

// A snapshot of a Monitored's counters and scores.
struct MonitorStats {
  std::uint64_t calls = 0;        // single-sample predict calls
  std::uint64_t batch_calls = 0;  // batch predict calls
  std::uint64_t samples = 0;      // samples given, in both forms
  std::uint64_t predicted = 0;    // samples the model ran on (samples - nonfinite_inputs)
  std::uint64_t nonfinite_inputs = 0, nonfinite_outputs = 0;
  std::uint64_t out_of_range_samples = 0;  // samples flagged out_of_range
  std::uint64_t out_of_range_values = 0;   // feature values outside the widened range, in all
  LatencyStats latency, batch_latency;
  MonitorOptions options;
  std::vector<std::uint64_t> feature_out_of_range;  // per feature: how often it was outside
  std::optional<std::size_t> worst_feature;          // the feature most often outside
  std::optional<std::size_t> worst_excess_feature;   // where the largest excess was seen
  double worst_excess = 0;        // largest distance beyond [min_j, max_j], in feature units
  double worst_excess_value = NAN;  // the input value that gave it
  OutputKind kind = OutputKind::classification;
  std::size_t distributions = 1, categories = 0;
  std::uint64_t counted = 0;      // predictions in the observed distribution (finite outputs)
  std::vector<double> reference;  // distributions x categories fractions, training
  std::vector<double> observed;   // the same, in service
  std::vector<double> psi_per_output;  // one per distribution
  double psi = NAN, tvd = NAN;
  bool drifted = false;

  // One JSON object (fields as above; NaN and Inf are null, an absent feature is null).
  void to_json(std::ostream& os) const;
};

namespace detail {

// Nanosecond latencies in log-scale buckets: 0..7 exactly, then 8 buckets an octave up to 2^64.
class LatencyHistogram {
 public:
  static constexpr std::size_t kBuckets = 8 * 62;

  static std::size_t bucket(std::uint64_t ns) {
    if (ns < 8) return std::size_t(ns);
    const int e = static_cast<int>(std::bit_width(ns)) - 1;  // >= 3
    return std::size_t(8 * (e - 2)) + std::size_t((ns >> (e - 3)) & 7);
  }
  static std::uint64_t upper_edge(std::size_t b) {
    if (b < 8) return b;
    const int e = int(b / 8) + 2;
    const std::uint64_t lower = (8 + std::uint64_t(b % 8)) << (e - 3);
    return lower + ((std::uint64_t{1} << (e - 3)) - 1);
  }

  // Safe from any number of threads at once (no lock; see the top of the file). The sum and the
  // extremes are updated before the bucket, which is released: a reader that sees the bucket
  // (acquire) sees them too, so a percentile is never capped below its own bucket.
  void record(std::uint64_t ns) {
    sum_.fetch_add(ns, std::memory_order_relaxed);
    lower_to(min_, ns);
    raise_to(max_, ns);
    counts_[bucket(ns)].fetch_add(1, std::memory_order_release);
  }
  void merge(const LatencyHistogram& o) {
    const Snapshot s = o.snapshot();
    sum_.fetch_add(o.sum_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    lower_to(min_, o.min_.load(std::memory_order_relaxed));
    raise_to(max_, s.max);
    for (std::size_t b = 0; b < kBuckets; ++b)
      if (s.counts[b]) counts_[b].fetch_add(s.counts[b], std::memory_order_release);
  }
  void reset() {
    for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
    sum_.store(0, std::memory_order_relaxed);
    min_.store(std::numeric_limits<std::uint64_t>::max(), std::memory_order_relaxed);
    max_.store(0, std::memory_order_relaxed);
  }

  // The upper edge of the bucket holding the ceil(q * count)-th smallest value, capped at max.
  double percentile(double q) const { return percentile(q, snapshot()); }
  LatencyStats stats() const {
    const Snapshot s = snapshot();  // one copy, so the count and the percentiles agree
    LatencyStats l;
    l.count = s.count;
    if (s.count == 0) return l;
    l.mean_ns = double(s.sum) / double(s.count);
    l.p50_ns = percentile(0.50, s);
    l.p90_ns = percentile(0.90, s);
    l.p99_ns = percentile(0.99, s);
    l.min_ns = double(s.min);
    l.max_ns = double(s.max);
    return l;
  }

 private:
  struct Snapshot {
    std::array<std::uint64_t, kBuckets> counts;
    std::uint64_t count = 0, sum = 0, min = 0, max = 0;
  };
  // Buckets first (acquire), then what was written before them. While others record, sum may
  // hold a call whose bucket was not yet seen: the mean is then off by that call, for that read.
  Snapshot snapshot() const {
    Snapshot s;
    for (std::size_t b = 0; b < kBuckets; ++b) {
      s.counts[b] = counts_[b].load(std::memory_order_acquire);
      s.count += s.counts[b];
    }
    s.sum = sum_.load(std::memory_order_relaxed);
    s.min = min_.load(std::memory_order_relaxed);
    s.max = max_.load(std::memory_order_relaxed);
    return s;
  }
  static double percentile(double q, const Snapshot& s) {
    if (s.count == 0) return NAN;
    const auto rank = std::max<std::uint64_t>(1, std::uint64_t(std::ceil(q * double(s.count))));
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < kBuckets; ++b) {
      seen += s.counts[b];
      if (seen >= rank) return double(std::min(upper_edge(b), s.max));
    }
    return double(s.max);
  }
  static void lower_to(std::atomic<std::uint64_t>& a, std::uint64_t v) {
    std::uint64_t cur = a.load(std::memory_order_relaxed);
    while (v < cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
  }
  static void raise_to(std::atomic<std::uint64_t>& a, std::uint64_t v) {
    std::uint64_t cur = a.load(std::memory_order_relaxed);
    while (v > cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
  }

  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  std::atomic<std::uint64_t> sum_{0};  // nanoseconds: 2^64 ns is 584 years of calls
  std::atomic<std::uint64_t> min_{std::numeric_limits<std::uint64_t>::max()}, max_{0};
};

// PSI and TVD of observed counts against reference counts over k categories (top of the file).
struct DriftScores {
  double psi = NAN, tvd = NAN;
};
inline std::uint64_t count_of(std::uint64_t c) { return c; }
inline std::uint64_t count_of(const std::atomic<std::uint64_t>& c) {
  return c.load(std::memory_order_relaxed);
}
// obs: plain counts or a live Monitored's atomic ones (each read once, so the scores use one
// consistent set of observed counts).
template <class Count>
DriftScores drift_scores(const std::uint64_t* ref, const Count* live, std::size_t k) {
  constexpr std::size_t kStack = 64;  // categories counted on the stack; more read in two passes
  std::array<std::uint64_t, kStack> copy;
  const bool copied = k <= kStack;
  if (copied)
    for (std::size_t c = 0; c < k; ++c) copy[c] = count_of(live[c]);
  const auto obs = [&](std::size_t c) { return copied ? copy[c] : count_of(live[c]); };
  std::uint64_t nr = 0, no = 0;
  for (std::size_t c = 0; c < k; ++c) nr += ref[c], no += obs(c);
  if (nr == 0 || no == 0) return {};
  constexpr double kAlpha = 0.5;  // Jeffreys-style smoothing: an empty category stays finite
  DriftScores s{0, 0};
  for (std::size_t c = 0; c < k; ++c) {
    const double e = (double(ref[c]) + kAlpha) / (double(nr) + kAlpha * double(k));
    const double a = (double(obs(c)) + kAlpha) / (double(no) + kAlpha * double(k));
    s.psi += (a - e) * std::log(a / e);
    s.tvd += 0.5 * std::abs(double(obs(c)) / double(no) - double(ref[c]) / double(nr));
  }
  return s;
}

// A JSON number, or null for NaN and Inf.
inline void json_number(std::ostream& os, double v) {
  if (std::isfinite(v)) os << v;
  else os << "null";
}

}  // namespace detail

inline void MonitorStats::to_json(std::ostream& out) const {
  std::ostringstream os;
  os.imbue(std::locale::classic());
  os << std::setprecision(10);
  const auto num = [&](double v) { detail::json_number(os, v); };
  const auto arr = [&](const auto& v) {
    os << '[';
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i) os << ',';
      num(double(v[i]));
    }
    os << ']';
  };
  const auto opt = [&](const std::optional<std::size_t>& v) {
    if (v) os << *v;
    else os << "null";
  };
  const auto lat = [&](const LatencyStats& l) {
    os << "{\"count\":" << l.count << ",\"mean\":";
    num(l.mean_ns);
    os << ",\"p50\":";
    num(l.p50_ns);
    os << ",\"p90\":";
    num(l.p90_ns);
    os << ",\"p99\":";
    num(l.p99_ns);
    os << ",\"min\":";
    num(l.min_ns);
    os << ",\"max\":";
    num(l.max_ns);
    os << '}';
  };
  os << "{\"calls\":" << calls << ",\"batch_calls\":" << batch_calls << ",\"samples\":" << samples
     << ",\"predicted\":" << predicted << ",\"nonfinite_inputs\":" << nonfinite_inputs
     << ",\"nonfinite_outputs\":" << nonfinite_outputs
     << ",\"out_of_range_samples\":" << out_of_range_samples
     << ",\"out_of_range_values\":" << out_of_range_values << ",\"latency_ns\":";
  lat(latency);
  os << ",\"batch_latency_ns\":";
  lat(batch_latency);
  os << ",\"range\":{\"margin\":";
  num(options.range_margin);
  os << ",\"margin_abs\":";
  num(options.range_margin_abs);
  os << ",\"max_features\":" << options.range_max_features << ",\"worst_feature\":";
  opt(worst_feature);
  os << ",\"worst_feature_count\":" << (worst_feature ? feature_out_of_range[*worst_feature] : 0)
     << ",\"worst_excess\":";
  num(worst_excess);
  os << ",\"worst_excess_feature\":";
  opt(worst_excess_feature);
  os << ",\"worst_excess_value\":";
  num(worst_excess_value);
  os << ",\"per_feature\":";
  arr(feature_out_of_range);
  os << "},\"drift\":{\"kind\":\"" << to_string(kind) << "\",\"distributions\":" << distributions
     << ",\"categories\":" << categories << ",\"counted\":" << counted << ",\"psi\":";
  num(psi);
  os << ",\"tvd\":";
  num(tvd);
  os << ",\"threshold\":";
  num(options.psi_threshold);
  os << ",\"min_samples\":" << options.min_samples
     << ",\"drifted\":" << (drifted ? "true" : "false") << ",\"psi_per_output\":";
  arr(psi_per_output);
  os << ",\"reference\":";
  arr(reference);
  os << ",\"observed\":";
  arr(observed);
  os << "}}";
  out << os.str();
}

// A readable summary: counts, flags, latency percentiles, drift and the two distributions.
inline std::ostream& operator<<(std::ostream& out, const MonitorStats& s) {
  std::ostringstream os;
  const auto g = [](std::uint64_t v) { return detail::group_thousands(std::size_t(v)); };
  const auto fixed = [](double v, int digits) {
    if (!std::isfinite(v)) return std::string("-");
    std::ostringstream f;
    f << std::fixed << std::setprecision(digits) << v;
    return f.str();
  };
  const auto ns = [&](double v) { return std::isfinite(v) ? g(std::uint64_t(v)) : std::string("-"); };
  const auto pct = [&](std::uint64_t part, std::uint64_t whole) {
    return whole == 0 ? std::string("-") : fixed(100.0 * double(part) / double(whole), 2) + "%";
  };
  os << "Monitor: " << g(s.samples) << " samples in " << g(s.calls) << " calls and "
     << g(s.batch_calls) << " batch calls; " << g(s.predicted) << " predicted\n";
  os << "  non-finite inputs   " << g(s.nonfinite_inputs) << " (refused, model not run)\n"
     << "  non-finite outputs  " << g(s.nonfinite_outputs) << '\n'
     << "  out of range        " << g(s.out_of_range_samples) << " samples ("
     << pct(s.out_of_range_samples, s.predicted) << "), " << g(s.out_of_range_values)
     << " feature values (margin " << s.options.range_margin << " of the range + "
     << s.options.range_margin_abs << ", more than " << s.options.range_max_features
     << " features flags a sample)\n";
  if (s.worst_feature)
    os << "  most often outside  feature " << *s.worst_feature << " ("
       << g(s.feature_out_of_range[*s.worst_feature]) << " times); largest excess "
       << s.worst_excess << " at feature " << *s.worst_excess_feature << " (value "
       << s.worst_excess_value << ")\n";
  const auto lat = [&](const char* name, const LatencyStats& l) {
    os << "  " << name << g(l.count) << " timed: p50 " << ns(l.p50_ns) << "  p90 " << ns(l.p90_ns)
       << "  p99 " << ns(l.p99_ns) << "  max " << ns(l.max_ns) << "  mean " << ns(l.mean_ns)
       << " ns\n";
  };
  lat("latency             ", s.latency);
  lat("batch latency       ", s.batch_latency);
  os << "  drift (" << to_string(s.kind) << ", " << g(s.counted) << " counted): PSI "
     << fixed(s.psi, 4) << " (threshold " << s.options.psi_threshold << "), TVD " << fixed(s.tvd, 4)
     << ": "
     << (s.drifted ? "DRIFTED"
         : s.counted < s.options.min_samples
             ? "no verdict below " + g(s.options.min_samples) + " predictions"
             : std::string("no drift"))
     << '\n';
  if (s.kind == OutputKind::classification) {
    os << "  class  reference   observed\n";
    for (std::size_t c = 0; c < s.categories; ++c)
      os << std::setw(7) << c << std::setw(11) << fixed(s.reference[c], 4) << std::setw(11)
         << fixed(s.counted ? s.observed[c] : NAN, 4) << '\n';
  } else {
    os << "  output       PSI\n";
    for (std::size_t d = 0; d < s.psi_per_output.size(); ++d)
      os << std::setw(8) << d << std::setw(10) << fixed(s.psi_per_output[d], 4) << '\n';
  }
  return out << os.str();
}

// A model in service: predictions with flags, counters, latency and drift (top of the file).
template <class Model>
class Monitored {
 public:
  using T = typename Model::value_type;
  static constexpr std::size_t input_size = Model::input_size;
  static constexpr std::size_t output_size = Model::output_size;

  Monitored(Model& model, ReferenceProfile profile, MonitorOptions options = {})
      : model_(model), profile_(std::move(profile)), options_(options) {
    profile_.check("Monitored");
    if (profile_.input_size != input_size || profile_.output_size != output_size)
      fail("Monitored: the reference profile describes ", profile_.input_size, " inputs and ",
           profile_.output_size, " outputs, but the model takes ", input_size, " inputs ",
           Model::input_shape::str(), " and gives ", output_size, " outputs.");
    const auto nonneg = [](double v, const char* name) {
      if (!(v >= 0) || !std::isfinite(v))
        fail("Monitored: the option ", name, " is ", v, "; it must be finite and at least 0.");
    };
    nonneg(options_.range_margin, "range_margin");
    nonneg(options_.range_margin_abs, "range_margin_abs");
    if (!(options_.psi_threshold > 0) || !std::isfinite(options_.psi_threshold))
      fail("Monitored: the option psi_threshold is ", options_.psi_threshold,
           "; it must be finite and above 0.");
    lo_.resize(input_size);
    hi_.resize(input_size);
    for (std::size_t j = 0; j < input_size; ++j) {
      const double m = options_.range_margin * (profile_.feature_max[j] - profile_.feature_min[j]) +
                       options_.range_margin_abs;
      lo_[j] = profile_.feature_min[j] - m;
      hi_[j] = profile_.feature_max[j] + m;
    }
    // Value-initialized: every counter starts at 0.
    feature_oor_ = std::make_unique<Counter[]>(input_size);
    observed_ = std::make_unique<Counter[]>(profile_.counts.size());
  }

  // Fits the profile on `train` (ReferenceProfile::fit) and monitors against it.
  Monitored(Model& model, const data::Dataset& train, MonitorOptions options = {},
            ProfileOptions profile_options = {})
      : Monitored(model, ReferenceProfile::fit(model, train, profile_options), options) {}

  // One sample of input_size values. A NaN or Inf input is refused: outputs NaN, model not run.
  Prediction<T, output_size> predict(std::span<const T> x) {
    const auto t0 = std::chrono::steady_clock::now();
    if (x.size() != input_size)
      fail("Monitored::predict() was given ", x.size(), " input values but the model's input ",
           Model::input_shape::str(), " has ", input_size, ".");
    add(calls_);
    add(samples_);
    Prediction<T, output_size> p;
    if (!all_finite(x.data())) {
      add(nonfinite_inputs_);
      p.outputs.fill(std::numeric_limits<T>::quiet_NaN());
      p.flags.status = Status::nonfinite_input;
      return p;
    }
    p.outputs = model_.predict(x);
    p.flags = after_model(x.data(), p.outputs.data());
    latency_.record(elapsed_ns(t0));
    return p;
  }

  // A batch: x holds n * input_size values, out receives n * output_size; flags, when not empty,
  // receives one SampleFlags a sample. Refused samples get NaN outputs; the others run as
  // contiguous sub-batches. Allocation-free for n up to the size given to reserve().
  BatchSummary predict(std::span<const T> x, std::span<T> out, std::span<SampleFlags> flags = {}) {
    const auto t0 = std::chrono::steady_clock::now();
    if (x.size() % input_size != 0)
      fail("Monitored::predict() was given ", x.size(),
           " input values, not a multiple of the input size ", input_size, " of ",
           Model::input_shape::str(), ".");
    const std::size_t n = x.size() / input_size;
    if (out.size() != n * output_size)
      fail("Monitored::predict() got an output span of ", out.size(), " values for ", n,
           " samples; it needs ", n * output_size, ".");
    if (!flags.empty() && flags.size() != n)
      fail("Monitored::predict() got ", flags.size(), " flags for ", n,
           " samples; give one a sample or none.");
    add(batch_calls_);
    add(samples_, n);
    BatchSummary sum;
    sum.samples = n;
    std::size_t start = 0;
    const auto run = [&](std::size_t end) {  // samples [start, end) are all finite
      if (end == start) return;
      model_.predict(x.subspan(start * input_size, (end - start) * input_size),
                     out.subspan(start * output_size, (end - start) * output_size));
      for (std::size_t i = start; i < end; ++i) {
        const SampleFlags f = after_model(x.data() + i * input_size, out.data() + i * output_size);
        if (!flags.empty()) flags[i] = f;
        sum.nonfinite_outputs += f.status == Status::nonfinite_output;
        sum.out_of_range += f.out_of_range;
      }
      sum.predicted += end - start;
    };
    for (std::size_t i = 0; i < n; ++i) {
      if (all_finite(x.data() + i * input_size)) continue;
      run(i);
      start = i + 1;
      add(nonfinite_inputs_);
      ++sum.nonfinite_inputs;
      std::fill_n(out.data() + i * output_size, output_size, std::numeric_limits<T>::quiet_NaN());
      if (!flags.empty()) flags[i] = SampleFlags{Status::nonfinite_input, 0, false};
    }
    run(n);
    if (sum.predicted > 0) batch_latency_.record(elapsed_ns(t0));
    return sum;
  }

  // Sizes the calling thread's inference context of the model for batches of up to n samples
  // (each serving thread calls it once; see Sequential::reserve_inference).
  void reserve(std::size_t n) { model_.reserve_inference(n); }

  // PSI of the observed prediction distribution against the training one (max over outputs for
  // regression); NaN below min_samples counted predictions.
  double drift_score() const {
    if (load(counted_) < std::max<std::uint64_t>(options_.min_samples, 1)) return NAN;
    double worst = 0;
    const std::size_t k = profile_.categories();
    for (std::size_t d = 0; d < profile_.distributions(); ++d)
      worst = std::max(worst,
                       detail::drift_scores(&profile_.counts[d * k], &observed_[d * k], k).psi);
    return worst;
  }
  bool drifted() const {
    const double s = drift_score();
    return std::isfinite(s) && s > options_.psi_threshold;
  }

  MonitorStats stats() const {
    MonitorStats s;
    s.calls = load(calls_);
    s.batch_calls = load(batch_calls_);
    s.nonfinite_inputs = load(nonfinite_inputs_);
    s.samples = std::max(load(samples_), s.nonfinite_inputs);
    s.predicted = s.samples - s.nonfinite_inputs;
    s.nonfinite_outputs = load(nonfinite_outputs_);
    s.out_of_range_samples = load(oor_samples_);
    s.out_of_range_values = load(oor_values_);
    s.latency = latency_.stats();
    s.batch_latency = batch_latency_.stats();
    s.options = options_;
    s.feature_out_of_range.resize(input_size);
    for (std::size_t j = 0; j < input_size; ++j) s.feature_out_of_range[j] = load(feature_oor_[j]);
    const auto& f = s.feature_out_of_range;
    const auto most = std::max_element(f.begin(), f.end());
    if (*most > 0) s.worst_feature = std::size_t(most - f.begin());
    {
      const std::lock_guard<std::mutex> lock(worst_mutex_);
      if (worst_excess_feature_) {
        s.worst_excess_feature = worst_excess_feature_;
        s.worst_excess = worst_excess_.load(std::memory_order_relaxed);
        s.worst_excess_value = worst_excess_value_;
      }
    }
    s.kind = profile_.kind;
    s.distributions = profile_.distributions();
    s.categories = profile_.categories();
    const std::size_t k = s.categories;
    std::vector<std::uint64_t> observed(profile_.counts.size());  // one read of each count
    for (std::size_t c = 0; c < observed.size(); ++c) observed[c] = load(observed_[c]);
    // counted: the samples in distribution 0 of this read (every distribution counts each once).
    for (std::size_t c = 0; c < k; ++c) s.counted += observed[c];
    s.reference.resize(profile_.counts.size());
    s.observed.resize(observed.size());
    for (std::size_t d = 0; d < s.distributions; ++d) {
      std::uint64_t nr = 0;
      for (std::size_t c = 0; c < k; ++c) nr += profile_.counts[d * k + c];
      for (std::size_t c = 0; c < k; ++c) {
        s.reference[d * k + c] = double(profile_.counts[d * k + c]) / double(nr);
        s.observed[d * k + c] =
            s.counted ? double(observed[d * k + c]) / double(s.counted) : NAN;
      }
      const auto ds = detail::drift_scores(&profile_.counts[d * k], &observed[d * k], k);
      const bool enough = s.counted >= std::max<std::uint64_t>(options_.min_samples, 1);
      s.psi_per_output.push_back(enough ? ds.psi : NAN);
      if (enough) {
        s.psi = std::isnan(s.psi) ? ds.psi : std::max(s.psi, ds.psi);
        s.tvd = std::isnan(s.tvd) ? ds.tvd : std::max(s.tvd, ds.tvd);
      }
    }
    s.drifted = std::isfinite(s.psi) && s.psi > options_.psi_threshold;
    return s;
  }

  void to_json(std::ostream& os) const { stats().to_json(os); }

  // Adds another monitor's counters (e.g. another thread's) into this one. Both must use the same
  // profile and options.
  void merge(const Monitored& o) {
    if (!(o.profile_ == profile_))
      fail("Monitored::merge: the other monitor uses a different reference profile (",
           o.profile_.samples(), " training samples, ", to_string(o.profile_.kind), ") than this one (",
           profile_.samples(), " training samples, ", to_string(profile_.kind), ").");
    if (o.lo_ != lo_ || o.options_.range_max_features != options_.range_max_features)
      fail("Monitored::merge: the other monitor uses different range options.");
    add(calls_, load(o.calls_));
    add(batch_calls_, load(o.batch_calls_));
    add(samples_, load(o.samples_));
    add(nonfinite_inputs_, load(o.nonfinite_inputs_));
    add(nonfinite_outputs_, load(o.nonfinite_outputs_));
    add(oor_samples_, load(o.oor_samples_));
    add(oor_values_, load(o.oor_values_));
    add(counted_, load(o.counted_));
    for (std::size_t j = 0; j < input_size; ++j) add(feature_oor_[j], load(o.feature_oor_[j]));
    for (std::size_t c = 0; c < profile_.counts.size(); ++c) add(observed_[c], load(o.observed_[c]));
    std::optional<std::size_t> feature;
    double excess = 0, value = NAN;
    {
      const std::lock_guard<std::mutex> lock(o.worst_mutex_);
      feature = o.worst_excess_feature_;
      excess = o.worst_excess_.load(std::memory_order_relaxed);
      value = o.worst_excess_value_;
    }
    if (feature) record_excess(excess, *feature, value);
    latency_.merge(o.latency_);
    batch_latency_.merge(o.batch_latency_);
  }

  // Zeroes every counter; keeps the profile, options and allocations.
  void reset() {
    for (Counter* c : {&calls_, &batch_calls_, &samples_, &nonfinite_inputs_, &nonfinite_outputs_,
                       &oor_samples_, &oor_values_, &counted_})
      c->store(0, std::memory_order_relaxed);
    for (std::size_t j = 0; j < input_size; ++j) feature_oor_[j].store(0, std::memory_order_relaxed);
    for (std::size_t c = 0; c < profile_.counts.size(); ++c)
      observed_[c].store(0, std::memory_order_relaxed);
    {
      const std::lock_guard<std::mutex> lock(worst_mutex_);
      worst_excess_.store(0, std::memory_order_relaxed);
      worst_excess_feature_.reset();
      worst_excess_value_ = NAN;
    }
    latency_.reset();
    batch_latency_.reset();
  }

  const ReferenceProfile& profile() const { return profile_; }
  const MonitorOptions& options() const { return options_; }
  Model& model() { return model_; }

 private:
  static std::uint64_t elapsed_ns(std::chrono::steady_clock::time_point t0) {
    const auto d = std::chrono::steady_clock::now() - t0;
    return std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  }
  static bool all_finite(const T* x) {
    for (std::size_t j = 0; j < input_size; ++j)
      if (!std::isfinite(x[j])) return false;
    return true;
  }

  // Range check of a finite input and bookkeeping of the outputs the model gave for it.
  SampleFlags after_model(const T* x, const T* y) {
    SampleFlags f;
    for (std::size_t j = 0; j < input_size; ++j) {
      const double v = double(x[j]);
      if (v >= lo_[j] && v <= hi_[j]) continue;
      ++f.out_of_range_features;
      add(feature_oor_[j]);
      const double excess =
          v < lo_[j] ? profile_.feature_min[j] - v : v - profile_.feature_max[j];
      if (excess > worst_excess_.load(std::memory_order_relaxed)) record_excess(excess, j, v);
    }
    if (f.out_of_range_features) add(oor_values_, f.out_of_range_features);
    f.out_of_range = f.out_of_range_features > options_.range_max_features;
    if (f.out_of_range) add(oor_samples_);
    for (std::size_t k = 0; k < output_size; ++k)
      if (!std::isfinite(y[k])) {
        f.status = Status::nonfinite_output;
        add(nonfinite_outputs_);
        return f;
      }
    const std::size_t cats = profile_.categories();
    for (std::size_t d = 0; d < profile_.distributions(); ++d)
      add(observed_[d * cats + profile_.category(y, d)]);
    add(counted_);
    return f;
  }

  // A new largest excess: rare (each record beats the last), so a mutex keeps the three fields
  // together without costing the common path, which only reads worst_excess_.
  void record_excess(double excess, std::size_t feature, double value) {
    const std::lock_guard<std::mutex> lock(worst_mutex_);
    if (!(excess > worst_excess_.load(std::memory_order_relaxed))) return;
    worst_excess_.store(excess, std::memory_order_relaxed);
    worst_excess_feature_ = feature;
    worst_excess_value_ = value;
  }

  using Counter = std::atomic<std::uint64_t>;
  static void add(Counter& c, std::uint64_t v = 1) { c.fetch_add(v, std::memory_order_relaxed); }
  static std::uint64_t load(const Counter& c) { return c.load(std::memory_order_relaxed); }

  Model& model_;
  ReferenceProfile profile_;
  MonitorOptions options_;
  std::vector<double> lo_, hi_;  // the widened training range per feature
  // Shared by every calling thread: atomics (see the top of the file).
  Counter calls_{0}, batch_calls_{0}, samples_{0};
  Counter nonfinite_inputs_{0}, nonfinite_outputs_{0};
  Counter oor_samples_{0}, oor_values_{0}, counted_{0};
  std::unique_ptr<Counter[]> feature_oor_;  // input_size counters
  std::unique_ptr<Counter[]> observed_;     // like profile_.counts
  std::atomic<double> worst_excess_{0};     // read without the lock, written under it
  mutable std::mutex worst_mutex_;          // guards the record: the three fields together
  std::optional<std::size_t> worst_excess_feature_;
  double worst_excess_value_ = NAN;
  detail::LatencyHistogram latency_, batch_latency_;
};

// The summary of a monitor's current stats().
template <class Model>
std::ostream& operator<<(std::ostream& os, const Monitored<Model>& m) {
  return os << m.stats();
}

}  // namespace ctnn
