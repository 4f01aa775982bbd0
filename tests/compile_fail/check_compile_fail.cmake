# Runs the compiler on one source that must NOT compile, and checks the diagnostic:
#   - compilation fails;
#   - the output matches the regular expression on the source's "// expect: " line;
#   - the whole diagnostic stays short (at most MAX_LINES lines): users of template-typed nets
#     elsewhere get kilobytes of nested type names, ours is a sentence.
# Arguments (-D): COMPILER, SOURCE, FLAGS (a ;-list), MAX_LINES.
file(STRINGS "${SOURCE}" expect_line REGEX "^// expect: ")
if(NOT expect_line)
  message(FATAL_ERROR "${SOURCE} has no '// expect: <regex>' line.")
endif()
string(REGEX REPLACE "^// expect: " "" expect "${expect_line}")
execute_process(
  COMMAND ${COMPILER} ${FLAGS} -fsyntax-only "${SOURCE}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(all "${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must be rejected.")
endif()
if(NOT all MATCHES "${expect}")
  message(FATAL_ERROR "${SOURCE} was rejected, but the diagnostic does not match '${expect}':\n${all}")
endif()
string(REGEX MATCHALL "\n" newlines "${all}")
list(LENGTH newlines lines)
if(lines GREATER MAX_LINES)
  message(FATAL_ERROR "${SOURCE}: the diagnostic has ${lines} lines (limit ${MAX_LINES}):\n${all}")
endif()
message(STATUS "${SOURCE}: rejected as expected, ${lines} lines of diagnostic.")
