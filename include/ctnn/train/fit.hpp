// ctnn/train/fit.hpp: fit(model, optimizer, loss, data, options), Keras's model.fit.
//
// Trains for options.epochs passes over the data in batches of options.batch_size (the last
// batch may be smaller), reshuffling every epoch from options.seed, and returns the history of
// per-epoch loss and accuracy (and validation loss and accuracy when validation data is given or
// split off). On a terminal it redraws a progress line during each epoch; otherwise it prints one
// line per epoch. Before the first step it checks the options and the optimizer's
// hyperparameters (each error names the field, its value and the allowed range) and that every
// parameter is finite. A non-finite loss stops training with an error naming the epoch and batch
// (and the first non-finite parameter, if any); so does a non-finite parameter after an epoch,
// found by one vectorized scan of the parameter arena, named by layer (index, name) and index.
// Callbacks (early stopping, learning-rate schedules, logs, plots) run between epochs; the
// learning rate they set is the optimizer's `learning_rate` for the next epoch.
#pragma once
#include <chrono>
#include <functional>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "ctnn/core/rng.hpp"
#include "ctnn/data/split.hpp"
#include "ctnn/kernels/elementwise.hpp"
#include "ctnn/train/callbacks.hpp"
#include "ctnn/train/evaluate.hpp"
#include "ctnn/train/history.hpp"
#include "ctnn/train/trainer.hpp"

