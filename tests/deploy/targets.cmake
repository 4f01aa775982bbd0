# Deployment: export a trained model as a header and run it on the host, on aarch64 under
# qemu-aarch64, and build it for a Cortex-M4 (tools found by find_program; scripts/setup.sh
# installs them). deploy_export (a CTest fixture) trains and exports once for all of them.
add_executable(deploy_export_tool export_tool.cpp)
target_link_libraries(deploy_export_tool PRIVATE ctnn::ctnn)
target_compile_definitions(deploy_export_tool PRIVATE CTNN_FASHION_MNIST_DIR="${CTNN_FASHION_MNIST_DIR}")
target_compile_options(deploy_export_tool PRIVATE -Wall -Wextra -Wpedantic -Werror)

set(deploy_dir ${CMAKE_CURRENT_BINARY_DIR}/deploy)
add_test(NAME deploy_export COMMAND deploy_export_tool ${deploy_dir})
set_tests_properties(deploy_export PROPERTIES FIXTURES_SETUP deploy_model LABELS long)
find_path(CTNN_HWY_INCLUDE hwy/highway.h)

# ctnn_deploy_test(<platform> <float|int8> <compiler> [-DVAR=value...]): test deploy_<platform>
# (deploy_<platform>_int8 for the int8 model).
function(ctnn_deploy_test target model cxx)
  set(name deploy_${target})
  if(model STREQUAL "int8")
    set(name deploy_${target}_int8)
  endif()
  add_test(NAME ${name}
           COMMAND ${CMAKE_COMMAND} -DPLATFORM=${target} -DMODEL=${model} -DCASES=${deploy_dir}
                   -DSRC=${CMAKE_CURRENT_SOURCE_DIR} -DINCLUDE=${PROJECT_SOURCE_DIR}/include
                   -DOUT=${deploy_dir}/${target}_${model} -DCXX=${cxx} -DHWY=${CTNN_HWY_INCLUDE}/hwy
                   ${ARGN} -P ${CMAKE_CURRENT_SOURCE_DIR}/deploy_test.cmake)
  set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED deploy_model LABELS long)
endfunction()

foreach(model float int8)
  ctnn_deploy_test(host ${model} ${CMAKE_CXX_COMPILER})
  # The host again with Highway's SCALAR target: the code a Cortex-M image runs, run and checked.
  ctnn_deploy_test(host-scalar ${model} ${CMAKE_CXX_COMPILER})
endforeach()
# The device models (device_test.cmake): the smallest useful one (device_model.hpp, at least 0.85
# in int8 on the 10,000 test images through the exported code on the host's SCALAR target, the
# code a Cortex-M4 runs, and a Cortex-M4 image within 64 KB of flash), and ResNet-8, DS-CNN and
# the autoencoder (trained briefly: their accuracy is their examples'), each exported in int8 by
# device_tool, run on the host (the same classes as the training host's QuantizedModel) and built
# for a Cortex-M4.
add_executable(device_tool device_tool.cpp)
target_link_libraries(device_tool PRIVATE ctnn::ctnn)
target_compile_definitions(device_tool PRIVATE CTNN_FASHION_MNIST_DIR="${CTNN_FASHION_MNIST_DIR}")
target_compile_options(device_tool PRIVATE -Wall -Wextra -Wpedantic -Werror)
set(device_dir ${CMAKE_CURRENT_BINARY_DIR}/device)
add_test(NAME device_export COMMAND device_tool ${device_dir})
set_tests_properties(device_export PROPERTIES FIXTURES_SETUP device_models LABELS long)
# ctnn_device_test(<platform> <device|resnet8> <compiler> <min accuracy> [-DVAR=value...])
function(ctnn_device_test platform model cxx min_accuracy)
  add_test(NAME device_${model}_${platform}
           COMMAND ${CMAKE_COMMAND} -DPLATFORM=${platform} -DMODEL=${model} -DCASES=${device_dir}
                   -DSRC=${CMAKE_CURRENT_SOURCE_DIR} -DINCLUDE=${PROJECT_SOURCE_DIR}/include
                   -DOUT=${device_dir}/${model}_${platform} -DCXX=${cxx}
                   -DHWY=${CTNN_HWY_INCLUDE}/hwy -DDATA=${CTNN_FASHION_MNIST_DIR}
                   -DMIN_ACCURACY=${min_accuracy} ${ARGN}
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/device_test.cmake)
  set_tests_properties(device_${model}_${platform} PROPERTIES FIXTURES_REQUIRED device_models LABELS long)
