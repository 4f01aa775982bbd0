# cmake -DBUILD_DIR=<ctnn build tree> -DPREFIX=<dir> -DCMAKEDIR=<relative dir> -P install_build_tree.cmake
# Installs the build tree into an emptied PREFIX and checks that the package files are there.
foreach(v IN ITEMS BUILD_DIR PREFIX CMAKEDIR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "install_build_tree.cmake needs -D${v}=...")
  endif()
endforeach()

file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install ${BUILD_DIR} --prefix ${PREFIX} failed (exit status ${rc}).")
endif()
foreach(f IN ITEMS include/ctnn/ctnn.hpp ${CMAKEDIR}/ctnnConfig.cmake
                   ${CMAKEDIR}/ctnnConfigVersion.cmake ${CMAKEDIR}/ctnnTargets.cmake)
  if(NOT EXISTS "${PREFIX}/${f}")
    message(FATAL_ERROR "The install into ${PREFIX} has no ${f}.")
  endif()
endforeach()
