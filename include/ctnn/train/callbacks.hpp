// ctnn/train/callbacks.hpp: what fit() calls between epochs, as Keras's callbacks: early
// stopping, learning-rate schedules (step, exponential, cosine, any function), reduce-on-plateau,
// and per-epoch logs to CSV or JSON lines.
//
// A callback sees a TrainingState: the epoch, the optimizer's learning rate (which it may change;
// fit() hands the new rate to the optimizer before the next epoch), a stop flag, and the model's
// parameter arena as bytes (to keep and restore the best weights). Callbacks run in the order
// given, once per epoch, never inside a batch, so a virtual call costs nothing that matters.
// Schedules work per epoch: epoch 1 trains at the optimizer's initial rate times the schedule's
// factor for epoch 1 (which is 1 for every schedule here).
#pragma once
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <numbers>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/train/history.hpp"

namespace ctnn {

struct TrainingState {
  std::size_t epoch = 0;             // 1-based: the epoch about to start or just ended
  std::size_t epochs = 0;            // the number fit() was asked for
  double learning_rate = 0;          // the optimizer's; callbacks may change it
  bool stop = false;                 // set to end training after the current epoch
  std::span<std::byte> parameters;   // the model's parameter arena
  const History* history = nullptr;  // the epochs so far
  std::ostream* out = nullptr;       // where fit() prints (nullptr when verbose is 0)
};

class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(TrainingState&) {}
  virtual void on_epoch_begin(TrainingState&) {}
  virtual void on_epoch_end(const EpochLog&, TrainingState&) {}
  virtual void on_train_end(TrainingState&) {}
};

namespace detail {

// The monitored value of an epoch; an error if it is NaN (asked for val_* without validation
// data, or accuracy of a regression loss), naming the callback.
inline double monitored(const EpochLog& log, const std::string& monitor, const char* who) {
  const double v = value_of(log, monitor);
  if (std::isnan(v))
    fail(who, " monitors \"", monitor, "\", which has no value at epoch ", log.epoch,
         (monitor.rfind("val_", 0) == 0 ? ": give fit() validation data or a validation_split."
                                         : ": the loss has no accuracy metric."));
  return v;
}

// Whether `v` improves on `best` by more than `min_delta` in the direction of `monitor`.
inline bool improves(double v, double best, double min_delta, bool up) {
  return up ? v - min_delta > best : v + min_delta < best;
}

}  // namespace detail

// Stops training when `monitor` has not improved by more than `min_delta` for `patience` epochs
// in a row (patience 0: at the first epoch without improvement). With restore_best_weights the
// model ends training (stopped early or not) with the parameters of its best epoch.
class EarlyStopping : public Callback {
 public:
  struct Options {
    std::string monitor = "val_loss";
    double min_delta = 0;
    std::size_t patience = 0;
    bool restore_best_weights = false;
  };
  EarlyStopping() : EarlyStopping(Options{}) {}
  explicit EarlyStopping(Options o) : o_(std::move(o)) {
    (void)higher_is_better(o_.monitor);  // an unknown name fails here, not after an epoch
    if (!(o_.min_delta >= 0)) fail("EarlyStopping: min_delta must be >= 0, got ", o_.min_delta, ".");
  }

  void on_train_begin(TrainingState&) override {
    up_ = higher_is_better(o_.monitor);
    best_ = up_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    wait_ = 0;
    best_epoch_ = stopped_epoch_ = 0;
    best_weights_.clear();
  }
  void on_epoch_end(const EpochLog& log, TrainingState& s) override {
    const double v = detail::monitored(log, o_.monitor, "EarlyStopping");
    if (detail::improves(v, best_, o_.min_delta, up_)) {
      best_ = v;
      best_epoch_ = log.epoch;
      wait_ = 0;
      if (o_.restore_best_weights) best_weights_.assign(s.parameters.begin(), s.parameters.end());
      return;
    }
    if (++wait_ >= o_.patience) {  // wait_ >= 1 here, so patience 0 stops at once
      s.stop = true;
      stopped_epoch_ = log.epoch;
      if (s.out)
        *s.out << "Early stopping at epoch " << log.epoch << ": " << o_.monitor
               << " has not improved since epoch " << best_epoch_ << " (" << best_ << ").\n";
    }
  }
  void on_train_end(TrainingState& s) override {
    if (!o_.restore_best_weights || best_weights_.empty()) return;
    if (best_weights_.size() != s.parameters.size())
      fail("EarlyStopping: the model's parameter arena changed size during training.");
    std::copy(best_weights_.begin(), best_weights_.end(), s.parameters.begin());
    if (s.out)
      *s.out << "Restored the weights of epoch " << best_epoch_ << " (" << o_.monitor << " "
             << best_ << ").\n";
  }

