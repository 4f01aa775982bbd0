// ctnn/core/error.hpp: the one exception type ctnn throws.
//
// Every runtime error ctnn reports is a ctnn::Error whose what() is a sentence naming what was
// wrong and the values involved (file, offset, expected vs found). Build the message with
// ctnn::fail(...), which streams its arguments.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace ctnn {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws ctnn::Error with the streamed concatenation of `parts`.
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(os.str());
}

}  // namespace ctnn
