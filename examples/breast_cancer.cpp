// From a raw, dirty CSV to a tuned, evaluated and saved classifier, without leaving C++.
//
//   breast_cancer [--data FILE] [--out DIR] [--min-accuracy A]
//
// The data is scikit-learn's copy of the Breast Cancer Wisconsin (Diagnostic) set with dirt
// added at documented places (tests/data/sklearn/make_dirty.py): empty cells, "NA", typos such as
// "12..5", ten duplicated rows and two gross errors (a mean area of 250000, a negative radius).
// The pipeline: read (typos counted and read as missing) -> clean (duplicates, rows without a
// label, impossible and gross values) -> split train / validation / test -> fill the remaining
// gaps with medians and standardize (both fitted on train only, so the test rows lend the
// training rows nothing) -> grid search of the learning rate
// and batch size on the validation split -> train the best with early stopping, a CSV log and an
// SVG plot -> evaluate on every split, against a logistic-regression baseline trained the same
// way -> save model and preprocessing in one file, load it back and check the predictions.
// --min-accuracy makes the program fail if the test accuracy is below A (the test suite uses it).
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>

using namespace ctnn;

using Net = Sequential<Input<30>, Dense<16>, ReLU, Dropout<0.3>, Dense<2>, Softmax>;
using LogisticRegression = Sequential<Input<30>, Dense<2>, Softmax>;  // softmax over 2 = logistic

namespace {

// Trains `model` with early stopping on the validation split, returning its history.
template <class Model>
History train(Model& model, float learning_rate, std::size_t batch_size, const data::Dataset& fit_set,
              const data::Dataset& val, std::vector<std::reference_wrapper<Callback>> extra = {},
              int verbose = 0) {
  Adam opt{learning_rate};
  EarlyStopping stop({.monitor = "val_loss", .patience = 15, .restore_best_weights = true});
  extra.insert(extra.begin(), stop);
  return fit(model, opt, SparseCategoricalCrossEntropy{}, fit_set,
             {.epochs = 300, .batch_size = batch_size, .validation = &val, .seed = 1,
              .verbose = verbose, .callbacks = extra});
}

}  // namespace

