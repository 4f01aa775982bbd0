// ctnn/core/error.hpp: the one exception type ctnn throws.
//
// Every runtime error ctnn reports is a ctnn::Error whose what() is a sentence naming what was
// wrong and the values involved (file, offset, expected vs found). Build the message with
// ctnn::fail(...), which streams its arguments.
#pragma once
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

namespace ctnn {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws ctnn::Error with the streamed concatenation of `parts`. In a build without exceptions
// (-fno-exceptions, e.g. firmware running deploy/static_model.hpp, whose inference path never
// fails) an error is fatal: std::abort(), without building the message.
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
  std::ostringstream os;
  (os << ... << parts);
  throw Error(os.str());
#else
  ((void)parts, ...);
  std::abort();
#endif
}

}  // namespace ctnn
