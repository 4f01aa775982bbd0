// strict_warnings.cpp: ctnn under a user's strictest warnings. This file includes every public
// header (the generated ctnn_all_headers.hpp, from a glob over include/ctnn) or, built with
// CTNN_STRICT_SINGLE_HEADER, the single header alone, and instantiates the main templates: a
// warning in a template appears only when the template is instantiated. It is compiled with
// -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Werror (and clang's
// -Wshorten-64-to-32); compiling is passing. Nothing here runs.
#if defined(CTNN_STRICT_SINGLE_HEADER)
#include <ctnn.hpp>
#else
#include "ctnn_all_headers.hpp"
#endif

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iostream>
#include <sstream>
#include <span>
#include <string>
#include <vector>

namespace strict_warnings {

using namespace ctnn;

// Every layer kind, both paddings, each pooling, non-default initializers.
using ImageNet = Sequential<Input<8, 8, 1>, Conv2D<4, 3, 3>, ReLU, MaxPool2D<2>,
                            Conv2D<4, 3, 3, 1, Padding::same, init::HeUniform, init::Ones>,
                            LeakyReLU<0.1>, AvgPool2D<2, 2, 2, Padding::same>, Flatten,
                            Dense<8, init::HeNormal>, Tanh, Dropout<0.25>, Dense<3>, Softmax>;
using BinaryNet = Sequential<Input<5>, Dense<6, init::LecunNormal, init::TorchUniform>, Sigmoid,
                             Dense<1>, Sigmoid>;
using RegressionNet = Sequential<Input<5>, Dense<4, init::GlorotNormal>, ReLU, Dense<2>>;
// The same layer kinds in double (the kernels are templates over the value type).
using DoubleNet = BasicSequential<double, Input<6, 6, 1>, Conv2D<2, 3, 3, 1, Padding::same>, Tanh,
                                  MaxPool2D<2>, Conv2D<2, 2, 2>, LeakyReLU<0.2>, AvgPool2D<2>,
                                  Flatten, Dense<4>, ReLU, Dropout<0.5>, Dense<3, init::LecunUniform>,
                                  Softmax>;
using DoubleBinaryNet = BasicSequential<double, Input<4>, Dense<2>, Sigmoid>;

data::Dataset image_data() {
  data::Dataset d;
  d.sample_shape = {8, 8, 1};
  d.x.assign(4 * 64, 0.5f);
  d.labels = {0, 1, 2, 1};
  d.num_classes = 3;
  return d;
}

data::Dataset target_data(std::size_t width) {
  data::Dataset d;
  d.sample_shape = {5};
  d.x.assign(4 * 5, 0.25f);
  d.targets.assign(4 * width, 1.0f);
  d.target_size = width;
  return d;
}

// fit with each optimizer and loss, evaluate, report, predict, Trainer.
void train_and_evaluate(const std::string& dir) {
  const data::Dataset images = image_data();
  ImageNet net{1};
  Adam adam{1e-3f};
  SGD sgd{0.01f, 0.9f, true};
  History h = fit(net, adam, SparseCategoricalCrossEntropy{}, images,
                  {.epochs = 2, .batch_size = 2, .validation = &images, .verbose = 0});
  data::Dataset one_hot = images;
  one_hot.labels.clear();
  one_hot.targets = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0};
  one_hot.target_size = 3;
  one_hot.num_classes = 0;
  h = fit(net, sgd, CategoricalCrossEntropy{}, one_hot, {.epochs = 1, .validation_split = 0.5});
  std::cout << h.best("loss").epoch << h.epochs.size() << h.stopped_early;

  BinaryNet binary{2};
  const data::Dataset binary_data = target_data(1);
  fit(binary, sgd, BinaryCrossEntropy{}, binary_data, {.epochs = 1});
  RegressionNet regression{3};
  const data::Dataset regression_data = target_data(2);
  fit(regression, adam, MSE{}, regression_data, {.epochs = 1});

