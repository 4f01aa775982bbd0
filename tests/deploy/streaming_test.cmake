# streaming_test.cmake: builds tests/deploy/streaming_main.cpp against the recurrent model that
# streaming_tool exported, for one target, and runs it (cmake -P). Variables:
#   PLATFORM host | host-scalar (Highway's SCALAR target) | aarch64 | cortex-m4
#   CASES    the folder streaming_tool wrote to (rnn_model.hpp, rnn_cases.hpp)
#   SRC      tests/deploy        INCLUDE  ctnn's include/       HWY  Highway's hwy/ folder
#   OUT      a folder for this target's files                   CXX  the compiler
#   RUNNER   aarch64: qemu-aarch64; cortex-m4: qemu-system-arm (an MPS2 AN386 board, Cortex-M4)
# Cross compilers get a folder holding only a link to Highway, never the host's /usr/include.
cmake_minimum_required(VERSION 3.20)
file(MAKE_DIRECTORY "${OUT}/hwy_only")
if(NOT EXISTS "${OUT}/hwy_only/hwy")
  file(CREATE_LINK "${HWY}" "${OUT}/hwy_only/hwy" SYMBOLIC)
endif()
set(common -std=c++20 -O2 -fno-exceptions -fno-rtti -I${CASES} -I${INCLUDE}
    -isystem ${OUT}/hwy_only ${SRC}/streaming_main.cpp)
set(exe ${OUT}/streaming_${PLATFORM})
if(PLATFORM STREQUAL "host")
  set(flags -march=native -DHWY_COMPILE_ONLY_STATIC=1 ${common} -o ${exe})
  set(run ${exe})
elseif(PLATFORM STREQUAL "host-scalar")
  set(flags -DHWY_COMPILE_ONLY_SCALAR=1 ${common} -o ${exe})
  set(run ${exe})
elseif(PLATFORM STREQUAL "aarch64")
  set(flags -march=armv8-a -static -DHWY_COMPILE_ONLY_STATIC=1 ${common} -o ${exe})
  set(run ${RUNNER} ${exe})
elseif(PLATFORM STREQUAL "cortex-m4")
  # Hard-float Cortex-M4 (FPv4-SP), Highway's SCALAR target, newlib-nano, no OS: the image starts
  # from cortex_m4/startup.cpp and prints through semihosting.
  set(flags -DCTNN_CORTEX_M4 -DHWY_COMPILE_ONLY_STATIC=1 -mcpu=cortex-m4 -mthumb -mfloat-abi=hard
      -mfpu=fpv4-sp-d16 -ffunction-sections -fdata-sections ${common}
      ${SRC}/cortex_m4/startup.cpp -nostartfiles -T ${SRC}/cortex_m4/mps2_an386.ld
      --specs=nano.specs --specs=nosys.specs -u _printf_float -Wl,--gc-sections
      -Wl,-Map=${exe}.map -o ${exe}.elf)
  set(run ${RUNNER} -M mps2-an386 -display none -monitor none -serial none
      -semihosting-config enable=on,target=native -kernel ${exe}.elf)
else()
  message(FATAL_ERROR "streaming_test.cmake: unknown PLATFORM '${PLATFORM}'")
endif()

execute_process(COMMAND ${CXX} ${flags} RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE e)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "Building the streaming program for ${PLATFORM} failed:\n${o}${e}")
endif()
execute_process(COMMAND ${run} RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE e TIMEOUT 300)
message("${o}${e}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "The streamed recurrent model on ${PLATFORM} does not give the expected outputs (exit ${rc}).")
endif()
