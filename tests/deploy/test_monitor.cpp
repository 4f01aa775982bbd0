// Monitored on real data: a small model trained briefly on 3,000 Fashion-MNIST images, its
// reference profile fitted on them, then test images (no flags, low drift) against inverted
// images, a bright patch and one class only (flags and drift). Plus a counting fake model (the
// model is not run on NaN/Inf), regression bins, allocation, JSON, save/load and merge.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <sstream>
#include <unistd.h>

#include <ctnn/ctnn.hpp>
#include <ctnn/deploy/monitor.hpp>

#include "../allocation_counter.hpp"

using namespace ctnn;
using Catch::Matchers::Contains;

namespace {

using Model = Sequential<Input<28, 28, 1>, Flatten, Dense<32>, ReLU, Dense<10>, Softmax>;
constexpr std::size_t kD = Model::input_size;

// The tolerance for test images: 5% of each pixel's training range (the default margin), and a
// sample is flagged only when more than 5 of its 784 pixels lie outside.
constexpr MonitorOptions kImageOptions{.range_max_features = 5};

// Trained once a process (each Catch case runs in its own process under ctest): 2 epochs on
// 3,000 images, about 2 s; about 0.78 test accuracy.
struct Trained {
  data::Dataset train, test;
  Model model{42};
  ReferenceProfile profile;
  Trained() {
    const std::string dir = CTNN_FASHION_MNIST_DIR;
    train = data::load_idx(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz",
                           {.limit = 3000});
    test = data::load_idx(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz",
                          {.limit = 2000});
    Adam opt(1e-3f);
    fit(model, opt, SparseCategoricalCrossEntropy{}, train, {.epochs = 2, .verbose = 0});
    profile = ReferenceProfile::fit(model, train);
  }
};
Trained& trained() {
  static Trained t;
  return t;
}

std::span<const float> sample(const data::Dataset& d, std::size_t i) { return {d.sample(i), kD}; }

// Runs every test image through m after `edit` changed a copy of it.
template <class Edit>
void run_edited(Monitored<Model>& m, const data::Dataset& d, Edit edit) {
  std::vector<float> x(kD);
  for (std::size_t i = 0; i < d.size(); ++i) {
    std::copy(d.sample(i), d.sample(i) + kD, x.begin());
    edit(x);
    m.predict(std::span<const float>(x));
  }
}

void check_latency(const LatencyStats& l, std::uint64_t count) {
  CHECK(l.count == count);
  if (count == 0) return;
  INFO("latency ns: min " << l.min_ns << " p50 " << l.p50_ns << " p90 " << l.p90_ns << " p99 "
                          << l.p99_ns << " max " << l.max_ns << " mean " << l.mean_ns);
  CHECK(l.min_ns <= l.p50_ns);
  CHECK(l.p50_ns <= l.p90_ns);
  CHECK(l.p90_ns <= l.p99_ns);
  CHECK(l.p99_ns <= l.max_ns);
  CHECK(l.min_ns <= l.mean_ns);
  CHECK(l.mean_ns <= l.max_ns);
  CHECK(l.max_ns > 0);
}

// A model whose calls are counted, for checking what Monitored passes to it: 3 inputs, 2 outputs
// (x0 * x1, x2), so large finite inputs give an infinite output.
struct CountingModel {
  using value_type = float;
  using input_shape = Shape<3>;
  static constexpr std::size_t input_size = 3, output_size = 2;
  std::size_t single_calls = 0, batch_calls = 0, batch_samples = 0;
  std::array<float, 2> predict(std::span<const float> x) {
    ++single_calls;
    return {x[0] * x[1], x[2]};
  }
  void predict(std::span<const float> x, std::span<float> out) {
    ++batch_calls;
    batch_samples += x.size() / 3;
    for (std::size_t i = 0; i < x.size() / 3; ++i) {
      out[2 * i] = x[3 * i] * x[3 * i + 1];
      out[2 * i + 1] = x[3 * i + 2];
    }
  }
  void reserve_inference(std::size_t) {}
};

// A profile written by hand, as a deployment would rebuild it from saved numbers.
ReferenceProfile counting_profile() {
  ReferenceProfile p;
  p.kind = OutputKind::classification;
  p.input_size = 3;
  p.output_size = 2;
  p.feature_min = {0, 0, 0};
  p.feature_max = {1, 1, 1};
  p.counts = {50, 50};
  return p;
}

// True when s is balanced JSON as far as brackets, quotes and the words NaN/Inf go.
bool looks_like_json(const std::string& s) {
  int depth = 0;
  bool in_string = false;
  for (char c : s) {
    if (c == '"') in_string = !in_string;
    if (in_string) continue;
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') --depth;
    if (depth < 0) return false;
  }
  return depth == 0 && !in_string && s.find("nan") == std::string::npos &&
         s.find("inf") == std::string::npos;
}

// Python's json module reads `text` and prints `expr` of it (d is the document; no single
// quotes in expr, the shell quotes it with them); "" when python3 is not installed.
std::string python_json(const std::string& text, const std::string& expr) {
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) return "";
  const auto path = std::filesystem::temp_directory_path() /
                    ("ctnn_monitor_" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << text;
  const std::string cmd = "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" +
                          expr + ")' " + path.string() + " 2>&1";
  std::string out;
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    ::pclose(f);
  }
  std::filesystem::remove(path);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

TEST_CASE("Fashion-MNIST test images raise no range flags and a low drift score") {
  Trained& t = trained();
  CHECK(t.profile.kind == OutputKind::classification);
  CHECK(t.profile.samples() == 3000);
  Monitored<Model> m(t.model, t.profile, kImageOptions);
  std::size_t flagged = 0;
  for (std::size_t i = 0; i < t.test.size(); ++i) {
    const auto p = m.predict(sample(t.test, i));
    REQUIRE(p.ok());
    flagged += p.flags.out_of_range;
    const auto direct = t.model.predict(sample(t.test, i));
    REQUIRE(p.outputs == direct);
  }
  const MonitorStats s = m.stats();
  INFO(s);
  // Seen: 0 of 2,000 flagged (41 with range_max_features = 0), PSI 0.007, TVD 0.035.
  CHECK(flagged == s.out_of_range_samples);
  CHECK(s.out_of_range_samples <= 10);  // at most 0.5%
  CHECK(s.psi < 0.05);
  CHECK(s.tvd < 0.08);
  CHECK_FALSE(s.drifted);
  CHECK_FALSE(m.drifted());
  CHECK(m.drift_score() == Approx(s.psi));
  CHECK(s.calls == 2000);
  CHECK(s.batch_calls == 0);
  CHECK(s.samples == 2000);
  CHECK(s.predicted == 2000);
  CHECK(s.counted == 2000);
  CHECK(s.nonfinite_inputs == 0);
  CHECK(s.nonfinite_outputs == 0);
  check_latency(s.latency, 2000);
  check_latency(s.batch_latency, 0);
  std::uint64_t per_feature = 0;
  for (auto c : s.feature_out_of_range) per_feature += c;
  CHECK(per_feature == s.out_of_range_values);
}

TEST_CASE("Inverted images, a bright patch and one class only raise flags and drift") {
  Trained& t = trained();
  SECTION("Inverted images (1 - x): every image out of range, PSI far above 0.25") {
    Monitored<Model> m(t.model, t.profile, kImageOptions);
    run_edited(m, t.test, [](std::vector<float>& x) {
      for (float& v : x) v = 1 - v;
    });
    const MonitorStats s = m.stats();
    INFO(s);
    CHECK(s.out_of_range_samples == 2000);  // seen: 2,000, PSI 5.5, TVD 0.77
    CHECK(s.psi > 1.0);
    CHECK(s.drifted);
  }
  SECTION("A white 6x6 patch in the top-left corner: every image flagged, the patch named") {
    Monitored<Model> m(t.model, t.profile, kImageOptions);
    run_edited(m, t.test, [](std::vector<float>& x) {
      for (std::size_t r = 0; r < 6; ++r)
        for (std::size_t c = 0; c < 6; ++c) x[r * 28 + c] = 1.0f;
    });
    const MonitorStats s = m.stats();
    INFO(s);
    CHECK(s.out_of_range_samples == 2000);  // seen: 2,000, PSI 0.54, TVD 0.27
    REQUIRE(s.worst_feature.has_value());
    CHECK(*s.worst_feature / 28 < 6);
    CHECK(*s.worst_feature % 28 < 6);
    CHECK(s.feature_out_of_range[*s.worst_feature] == 2000);
    REQUIRE(s.worst_excess_feature.has_value());
    CHECK(s.worst_excess > 0.9);  // corner pixels are 0 in all 3,000 training images
    CHECK(s.worst_excess_value == 1.0);
    CHECK(s.psi > 0.25);
    CHECK(s.drifted);
  }
  SECTION("Only trousers (class 1): no range flags, PSI far above 0.25") {
    Monitored<Model> m(t.model, t.profile, kImageOptions);
    for (std::size_t i = 0; i < t.test.size(); ++i)
      if (t.test.labels[i] == 1) m.predict(sample(t.test, i));
    const MonitorStats s = m.stats();
    INFO(s);
    REQUIRE(s.counted >= 150);  // 203 of the first 2,000 test images
    CHECK(s.out_of_range_samples <= 2);
    CHECK(s.psi > 1.0);  // seen: 4.1, TVD 0.81
    CHECK(s.tvd > 0.5);
    CHECK(s.drifted);
  }
  SECTION("Fewer than min_samples predictions give no verdict") {
    Monitored<Model> m(t.model, t.profile, kImageOptions);
    for (std::size_t i = 0; i < 50; ++i)
      if (t.test.labels[i] == 1) m.predict(sample(t.test, i));
    CHECK(std::isnan(m.drift_score()));
    CHECK_FALSE(m.drifted());
    CHECK(std::isnan(m.stats().psi));
  }
}

TEST_CASE("A NaN or Inf input is refused and never reaches the model") {
  SECTION("On the trained model: a NaN pixel") {
    Trained& t = trained();
    Monitored<Model> m(t.model, t.profile, kImageOptions);
    std::vector<float> x(t.test.sample(0), t.test.sample(0) + kD);
    m.predict(std::span<const float>(x));
    x[400] = NAN;
    const auto p = m.predict(std::span<const float>(x));
    CHECK(p.flags.status == Status::nonfinite_input);
    CHECK_FALSE(p.ok());
    for (float v : p.outputs) CHECK(std::isnan(v));
    const MonitorStats s = m.stats();
    CHECK(s.calls == 2);
    CHECK(s.samples == 2);
    CHECK(s.predicted == 1);
    CHECK(s.counted == 1);
    CHECK(s.nonfinite_inputs == 1);
    CHECK(s.latency.count == 1);  // refused calls are not timed
  }
  SECTION("On a counting model: single and batch calls, Inf outputs") {
    CountingModel model;
    Monitored<CountingModel> m(model, counting_profile());
    const std::array<float, 3> good{0.5f, 0.5f, 0.5f}, nan_in{0.5f, NAN, 0.5f},
        inf_in{INFINITY, 0.5f, 0.5f}, huge{1e30f, 1e30f, 0.5f};
    CHECK(m.predict(good).ok());
    CHECK(m.predict(nan_in).flags.status == Status::nonfinite_input);
    CHECK(m.predict(inf_in).flags.status == Status::nonfinite_input);
    CHECK(model.single_calls == 1);
    const auto h = m.predict(huge);  // finite input far out of range, infinite output
    CHECK(h.flags.status == Status::nonfinite_output);
    CHECK(h.flags.out_of_range);
    CHECK(h.flags.out_of_range_features == 2);
    CHECK(model.single_calls == 2);

    // A batch of 5 with a NaN at 1 and an Inf at 3: the model sees runs [0], [2], [4].
    std::vector<float> xs;
    for (const auto* s : {&good, &nan_in, &good, &inf_in, &good}) xs.insert(xs.end(), s->begin(), s->end());
    std::vector<float> out(10, -1.0f);
    std::vector<SampleFlags> flags(5);
    const BatchSummary b = m.predict(std::span<const float>(xs), std::span<float>(out), flags);
    CHECK(model.batch_calls == 3);
    CHECK(model.batch_samples == 3);
    CHECK(b.samples == 5);
    CHECK(b.predicted == 3);
    CHECK(b.nonfinite_inputs == 2);
    CHECK(flags[1].status == Status::nonfinite_input);
    CHECK(flags[3].status == Status::nonfinite_input);
    CHECK(flags[4].ok());
    CHECK(std::isnan(out[2]));
    CHECK(std::isnan(out[7]));
    CHECK(out[8] == 0.25f);
    const MonitorStats s = m.stats();
    CHECK(s.calls == 4);
    CHECK(s.batch_calls == 1);
    CHECK(s.samples == 9);
    CHECK(s.nonfinite_inputs == 4);
    CHECK(s.predicted == 5);
    CHECK(s.nonfinite_outputs == 1);
    CHECK(s.counted == 4);  // the infinite output is not counted in the distribution
    CHECK(s.out_of_range_samples == 1);
    check_latency(s.latency, 2);
    check_latency(s.batch_latency, 1);
  }
}

TEST_CASE("Predictions allocate nothing after warm-up, batch and single agree") {
  Trained& t = trained();
  Monitored<Model> m(t.model, t.profile, kImageOptions);
  constexpr std::size_t kBatch = 64;
  m.reserve(kBatch);
  std::vector<float> xs(t.test.x.begin(), t.test.x.begin() + kBatch * kD);
  xs[10 * kD + 5] = NAN;      // sample 10 is refused
  xs[20 * kD] = 1.0f;         // sample 20 has a bright corner pixel
  std::vector<float> out(kBatch * Model::output_size);
  std::vector<SampleFlags> flags(kBatch);
  m.predict(std::span<const float>(xs), std::span<float>(out), flags);  // warm-up
  m.predict(sample(t.test, 0));

  const std::size_t before = g_allocations.load();
  for (int r = 0; r < 10; ++r) {
    const auto b = m.predict(std::span<const float>(xs), std::span<float>(out), flags);
    REQUIRE(b.nonfinite_inputs == 1);
    for (std::size_t i = 0; i < 20; ++i) REQUIRE(m.predict(sample(t.test, i)).ok());
    REQUIRE_FALSE(m.drifted());
  }
  CHECK(g_allocations.load() == before);

  CHECK(flags[10].status == Status::nonfinite_input);
  CHECK(flags[20].out_of_range_features >= 1);
  for (std::size_t i = 0; i < kBatch; ++i) {
    if (i == 10) continue;
    const auto one = t.model.predict(std::span<const float>(xs.data() + i * kD, kD));
    for (std::size_t k = 0; k < Model::output_size; ++k)
      REQUIRE(out[i * Model::output_size + k] == Approx(one[k]).margin(1e-6));
  }
  const MonitorStats s = m.stats();
  CHECK(s.batch_calls == 11);
  CHECK(s.calls == 201);
  CHECK(s.samples == 11 * kBatch + 201);
  CHECK(s.nonfinite_inputs == 11);
  check_latency(s.latency, 201);
  check_latency(s.batch_latency, 11);
}

TEST_CASE("The JSON dump parses and holds the numbers, the summary reads") {
  Trained& t = trained();
  Monitored<Model> m(t.model, t.profile, kImageOptions);
  std::ostringstream empty;
  m.to_json(empty);  // no calls yet: NaN scores are null
  CHECK(looks_like_json(empty.str()));
  CHECK_THAT(empty.str(), Contains("\"psi\":null"));

  for (std::size_t i = 0; i < 500; ++i) m.predict(sample(t.test, i));
  std::vector<float> x(kD, 1.0f);
  m.predict(std::span<const float>(x));  // out of range everywhere but the middle
  x[0] = NAN;
  m.predict(std::span<const float>(x));
  std::ostringstream js;
  m.to_json(js);
  const std::string text = js.str();
  INFO(text.substr(0, 600));
  CHECK(looks_like_json(text));
  CHECK_THAT(text, Contains("\"calls\":502") && Contains("\"nonfinite_inputs\":1") &&
                       Contains("\"counted\":501") && Contains("\"kind\":\"classification\""));
  const std::string py = python_json(
      text, R"(d["calls"], d["predicted"], d["latency_ns"]["count"], len(d["range"]["per_feature"]),)"
            R"( len(d["drift"]["observed"]), d["drift"]["drifted"], d["out_of_range_samples"],)"
            R"( d["drift"]["psi"] < 0.25)");
  if (py.empty()) {
    WARN("python3 is not installed: the JSON was checked only structurally.");
  } else {
    const MonitorStats s = m.stats();
    std::ostringstream want;
    want << "502 501 501 784 10 False " << s.out_of_range_samples << " True";
    CHECK(py == want.str());
  }

  std::ostringstream summary;
  summary << m;
  CHECK_THAT(summary.str(), Contains("502 calls") && Contains("PSI") && Contains("no drift") &&
                                Contains("non-finite inputs   1"));
}

TEST_CASE("A profile saves and loads exactly, and a wrong one is an error naming the sizes") {
  Trained& t = trained();
  std::stringstream ss;
  t.profile.save(ss);
  ss << "trailing";
  const ReferenceProfile back = ReferenceProfile::load(ss);
  CHECK(back == t.profile);
  std::string rest;
  ss >> rest;
  CHECK(rest == "trailing");  // the stream is left just after the block

  // The loaded profile monitors as the fitted one does.
  Monitored<Model> a(t.model, t.profile), b(t.model, back);
  for (std::size_t i = 0; i < 300; ++i) {
    a.predict(sample(t.test, i));
    b.predict(sample(t.test, i));
  }
  CHECK(a.drift_score() == b.drift_score());

  std::ostringstream saved;
  t.profile.save(saved);
  const std::string text = saved.str();
  const auto load_text = [](const std::string& s) {
    std::istringstream is(s);
    return ReferenceProfile::load(is);
  };
  CHECK_THROWS_WITH(load_text(text.substr(0, text.size() / 2)), Contains("ends after"));
  CHECK_THROWS_WITH(load_text("CTNNPREP 1"), Contains("not a reference profile"));
  CHECK_THROWS_WITH(load_text("ctnn-reference-profile 7"), Contains("format version 7"));
  std::string swapped = text;
  swapped.replace(swapped.find("feature_max"), 11, "feature_mix");
  CHECK_THROWS_WITH(load_text(swapped), Contains("expected the field 'feature_max'"));
  // A negative count is refused, not read as 2^64 minus it.
  const std::size_t counts_at = text.find("\ncounts ") + 8;
  const std::string negative = text.substr(0, counts_at) + "-" + text.substr(counts_at);
  CHECK_THROWS_WITH(load_text(negative),
                    Contains("the field 'counts' holds '-") && Contains("whole number >= 0"));
  const std::size_t bins_at = text.find("\nbins ") + 6;
  const std::string negative_size = text.substr(0, bins_at) + "-" + text.substr(bins_at);
  CHECK_THROWS_WITH(load_text(negative_size), Contains("the field 'bins' holds '-"));

  CountingModel small;
  CHECK_THROWS_WITH(Monitored<CountingModel>(small, t.profile),
                    Contains("784 inputs and 10 outputs") && Contains("takes 3 inputs") &&
                        Contains("gives 2 outputs"));
  ReferenceProfile cut = t.profile;
  cut.feature_max.pop_back();
  CHECK_THROWS_WITH(Monitored<Model>(t.model, cut),
                    Contains("feature_max holds 783 values but the profile needs 784"));
  CHECK_THROWS_WITH(Monitored<Model>(t.model, t.profile, {.psi_threshold = 0}),
                    Contains("psi_threshold is 0"));
  data::Dataset wrong;
  wrong.sample_shape = {3};
  wrong.x = {0, 0, 0};
  wrong.labels = {0};
  wrong.num_classes = 1;
  CHECK_THROWS_WITH(ReferenceProfile::fit(t.model, wrong),
                    Contains("3 features") && Contains("takes 784"));
}

TEST_CASE("Regression outputs are binned over the training range and drift when shifted") {
  using Reg = Sequential<Input<4>, Dense<8>, Tanh, Dense<2>>;
  Reg model(7);
  Rng rng(3);
  data::Dataset train;
  train.sample_shape = {4};
  train.target_size = 2;
  for (int i = 0; i < 2000; ++i) {
    for (int j = 0; j < 4; ++j) train.x.push_back(float(rng.uniform01()));
    train.targets.push_back(0);
    train.targets.push_back(0);
  }
  const ReferenceProfile p = ReferenceProfile::fit(model, train, {.bins = 8});
  CHECK(p.kind == OutputKind::regression);
  CHECK(p.categories() == 10);
  CHECK(p.distributions() == 2);
  CHECK(p.counts[0] == 0);  // nothing below the training range in training
  CHECK(p.counts[9] == 0);
  std::stringstream ss;
  p.save(ss);
  CHECK(ReferenceProfile::load(ss) == p);

  Monitored<Reg> same(model, p), shifted(model, p);
  std::array<float, 4> x{};
  for (int i = 0; i < 1000; ++i) {
    for (float& v : x) v = float(rng.uniform01());
    REQUIRE(same.predict(x).ok());
    for (float& v : x) v += 0.5f;  // half the training range to the right
    REQUIRE(shifted.predict(x).ok());
  }
  const MonitorStats a = same.stats(), b = shifted.stats();
  INFO(a << b);
  CHECK(a.psi < 0.05);
  CHECK(a.out_of_range_samples == 0);
  CHECK(b.psi > 0.25);
  CHECK(b.drifted);
  CHECK(b.out_of_range_samples > 800);  // seen: 905 (PSI 0.020 unshifted, 0.436 shifted)
  CHECK(a.psi_per_output.size() == 2);
}

TEST_CASE("merge adds the counters of two monitors") {
  Trained& t = trained();
  Monitored<Model> all(t.model, t.profile, kImageOptions), a(t.model, t.profile, kImageOptions),
      b(t.model, t.profile, kImageOptions);
  std::vector<float> x(kD);
  for (std::size_t i = 0; i < 400; ++i) {
    std::copy(t.test.sample(i), t.test.sample(i) + kD, x.begin());
    if (i % 7 == 0) x[0] = 1.0f;  // some out of range
    all.predict(std::span<const float>(x));
    (i % 2 ? a : b).predict(std::span<const float>(x));
  }
  a.merge(b);
  const MonitorStats sa = a.stats(), sall = all.stats();
  CHECK(sa.calls == sall.calls);
  CHECK(sa.counted == sall.counted);
  CHECK(sa.out_of_range_values == sall.out_of_range_values);
  CHECK(sa.feature_out_of_range == sall.feature_out_of_range);
  CHECK(sa.observed == sall.observed);
  CHECK(sa.psi == Approx(sall.psi));
  CHECK(sa.worst_excess == sall.worst_excess);
  CHECK(sa.latency.count == 400);

  Monitored<Model> other(t.model, t.profile, {.range_margin = 0.5});
  CHECK_THROWS_WITH(a.merge(other), Contains("different range options"));
  a.reset();
  CHECK(a.stats().calls == 0);
  CHECK(a.stats().latency.count == 0);
}
