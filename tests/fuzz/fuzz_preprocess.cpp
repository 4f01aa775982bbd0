// libFuzzer target for Preprocessing::load (data/preprocess.hpp). Input: a flags byte, then the
// block. flags bit 0 rewrites the block's CRC-32 first, so mutations reach the parser.
// A block that loads must transform a sample, and must save and load back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "ctnn/data/preprocess.hpp"
#include "fuzz_common.hpp"

namespace {

using ctnn_fuzz::bug;

// Widths above these are legal but would make this harness allocate gigabytes per input.
constexpr std::size_t kMaxInput = std::size_t{1} << 16;
constexpr std::size_t kMaxOutput = std::size_t{1} << 20;

std::string saved(const ctnn::data::Preprocessing& p) {
  std::ostringstream os(std::ios::binary);
  p.save(os);
  return std::move(os).str();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  ctnn_fuzz::Bytes block(data + 1, data + size);
  if (data[0] & 1) ctnn_fuzz::fix_prep_crcs(block);
  using ctnn::data::Preprocessing;
  Preprocessing p;
  try {
    std::istringstream is(std::string(block.begin(), block.end()), std::ios::binary);
    p = Preprocessing::load(is);
  } catch (const ctnn::Error& e) {
    ctnn_fuzz::expected(e);
    return 0;
  }
  if (!p.fitted() || p.input_size() == 0 || p.output_size() < p.input_size())
    bug("a loaded pipeline is unfitted or narrows");
  std::ostringstream described;
  described << p;

  // Round trip: what load() accepted, save() writes back and load() reads again unchanged.
  const std::string once = saved(p);
  std::istringstream again(once, std::ios::binary);
  const Preprocessing q = Preprocessing::load(again);  // a ctnn::Error here is a bug too
  if (saved(q) != once) bug("save(load(save(p))) differs from save(p)");

  if (p.input_size() > kMaxInput || p.output_size() > kMaxOutput) return 0;
  // One sample: small integers (valid category codes for most encoders), from the input bytes.
  std::vector<float> in(p.input_size()), out(p.output_size());
  for (std::size_t j = 0; j < in.size(); ++j)
    in[j] = static_cast<float>(data[(j % size)] % 4);
  try {
    p.transform(in, out);
  } catch (const ctnn::Error& e) {
    ctnn_fuzz::expected(e);
  }
  ctnn::data::Dataset d;
  d.sample_shape = {p.input_size()};
  d.x = in;
  d.x.insert(d.x.end(), in.begin(), in.end());
  ctnn::data::Dataset t;
  try {
    t = p.transform(d);
  } catch (const ctnn::Error& e) {
    ctnn_fuzz::expected(e);
    return 0;
  }
  t.check_consistent("transformed dataset");  // a ctnn::Error here is a bug
  if (t.feature_size() != p.output_size() || t.size() != 2) bug("transform gave the wrong size");
  return 0;
}
