// The source of tests/CMakeLists.txt's ctnn_test_pch target, whose precompiled header (catch.hpp
// and ctnn.hpp) the test executables reuse. It holds no test.
