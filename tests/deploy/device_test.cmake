# device_test.cmake: builds tests/deploy/device_main.cpp against a model device_tool exported
# (cmake -P) and checks it. Variables:
#   PLATFORM host | host-scalar (Highway's SCALAR target, the code a Cortex-M4 runs) | cortex-m4
#   MODEL    device_model | resnet8 | ds_cnn | autoencoder (<MODEL>_int8.hpp, <MODEL>_case.hpp)
#   CASES    the folder device_tool wrote to        SRC  tests/deploy     INCLUDE  ctnn's include/
#   OUT      a folder for this build                CXX  the compiler     HWY  Highway's hwy/
#   DATA     Fashion-MNIST's folder (host)          MIN_ACCURACY  the host run's bar
#   SIZE, NM arm-none-eabi-size and -nm (cortex-m4) FLASH_LIMIT  bytes of flash allowed (0: none)
#   LARGE_CONSTEXPR  raise g++'s constexpr limits (the packing of millions of int8 weights)
# The host builds run the exported model on the 10,000 test images (a classifier; the autoencoder
# on its one case); the Cortex-M4 build links the
# model and one image, and its flash and RAM are read from the image: RAM must be the model
# object (its planned buffers) plus newlib's own few bytes.
cmake_minimum_required(VERSION 3.20)
file(MAKE_DIRECTORY "${OUT}/hwy_only")
if(NOT EXISTS "${OUT}/hwy_only/hwy")
  file(CREATE_LINK "${HWY}" "${OUT}/hwy_only/hwy" SYMBOLIC)
endif()
set(common -std=c++20 -O2 -I${CASES} -I${INCLUDE} -isystem ${OUT}/hwy_only -DCTNN_MODEL=${MODEL}
    ${SRC}/device_main.cpp)
# A model with millions of int8 weights (onnx_seed): the compiler packs them (constexpr) beyond
# g++'s default loop limit of 262,144 iterations.
if(LARGE_CONSTEXPR)
  list(APPEND common -fconstexpr-loop-limit=8388608 -fconstexpr-ops-limit=4294967296)
endif()
if(MODEL STREQUAL "autoencoder")
  list(APPEND common -DCTNN_CLASSES=0)  # outputs are a reconstruction, not class scores
elseif(MODEL MATCHES "^(device_model|resnet8|ds_cnn|onnx_seed)$")
  list(APPEND common -DCTNN_CLASSES=1)
else()
  message(FATAL_ERROR "device_test.cmake: unknown MODEL '${MODEL}'")
endif()
set(host_flags -DCTNN_FULL_TEST "-DCTNN_FASHION_MNIST_DIR=\"${DATA}\"" -DCTNN_MIN_ACCURACY=${MIN_ACCURACY}
    ${common} -lz)
if(PLATFORM STREQUAL "host")
  set(flags -march=native -DHWY_COMPILE_ONLY_STATIC=1 ${host_flags} -o ${OUT}/device_host)
  set(run ${OUT}/device_host)
elseif(PLATFORM STREQUAL "host-scalar")
  set(flags -DHWY_COMPILE_ONLY_SCALAR=1 ${host_flags} -o ${OUT}/device_host_scalar)
  set(run ${OUT}/device_host_scalar)
elseif(PLATFORM STREQUAL "cortex-m4")
  set(flags -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -fno-exceptions -fno-rtti
      -DHWY_COMPILE_ONLY_STATIC=1 -ffunction-sections -fdata-sections ${common} --specs=nano.specs
      --specs=nosys.specs -Wl,--gc-sections -Wl,-Map=${OUT}/device_cortex_m4.map
      -o ${OUT}/device_cortex_m4.elf)
else()
  message(FATAL_ERROR "device_test.cmake: unknown PLATFORM '${PLATFORM}'")
endif()
execute_process(COMMAND ${CXX} ${flags} RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE e)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "Building the ${MODEL} model for ${PLATFORM} failed:\n${o}${e}")
endif()

if(NOT PLATFORM STREQUAL "cortex-m4")
  execute_process(COMMAND ${run} RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE e)
  message("${o}${e}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "The exported ${MODEL} model on ${PLATFORM} misses its bar (exit ${rc}).")
  endif()
  return()
endif()

execute_process(COMMAND ${SIZE} -A ${OUT}/device_cortex_m4.elf OUTPUT_VARIABLE sections RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${SIZE} failed on the Cortex-M4 image")
endif()
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
# The model object `net` (device_main.cpp): its size in the image is its planned buffers.
execute_process(COMMAND ${NM} -S -C ${OUT}/device_cortex_m4.elf OUTPUT_VARIABLE symbols RESULT_VARIABLE rc)
string(REGEX MATCH "\n[0-9a-f]+ ([0-9a-f]+) [bBdD] net\n" m "\n${symbols}")
if(NOT m)
  message(FATAL_ERROR "The Cortex-M4 image has no symbol `net` (the model object).")
endif()
math(EXPR net_bytes "0x${CMAKE_MATCH_1}")
math(EXPR other_ram "${ram} - ${net_bytes}")
message("Cortex-M4 image of the ${MODEL} model (int8, newlib-nano): flash ${flash} bytes "
        "(.text ${text_bytes}, .rodata ${rodata_bytes}, .data ${data_bytes}); RAM ${ram} bytes: the "
        "model object ${net_bytes} (its planned buffers and parameter pointers), ${other_ram} "
        "newlib's; map in ${OUT}/device_cortex_m4.map")
file(WRITE ${OUT}/cortex_m4_size.txt "flash ${flash}\nram ${ram}\nnet ${net_bytes}\n${sections}")
if(other_ram GREATER 1024)
  message(FATAL_ERROR "RAM beside the model object is ${other_ram} bytes: more than newlib's own.")
endif()
if(FLASH_LIMIT GREATER 0 AND flash GREATER FLASH_LIMIT)
  message(FATAL_ERROR "The Cortex-M4 image takes ${flash} bytes of flash, over the ${FLASH_LIMIT} allowed.")
endif()
