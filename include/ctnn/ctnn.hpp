// ctnn/ctnn.hpp: everything ctnn offers, in one include.
#pragma once

#include "ctnn/core/buffer.hpp"
#include "ctnn/core/error.hpp"
#include "ctnn/core/init.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/core/real.hpp"
#include "ctnn/core/rng.hpp"
#include "ctnn/core/sequential.hpp"
#include "ctnn/core/shape.hpp"

#include "ctnn/layers/conv2d.hpp"
#include "ctnn/layers/dense.hpp"
#include "ctnn/layers/dropout.hpp"
#include "ctnn/layers/flatten.hpp"
#include "ctnn/layers/leaky_relu.hpp"
#include "ctnn/layers/pooling.hpp"
#include "ctnn/layers/relu.hpp"
#include "ctnn/layers/sigmoid.hpp"
#include "ctnn/layers/softmax.hpp"
#include "ctnn/layers/tanh.hpp"

#include "ctnn/loss/binary_crossentropy.hpp"
#include "ctnn/loss/categorical_crossentropy.hpp"
#include "ctnn/loss/mse.hpp"
#include "ctnn/loss/sparse_categorical_crossentropy.hpp"

#include "ctnn/optim/adam.hpp"
#include "ctnn/optim/sgd.hpp"

#include "ctnn/data/clean.hpp"
#include "ctnn/data/csv.hpp"
#include "ctnn/data/dataset.hpp"
#include "ctnn/data/from_table.hpp"
#include "ctnn/data/gzip.hpp"
#include "ctnn/data/idx.hpp"
#include "ctnn/data/integrate.hpp"
#include "ctnn/data/preprocess.hpp"
#include "ctnn/data/split.hpp"
#include "ctnn/data/stats.hpp"
#include "ctnn/data/table.hpp"
#include "ctnn/data/transform.hpp"

#include "ctnn/eval/metrics.hpp"

#include "ctnn/train/callbacks.hpp"
#include "ctnn/train/evaluate.hpp"
#include "ctnn/train/fit.hpp"
#include "ctnn/train/history.hpp"
#include "ctnn/train/plot.hpp"
#include "ctnn/train/trainer.hpp"

#include "ctnn/tune/search.hpp"

#include "ctnn/io/atomic_file.hpp"
#include "ctnn/io/model_file.hpp"

#include "ctnn/deploy/export.hpp"
#include "ctnn/deploy/half.hpp"
#include "ctnn/deploy/monitor.hpp"
#include "ctnn/deploy/quantize.hpp"
#include "ctnn/deploy/static_model.hpp"