  const Evaluation e = evaluate(net, images);
  const Evaluation e2 = evaluate(regression, regression_data, MeanSquaredError{}, 2);
  std::cout << e.loss << e.accuracy << e2.loss;

  const auto r = report(net, images, SparseCategoricalCrossEntropy{}, {.top_k = 2, .name = "test"});
  std::cout << r << r.classes.macro_avg.f1 << r.confusion.at(0, 1) << r.top_k_accuracy;
  std::cout << report(regression, regression_data);
  const auto sets = report_sets(net, {{"train", images}, {"test", images}});
  std::cout << sets << sets["test"].accuracy();

  const auto p = net.predict(std::span<const float>(images.sample(0), ImageNet::input_size));
  std::vector<float> out(images.size() * ImageNet::output_size);
  net.reserve_inference(images.size());
  net.predict(images.x, out);
  std::cout << p[0] << net.predict_class(std::span<const float>(images.x.data(), 64));
  net.summary(std::cout);
  std::cout << simd_target() << topology<ImageNet>();

  Trainer<ImageNet, Adam, SparseCategoricalCrossEntropy> trainer(net, adam, {}, 2);
  const std::array<std::size_t, 2> idx = {0, 1};
  trainer.load_batch(images, idx);
  const StepStats s = trainer.step(2);
  trainer.set_steps(trainer.steps() + 1);
  std::cout << s.loss_sum << s.correct << trainer.gradients()[0] << trainer.loss().name;
  net.initialize(7);
  std::cout << net.layer_parameters<0>().size() << net.layer_parameters<7>().size();

  DoubleNet dnet{4};
  BasicAdam<double> dadam{1e-3, 0.9, 0.999, 1e-7};
  BasicSGD<double> dsgd{0.01, 0.5, false};
  Trainer<DoubleNet, BasicAdam<double>, SparseCategoricalCrossEntropy> dtrainer(dnet, dadam, {}, 2);
  std::vector<double> dx(2 * DoubleNet::input_size, 0.5);
  const std::int32_t dlabels[2] = {0, 2};
  dtrainer.load_batch(dx.data(), 2, dlabels, nullptr);
  std::cout << dtrainer.step(2).loss_sum;
  Trainer<DoubleNet, BasicSGD<double>, CategoricalCrossEntropy> dtrainer2(dnet, dsgd, {}, 2);
  const std::vector<double> dtargets = {1, 0, 0, 0, 0, 1};
  dtrainer2.load_batch(dx.data(), 2, nullptr, dtargets.data());
  std::cout << dtrainer2.step(2).loss_sum;
  DoubleBinaryNet dbinary{5};
  Trainer<DoubleBinaryNet, BasicSGD<double>, BinaryCrossEntropy> dtrainer3(dbinary, dsgd, {}, 2);
  Trainer<DoubleBinaryNet, BasicAdam<double>, MSE> dtrainer4(dbinary, dadam, {}, 2);
  std::cout << dtrainer3.step(1).loss_sum << dtrainer4.step(1).loss_sum;
  std::vector<double> dout(2 * DoubleNet::output_size);
  dnet.predict(dx, dout);
  deploy::export_header(dir + "/double.hpp", dnet, "double_model");
  static deploy::StaticModel<DoubleNet> static_dnet(dnet.parameters().data());
  std::cout << static_dnet.predict(dx.data())[0];
  std::cout << dnet.predict(std::span<const double>(dx.data(), DoubleNet::input_size))[0];
  save(dir + "/d.ctnn", dnet);
  load(dir + "/d.ctnn", dnet);
}

