// ctnn/kernels/highway.hpp: how ctnn uses Highway.
//
// ctnn is header-only, so it uses Highway's static dispatch: kernels are compiled once, for the
// best target the compiler flags allow (HWY_STATIC_TARGET; -march is the CMake option CTNN_MARCH).
// Kernel headers put their code in namespace ctnn::HWY_NAMESPACE between HWY_BEFORE_NAMESPACE()
// and HWY_AFTER_NAMESPACE() (so the target attributes match, which aarch64 builds require) and
// re-export it into ctnn::kernels.
#pragma once
#include <hwy/highway.h>

#include "ctnn/core/simd_target.hpp"  // simd_target(), the name of that target
