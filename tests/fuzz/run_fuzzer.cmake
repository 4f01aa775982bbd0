# cmake -DFUZZER=<exe> -DSEEDS=<dir> -DWORK=<dir> -DARGS=<a;b;...> -P run_fuzzer.cmake
# Runs a libFuzzer target on a fresh copy of its seeds (new inputs go to WORK, never to SEEDS)
# and fails if it found anything.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds ${SEEDS}/*)
list(FILTER seeds EXCLUDE REGEX "/stamp$")
file(COPY ${seeds} DESTINATION ${WORK}/corpus)
execute_process(COMMAND ${FUZZER} ${ARGS} -artifact_prefix=${WORK}/artifacts/ ${WORK}/corpus
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (exit ${rc}); the input is in ${WORK}/artifacts/.")
endif()
