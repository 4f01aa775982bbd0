// ctnn/data/gzip.hpp: sequential reading of a file that may be gzip-compressed.
//
// zlib's gzread recognises gzip by its magic bytes (1f 8b) and passes any other file through
// unchanged, so one Reader serves plain and compressed files alike. The format readers (idx.hpp,
// csv.hpp) share it; `kind` ("IDX file", "CSV file") names the file in every message.
//
// Errors are ctnn::Error sentences naming the path: a missing file (with the system's reason), a
// path that is not a regular file, a file that cannot be opened, and corrupt gzip data (with
// zlib's message). A stream that merely ends early is not an error here: callers ask cut_off()
// and word the truncation in terms of their own format.
#pragma once
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include "ctnn/core/error.hpp"

namespace ctnn::data::gzip_detail {

inline constexpr std::size_t kChunk = std::size_t{1} << 20;  // 1 MiB reads: few calls, small buffer
// Deflate's best case is 1032:1, so a gzip file of m bytes never decompresses to more than
// 1032 * m bytes: a safe bound on what to reserve before the data is actually read.
inline constexpr std::uint64_t kMaxDeflateRatio = 1032;

// One open file, read sequentially through zlib; tracks how many (decompressed) bytes it gave.
class Reader {
 public:
  Reader(std::string path, std::string kind) : path_(std::move(path)), kind_(std::move(kind)) {
    std::error_code ec;
    const auto st = std::filesystem::status(path_, ec);
    if (st.type() == std::filesystem::file_type::not_found)
      fail("The ", kind_, " '", path_, "' does not exist (",
           ec ? ec.message() : std::generic_category().message(ENOENT), ").");
    if (ec) fail("Cannot open the ", kind_, " '", path_, "': ", ec.message(), ".");
    if (!std::filesystem::is_regular_file(st))
      fail("The ", kind_, " '", path_, "' is not a regular file.");
    file_size_ = std::filesystem::file_size(path_, ec);
    if (ec) fail("Cannot read the size of the ", kind_, " '", path_, "': ", ec.message(), ".");
    errno = 0;
    file_ = gzopen(path_.c_str(), "rb");
    if (file_ == nullptr)
      fail("Cannot open the ", kind_, " '", path_, "' for reading",
           errno != 0 ? ": " + std::generic_category().message(errno) : std::string(), ".");
    gzbuffer(file_, 1u << 18);  // 256 KiB input buffer: fewer syscalls than zlib's 8 KiB default
  }
  ~Reader() {
    if (file_ != nullptr) gzclose(file_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const std::string& path() const { return path_; }
  std::uint64_t file_size() const { return file_size_; }
  std::uint64_t consumed() const { return consumed_; }
  // True for a plain file, where the data size is known from the file size.
  bool plain() { return gzdirect(file_) != 0; }

  // Reads up to n bytes; fewer only at end of input. Throws on corrupt gzip data.
  std::size_t read(void* dst, std::size_t n) {
    auto* out = static_cast<unsigned char*>(dst);
    std::size_t got = 0;
    while (got < n) {
      const auto want = static_cast<unsigned>(std::min(n - got, kChunk));
      const int r = gzread(file_, out + got, want);
      check_stream();
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
      consumed_ += static_cast<std::uint64_t>(r);
      if (static_cast<unsigned>(r) < want) break;
    }
    return got;
  }

  // Everything from here to the end of the input. Throws when a gzip stream is cut off, since
  // the text would silently lose its tail.
  std::string read_all() {
    std::string out;
    if (plain()) out.reserve(static_cast<std::size_t>(file_size_));
    constexpr std::size_t kStep = std::size_t{1} << 16;  // 64 KiB: small files stay small
    for (;;) {
      const std::size_t at = out.size();
      out.resize(at + kStep);
      const std::size_t got = read(out.data() + at, kStep);
      out.resize(at + got);
      if (got < kStep) break;
    }
    if (cut_off())
      fail("The gzip file '", path_, "' is cut off: its compressed stream ends after ", out.size(),
           " bytes of data, without its end marker and checksum.");
    return out;
  }

  // True when the input ended inside a gzip stream (zlib's Z_BUF_ERROR).
  bool cut_off() {
    int err = Z_OK;
    gzerror(file_, &err);
    return err == Z_BUF_ERROR;
  }
  // Why the input ended early, for messages.
  const char* end_reason() { return cut_off() ? " (the gzip stream is cut off)" : ""; }

 private:
  void check_stream() {
    int err = Z_OK;
    std::string msg = gzerror(file_, &err);
    // Z_BUF_ERROR only means the input ended inside a gzip stream: reported as truncation.
    if (err == Z_OK || err == Z_BUF_ERROR) return;
    // zlib prefixes its message with the path, which ours already names. No byte offset either:
    // zlib decompresses ahead of what we asked for, so it would not locate the damage.
    if (msg.starts_with(path_ + ": ")) msg.erase(0, path_.size() + 2);
    fail("The gzip file '", path_, "' is corrupt: zlib says \"", msg, "\".");
  }

  std::string path_;
  std::string kind_;
  gzFile file_ = nullptr;
  std::uint64_t file_size_ = 0;
  std::uint64_t consumed_ = 0;
};

}  // namespace ctnn::data::gzip_detail