// Callbacks, schedules, plots and the hyperparameter searches.
void callbacks_and_search(const std::string& dir) {
  const data::Dataset images = image_data();
  ImageNet net{1};
  Adam adam{};
  EarlyStopping stop({.monitor = "val_loss", .patience = 2, .restore_best_weights = true});
  LearningRateScheduler cosine(CosineDecay{.decay_epochs = 20});
  LearningRateScheduler step(StepDecay{.factor = 0.5, .every = 2});
  LearningRateScheduler exponential(ExponentialDecay{.rate = 0.9});
  LearningRateScheduler custom([](std::size_t epoch, double lr0) { return lr0 / double(epoch); });
  ReduceLROnPlateau plateau({.monitor = "val_loss", .factor = 0.5, .patience = 1});
  CsvLogger csv(dir + "/log.csv");
  JsonLinesLogger json(dir + "/log.jsonl", true);
  SvgPlot plot(dir + "/curves.svg");
  const History h = fit(net, adam, SparseCategoricalCrossEntropy{}, images,
                        {.epochs = 3, .validation = &images,
                         .callbacks = {stop, cosine, step, exponential, custom, plateau, csv, json,
                                       plot}});
  save_plot_svg(h, dir + "/curves2.svg");

  tune::Space space;
  space.grid("batch_size", {1, 2}).log_uniform("learning_rate", 1e-4, 1e-1);
  space.uniform("momentum", 0.0, 0.9).integer("epochs", 1, 3);
  const auto objective = [&](const tune::Params& p) {
    ImageNet m{1};
    SGD opt{float(p["learning_rate"]), float(p["momentum"])};
    return fit(m, opt, SparseCategoricalCrossEntropy{}, images,
               {.epochs = p.count("epochs"), .batch_size = p.count("batch_size"),
                .validation = &images, .verbose = 0})
        .best("val_accuracy")
        .val_accuracy;
  };
  const auto grid = tune::grid_search(space, objective, {.score_name = "val_loss", .maximize = false});
  const auto random = tune::random_search(space, 3, 1, objective);
  std::cout << grid << random << grid.best().params["learning_rate"];
}

// Tables: CSV, cleaning, integration, to_dataset, preprocessing, IDX, splits, metrics from arrays.
void data_pipeline(const std::string& dir) {
  data::CsvReport read;
  data::Table t = data::read_csv(dir + "/a.csv",
                                 {.bad_numbers = data::BadNumbers::missing, .report = &read});
  data::Table u = data::parse_csv("x,y\n1,2\n", "memory", {});
  data::Table sk = data::read_sklearn_csv(dir + "/iris.csv");
  std::cout << read.missing_cells << u.rows() << sk.cols();
  std::cout << data::drop_duplicates(t) << data::drop_missing(t, {"y"})
            << data::drop_outliers(t, data::Range{0, INFINITY})
            << data::clip_outliers(t, data::ZScore{3}, {0, "y"})
            << data::impute(t, data::Impute::median()) << data::impute(t, data::Impute::mean())
            << data::impute(t, data::Impute::most_frequent())
            << data::impute(t, data::Impute::constant(1.0));
  data::Table c = data::concat({t, u});
  data::Table j = data::join(t, u, "x", {.kind = data::JoinKind::left, .suffix = "_r"});
  data::Table hs = data::hstack({t, u});
  std::cout << c.rows() << j.rows() << hs.rows();

  data::Dataset all = data::to_dataset(t, {.label = "y", .missing_features_as_nan = true});
  data::Dataset reg = data::to_dataset(t, {.features = {0}, .targets = {"y"}});
  data::Table back = data::to_table(all);
  auto [train, test] = data::train_test_split(all, 0.2, 42);
  data::Dataset first = data::head(all, 2);
  const std::vector<std::size_t> pick = {0, 1};
  data::Dataset sub = data::subset(all, pick);
  data::validate(first);
  data::scale(sub, 0.5f);
  std::cout << back.rows() << reg.size() << test.size();

  data::Preprocessing prep;
  prep.add(data::SimpleImputer(data::SimpleImputer::Strategy::median))
      .add(data::SimpleImputer::constant(0.0, {0}))
      .add(data::StandardScaler{})
      .add(data::MinMaxScaler{-1.0, 1.0})
      .add(data::OneHotEncoder({0}));
  prep.fit(train);
  const data::Dataset train_z = prep.transform(train);
  std::vector<float> z(train_z.feature_size());
  prep.transform(std::span<const float>(train.sample(0), train.feature_size()), z);
  std::cout << prep;
  std::stringstream ss;
  prep.save(ss);
  std::cout << data::Preprocessing::load(ss);

  const data::Dataset idx = data::load_idx(dir + "/i.gz", dir + "/l.gz", {.scale = 1.0f / 255, .limit = 10});
  const data::Dataset images = data::load_idx_images(dir + "/i.gz");
  const std::vector<std::int32_t> labels = data::load_idx_labels(dir + "/l.gz");
  const std::vector<std::uint8_t> bytes(100, 0);
  const data::Dataset mem = data::load_idx_from_memory(bytes, "i", bytes, "l");
  std::cout << idx.size() << images.size() << labels.size() << mem.size();

  const std::vector<std::int32_t> truth = {0, 1, 2, 1}, predicted = {0, 2, 2, 1};
  const ConfusionMatrix cm = confusion_matrix(truth, predicted, 3);
  const std::vector<std::string> names = {"a", "b", "c"};
  const ClassificationReport cr = classification_report(cm, names);
  const std::vector<float> scores(12, 0.25f);
  const std::vector<double> dscores(12, 0.25);
  std::cout << cm << cr << top_k_accuracy(scores, truth, 3, 2) << top_k_accuracy(dscores, truth, 3, 1);
  const std::vector<float> pred = {1, 2, 3, 4}, target = {1, 2, 3, 5};
  const std::vector<double> dpred = {1, 2, 3, 4}, dtarget = {1, 2, 3, 5};
  std::cout << regression_report(pred, target, 2, 2) << regression_report(dpred, dtarget, 4, 1);
}

