// ctnn/core/simd_target.hpp: the name of the Highway target ctnn's kernels are compiled for.
//
// ctnn is header-only and uses Highway's static dispatch (kernels/highway.hpp), so the target is
// fixed by the compiler flags (HWY_STATIC_TARGET). It lives in core/ because the model summary
// prints it and core/ never includes kernels/.
#pragma once
#include <hwy/highway.h>

namespace ctnn {

// Name of the Highway target the kernels were compiled for, e.g. "AVX2", "AVX3", "SCALAR".
inline const char* simd_target() { return hwy::TargetName(HWY_STATIC_TARGET); }

}  // namespace ctnn
