# cmake -DFUZZER=<exe> -DSEEDS=<dir> -DWORK=<dir> -DRUNS=<n> -DMAX_TIME=<s> -DARGS=<a;b;...>
#       -P run_fuzzer.cmake
# Runs a libFuzzer target for RUNS inputs or MAX_TIME seconds, whichever comes first, on a fresh
# copy of its seeds (new inputs go to WORK, never to SEEDS), and fails if it found anything. Its
# last line says how many inputs ran, and whether the time limit cut the run short:
#   fuzz summary: fuzz_csv ran 20000 of 20000 inputs in 41 s, no finding
#   fuzz summary: fuzz_model_file ran 9731 of 20000 inputs: cut off at the 120 s time limit, ...
# (scripts/test.sh prints these lines after its ctest run).
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds ${SEEDS}/*)
list(FILTER seeds EXCLUDE REGEX "/stamp$")
file(COPY ${seeds} DESTINATION ${WORK}/corpus)
get_filename_component(name ${FUZZER} NAME)
# libFuzzer writes to stderr: shown as it runs, and kept to read the final statistics from.
execute_process(COMMAND ${FUZZER} -runs=${RUNS} -max_total_time=${MAX_TIME} ${ARGS}
                        -print_final_stats=1 -artifact_prefix=${WORK}/artifacts/ ${WORK}/corpus
                RESULT_VARIABLE rc ERROR_VARIABLE log ECHO_ERROR_VARIABLE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (exit ${rc}); the input is in ${WORK}/artifacts/.")
endif()
if(NOT log MATCHES "stat::number_of_executed_units: *([0-9]+)")
  message(FATAL_ERROR "${FUZZER} exited 0 but printed no stat::number_of_executed_units line: "
                      "how many inputs it ran is unknown.")
endif()
set(execs ${CMAKE_MATCH_1})
set(seconds "?")
if(log MATCHES "Done [0-9]+ runs in ([0-9]+) second")
  set(seconds ${CMAKE_MATCH_1})
endif()
if(execs LESS RUNS)
  message("fuzz summary: ${name} ran ${execs} of ${RUNS} inputs: cut off at the ${MAX_TIME} s "
          "time limit, no finding in those")
else()
  message("fuzz summary: ${name} ran ${execs} of ${RUNS} inputs in ${seconds} s, no finding")
endif()