namespace ctnn {

struct FitOptions {
  std::size_t epochs = 1;       // train until this epoch (counted from 1, including initial_epoch)
  std::size_t initial_epoch = 0;  // epochs already done, e.g. before a checkpoint (as Keras's)
  std::size_t batch_size = 32;
  const data::Dataset* validation = nullptr;  // evaluated after every epoch
  double validation_split = 0;  // or: hold out this last fraction of the data (as Keras does)
  bool shuffle = true;
  std::uint64_t seed = 0;       // shuffling and Dropout masks
  int verbose = 1;              // 0: silent; 1: progress
  std::ostream* out = &std::cout;
  // Called between epochs, in this order (callbacks.hpp): e.g. {early_stopping, csv_logger}.
  std::vector<std::reference_wrapper<Callback>> callbacks = {};
};

namespace detail {

inline bool is_terminal(const std::ostream* os) {
  return (os == &std::cout && isatty(STDOUT_FILENO)) || (os == &std::cerr && isatty(STDERR_FILENO));
}

inline void print_metrics(std::ostream& os, const char* prefix, double loss, double acc) {
  os << " - " << prefix << "loss: " << std::fixed << std::setprecision(4) << loss;
  if (!std::isnan(acc)) os << " - " << prefix << "accuracy: " << acc;
}

// The optimizer's learning rate, or NaN for an optimizer without one.
template <class Optimizer>
double learning_rate_of(const Optimizer& opt) {
  if constexpr (requires { opt.learning_rate; })
    return double(opt.learning_rate);
  else
    return std::numeric_limits<double>::quiet_NaN();
}

template <class Model, class Optimizer, Loss L>
History fit_checked(Model& model, Optimizer& opt, L loss, const data::Dataset& data, FitOptions o);

// v as a message prints it: "nan" for every NaN (glibc's printf gives "-nan" for a negative one).
inline std::string number_text(double v) {
  if (std::isnan(v)) return "nan";
  std::ostringstream os;
  os << v;
  return os.str();
}

// "" if every parameter of `model` is finite; otherwise names the first that is not, e.g.
// "parameter 5 of layer 0 (Dense) is nan". One vectorized scan of the arena.
template <class Model>
std::string first_non_finite_parameter(const Model& model) {
  using T = typename Model::value_type;
  const std::span<const T> p = model.parameters();
  const std::size_t bad = kernels::first_non_finite(p.size(), p.data());
  if (bad == p.size()) return "";
  std::ostringstream os;  // unless a layer holds it: the alignment padding between layers
  os << "parameter " << bad << " of the arena is " << number_text(double(p[bad]));
  static_for<Model::num_layers>([&]<std::size_t I>() {
    constexpr std::size_t begin = Model::template param_offset<I>;
    using Layer = typename Model::template layer<I>;
    if (bad >= begin && bad < begin + Layer::param_count) {
      os.str("");
      os << "parameter " << bad - begin << " of layer " << I << " (" << Layer::name << ") is "
         << number_text(double(p[bad]));
    }
  });
  return os.str();
}

}  // namespace detail

// Trains `model` on `data` with `opt` and `loss`; see the top of this file and FitOptions.
template <class Model, class Optimizer, class L>
History fit(Model& model, Optimizer& opt, L loss, const data::Dataset& data, FitOptions o = {}) {
  if constexpr (Loss<L>) {
    static_assert(LossReadsOutput<L, typename Model::output_shape>::value);
    return detail::fit_checked(model, opt, loss, data, o);
  } else {
    constexpr bool is_a_loss = Loss<L>;  // a plain bool keeps the diagnostic to one sentence
    static_assert(is_a_loss,
                  "fit()'s third argument must be a loss such as "
                  "ctnn::SparseCategoricalCrossEntropy{} (see the Loss concept in loss/loss.hpp).");
    return {};
  }
}

namespace detail {

template <class Model, class Optimizer, Loss L>
History fit_checked(Model& model, Optimizer& opt, L loss, const data::Dataset& data, FitOptions o) {
  if (o.epochs == 0) fail("fit() needs at least one epoch (options.epochs is 0).");
  if (o.initial_epoch >= o.epochs)
    fail("fit(): initial_epoch (", o.initial_epoch, ") must be below epochs (", o.epochs,
         "): epochs counts from the start, including the ones already done.");
  if (o.batch_size == 0) fail("fit() needs a batch size of at least 1 (options.batch_size is 0).");
  if (!(o.validation_split >= 0 && o.validation_split < 1))  // NaN fails too
    fail("validation_split must be in [0, 1), got ", o.validation_split, ".");
  if (o.validation && o.validation_split > 0)
    fail("fit() got both validation data and a validation_split: give one.");
  if (o.verbose != 0 && o.verbose != 1)
    fail("fit(): options.verbose must be 0 (silent) or 1 (progress); it is ", o.verbose, ".");
  if (o.verbose == 1 && o.out == nullptr)
    fail("fit(): options.out is null but options.verbose is 1: give a stream or set verbose to 0.");
  if constexpr (requires { opt.check_hyperparameters(); }) opt.check_hyperparameters();
  if (const std::string bad = first_non_finite_parameter(model); !bad.empty())
    fail("fit(): the model's ", bad, " before training: initialize or load it again.");

  // Keras's validation_split holds out the last samples, before any shuffling.
  std::optional<data::Dataset> train_part, val_part;
  const data::Dataset* train = &data;
  const data::Dataset* val = o.validation;
  if (o.validation_split > 0) {
    const std::size_t n_val = std::size_t(std::llround(double(data.size()) * o.validation_split));
    if (n_val == 0 || n_val >= data.size())
      fail("validation_split ", o.validation_split, " of ", data.size(),
           " samples leaves an empty training or validation part.");
    std::vector<std::size_t> idx(data.size());
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    const auto cut = idx.begin() + std::ptrdiff_t(data.size() - n_val);
    train_part = data::subset(data, std::span<const std::size_t>(&*idx.begin(), data.size() - n_val));
    val_part = data::subset(data, std::span<const std::size_t>(&*cut, n_val));
    train = &*train_part;
    val = &*val_part;
  }
  detail::check_dataset_fits<Model, L>(*train, "training dataset");
  if (val) detail::check_dataset_fits<Model, L>(*val, "validation dataset");

  const std::size_t n = train->size();
  const std::size_t bs = std::min(o.batch_size, n);
  const std::size_t batches = (n + bs - 1) / bs;
  Trainer<Model, Optimizer, L> trainer(model, opt, loss, bs, o.seed);
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  Rng rng(o.seed);
  const bool tty = o.verbose > 0 && detail::is_terminal(o.out);
  using clock = std::chrono::steady_clock;

  History history;
  TrainingState state;
  state.epochs = o.epochs;
  state.learning_rate = learning_rate_of(opt);
  state.parameters = std::as_writable_bytes(model.parameters());
  state.history = &history;
  state.out = o.verbose > 0 ? o.out : nullptr;
  const auto set_learning_rate = [&] {
    const double current = learning_rate_of(opt);
    if (state.learning_rate == current || (std::isnan(current) && std::isnan(state.learning_rate)))
      return;
    if (!(state.learning_rate >= 0) || !std::isfinite(state.learning_rate))
      fail("A callback set the learning rate to ", number_text(state.learning_rate), " at epoch ",
           state.epoch, "; a learning rate must be a finite number >= 0.");
    if constexpr (requires { opt.learning_rate; }) {
      opt.learning_rate = static_cast<decltype(opt.learning_rate)>(state.learning_rate);
      state.learning_rate = learning_rate_of(opt);  // what the optimizer holds, after rounding
    } else {
      fail("A callback changed the learning rate, but this optimizer has no `learning_rate`.");
    }
  };
  // Resuming: replay the shuffles and step count of the epochs already done, so the run goes on
  // exactly as an unbroken one (with the optimizer restored by load_checkpoint).
  for (std::size_t e = 0; e < o.initial_epoch; ++e)
    if (o.shuffle) shuffle(order, rng);
  trainer.set_steps(std::uint64_t(o.initial_epoch) * batches);
  for (Callback& c : o.callbacks) c.on_train_begin(state);
  set_learning_rate();
  for (std::size_t epoch = o.initial_epoch + 1; epoch <= o.epochs && !state.stop; ++epoch) {
    state.epoch = epoch;
    for (Callback& c : o.callbacks) c.on_epoch_begin(state);
    set_learning_rate();
    if (o.shuffle) shuffle(order, rng);
    const auto t0 = clock::now();
    auto last_draw = t0;
    double loss_sum = 0, correct = 0;
    if (o.verbose > 0) *o.out << "Epoch " << epoch << "/" << o.epochs << (tty ? "\n" : "");
    for (std::size_t b = 0; b < batches; ++b) {
      const std::size_t begin = b * bs, m = std::min(bs, n - begin);
      trainer.load_batch(*train, std::span<const std::size_t>(order.data() + begin, m));
      const StepStats s = trainer.step(m);
      if (!std::isfinite(s.loss_sum)) {
        const std::string bad = first_non_finite_parameter(model);
        fail("Training diverged: the loss is ", number_text(s.loss_sum), " at epoch ", epoch,
             ", batch ", b + 1, " of ", batches, bad.empty() ? "" : "; the model's ", bad,
             ". Lower the learning rate or check the data.");
      }
      loss_sum += s.loss_sum;
      correct += s.correct;
      if (tty && (clock::now() - last_draw > std::chrono::milliseconds(200) || b + 1 == batches)) {
        last_draw = clock::now();
        const double done = double(b + 1) / double(batches);
        const int bar = int(done * 30);
        *o.out << "\r" << std::setw(int(std::to_string(batches).size())) << b + 1 << "/" << batches
               << " [" << std::string(std::size_t(bar), '=') << (bar < 30 ? ">" : "")
               << std::string(std::size_t(bar < 30 ? 29 - bar : 0), '.') << "]";
        const double seen = double(begin + m);
        detail::print_metrics(*o.out, "", loss_sum / seen,
                              L::metric == Metric::none ? std::nan("") : correct / seen);
        *o.out << std::flush;
      }
    }
    // The loss is computed before the step's update, so the last update of an epoch can overflow
    // with every loss finite: one scan of the arena per epoch.
    if (const std::string bad = first_non_finite_parameter(model); !bad.empty())
      fail("Training diverged: the model's ", bad, " after epoch ", epoch,
           " (the loss was finite). Lower the learning rate or check the data.");
    EpochLog log;
    log.epoch = epoch;
    log.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    log.loss = loss_sum / double(n);
    log.learning_rate = learning_rate_of(opt);
    if (L::metric != Metric::none) log.accuracy = correct / double(n);
    if (val) {
      const Evaluation e = detail::evaluate_in(model, trainer.workspace(), *val, trainer.loss());
      log.val_loss = e.loss;
      log.val_accuracy = e.accuracy;
    }
    history.epochs.push_back(log);
    if (o.verbose > 0) {
      *o.out << (tty ? "\r" : " - ") << batches << "/" << batches << " - " << std::fixed
             << std::setprecision(1) << log.seconds << "s - " << std::setprecision(0)
             << double(n) / log.seconds << " samples/s";
      detail::print_metrics(*o.out, "", log.loss, log.accuracy);
      if (val) detail::print_metrics(*o.out, "val_", log.val_loss, log.val_accuracy);
      *o.out << (tty ? "\033[K\n" : "\n") << std::flush;
    }
    for (Callback& c : o.callbacks) c.on_epoch_end(history.epochs.back(), state);
    set_learning_rate();
  }
  history.stopped_early = state.stop && history.epochs.size() < o.epochs - o.initial_epoch;
  for (Callback& c : o.callbacks) c.on_train_end(state);
  return history;
}

}  // namespace detail
}  // namespace ctnn