  std::size_t best_epoch() const { return best_epoch_; }        // 0 before any epoch
  double best_value() const { return best_; }
  std::size_t stopped_epoch() const { return stopped_epoch_; }  // 0 if it never stopped training

 private:
  Options o_;
  bool up_ = false;
  double best_ = 0;
  std::size_t wait_ = 0, best_epoch_ = 0, stopped_epoch_ = 0;
  std::vector<std::byte> best_weights_;
};

// Sets the learning rate at the start of every epoch to schedule(epoch, initial rate), where the
// initial rate is the optimizer's when training begins. The schedules below are such functions;
// any callable double(std::size_t epoch, double initial) works.
class LearningRateScheduler : public Callback {
 public:
  using Schedule = std::function<double(std::size_t epoch, double initial_rate)>;
  // initial_rate: the rate of epoch 1; by default the optimizer's when training begins (give it
  // when resuming from a checkpoint, whose optimizer already holds a decayed rate).
  explicit LearningRateScheduler(Schedule f,
                                 double initial_rate = std::numeric_limits<double>::quiet_NaN())
      : f_(std::move(f)), given_(initial_rate) {
    if (!f_) fail("LearningRateScheduler needs a schedule function.");
  }
  void on_train_begin(TrainingState& s) override {
    initial_ = std::isnan(given_) ? s.learning_rate : given_;
  }
  void on_epoch_begin(TrainingState& s) override {
    const double lr = f_(s.epoch, initial_);
    if (!(lr >= 0) || !std::isfinite(lr))
      fail("The learning-rate schedule gave ", lr, " for epoch ", s.epoch,
           "; a learning rate must be finite and >= 0.");
    s.learning_rate = lr;
  }

 private:
  Schedule f_;
  double given_, initial_ = 0;
};

// initial * factor^floor((epoch - 1) / every): e.g. halve the rate every 5 epochs.
struct StepDecay {
  double factor = 0.5;
  std::size_t every = 10;
  double operator()(std::size_t epoch, double initial) const {
    if (every == 0) fail("StepDecay: `every` must be at least 1 epoch.");
    return initial * std::pow(factor, double((epoch - 1) / every));
  }
};

// initial * rate^(epoch - 1).
struct ExponentialDecay {
  double rate = 0.9;
  double operator()(std::size_t epoch, double initial) const {
    return initial * std::pow(rate, double(epoch - 1));
  }
};

// Cosine from initial (epoch 1) down to alpha * initial at epoch decay_epochs + 1, flat after.
struct CosineDecay {
  std::size_t decay_epochs = 10;
  double alpha = 0;
  double operator()(std::size_t epoch, double initial) const {
    if (decay_epochs == 0) fail("CosineDecay: decay_epochs must be at least 1.");
    const double t = double(std::min(epoch - 1, decay_epochs)) / double(decay_epochs);
    return initial * ((1 - alpha) * 0.5 * (1 + std::cos(std::numbers::pi * t)) + alpha);
  }
};

// Multiplies the learning rate by `factor` when `monitor` has not improved by more than
// `min_delta` for `patience` epochs, then waits `cooldown` epochs before counting again; never
// goes below min_lr (Keras's ReduceLROnPlateau).
class ReduceLROnPlateau : public Callback {
 public:
  struct Options {
    std::string monitor = "val_loss";
    double factor = 0.1;
    std::size_t patience = 10;
    double min_delta = 1e-4;
    std::size_t cooldown = 0;
    double min_lr = 0;
  };
  ReduceLROnPlateau() : ReduceLROnPlateau(Options{}) {}
  explicit ReduceLROnPlateau(Options o) : o_(std::move(o)) {
    (void)higher_is_better(o_.monitor);
    if (!(o_.factor > 0 && o_.factor < 1))
      fail("ReduceLROnPlateau: factor must lie in (0, 1), got ", o_.factor, ".");
  }
  void on_train_begin(TrainingState&) override {
    up_ = higher_is_better(o_.monitor);
    best_ = up_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    wait_ = cooldown_left_ = reductions_ = 0;
  }
  void on_epoch_end(const EpochLog& log, TrainingState& s) override {
    const double v = detail::monitored(log, o_.monitor, "ReduceLROnPlateau");
    if (cooldown_left_ > 0) {
      --cooldown_left_;
      wait_ = 0;
    }
    if (detail::improves(v, best_, o_.min_delta, up_)) {
      best_ = v;
      wait_ = 0;
    } else if (cooldown_left_ == 0 && ++wait_ >= o_.patience) {
      if (s.learning_rate > o_.min_lr) {
        const double lr = std::max(s.learning_rate * o_.factor, o_.min_lr);
        if (s.out)
          *s.out << "ReduceLROnPlateau: epoch " << log.epoch << ", learning rate " << s.learning_rate
                 << " -> " << lr << ".\n";
        s.learning_rate = lr;
        ++reductions_;
      }
      cooldown_left_ = o_.cooldown;
      wait_ = 0;
    }
  }
  std::size_t reductions() const { return reductions_; }