int main(int argc, char** argv) try {
  std::string file = std::string(CTNN_SKLEARN_DATA_DIR) + "/breast_cancer_dirty.csv";
  std::string out = ".";
  double min_accuracy = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) throw Error("Option " + a + " needs a value.");
    if (a == "--data") file = argv[++i];
    else if (a == "--out") out = argv[++i];
    else if (a == "--min-accuracy") min_accuracy = std::stod(argv[++i]);
    else throw Error("Unknown option " + a + " (use --data, --out, --min-accuracy).");
  }

  // 1. Load. Text in a numeric column (a typo) is read as missing and counted.
  data::CsvReport read_report;
  data::Table table = data::read_csv(
      file, {.bad_numbers = data::BadNumbers::missing, .report = &read_report});
  std::cout << "Read " << table.rows() << " rows x " << table.cols() << " columns from " << file
            << ": " << read_report.missing_cells << " missing cells, " << read_report.bad_numbers
            << " unreadable numbers\n";
  for (const std::string& note : read_report.notes) std::cout << "  " << note << "\n";

  // 2. Clean, each step reporting what it touched. Gaps in the features stay (as NaN) for the
  //    imputer of step 4, which learns its medians from the training split only.
  std::cout << "\nCleaning:\n";
  std::cout << "  " << data::drop_duplicates(table) << "\n";
  std::cout << "  " << data::drop_missing(table, {"diagnosis"}) << "\n";
  // No measurement here can be negative; a value 15 standard deviations out is a gross error
  // (the largest real one in this data is 12.1).
  std::cout << "  " << data::drop_outliers(table, data::Range{0, INFINITY}) << "\n";
  std::cout << "  " << data::drop_outliers(table, data::ZScore{15}) << "\n";

  // 3. Dataset: the 30 measurements, the diagnosis as the class (sorted: benign 0, malignant 1).
  const data::Dataset all =
      data::to_dataset(table, {.label = "diagnosis", .missing_features_as_nan = true});
  auto [train_all, test] = data::train_test_split(all, 0.2, 42);
  auto [fit_raw, val_raw] = data::train_test_split(train_all, 0.2, 7);
  std::cout << "\n" << all.size() << " clean samples (" << all.class_names[0] << " / "
            << all.class_names[1] << "): " << fit_raw.size() << " train, " << val_raw.size()
            << " validation, " << test.size() << " test\n";

  // 4. Fill gaps with medians and standardize, with statistics of the training split only.
  data::Preprocessing prep;
  prep.add(data::SimpleImputer(data::SimpleImputer::Strategy::median)).add(data::StandardScaler{});
  prep.fit(fit_raw);
  const data::Dataset fit_set = prep.transform(fit_raw), val = prep.transform(val_raw),
                      test_set = prep.transform(test);
  std::cout << "Preprocessing: " << prep << "\n";

  // 5. Tune on the validation split.
  std::cout << "\nGrid search (score: best validation loss under early stopping):\n";
  tune::Space space;
  space.grid("learning_rate", {1e-3, 3e-3, 1e-2}).grid("batch_size", {16, 64});
  const auto search = tune::grid_search(
      space,
      [&](const tune::Params& p) {
        Net model{1};
        return train(model, float(p["learning_rate"]), p.count("batch_size"), fit_set, val)
            .best("val_loss")
            .val_loss;
      },
      {.score_name = "val_loss", .maximize = false});
  std::cout << search;
  const tune::Params& best = search.best().params;

  // 6. Train the chosen configuration, logging every epoch and plotting the curves.
  std::cout << "\nTraining with learning_rate " << best["learning_rate"] << ", batch size "
            << best.count("batch_size") << ":\n";
  Net model{1};
  CsvLogger log(out + "/breast_cancer_log.csv");
  SvgPlot plot(out + "/breast_cancer_curves.svg");
  const History h = train(model, float(best["learning_rate"]), best.count("batch_size"), fit_set,
                          val, {log, plot}, /*verbose=*/0);
  std::cout << h.epochs.size() << " epochs (best val_loss at epoch " << h.best("val_loss").epoch
            << "); log in " << out << "/breast_cancer_log.csv, curves in " << out
            << "/breast_cancer_curves.svg\n";

  // 7. Evaluate on every split, and the baseline the same way.
  const auto reports = report_sets(model, {{"train", fit_set}, {"validation", val}, {"test", test_set}},
                                   SparseCategoricalCrossEntropy{}, {.top_k = 1});
  std::cout << "\n" << reports << "\n" << reports["test"];
  LogisticRegression baseline{1};
  train(baseline, 1e-2f, 16, fit_set, val);
  const Evaluation base = evaluate(baseline, test_set);
  const double accuracy = reports["test"].accuracy();
  std::cout << "\nTest accuracy: network " << accuracy << ", logistic regression " << base.accuracy
            << " (same split, preprocessing and early stopping)\n";

  // 8. Save model and preprocessing together; load them into fresh objects and check that a raw
  //    test row (gaps included) gives the same prediction as before.
  const std::string path = out + "/breast_cancer.ctnn";
  save(path, model, &prep);
  Net deployed{999};
  data::Preprocessing deployed_prep;
  load(path, deployed, &deployed_prep);
  std::vector<float> x(Net::input_size);
  std::size_t same = 0;
  for (std::size_t i = 0; i < test.size(); ++i) {
    deployed_prep.transform(std::span<const float>(test.sample(i), Net::input_size), x);
    const auto p = deployed.predict(x);
    const auto q = model.predict(std::span<const float>(test_set.sample(i), Net::input_size));
    same += p == q;
  }
  std::cout << "Saved to " << path << "; reloaded model + preprocessing reproduce " << same << " of "
            << test.size() << " test predictions from raw rows exactly\n";
  if (same != test.size()) return 1;
  if (accuracy < min_accuracy) {
    std::cerr << "error: test accuracy " << accuracy << " is below --min-accuracy " << min_accuracy << "\n";
    return 1;
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