// save/load, checkpoints, half storage, quantize, export, StaticModel, Monitored.
void io_and_deploy(const std::string& dir) {
  const data::Dataset images = image_data();
  ImageNet net{1};
  Adam adam{};
  SGD sgd{};
  data::Preprocessing prep;
  save(dir + "/m.ctnn", net, &prep);
  load(dir + "/m.ctnn", net, &prep);
  save(dir + "/h.ctnn", net, {.weights = WeightStorage::fp16});
  save(dir + "/b.ctnn", net, {.preprocessing = &prep, .weights = WeightStorage::bf16});
  save_checkpoint(dir + "/c.ctnn", net, adam);
  load_checkpoint(dir + "/c.ctnn", net, adam);
  save_checkpoint(dir + "/s.ctnn", net, sgd);
  load_checkpoint(dir + "/s.ctnn", net, sgd);
  const std::vector<char> file(10, 0);
  load_from_memory(file, "memory", net);
  load_checkpoint_from_memory(file, "memory", net, adam);
  const auto fp16 = half_parameters(net, HalfFormat::fp16);
  set_half_parameters(net, fp16, HalfFormat::fp16);
  const std::vector<float> xs(16, 1.5f);
  std::cout << from_bf16(to_bf16(xs)).size() << from_fp16(to_fp16(xs)).size();
  io::write_atomically(dir + "/w.txt", [](std::ostream& os) { os << "x"; });

  // The int8 path needs every quantizable layer kind, so a model with both Conv2D and Dense.
  auto q = quantize(net, images);
  auto q2 = quantize(net, std::span<const float>(images.x), {.percentile = 99.99});
  std::cout << q.predict(std::span<const float>(images.x.data(), 64))[0]
            << q.predict_class(std::span<const float>(images.x.data(), 64)) << q.parameter_bytes;
  std::vector<float> out(images.size() * ImageNet::output_size);
  q2.predict(images.x, out);
  q2.reserve(4);
  std::cout << q.input_scale<0>() << q.input_is_signed<7>() << q.weight_scales<3>()[0]
            << int(q.weight<10>(0, 1));
  deploy::export_header(dir + "/model.hpp", net, "model");
  deploy::export_header(dir + "/model_int8.hpp", q, "model_int8");
  static deploy::StaticModel<ImageNet> static_net(net.parameters().data());
  std::cout << static_net.predict(images.x.data())[0] << static_net.predict_class(images.x.data());
  static deploy::StaticQuantizedModel<ImageNet> static_q(q.int8_parameters());
  std::cout << static_q.predict(images.x.data())[0] << static_q.predict_class(images.x.data());

  ReferenceProfile profile = ReferenceProfile::fit(net, images);
  std::stringstream ss;
  profile.save(ss);
  Monitored<ImageNet> mon(net, ReferenceProfile::load(ss), {.range_max_features = 5});
  const auto prediction = mon.predict(std::span<const float>(images.x.data(), 64));
  std::cout << prediction.outputs[0] << to_string(prediction.flags.status) << mon.drifted();
  std::vector<SampleFlags> flags(images.size());
  mon.predict(images.x, out, flags);
  Monitored<ImageNet> other(net, images);
  mon.merge(other);
  mon.reserve(4);
  std::cout << mon.drift_score() << mon.profile().input_size << mon.options().psi_threshold
            << mon.model().param_count;
  other.reset();
  mon.to_json(std::cout);
  std::cout << mon << mon.stats().psi;

  RegressionNet regression{3};
  const data::Dataset regression_data = target_data(2);
  Monitored<RegressionNet> rmon(regression, regression_data);
  std::cout << rmon.predict(std::span<const float>(regression_data.x.data(), 5)).outputs[1] << rmon;
}

