// Evaluation metrics: hand-computed small cases, the printed tables, the errors, and reports of
// real trained models checked against evaluate() and against direct double-precision
// recomputations written independently here.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <zlib.h>

#include <ctnn/ctnn.hpp>
#include <ctnn/eval/metrics.hpp>

using namespace ctnn;
using Catch::Matchers::Contains;

namespace {

const std::string kFashionDir = CTNN_FASHION_MNIST_DIR;
const std::string kSklearnDir = CTNN_SKLEARN_DATA_DIR;
const std::vector<std::string> kFashionNames{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

std::size_t widest_line(const std::string& text) {
  std::size_t w = 0;
  for (const auto& l : lines_of(text)) w = std::max(w, l.size());
  return w;
}

template <class T>
std::string print(const T& v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// The lines of a gzip file.
std::vector<std::string> gz_lines(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  std::string text;
  char buf[4096];
  for (int got; (got = gzread(f, buf, sizeof buf)) > 0;) text.append(buf, std::size_t(got));
  gzclose(f);
  return lines_of(text);
}

std::vector<double> numbers(const std::string& line, char sep) {
  std::vector<double> v;
  std::istringstream in(line);
  for (std::string field; std::getline(in, field, sep);)
    if (!field.empty()) v.push_back(std::stod(field));
  return v;
}

// Standardizes each of the `width` columns of x to mean 0, variance 1.
void standardize(std::vector<float>& x, std::size_t width) {
  const std::size_t n = x.size() / width;
  for (std::size_t j = 0; j < width; ++j) {
    double mean = 0, var = 0;
    for (std::size_t i = 0; i < n; ++i) mean += x[i * width + j];
    mean /= double(n);
    for (std::size_t i = 0; i < n; ++i) var += (x[i * width + j] - mean) * (x[i * width + j] - mean);
    const double sd = std::sqrt(var / double(n));
    for (std::size_t i = 0; i < n; ++i) x[i * width + j] = float((x[i * width + j] - mean) / sd);
  }
}

// scikit-learn's classification CSV: "n_samples,n_features,class names...", then features + class.
data::Dataset sklearn_csv(const std::string& file) {
  std::ifstream in(kSklearnDir + "/" + file);
  REQUIRE(in);
  std::string line;
  std::getline(in, line);
  std::vector<std::string> head;
  std::istringstream h(line);
  for (std::string f; std::getline(h, f, ',');) head.push_back(f);
  const std::size_t features = std::stoul(head[1]);
  data::Dataset d;
  d.sample_shape = {features};
  d.class_names.assign(head.begin() + 2, head.end());
  d.num_classes = d.class_names.size();
  while (std::getline(in, line)) {
    const auto v = numbers(line, ',');
    if (v.empty()) continue;
    REQUIRE(v.size() == features + 1);
    for (std::size_t j = 0; j < features; ++j) d.x.push_back(float(v[j]));
    d.labels.push_back(std::int32_t(v[features]));
  }
  REQUIRE(d.size() == std::stoul(head[0]));
  standardize(d.x, features);
  return d;
}

data::Dataset fashion(const std::string& images, const std::string& labels, std::size_t n) {
  auto d = data::load_idx(kFashionDir + "/" + images, kFashionDir + "/" + labels, {.limit = n});
  d.num_classes = 10;  // a small subset might lack the last class
  d.class_names = kFashionNames;
  return d;
}

// The straightforward reading of "top-k with ties to the lower index": sort class indices by
// descending score, stably, and look for the truth among the first k.
bool stable_sort_hit(const float* row, std::size_t width, std::size_t truth, std::size_t k) {
  std::vector<std::size_t> order(width);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return row[a] > row[b]; });
  return std::find(order.begin(), order.begin() + std::ptrdiff_t(k), truth) !=
         order.begin() + std::ptrdiff_t(k);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Hand-computed cases.

// Five classes: class 2 is never predicted, class 3 never occurs in the truth, class 4 in neither.
const std::vector<std::int32_t> kTruth{0, 0, 0, 1, 1, 2, 2, 0, 1, 2};
const std::vector<std::int32_t> kPred{0, 0, 1, 1, 3, 1, 0, 0, 1, 3};

TEST_CASE("Confusion matrix counts by hand: rows are true classes, columns predictions") {
  const auto cm = confusion_matrix(kTruth, kPred, 5);
  const std::vector<std::size_t> expected{3, 1, 0, 0, 0,   // true 0
                                          0, 2, 0, 1, 0,   // true 1
                                          1, 1, 0, 1, 0,   // true 2
                                          0, 0, 0, 0, 0,   // true 3
                                          0, 0, 0, 0, 0};  // true 4
  CHECK(cm.counts == expected);
  CHECK(cm.num_classes == 5);
  CHECK(cm.support(0) == 4);
  CHECK(cm.support(2) == 3);
  CHECK(cm.predicted(1) == 4);
  CHECK(cm.predicted(2) == 0);
  CHECK(cm.predicted(3) == 2);
  CHECK(cm.correct() == 5);
  CHECK(cm.total() == 10);
}

TEST_CASE("Classification report by hand, with 0/0 taken as 0 and absent classes out of the macro mean") {
  const auto r = classification_report(confusion_matrix(kTruth, kPred, 5));
  REQUIRE(r.classes.size() == 5);
  CHECK(r.samples == 10);
  CHECK(r.accuracy == 0.5);
  // Class 0: tp 3 of 4 predicted, 4 true.
  CHECK(r.classes[0].precision == 0.75);
  CHECK(r.classes[0].recall == 0.75);
  CHECK(r.classes[0].f1 == 0.75);
  CHECK(r.classes[0].support == 4);
  // Class 1: tp 2 of 4 predicted, 3 true; F1 = 2*2 / (2*2 + 2 + 1).
  CHECK(r.classes[1].precision == 0.5);
  CHECK(r.classes[1].recall == Approx(2.0 / 3).epsilon(1e-15));
  CHECK(r.classes[1].f1 == Approx(4.0 / 7).epsilon(1e-15));
  // Class 2, never predicted: precision 0/0 -> 0; recall 0/3.
  CHECK(r.classes[2].precision == 0);
  CHECK(r.classes[2].recall == 0);
  CHECK(r.classes[2].f1 == 0);
  CHECK(r.classes[2].support == 3);
  // Class 3, absent from the truth: precision 0/2, recall 0/0 -> 0.
  CHECK(r.classes[3].precision == 0);
  CHECK(r.classes[3].recall == 0);
  CHECK(r.classes[3].support == 0);
  CHECK(r.classes[3].predicted == 2);
  // Class 4 is in neither: listed, but the macro average is over classes 0-3 (as sklearn).
  CHECK(r.classes[4].support == 0);
  CHECK(r.averaged_classes == 4);
  CHECK(r.macro_avg.precision == Approx((0.75 + 0.5) / 4).epsilon(1e-15));
  CHECK(r.macro_avg.recall == Approx((0.75 + 2.0 / 3) / 4).epsilon(1e-15));
  CHECK(r.macro_avg.f1 == Approx((0.75 + 4.0 / 7) / 4).epsilon(1e-15));
  CHECK(r.weighted_avg.precision == Approx((4 * 0.75 + 3 * 0.5) / 10).epsilon(1e-15));
  CHECK(r.weighted_avg.recall == Approx(r.accuracy).epsilon(1e-15));  // always, by definition
  CHECK(r.weighted_avg.f1 == Approx((4 * 0.75 + 3 * 4.0 / 7) / 10).epsilon(1e-15));
  CHECK(r.macro_avg.support == 10);
  CHECK(r.classes[0].name == "0");
}

TEST_CASE("Top-k accuracy by hand, ties broken toward the lower class index") {
  const std::vector<float> scores{0.5f, 0.5f, 0.0f,    // truth 1 ties with class 0, which goes first
                                  0.2f, 0.2f, 0.2f,    // truth 2 ties with both: third
                                  0.1f, 0.7f, 0.2f,    // truth 2 is second
                                  0.9f, 0.05f, 0.05f};  // truth 0 is first
  const std::vector<std::int32_t> truth{1, 2, 2, 0};
  CHECK(top_k_accuracy(scores, truth, 3, 1) == 0.25);
  CHECK(top_k_accuracy(scores, truth, 3, 2) == 0.75);
  CHECK(top_k_accuracy(scores, truth, 3, 3) == 1.0);
  // Top-1 is the accuracy of argmax (first maximum), also on the tied rows.
  std::vector<std::int32_t> argmax(4);
  for (std::size_t i = 0; i < 4; ++i)
    argmax[i] = std::int32_t(std::max_element(scores.begin() + std::ptrdiff_t(3 * i),
                                              scores.begin() + std::ptrdiff_t(3 * i + 3)) -
                             (scores.begin() + std::ptrdiff_t(3 * i)));
  CHECK(classification_report(confusion_matrix(truth, argmax, 3)).accuracy == 0.25);
  // The truth at the lower index wins its tie.
  const std::vector<std::int32_t> first{0, 0, 1, 0};
  CHECK(top_k_accuracy(scores, first, 3, 1) == 1.0);
  // Double scores take the same path.
  const std::vector<double> dscores(scores.begin(), scores.end());
  CHECK(top_k_accuracy(dscores, truth, 3, 2) == 0.75);
}

TEST_CASE("Regression report by hand: per output and the uniform average") {
  // Output 0: targets 1 2 3 4, errors 0.5 0 -1 1. Output 1: a constant target predicted exactly.
  const std::vector<float> target{1, 5, 2, 5, 3, 5, 4, 5};
  const std::vector<float> pred{1.5f, 5, 2, 5, 2, 5, 5, 5};
  const auto r = regression_report(pred, target, 4, 2);
  REQUIRE(r.outputs.size() == 2);
  CHECK(r.samples == 4);
  CHECK(r.outputs[0].mae == 0.625);
  CHECK(r.outputs[0].mse == 0.5625);
  CHECK(r.outputs[0].rmse == 0.75);
  CHECK(r.outputs[0].r2 == Approx(1 - 2.25 / 5).epsilon(1e-15));  // SS_tot = 5, SS_res = 2.25
  CHECK(r.outputs[1].mae == 0);
  CHECK(r.outputs[1].r2 == 1);  // constant target, exact prediction
  CHECK(r.overall.mae == 0.3125);
  CHECK(r.overall.mse == 0.28125);
  CHECK(r.overall.rmse == 0.375);  // mean of the per-output RMSEs, as sklearn
  CHECK(r.overall.r2 == Approx(0.775).epsilon(1e-15));

  // A constant target missed scores R² 0; a single output gives the same overall numbers.
  const std::vector<double> t1{2, 2, 2}, p1{1, 2, 3};
  const auto c = regression_report(p1, t1, 3, 1);
  CHECK(c.outputs[0].r2 == 0);
  CHECK(c.overall.mae == Approx(2.0 / 3).epsilon(1e-15));
  CHECK(c.overall.rmse == Approx(std::sqrt(2.0 / 3)).epsilon(1e-15));
  // Predicting the mean scores R² 0, a worse guess is negative.
  const std::vector<double> t2{1, 2, 3}, mean{2, 2, 2}, bad{3, 2, 1};
  CHECK(regression_report(mean, t2, 3, 1).overall.r2 == 0);
  CHECK(regression_report(bad, t2, 3, 1).overall.r2 == -3);
}

// ---------------------------------------------------------------------------------------------
// Errors.

TEST_CASE("Metric errors are sentences that give the values") {
  const std::vector<std::int32_t> three{0, 1, 2}, two{0, 1}, none;
  CHECK_THROWS_WITH(confusion_matrix(three, two, 3),
                    Contains("3 true labels but 2 predicted labels"));
  CHECK_THROWS_WITH(confusion_matrix(none, none, 3), Contains("no samples"));
  CHECK_THROWS_WITH(confusion_matrix(three, three, 0), Contains("num_classes is 0"));
  CHECK_THROWS_WITH(confusion_matrix(three, std::vector<std::int32_t>{0, 5, 1}, 3),
                    Contains("predicted label 5 at sample 1 is outside the class range [0, 3)"));
  CHECK_THROWS_WITH(confusion_matrix(std::vector<std::int32_t>{0, -1, 2}, three, 3),
                    Contains("true label -1 at sample 1"));

  const auto cm = confusion_matrix(three, three, 3);
  const std::vector<std::string> names{"a", "b"};
  CHECK_THROWS_WITH(classification_report(cm, names), Contains("2 class names for 3 classes"));
  CHECK_THROWS_WITH(classification_report(ConfusionMatrix{}), Contains("0 counts for 0 classes"));

  const std::vector<float> scores{0.1f, 0.9f, 0.5f, 0.5f};
  CHECK_THROWS_WITH(top_k_accuracy(scores, two, 2, 0), Contains("k is 0 with 2 classes"));
  CHECK_THROWS_WITH(top_k_accuracy(scores, two, 2, 3), Contains("k is 3 with 2 classes"));
  CHECK_THROWS_WITH(top_k_accuracy(scores, three, 2, 1),
                    Contains("4 scores for 3 samples of 2 classes; it needs 6"));
  CHECK_THROWS_WITH(top_k_accuracy(std::vector<float>{}, none, 2, 1), Contains("no samples"));
  CHECK_THROWS_WITH(top_k_accuracy(scores, std::vector<std::int32_t>{0, 2}, 2, 1),
                    Contains("true label 2 at sample 1 is outside the class range [0, 2)"));
  const std::vector<float> nan_scores{0.1f, 0.9f, std::nanf(""), 0.5f};
  CHECK_THROWS_WITH(top_k_accuracy(nan_scores, two, 2, 1),
                    Contains("score for sample 1 is not finite (nan at output 0)"));

  const std::vector<float> p{1, 2, 3}, t{1, 2, 3}, t4{1, 2, 3, 4};
  CHECK_THROWS_WITH(regression_report(p, t4, 3, 1),
                    Contains("3 predictions and 4 targets for 3 samples of 1 outputs"));
  CHECK_THROWS_WITH(regression_report(std::vector<float>{}, std::vector<float>{}, 0, 1),
                    Contains("was given 0 samples of 1 outputs"));
  CHECK_THROWS_WITH(regression_report(std::vector<float>{1, std::nanf(""), 3}, t, 3, 1),
                    Contains("prediction for sample 1, output 0 is not finite (nan)"));
  CHECK_THROWS_WITH(regression_report(p, std::vector<float>{1, 2, INFINITY}, 3, 1),
                    Contains("target of sample 2, output 0 is not finite (inf)"));
}

// ---------------------------------------------------------------------------------------------
// Printed tables.

TEST_CASE("The printed classification report and confusion matrix hold the expected rows") {
  auto cm = confusion_matrix(kTruth, kPred, 5);
  cm.class_names = {"cat", "dog", "bird", "fish", "newt"};
  const auto r = classification_report(cm);
  const std::string rep = print(r);
  INFO(rep);
  CHECK_THAT(rep, Contains("precision") && Contains("recall") && Contains("f1-score") &&
                      Contains("support"));
  CHECK_THAT(rep, Contains("       0 cat     0.7500     0.7500     0.7500        4\n"));
  CHECK_THAT(rep, Contains("       1 dog     0.5000     0.6667     0.5714        3\n"));
  CHECK_THAT(rep, Contains("      4 newt     0.0000     0.0000     0.0000        0  (absent)\n"));
  CHECK_THAT(rep, Contains("    accuracy                           0.5000       10\n"));
  CHECK_THAT(rep, Contains("   macro avg     0.3125     0.3542     0.3304       10\n"));
  CHECK_THAT(rep, Contains("weighted avg     0.4500     0.5000     0.4714       10\n"));
  CHECK_THAT(rep, Contains("(absent: class 4 occurs in neither the truth nor the predictions;"));

  const std::string m = print(cm);
  INFO(m);
  const auto lines = lines_of(m);
  REQUIRE(lines.size() == 8);  // title, header, 5 classes, totals
  CHECK_THAT(lines[0], Contains("rows: true class, columns: predicted class"));
  CHECK(lines[1] == "true \\ pred    0    1    2    3    4  total");
  CHECK(lines[2] == "0 cat          3    1    0    0    0      4");
  CHECK(lines[4] == "2 bird         1    1    0    1    0      3");
  CHECK(lines[7] == "total          4    4    0    2    0     10");
}

TEST_CASE("A 10-class confusion matrix with long names and 4-digit counts stays within 100 columns") {
  std::vector<std::int32_t> truth, pred;
  for (std::int32_t c = 0; c < 10; ++c)
    for (int i = 0; i < 6000; ++i) {
      truth.push_back(c);
      pred.push_back(i < 5000 ? c : (c + 1) % 10);
    }
  auto cm = confusion_matrix(truth, pred, 10);
  cm.class_names = kFashionNames;
  cm.class_names[3] = "A very long class name indeed";
  const std::string m = print(cm);
  INFO(m);
  CHECK(widest_line(m) <= 100);
  CHECK_THAT(m, Contains("0 T-shirt/top") && Contains("9 Ankle boot") &&
                    Contains("3 A very long class~ "));
  CHECK_THAT(m, Contains("5000") && Contains("60000"));
  // Every row has the same width: the columns line up.
  const auto lines = lines_of(m);
  for (std::size_t i = 2; i < lines.size(); ++i) CHECK(lines[i].size() == lines[1].size());
  CHECK(widest_line(print(classification_report(cm))) <= 100);
}

TEST_CASE("The printed regression report lists each output and the average") {
  const std::vector<float> target{1, 5, 2, 5, 3, 5, 4, 5};
  const std::vector<float> pred{1.5f, 5, 2, 5, 2, 5, 5, 5};
  auto r = regression_report(pred, target, 4, 2);
  r.output_names = {"height", "weight"};
  const std::string s = print(r);
  INFO(s);
  CHECK_THAT(s, Contains("Regression report (4 samples, 2 outputs)"));
  CHECK_THAT(s, Contains("MAE") && Contains("RMSE") && Contains("R2"));
  CHECK_THAT(s, Contains("0 height        0.6250        0.5625        0.7500    0.5500"));
  CHECK_THAT(s, Contains("1 weight        0.0000        0.0000        0.0000    1.0000"));
  CHECK_THAT(s, Contains("average         0.3125        0.2812        0.3750    0.7750"));
}

// ---------------------------------------------------------------------------------------------
// Reports of trained models on real data.

TEST_CASE("Report of an MLP on Fashion-MNIST agrees with evaluate() and a direct recomputation", "[long]") {
  using Model = Sequential<Input<28, 28, 1>, Flatten, Dense<32>, ReLU, Dense<10>, Softmax>;
  const auto train = fashion("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 2000);
  const auto test = fashion("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 1000);
  Model model(7);
  Adam opt;
  fit(model, opt, SparseCategoricalCrossEntropy{}, train, {.epochs = 2, .verbose = 0});

  const auto r = report(model, test, SparseCategoricalCrossEntropy{}, {.name = "test"});
  const auto e = evaluate(model, test);
  INFO(r);
  REQUIRE(r.classification);
  CHECK(r.samples == 1000);
  CHECK(r.accuracy() == e.accuracy);  // same batches, same arg-max: exactly equal
  CHECK(r.loss == e.loss);
  CHECK(r.accuracy() > 0.6);  // a trained model, not chance (0.1)
  CHECK(r.top_k == 5);

  // Independent recomputation from predict() on the whole set (chunks of 256, as the report).
  std::vector<float> probs(test.size() * 10);
  model.predict(std::span<const float>(test.x), std::span<float>(probs));
  std::vector<std::size_t> counts(100, 0), per_class(10, 0);
  std::size_t right = 0, top5 = 0, top3 = 0;
  for (std::size_t i = 0; i < test.size(); ++i) {
    const float* row = probs.data() + i * 10;
    std::size_t best = 0;
    for (std::size_t j = 1; j < 10; ++j)
      if (row[j] > row[best]) best = j;
    const auto t = std::size_t(test.labels[i]);
    ++counts[t * 10 + best];
    ++per_class[t];
    right += best == t;
    top5 += stable_sort_hit(row, 10, t, 5);
    top3 += stable_sort_hit(row, 10, t, 3);
  }
  CHECK(r.confusion.counts == counts);
  for (std::size_t c = 0; c < 10; ++c) CHECK(r.confusion.support(c) == per_class[c]);
  CHECK(r.classes.accuracy == double(right) / 1000);
  CHECK(r.top_k_accuracy == double(top5) / 1000);
  double macro_f1 = 0, weighted_p = 0;
  for (std::size_t c = 0; c < 10; ++c) {
    double tp = double(counts[c * 10 + c]), col = 0;
    for (std::size_t t = 0; t < 10; ++t) col += double(counts[t * 10 + c]);
    const double p = col ? tp / col : 0, rec = per_class[c] ? tp / double(per_class[c]) : 0;
    const double f1 = p + rec > 0 ? 2 * p * rec / (p + rec) : 0;
    CHECK(r.classes.classes[c].precision == Approx(p).epsilon(1e-12));
    CHECK(r.classes.classes[c].recall == Approx(rec).epsilon(1e-12));
    CHECK(r.classes.classes[c].f1 == Approx(f1).epsilon(1e-12).margin(1e-15));
    CHECK(r.classes.classes[c].name == kFashionNames[c]);
    macro_f1 += f1 / 10;
    weighted_p += p * double(per_class[c]) / 1000;
  }
  CHECK(r.classes.macro_avg.f1 == Approx(macro_f1).epsilon(1e-12));
  CHECK(r.classes.weighted_avg.precision == Approx(weighted_p).epsilon(1e-12));

  // From the scores alone: top-1 is the accuracy, top-10 is 1.
  std::span<const std::int32_t> labels(test.labels);
  CHECK(top_k_accuracy(probs, labels, 10, 1) == r.accuracy());
  CHECK(top_k_accuracy(probs, labels, 10, 3) == double(top3) / 1000);
  CHECK(top_k_accuracy(probs, labels, 10, 10) == 1.0);
  CHECK(report(model, test, {.top_k = 1}).top_k_accuracy == r.accuracy());
  CHECK(report(model, test, {.top_k = 10}).top_k_accuracy == 1.0);
  // Without a loss the metrics are the same and the loss is NaN; another batch size agrees too.
  const auto no_loss = report(model, test, {.batch_size = 100});
  CHECK(std::isnan(no_loss.loss));
  CHECK(no_loss.confusion.counts == counts);

  // The printed report: header line, classification table, confusion matrix.
  const std::string s = print(r);
  CHECK_THAT(s, Contains("Set 'test': 1000 samples\nloss ") && Contains("(sparse_categorical_crossentropy), accuracy ") &&
                    Contains("top-5 accuracy") && Contains("weighted avg") &&
                    Contains("8 Bag") && Contains("Confusion matrix"));
  CHECK(widest_line(s) <= 100);

  SECTION("One-hot targets under categorical cross-entropy give the same classification") {
    data::Dataset oh = test;
    oh.target_size = 10;
    oh.targets.assign(oh.size() * 10, 0.0f);
    for (std::size_t i = 0; i < oh.size(); ++i) oh.targets[i * 10 + std::size_t(oh.labels[i])] = 1;
    oh.labels.clear();
    const auto c = report(model, oh, CategoricalCrossEntropy{});
    REQUIRE(c.classification);
    CHECK(c.confusion.counts == counts);
    CHECK(c.loss == Approx(e.loss).epsilon(1e-6));
  }

  SECTION("Several sets at once: one row each, matching evaluate()") {
    const auto [fit_part, val_part] = data::train_test_split(train, 0.2, 1);
    const auto all = report_sets(model, {{"train", fit_part}, {"validation", val_part},
                                         {"test", test}},
                                 SparseCategoricalCrossEntropy{});
    REQUIRE(all.sets.size() == 3);
    CHECK(all["validation"].samples == val_part.size());
    CHECK(all["train"].accuracy() == evaluate(model, fit_part).accuracy);
    CHECK(all["test"].accuracy() == r.accuracy());
    CHECK_THROWS_WITH(all["dev"], Contains("no set named 'dev' among the 3"));
    const std::string table = print(all);
    INFO(table);
    const auto lines = lines_of(table);
    REQUIRE(lines.size() == 5);
    CHECK(lines[0] == "Set         samples       loss   accuracy   macro F1      top-5");
    CHECK_THAT(lines[2], Contains("train") && Contains("1600"));
    CHECK_THAT(lines[3], Contains("validation") && Contains("400"));
    std::ostringstream acc;
    acc << std::fixed << std::setprecision(4) << r.accuracy();
    CHECK_THAT(lines[4], Contains("test") && Contains("1000") && Contains(acc.str()));
  }
}

TEST_CASE("Reports refuse data that does not fit the model, with a sentence") {
  using Model = Sequential<Input<28, 28, 1>, Flatten, Dense<10>, Softmax>;
  Model model(1);
  data::Dataset d;
  d.sample_shape = {10};
  d.x.assign(30, 0.5f);
  d.labels = {0, 1, 2};
  d.num_classes = 3;
  CHECK_THROWS_WITH(report(model, d, {.name = "test"}),
                    Contains("The test set's samples have shape (10) = 10 values, but the model's "
                             "input") && Contains("takes 784"));
  data::Dataset empty;
  empty.sample_shape = {28, 28, 1};
  CHECK_THROWS_WITH(report(model, empty, {.name = "validation"}),
                    Contains("validation set is empty"));
  data::Dataset fits;
  fits.sample_shape = {28, 28, 1};
  fits.x.assign(784 * 2, 0.1f);
  fits.labels = {3, 12};
  fits.num_classes = 13;
  CHECK_THROWS_WITH(report(model, fits), Contains("label 12 at sample 1") &&
                                             Contains("10 outputs"));
  fits.labels = {3, 4};
  CHECK_THROWS_WITH(report(model, fits, {.top_k = 0}), Contains("top_k is 0"));
  CHECK_THROWS_WITH(report(model, fits, {.batch_size = 0}), Contains("batch size"));
  CHECK_THROWS_WITH(report(model, fits, MeanSquaredError{}), Contains("needs target vectors"));
  data::Dataset unlabelled = fits;
  unlabelled.labels.clear();
  unlabelled.num_classes = 0;
  CHECK_THROWS_WITH(report(model, unlabelled), Contains("evaluation set has neither labels nor targets"));
  fits.x[784 + 5] = std::nanf("");
  CHECK_THROWS_WITH(report(model, fits), Contains("non-finite value"));
}

TEST_CASE("A non-finite model output is reported with the sample and the set") {
  using Model = Sequential<Input<2>, Dense<2>, Softmax>;
  Model model(1);
  model.parameters()[0] = std::numeric_limits<float>::infinity();
  data::Dataset d;
  d.sample_shape = {2};
  d.x = {1, 1, 0, 0};
  d.labels = {0, 1};
  d.num_classes = 2;
  CHECK_THROWS_WITH(report(model, d, {.name = "test"}),
                    Contains("model's output for sample 0 of the test set is not finite"));
}

TEST_CASE("Wine classification: class names from the CSV, top-k capped at the class count") {
  auto wine = sklearn_csv("wine_data.csv");
  REQUIRE(wine.class_names == std::vector<std::string>{"class_0", "class_1", "class_2"});
  using Model = Sequential<Input<13>, Dense<3>, Softmax>;
  Model model(3);
  Adam opt(1e-2f);
  fit(model, opt, SparseCategoricalCrossEntropy{}, wine, {.epochs = 30, .verbose = 0});
  const auto r = report(model, wine, {.name = "wine"});  // top_k 5 asked, 3 classes
  INFO(r);
  CHECK(r.top_k == 3);
  CHECK(r.top_k_accuracy == 1.0);
  CHECK(r.accuracy() == evaluate(model, wine).accuracy);
  CHECK(r.accuracy() > 0.9);  // linearly separable, nearly
  CHECK(r.confusion.support(0) == 59);
  CHECK(r.confusion.support(1) == 71);
  CHECK(r.confusion.support(2) == 48);
  CHECK_THAT(print(r), Contains("0 class_0") && Contains("2 class_2") &&
                           Contains("top-3 accuracy 1.0000"));
}

TEST_CASE("Regression on the diabetes data: report agrees with a direct computation") {
  // Inputs: the 9 baseline variables other than bmi; targets: disease progression and bmi.
  const auto raw = gz_lines(kSklearnDir + "/diabetes_data_raw.csv.gz");
  const auto prog = gz_lines(kSklearnDir + "/diabetes_target.csv.gz");
  REQUIRE(raw.size() == 442);
  REQUIRE(prog.size() == 442);
  data::Dataset d;
  d.sample_shape = {9};
  d.target_size = 2;
  d.feature_names = {"age", "sex", "bp", "s1", "s2", "s3", "s4", "s5", "s6"};
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const auto v = numbers(raw[i], ' ');
    REQUIRE(v.size() == 10);
    for (std::size_t j = 0; j < 10; ++j)
      if (j != 2) d.x.push_back(float(v[j]));
    d.targets.push_back(float(std::stod(prog[i]) / 100));  // progression 25-346, now ~0.3-3.5
    d.targets.push_back(float(v[2] / 10));                  // bmi 18-42, now ~2-4
  }
  standardize(d.x, 9);
  const auto [fit_part, held_out] = data::train_test_split(d, 0.25, 5);

  using Model = Sequential<Input<9>, Dense<2>>;
  Model model(5);
  Adam opt(1e-2f);
  fit(model, opt, MeanSquaredError{}, fit_part, {.epochs = 150, .batch_size = 32, .verbose = 0});

  const auto r = report(model, held_out, MeanSquaredError{}, {.name = "held-out"});
  INFO(r);
  REQUIRE_FALSE(r.classification);
  REQUIRE(r.regression.outputs.size() == 2);
  CHECK(r.samples == held_out.size());
  CHECK(r.loss == Approx(evaluate(model, held_out, MeanSquaredError{}).loss).epsilon(1e-12));
  CHECK(r.loss == Approx(r.regression.overall.mse).epsilon(1e-9));  // Keras's MSE is the mean

  std::vector<float> pred(held_out.size() * 2);
  model.predict(std::span<const float>(held_out.x), std::span<float>(pred));
  const std::size_t n = held_out.size();
  double r2_sum = 0;
  for (std::size_t j = 0; j < 2; ++j) {
    double mean = 0;
    for (std::size_t i = 0; i < n; ++i) mean += held_out.targets[i * 2 + j];
    mean /= double(n);
    double abs_err = 0, sq_err = 0, ss_tot = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double t = held_out.targets[i * 2 + j], e = double(pred[i * 2 + j]) - t;
      abs_err += std::fabs(e);
      sq_err += e * e;
      ss_tot += (t - mean) * (t - mean);
    }
    const auto& m = r.regression.outputs[j];
    CHECK(m.mae == Approx(abs_err / double(n)).epsilon(1e-12));
    CHECK(m.mse == Approx(sq_err / double(n)).epsilon(1e-12));
    CHECK(m.rmse == Approx(std::sqrt(sq_err / double(n))).epsilon(1e-12));
    CHECK(m.r2 == Approx(1 - sq_err / ss_tot).epsilon(1e-12));
    r2_sum += 1 - sq_err / ss_tot;
  }
  CHECK(r.regression.overall.r2 == Approx(r2_sum / 2).epsilon(1e-12));
  // The same numbers from the raw-array function.
  const auto direct = regression_report(pred, held_out.targets, n, 2);
  CHECK(direct.overall.mae == Approx(r.regression.overall.mae).epsilon(1e-12));
  // A linear model explains part of both (sklearn's linear regression: R² about 0.5 on progression).
  CHECK(r.regression.outputs[0].r2 > 0.25);
  CHECK(r.regression.outputs[1].r2 > 0.25);

  const auto all = report_sets(model, {{"train", fit_part}, {"held-out", held_out}},
                               MeanSquaredError{});
  const std::string table = print(all);
  INFO(table);
  CHECK_THAT(table, Contains("MAE") && Contains("RMSE") && Contains("R2") &&
                        !Contains("accuracy"));
  CHECK_THAT(print(r), Contains("Regression report (" + std::to_string(held_out.size()) + " samples, 2 outputs)") &&
                           Contains("average"));
}

TEST_CASE("ROC AUC by hand: pairs ordered, ties counting one half, and bad input refused") {
  // Positives 0.9, 0.4, 0.35 against negatives 0.8, 0.3, 0.1: of the 9 pairs, the positive scores
  // higher in 0.9 > all 3, 0.4 > 0.3 and 0.1, 0.35 > 0.3 and 0.1: 7 of 9.
  const std::vector<double> s = {0.9, 0.8, 0.4, 0.35, 0.3, 0.1};
  const std::vector<bool> p = {true, false, true, true, false, false};
  CHECK(roc_auc(s, p) == Approx(7.0 / 9.0));
  // A tie between a positive and a negative counts one half: 0.5 vs 0.5, 0.7 > 0.2, 0.7 > 0.5,
  // 0.5 > 0.2: (3 + 0.5) / 4.
  CHECK(roc_auc(std::vector<double>{0.5, 0.5, 0.7, 0.2}, {true, false, true, false}) ==
        Approx(3.5 / 4.0));
  CHECK(roc_auc(std::vector<double>{1, 2, 3, 4}, {false, false, true, true}) == 1.0);
  CHECK(roc_auc(std::vector<double>{1, 2, 3, 4}, {true, true, false, false}) == 0.0);
  CHECK_THROWS_WITH(roc_auc(std::vector<double>{1, 2}, {true, true}),
                    Catch::Matchers::Contains("2 positive and 0 negative"));
  CHECK_THROWS_WITH(roc_auc(std::vector<double>{1, 2}, {true}),
                    Catch::Matchers::Contains("2 scores and 1"));
  CHECK_THROWS_WITH(roc_auc(std::vector<double>{1, std::nan("")}, {true, false}),
                    Catch::Matchers::Contains("score 1 is nan"));
}