endfunction()
ctnn_device_test(host-scalar device_model ${CMAKE_CXX_COMPILER} 0.85)
# The briefly trained ones need no accuracy bar here (their examples have theirs): their host runs
# check that the exported code gives the training host's classes (and the first image's outputs).
foreach(model resnet8 ds_cnn autoencoder)
  ctnn_device_test(host ${model} ${CMAKE_CXX_COMPILER} 0)
endforeach()

# The recurrent model streamed one step per call (streaming_test.cmake): streaming_tool (a CTest
# fixture) trains and exports it once; every platform streams its test sequences and must give the
# host's stream and, at the end, its own whole-sequence bits.
add_executable(streaming_tool streaming_tool.cpp)
target_link_libraries(streaming_tool PRIVATE ctnn::ctnn)
target_compile_definitions(streaming_tool PRIVATE CTNN_FASHION_MNIST_DIR="${CTNN_FASHION_MNIST_DIR}")
target_compile_options(streaming_tool PRIVATE -Wall -Wextra -Wpedantic -Werror)
set(streaming_dir ${CMAKE_CURRENT_BINARY_DIR}/streaming)
add_test(NAME streaming_export COMMAND streaming_tool ${streaming_dir})
set_tests_properties(streaming_export PROPERTIES FIXTURES_SETUP streaming_model LABELS long)
# ctnn_streaming_test(<platform> <compiler> [-DVAR=value...]): test streaming_<platform>.
function(ctnn_streaming_test platform cxx)
  add_test(NAME streaming_${platform}
           COMMAND ${CMAKE_COMMAND} -DPLATFORM=${platform} -DCASES=${streaming_dir}
                   -DSRC=${CMAKE_CURRENT_SOURCE_DIR} -DINCLUDE=${PROJECT_SOURCE_DIR}/include
                   -DOUT=${streaming_dir}/${platform} -DCXX=${cxx} -DHWY=${CTNN_HWY_INCLUDE}/hwy
                   ${ARGN} -P ${CMAKE_CURRENT_SOURCE_DIR}/streaming_test.cmake)
  set_tests_properties(streaming_${platform} PROPERTIES FIXTURES_REQUIRED streaming_model LABELS long)
endfunction()
ctnn_streaming_test(host ${CMAKE_CXX_COMPILER})
ctnn_streaming_test(host-scalar ${CMAKE_CXX_COMPILER})

# The cross builds do not depend on the host compiler: scripts/test.sh runs them in its g++ build
# only (CTNN_CROSS_TESTS=OFF in the others).
option(CTNN_CROSS_TESTS "Build and run the exported model for aarch64 (qemu) and a Cortex-M4" ON)
if(NOT CTNN_CROSS_TESTS)
  return()
endif()
# A cross tool that is missing does not drop its tests silently: each is registered as a test that
# ctest reports as skipped ("Not Run (Skipped)" in the summary), with the packages to install.
function(ctnn_deploy_skipped name reason)
  add_test(NAME ${name} COMMAND ${CMAKE_COMMAND} -E echo
           "SKIPPED: ${reason} Install them with scripts/setup.sh (without --no-clang), or configure with -DCTNN_CROSS_TESTS=OFF.")
  set_tests_properties(${name} PROPERTIES SKIP_REGULAR_EXPRESSION "SKIPPED: ")
endfunction()

find_program(CTNN_AARCH64_CXX aarch64-linux-gnu-g++)
find_program(CTNN_QEMU_AARCH64 qemu-aarch64)
if(CTNN_AARCH64_CXX AND CTNN_QEMU_AARCH64)
  foreach(model float int8)
    ctnn_deploy_test(aarch64 ${model} ${CTNN_AARCH64_CXX} -DRUNNER=${CTNN_QEMU_AARCH64})
  endforeach()
  ctnn_streaming_test(aarch64 ${CTNN_AARCH64_CXX} -DRUNNER=${CTNN_QEMU_AARCH64})
