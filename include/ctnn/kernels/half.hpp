// ctnn/kernels/half.hpp: float <-> 16-bit conversion, IEEE fp16 (binary16) or bfloat16, the
// kernel behind fp16 / bf16 weight storage (io/model_file.hpp, deploy/half.hpp).
//
// to_half / from_half convert arrays; to_fp16, to_bf16, from_fp16, from_bf16 return vectors.
// Conversion to 16 bits rounds to nearest, ties to even, as IEEE-754 and F16C do:
//   fp16: |x| >= 65520 -> Inf; below 2^-14 -> subnormal (multiples of 2^-24), below 2^-25 -> 0;
//   bf16: keeps fp32's exponent range, so only the mantissa rounds (to 8 bits).
// NaN stays NaN (quiet, sign and top payload bits kept); Inf and signed zeros are exact.
// Widening back to fp32 is exact.
//
// Why not Highway's own DemoteTo: in Highway 1.0.3 the float -> bfloat16 DemoteTo truncates, and
// the float16 paths of targets without F16C truncate and turn Inf/NaN into finite values. The
// conversions below use only integer and float ops every target has, so they round the same way
// everywhere.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/kernels/highway.hpp"

namespace ctnn {
// The 16-bit formats weights can be stored in.
enum class HalfFormat { fp16, bf16 };
}  // namespace ctnn

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// fp32 -> fp16 bits (in int32 lanes), round to nearest even.
template <class D, class V>
HWY_INLINE auto f32_to_f16_bits(D d, V v) {
  const hn::RebindToSigned<D> di;
  const auto bits = hn::BitCast(di, v);
  const auto a = hn::And(bits, hn::Set(di, 0x7FFFFFFF));  // |x|
  // Normal fp16: add just under half an fp16 ulp (plus the kept lsb, for ties to even), drop 13
  // mantissa bits and rebias the exponent (127 -> 15); a carry rounds into the exponent, and
  // anything at or beyond 65520 lands on or past Inf's code 0x7C00.
  const auto lsb = hn::And(hn::ShiftRight<13>(a), hn::Set(di, 1));
  const auto normal = hn::Min(
      hn::ShiftRight<13>(hn::Sub(hn::Add(a, hn::Add(hn::Set(di, 0xFFF), lsb)),
                                 hn::Set(di, (127 - 15) << 23))),
      hn::Set(di, 0x7C00));
  // Subnormal fp16 (|x| < 2^-14): adding 0.5 makes the float unit 2^-24, the fp16 subnormal
  // step, so the FPU's own round-to-nearest-even leaves the fp16 code in the low mantissa bits.
  const auto sub = hn::Sub(hn::BitCast(di, hn::Add(hn::BitCast(d, a), hn::Set(d, 0.5f))),
                           hn::Set(di, 0x3F000000));
  const auto nan = hn::Or(hn::Set(di, 0x7E00), hn::And(hn::ShiftRight<13>(a), hn::Set(di, 0x3FF)));
  auto h = hn::IfThenElse(hn::Lt(a, hn::Set(di, 0x38800000)), sub, normal);
  h = hn::IfThenElse(hn::Gt(a, hn::Set(di, 0x7F800000)), nan, h);
  return hn::Or(h, hn::And(hn::ShiftRight<16>(bits), hn::Set(di, 0x8000)));  // the sign
}

// fp16 bits (in int32 lanes) -> fp32, exact.
template <class D, class VI>
HWY_INLINE auto f16_bits_to_f32(D d, VI h) {
  const hn::RebindToSigned<D> di;
  const auto e = hn::And(h, hn::Set(di, 0x7C00));
  // Exponent and mantissa move up 13 bits; the exponent rebias (15 -> 127) is one add, and a
  // second add takes Inf/NaN's exponent 31 to fp32's 255.
  const auto rebias = hn::Set(di, (127 - 15) << 23);
  const auto normal = hn::Add(hn::ShiftLeft<13>(hn::And(h, hn::Set(di, 0x7FFF))), rebias);
  const auto inf_nan = hn::Add(normal, rebias);
  const auto sub = hn::BitCast(di, hn::Mul(hn::ConvertTo(d, hn::And(h, hn::Set(di, 0x3FF))),
                                           hn::Set(d, 1.0f / 16777216.0f)));  // m * 2^-24
  auto r = hn::IfThenElse(hn::Eq(e, hn::Zero(di)), sub, normal);
  r = hn::IfThenElse(hn::Eq(e, hn::Set(di, 0x7C00)), inf_nan, r);
  return hn::BitCast(d, hn::Or(r, hn::ShiftLeft<16>(hn::And(h, hn::Set(di, 0x8000)))));
}

