// Regression on a real table split over two files: disease progression of 442 diabetes patients
// one year after ten baseline measurements (scikit-learn's copy of Efron et al.'s data).
//
//   diabetes [--data DIR] [--out DIR] [--min-r2 R]
//
// The features (diabetes_data_raw.csv.gz: space-separated, no header, unscaled) and the target
// (diabetes_target.csv.gz) are two files of the same rows: read both, put them side by side,
// split train / validation / test, standardize the features (fitted on train only), pick the
// learning rate by random search on the validation split, train with early stopping and
// reduce-on-plateau, and report MAE, RMSE and R² on every split against a linear-regression
// baseline trained the same way. --min-r2 makes the program fail if the test R² is below R.
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>

using namespace ctnn;

using Net = Sequential<Input<10>, Dense<32>, ReLU, Dense<1>>;
using LinearRegression = Sequential<Input<10>, Dense<1>>;

namespace {

template <class Model>
History train(Model& model, float learning_rate, const data::Dataset& fit_set,
              const data::Dataset& val) {
  Adam opt{learning_rate};
  EarlyStopping stop({.monitor = "val_loss", .patience = 40, .restore_best_weights = true});
  ReduceLROnPlateau plateau({.monitor = "val_loss", .factor = 0.5, .patience = 15});
  return fit(model, opt, MSE{}, fit_set,
             {.epochs = 2000, .batch_size = 32, .validation = &val, .seed = 1, .verbose = 0,
              .callbacks = {stop, plateau}});
}

}  // namespace

int main(int argc, char** argv) try {
  std::string dir = CTNN_SKLEARN_DATA_DIR, out = ".";
  double min_r2 = -INFINITY;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) throw Error("Option " + a + " needs a value.");
    if (a == "--data") dir = argv[++i];
    else if (a == "--out") out = argv[++i];
    else if (a == "--min-r2") min_r2 = std::stod(argv[++i]);
    else throw Error("Unknown option " + a + " (use --data, --out, --min-r2).");
  }

  // 1. Two files, same rows, no key: read each and put the columns side by side.
  data::CsvOptions features_csv{.whitespace = true, .header = false,
                                .column_names = {"age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4",
                                                 "s5", "s6"}};
  data::CsvOptions target_csv{.whitespace = true, .header = false, .column_names = {"progression"}};
  const data::Table table = data::hstack({data::read_csv(dir + "/diabetes_data_raw.csv.gz", features_csv),
                                          data::read_csv(dir + "/diabetes_target.csv.gz", target_csv)});
  std::cout << "Read " << table.rows() << " rows x " << table.cols() << " columns from "
            << table.source << "\n";

  // 2. Dataset, splits, and standardized features (statistics of the training split only).
  const data::Dataset all = data::to_dataset(table, {.targets = {"progression"}});
  auto [train_all, test_raw] = data::train_test_split(all, 0.2, 42);
  auto [fit_raw, val_raw] = data::train_test_split(train_all, 0.2, 7);
  data::Preprocessing prep;
  prep.add(data::StandardScaler{});
  prep.fit(fit_raw);
  const data::Dataset fit_set = prep.transform(fit_raw), val = prep.transform(val_raw),
                      test = prep.transform(test_raw);
  std::cout << fit_set.size() << " train, " << val.size() << " validation, " << test.size()
            << " test samples; " << prep << "\n";

  // 3. The learning rate, by random search on a log scale, scored by validation MSE.
  std::cout << "\nRandom search over the learning rate:\n";
  tune::Space space;
  space.log_uniform("learning_rate", 1e-3, 1e-1);
  const auto search = tune::random_search(
      space, 6, /*seed=*/3,
      [&](const tune::Params& p) {
        Net model{1};
        return train(model, float(p["learning_rate"]), fit_set, val).best("val_loss").val_loss;
      },
      {.score_name = "val_mse", .maximize = false});
  std::cout << search;
  const float lr = float(search.best().params["learning_rate"]);

  // 4. The chosen network and the linear baseline, trained the same way.
  Net model{1};
  const History h = train(model, lr, fit_set, val);
  save_plot_svg(h, out + "/diabetes_curves.svg");
  std::cout << "\nNetwork: " << h.epochs.size() << " epochs at learning rate " << lr
            << " (best val_loss at epoch " << h.best("val_loss").epoch << "); curves in " << out
            << "/diabetes_curves.svg\n";
  const auto reports = report_sets(model, {{"train", fit_set}, {"validation", val}, {"test", test}});
  for (const auto& r : reports.sets) std::cout << "\n" << r.name << ": " << r.regression;

  LinearRegression baseline{1};
  train(baseline, 0.05f, fit_set, val);
  const auto base = report(baseline, test);
  const double r2 = reports["test"].regression.overall.r2;
  std::cout << "\nTest R2: network " << r2 << ", linear regression " << base.regression.overall.r2
            << "; test RMSE: network " << reports["test"].regression.overall.rmse
            << ", linear regression " << base.regression.overall.rmse << "\n";
  if (r2 < min_r2) {
    std::cerr << "error: test R2 " << r2 << " is below --min-r2 " << min_r2 << "\n";
    return 1;
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
