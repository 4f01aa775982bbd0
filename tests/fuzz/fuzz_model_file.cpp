// libFuzzer target for the model-file reader (io/model_file.hpp) through load_from_memory and
// load_checkpoint_from_memory, into a small model with Adam and a Preprocessing. Input: a flags
// byte, then the file.
//   flags bit 0   rewrite the file's trailing CRC-32 first, so mutations reach the parser
//   bit 1         rewrite the CRC-32 of an embedded preprocessing block too
// Each input is loaded four ways (load and load_checkpoint, each with and without a
// Preprocessing). A ctnn::Error is an expected outcome and must leave the model, the optimizer
// and the preprocessing untouched; a model that loaded must still predict.
#include <cstddef>
#include <cstdint>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "ctnn/core/sequential.hpp"
#include "ctnn/io/model_file.hpp"
#include "ctnn/layers/dense.hpp"
#include "ctnn/layers/softmax.hpp"
#include "ctnn/layers/tanh.hpp"
#include "ctnn/optim/adam.hpp"
#include "fuzz_common.hpp"

namespace {

using ctnn_fuzz::bug;
using Tiny = ctnn::Sequential<ctnn::Input<4>, ctnn::Dense<3>, ctnn::Tanh, ctnn::Dense<2>,
                              ctnn::Softmax>;

std::vector<float> params_of(const Tiny& m) { return {m.parameters().begin(), m.parameters().end()}; }

std::string saved(const ctnn::data::Preprocessing& p) {
  if (!p.fitted()) return {};
  std::ostringstream os(std::ios::binary);
  p.save(os);
  return std::move(os).str();
}

// A fitted preprocessing to tell "untouched" from "replaced".
ctnn::data::Preprocessing fitted_prep() {
  ctnn::data::Dataset d;
  d.sample_shape = {4};
  d.x = {0, 1, 2, 3, 4, 5, 6, 7};
  ctnn::data::Preprocessing p;
  p.add(ctnn::data::StandardScaler{});
  p.fit(d);
  return p;
}

void run(std::span<const char> file, bool checkpoint, bool with_prep) {
  Tiny model(7);
  ctnn::Adam adam;
  ctnn::data::Preprocessing prep = fitted_prep();
  const std::vector<float> before = params_of(model);
  const std::string prep_before = saved(prep);
  const std::vector<double> hyper_before = adam.hyperparameters();
  try {
    if (checkpoint)
      ctnn::load_checkpoint_from_memory(file, "fuzz.ctnn", model, adam, with_prep ? &prep : nullptr);
    else
      ctnn::load_from_memory(file, "fuzz.ctnn", model, with_prep ? &prep : nullptr);
  } catch (const ctnn::Error& e) {
    ctnn_fuzz::expected(e);
    if (params_of(model) != before) bug("a failed load changed the model");
    if (saved(prep) != prep_before) bug("a failed load changed the preprocessing");
    if (adam.hyperparameters() != hyper_before || adam.iterations() != 0)
      bug("a failed load changed the optimizer");
    return;
  }
  const float x[4] = {0.5f, -1.0f, 2.0f, 0.0f};
  float y[2] = {};
  model.predict(std::span<const float>(x, 4), std::span<float>(y, 2));
  if (with_prep) {
    std::ostringstream described;
    described << prep;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  ctnn_fuzz::Bytes file(data + 1, data + size);
  if (data[0] & 2) ctnn_fuzz::fix_prep_crcs(file);
  if ((data[0] & 1) && file.size() >= 4)
    ctnn_fuzz::put_le32(file.data() + file.size() - 4,
                        ctnn_fuzz::crc32_of(file.data(), file.size() - 4));
  const std::span<const char> bytes(reinterpret_cast<const char*>(file.data()), file.size());
  for (bool checkpoint : {false, true})
    for (bool with_prep : {false, true}) run(bytes, checkpoint, with_prep);
  return 0;
}