 private:
  Options o_;
  bool up_ = false;
  double best_ = 0;
  std::size_t wait_ = 0, cooldown_left_ = 0, reductions_ = 0;
};

namespace detail {

inline std::ofstream open_log(const std::string& path, bool append, const char* who) {
  std::ofstream f(path, append ? std::ios::app : std::ios::trunc);
  if (!f) {
    const int err = errno;
    fail(who, " cannot open \"", path, "\" for writing: ",
         err == EISDIR ? "it is a directory, not a file" : std::strerror(err), ".");
  }
  return f;
}

inline void write_number(std::ostream& os, double v, const char* missing) {
  if (std::isnan(v)) {
    os << missing;
  } else {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    os << buf;
  }
}

// The fields every log line holds, in order.
inline std::vector<std::pair<const char*, double>> log_fields(const EpochLog& e) {
  return {{"epoch", double(e.epoch)},        {"loss", e.loss},
          {"accuracy", e.accuracy},          {"val_loss", e.val_loss},
          {"val_accuracy", e.val_accuracy},  {"learning_rate", e.learning_rate},
          {"seconds", e.seconds}};
}

}  // namespace detail

// Appends one line per epoch to a CSV file (header: epoch,loss,accuracy,val_loss,val_accuracy,
// learning_rate,seconds; a quantity without a value is an empty cell), flushed at every epoch so
// the log survives a crash. `append` keeps an existing file (without writing a second header).
class CsvLogger : public Callback {
 public:
  explicit CsvLogger(std::string path, bool append = false)
      : path_(std::move(path)), append_(append) {}
  void on_train_begin(TrainingState&) override {
    const bool had = append_ && std::ifstream(path_).peek() != std::ifstream::traits_type::eof();
    f_ = detail::open_log(path_, append_, "CsvLogger");
    if (!had) {
      const char* sep = "";
      for (const auto& [name, v] : detail::log_fields(EpochLog{})) f_ << std::exchange(sep, ",") << name;
      f_ << '\n' << std::flush;
    }
  }
  void on_epoch_end(const EpochLog& e, TrainingState&) override {
    const char* sep = "";
    for (const auto& [name, v] : detail::log_fields(e)) {
      f_ << std::exchange(sep, ",");
      detail::write_number(f_, v, "");
    }
    f_ << '\n' << std::flush;
    if (!f_) fail("CsvLogger could not write to \"", path_, "\" (disk full?).");
  }
  void on_train_end(TrainingState&) override { f_.close(); }

 private:
  std::string path_;
  bool append_;
  std::ofstream f_;
};

// Appends one JSON object per epoch and line ("JSON lines"), e.g.
// {"epoch":1,"loss":0.41,"accuracy":0.85,"val_loss":null,...}; NaN is written as null.
class JsonLinesLogger : public Callback {
 public:
  explicit JsonLinesLogger(std::string path, bool append = false)
      : path_(std::move(path)), append_(append) {}
  void on_train_begin(TrainingState&) override {
    f_ = detail::open_log(path_, append_, "JsonLinesLogger");
  }
  void on_epoch_end(const EpochLog& e, TrainingState&) override {
    const char* sep = "{";
    for (const auto& [name, v] : detail::log_fields(e)) {
      f_ << std::exchange(sep, ",") << '"' << name << "\":";
      detail::write_number(f_, v, "null");
    }
    f_ << "}\n" << std::flush;
    if (!f_) fail("JsonLinesLogger could not write to \"", path_, "\" (disk full?).");
  }
  void on_train_end(TrainingState&) override { f_.close(); }

 private:
  std::string path_;
  bool append_;
  std::ofstream f_;
};

}  // namespace ctnn