// The recurrent layers (float and double), trained, saved, exported, run whole and streamed.
void recurrent(const std::string& dir) {
  using SeqNet = Sequential<Input<4, 3>, GRU<4, true>,
                            SimpleRNN<3, true, init::HeUniform, init::Orthogonal, init::Ones>,
                            LSTM<5>, Dense<2>, Softmax>;
  using DoubleSeq = BasicSequential<double, Input<3, 2>, LSTM<3, true>, GRU<2>>;
  using BiNet = Sequential<Input<4, 3>, Bidirectional<GRU<3, true>>, Bidirectional<LSTM<2>, Merge::mul>,
                           Dense<2>, Softmax>;
  data::Dataset d;
  d.sample_shape = {4, 3};
  d.x.assign(2 * 12, 0.5f);
  d.labels = {0, 1};
  d.num_classes = 2;
  SeqNet net{1};
  Adam adam{};
  fit(net, adam, SparseCategoricalCrossEntropy{}, d, {.epochs = 1});
  std::cout << evaluate(net, d).accuracy;
  save(dir + "/seq.ctnn", net);
  load(dir + "/seq.ctnn", net);
  deploy::export_header(dir + "/seq.hpp", net, "seq");
  static deploy::StaticModel<SeqNet> whole(net.parameters().data());
  static deploy::StreamingModel<SeqNet> stream(net.parameters().data());
  stream.reset();
  std::cout << whole.predict(d.x.data())[0] << stream.step(d.x.data())[1];
  DoubleSeq dnet{2};
  static deploy::StreamingModel<DoubleSeq> dstream(dnet.parameters().data());
  std::cout << dnet.param_count << dstream.step(std::array<double, 2>{0.5, 1.0}.data())[0];
  BiNet bi{3};
  fit(bi, adam, SparseCategoricalCrossEntropy{}, d, {.epochs = 1});
  save(dir + "/bi.ctnn", bi);
  load(dir + "/bi.ctnn", bi);
  deploy::export_header(dir + "/bi.hpp", bi, "bi");
  static deploy::StaticModel<BiNet> bi_static(bi.parameters().data());
  std::cout << bi_static.predict(d.x.data())[0];
  BasicSequential<double, Input<3, 2>, Bidirectional<SimpleRNN<2, true>, Merge::ave>,
                  Bidirectional<LSTM<2>, Merge::sum>> dbi{4};
  std::cout << dbi.param_count;
}

}  // namespace strict_warnings

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  strict_warnings::train_and_evaluate(dir);
  strict_warnings::callbacks_and_search(dir);
  strict_warnings::data_pipeline(dir);
  strict_warnings::io_and_deploy(dir);
  strict_warnings::recurrent(dir);
  return 0;
}