else()
  set(reason "the aarch64 deployment test needs aarch64-linux-gnu-g++ (Debian package g++-aarch64-linux-gnu) and qemu-aarch64 (qemu-user); missing:")
  if(NOT CTNN_AARCH64_CXX)
    string(APPEND reason " aarch64-linux-gnu-g++")
  endif()
  if(NOT CTNN_QEMU_AARCH64)
    string(APPEND reason " qemu-aarch64")
  endif()
  message(STATUS "ctnn: ${reason}: deploy_aarch64 and deploy_aarch64_int8 will report SKIPPED")
  ctnn_deploy_skipped(deploy_aarch64 "${reason}.")
  ctnn_deploy_skipped(deploy_aarch64_int8 "${reason}.")
  ctnn_deploy_skipped(streaming_aarch64 "${reason}.")
endif()
find_program(CTNN_ARM_NONE_EABI_CXX arm-none-eabi-g++)
find_program(CTNN_ARM_NONE_EABI_SIZE arm-none-eabi-size)
if(CTNN_ARM_NONE_EABI_CXX AND CTNN_ARM_NONE_EABI_SIZE)
  foreach(model float int8)
    ctnn_deploy_test(cortex-m4 ${model} ${CTNN_ARM_NONE_EABI_CXX} -DSIZE=${CTNN_ARM_NONE_EABI_SIZE})
  endforeach()
else()
  set(reason "the Cortex-M4 build test needs arm-none-eabi-g++ and arm-none-eabi-size (Debian packages gcc-arm-none-eabi and libstdc++-arm-none-eabi-newlib); missing:")
  if(NOT CTNN_ARM_NONE_EABI_CXX)
    string(APPEND reason " arm-none-eabi-g++")
  endif()
  if(NOT CTNN_ARM_NONE_EABI_SIZE)
    string(APPEND reason " arm-none-eabi-size")
  endif()
  message(STATUS "ctnn: ${reason}: deploy_cortex-m4 and deploy_cortex-m4_int8 will report SKIPPED")
  ctnn_deploy_skipped(deploy_cortex-m4 "${reason}.")
  ctnn_deploy_skipped(deploy_cortex-m4_int8 "${reason}.")
endif()
# The streamed recurrent model runs on an emulated Cortex-M4 (QEMU's MPS2 AN386 board).
find_program(CTNN_QEMU_SYSTEM_ARM qemu-system-arm)
if(CTNN_ARM_NONE_EABI_CXX AND CTNN_QEMU_SYSTEM_ARM)
  ctnn_streaming_test(cortex-m4 ${CTNN_ARM_NONE_EABI_CXX} -DRUNNER=${CTNN_QEMU_SYSTEM_ARM})
else()
  ctnn_deploy_skipped(streaming_cortex-m4 "the Cortex-M4 streaming test needs arm-none-eabi-g++ (gcc-arm-none-eabi, libstdc++-arm-none-eabi-newlib) and qemu-system-arm (qemu-system-arm).")
endif()
# The device models on a Cortex-M4 (see above).
find_program(CTNN_ARM_NONE_EABI_NM arm-none-eabi-nm)
if(CTNN_ARM_NONE_EABI_CXX AND CTNN_ARM_NONE_EABI_SIZE AND CTNN_ARM_NONE_EABI_NM)
  ctnn_device_test(cortex-m4 device_model ${CTNN_ARM_NONE_EABI_CXX} 0 -DSIZE=${CTNN_ARM_NONE_EABI_SIZE}
                   -DNM=${CTNN_ARM_NONE_EABI_NM} -DFLASH_LIMIT=65536)
  foreach(model resnet8 ds_cnn autoencoder)
    ctnn_device_test(cortex-m4 ${model} ${CTNN_ARM_NONE_EABI_CXX} 0 -DSIZE=${CTNN_ARM_NONE_EABI_SIZE}
                     -DNM=${CTNN_ARM_NONE_EABI_NM} -DFLASH_LIMIT=0)
  endforeach()
else()
  foreach(model device_model resnet8 ds_cnn autoencoder)
    ctnn_deploy_skipped(device_${model}_cortex-m4 "the Cortex-M4 build needs arm-none-eabi-g++, -size and -nm (gcc-arm-none-eabi, binutils-arm-none-eabi).")
  endforeach()
endif()
