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
#include <string_view>

namespace ctnn {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// User text (a cell, a column or feature name) as a message quotes it: whole when it has at most
// 60 bytes, else its first 60 bytes (never splitting a UTF-8 character), "..." and its length, so
// that one 50 MB cell cannot make a 50 MB message.
inline std::string excerpt(std::string_view text) {
  constexpr std::size_t kMaxBytes = 60;  // a message stays one readable line
  if (text.size() <= kMaxBytes) return std::string(text);
  std::size_t n = kMaxBytes;
  // Back off while text[n] is a UTF-8 continuation byte (10xxxxxx).
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0u) == 0x80u) --n;
  return std::string(text.substr(0, n)) + "... (" + std::to_string(text.size()) + " bytes)";
}

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