// fp32 -> bf16 bits (in int32 lanes), round to nearest even.
template <class D, class V>
HWY_INLINE auto f32_to_bf16_bits(D, V v) {
  const hn::RebindToUnsigned<D> du;
  const hn::RebindToSigned<D> di;
  const auto bits = hn::BitCast(du, v);
  const auto lsb = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
  const auto rounded = hn::ShiftRight<16>(hn::Add(bits, hn::Add(hn::Set(du, 0x7FFFu), lsb)));
  const auto nan = hn::Or(hn::ShiftRight<16>(bits), hn::Set(du, 0x40u));  // quiet bit set
  const auto a = hn::And(hn::BitCast(di, bits), hn::Set(di, 0x7FFFFFFF));
  return hn::BitCast(di, hn::IfThenElse(hn::RebindMask(du, hn::Gt(a, hn::Set(di, 0x7F800000))),
                                        nan, rounded));
}

// Applies f(d, i) to elements [i, i + Lanes(d)): native vectors, then a one-lane tag for the
// tail, so there is one copy of each conversion.
template <class F>
HWY_INLINE void for_each_lane_block(std::size_t n, F f) {
  const hn::ScalableTag<float> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;
  std::size_t i = 0;
  for (; i < full; i += L) f(d, i);
  const hn::CappedTag<float, 1> d1;
  for (; i < n; ++i) f(d1, i);
}

inline void to_half(HalfFormat format, std::size_t n, const float* HWY_RESTRICT x,
                    std::uint16_t* HWY_RESTRICT h) {
  for_each_lane_block(n, [&](auto d, std::size_t i) {
    const hn::Rebind<std::uint16_t, decltype(d)> d16;
    const auto v = hn::LoadU(d, x + i);
    const auto bits = format == HalfFormat::fp16 ? f32_to_f16_bits(d, v) : f32_to_bf16_bits(d, v);
    hn::StoreU(hn::DemoteTo(d16, bits), d16, h + i);  // every code is <= 0xFFFF: no saturation
  });
}

inline void from_half(HalfFormat format, std::size_t n, const std::uint16_t* HWY_RESTRICT h,
                      float* HWY_RESTRICT x) {
  for_each_lane_block(n, [&](auto d, std::size_t i) {
    const hn::Rebind<std::uint16_t, decltype(d)> d16;
    const hn::RebindToSigned<decltype(d)> di;
    const auto bits = hn::PromoteTo(di, hn::LoadU(d16, h + i));
    hn::StoreU(format == HalfFormat::fp16 ? f16_bits_to_f32(d, bits)
                                          : hn::BitCast(d, hn::ShiftLeft<16>(bits)),
               d, x + i);
  });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn {

// h[i] = x[i] in `format`, rounded to nearest even. The spans must be the same length.
inline void to_half(HalfFormat format, std::span<const float> x, std::span<std::uint16_t> h) {
  if (x.size() != h.size())
    fail("to_half() was given ", x.size(), " floats but room for ", h.size(), " 16-bit values.");
  HWY_NAMESPACE::to_half(format, x.size(), x.data(), h.data());
}

// x[i] = h[i] widened exactly to fp32. The spans must be the same length.
inline void from_half(HalfFormat format, std::span<const std::uint16_t> h, std::span<float> x) {
  if (x.size() != h.size())
    fail("from_half() was given ", h.size(), " 16-bit values but room for ", x.size(), " floats.");
  HWY_NAMESPACE::from_half(format, h.size(), h.data(), x.data());
}

inline std::vector<std::uint16_t> to_fp16(std::span<const float> x) {
  std::vector<std::uint16_t> h(x.size());
  to_half(HalfFormat::fp16, x, h);
  return h;
}
inline std::vector<std::uint16_t> to_bf16(std::span<const float> x) {
  std::vector<std::uint16_t> h(x.size());
  to_half(HalfFormat::bf16, x, h);
  return h;
}
inline std::vector<float> from_fp16(std::span<const std::uint16_t> h) {
  std::vector<float> x(h.size());
  from_half(HalfFormat::fp16, h, x);
  return x;
}
inline std::vector<float> from_bf16(std::span<const std::uint16_t> h) {
  std::vector<float> x(h.size());
  from_half(HalfFormat::bf16, h, x);
  return x;
}

}  // namespace ctnn
