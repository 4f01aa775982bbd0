# deploy_test.cmake: builds tests/deploy/inference_main.cpp against an exported model for one
# target and runs it (cmake -P). Variables:
#   PLATFORM host | host-scalar (Highway's SCALAR target, as on a Cortex-M) | aarch64 | cortex-m4
#   MODEL    float (fashion_model.hpp) | int8 (fashion_model_int8.hpp, -DCTNN_INT8)
#   CASES    the folder where deploy_export_tool wrote the model and case headers
#   SRC      tests/deploy (inference_main.cpp)      INCLUDE  ctnn's include/
#   OUT      a folder for this target's files       CXX      the compiler
#   RUNNER   for aarch64: qemu-aarch64               SIZE     for cortex-m4: arm-none-eabi-size
#   HWY      the folder of Highway's headers (hwy/)
# Cross compilers get a folder holding only a link to Highway, never the host's /usr/include.
cmake_minimum_required(VERSION 3.20)
file(MAKE_DIRECTORY "${OUT}/hwy_only")
if(NOT EXISTS "${OUT}/hwy_only/hwy")
  file(CREATE_LINK "${HWY}" "${OUT}/hwy_only/hwy" SYMBOLIC)
endif()

set(common -std=c++20 -O2 -fno-exceptions -fno-rtti -DHWY_COMPILE_ONLY_STATIC=1
    -I${CASES} -I${INCLUDE} -isystem ${OUT}/hwy_only ${SRC}/inference_main.cpp)
if(MODEL STREQUAL "int8")
  list(APPEND common -DCTNN_INT8)
elseif(NOT MODEL STREQUAL "float")
  message(FATAL_ERROR "deploy_test.cmake: unknown MODEL '${MODEL}' (float or int8)")
endif()
if(PLATFORM STREQUAL "host")
  set(flags -march=native ${common} -o ${OUT}/inference_host)
  set(run ${OUT}/inference_host)
elseif(PLATFORM STREQUAL "host-scalar")
  list(REMOVE_ITEM common -DHWY_COMPILE_ONLY_STATIC=1)  # Highway accepts one COMPILE_ONLY
  set(flags -DHWY_COMPILE_ONLY_SCALAR=1 ${common} -o ${OUT}/inference_host_scalar)
  set(run ${OUT}/inference_host_scalar)
elseif(PLATFORM STREQUAL "aarch64")
  # NEON is part of armv8-a: Highway's static target is NEON.
  set(flags -march=armv8-a -static ${common} -o ${OUT}/inference_aarch64)
  set(run ${RUNNER} ${OUT}/inference_aarch64)
elseif(PLATFORM STREQUAL "cortex-m4")
  # Hard-float Cortex-M4 (FPv4-SP); Highway's target is SCALAR. newlib-nano, no OS (nosys):
  # the image links and its sizes are read; it does not run here.
  set(flags -DCTNN_ONE_CASE -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -ffunction-sections
      -fdata-sections ${common} --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections
      -Wl,-Map=${OUT}/inference_cortex_m4.map -o ${OUT}/inference_cortex_m4.elf)
else()
  message(FATAL_ERROR "deploy_test.cmake: unknown PLATFORM '${PLATFORM}'")
endif()

execute_process(COMMAND ${CXX} ${flags} RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE e)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "Building the deployed program for ${PLATFORM} failed:\n${o}${e}")
endif()

if(PLATFORM STREQUAL "cortex-m4")
  execute_process(COMMAND ${SIZE} -A ${OUT}/inference_cortex_m4.elf OUTPUT_VARIABLE sections
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${SIZE} failed on the Cortex-M4 image")
  endif()
  # Flash holds code, constants and the initial values of .data; RAM holds .data, .bss and the
  # heap/stack reserve newlib's linker script sets up (reported apart).
  set(flash 0)
  set(ram 0)
  foreach(sec text rodata ARM.exidx data bss)
    string(REGEX MATCH "\n\\.${sec}[ \t]+([0-9]+)" m "${sections}")
    set(n 0)
    if(m)
      set(n ${CMAKE_MATCH_1})
    endif()
    set(${sec}_bytes ${n})
  endforeach()
  math(EXPR flash "${text_bytes} + ${rodata_bytes} + ${ARM.exidx_bytes} + ${data_bytes}")
  math(EXPR ram "${data_bytes} + ${bss_bytes}")
  message("Cortex-M4 image (${MODEL} model, newlib-nano): flash ${flash} bytes "
          "(.text ${text_bytes}, .rodata ${rodata_bytes}, .data ${data_bytes}), "
          "RAM ${ram} bytes (.data ${data_bytes}, .bss ${bss_bytes}), map in "
          "${OUT}/inference_cortex_m4.map")
  file(WRITE ${OUT}/cortex_m4_size.txt "flash ${flash}\nram ${ram}\n${sections}")
  # A Cortex-M4 part with 256 KB of flash and 64 KB of RAM must hold it.
  if(flash GREATER 262144 OR ram GREATER 65536)
    message(FATAL_ERROR "The Cortex-M4 image does not fit 256 KB flash / 64 KB RAM.")
  endif()
  return()
endif()

execute_process(COMMAND ${run} RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE e)
message("${o}${e}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "The deployed program for ${PLATFORM} disagrees with the host (exit ${rc}).")
endif()
