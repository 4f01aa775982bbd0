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
//
// A Reader can also read bytes already in memory (a name stands in for the path in messages),
// with gzread's rules: gzip when the bytes start with 1f 8b, else plain; concatenated gzip
// members are read one after another, and non-gzip bytes after a member are ignored. One
// difference: gzread decompresses ahead of what was asked, the memory Reader does not, so
// corruption past the bytes a caller reads may go unnoticed there (as it would past a limit).
#pragma once
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <climits>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
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
    if (std::filesystem::is_directory(st))
      fail("The ", kind_, " '", path_, "' is a directory, not a file.");
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
  // Reads `bytes` (which must outlive the Reader); `name` stands in for the path in messages.
  Reader(std::span<const std::uint8_t> bytes, std::string name, std::string kind)
      : path_(std::move(name)), kind_(std::move(kind)), file_size_(bytes.size()),
        mem_(std::make_unique<Memory>(bytes)) {}
  ~Reader() {
    if (file_ != nullptr) gzclose(file_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const std::string& path() const { return path_; }
  std::uint64_t file_size() const { return file_size_; }
  std::uint64_t consumed() const { return consumed_; }
  // True for a plain file, where the data size is known from the file size.
  bool plain() { return mem_ ? !mem_->gzip : gzdirect(file_) != 0; }

  // Reads up to n bytes; fewer only at end of input. Throws on corrupt gzip data.
  std::size_t read(void* dst, std::size_t n) {
    if (mem_) {
      const std::size_t got = mem_->read(static_cast<unsigned char*>(dst), n, path_);
      consumed_ += got;
      return got;
    }
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
    if (mem_) return mem_->cut;
    int err = Z_OK;
    gzerror(file_, &err);
    return err == Z_BUF_ERROR;
  }
  // Why the input ended early, for messages.
  const char* end_reason() { return cut_off() ? " (the gzip stream is cut off)" : ""; }

 private:
  // Bytes in memory, copied (plain) or inflated (gzip) as read() asks for them.
  struct Memory {
    std::span<const std::uint8_t> in;
    std::size_t pos = 0;
    bool gzip = false;
    bool started = false;      // inflateInit2 done
    bool member_end = false;   // the last gzip member ended; look for another
    bool done = false;         // no more output
    bool cut = false;          // the input ended inside a gzip member
    z_stream z{};

    explicit Memory(std::span<const std::uint8_t> bytes)
        : in(bytes), gzip(bytes.size() >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B) {}
    ~Memory() {
      if (started) inflateEnd(&z);
    }
    Memory(const Memory&) = delete;
    Memory& operator=(const Memory&) = delete;

    static bool gzip_at(std::span<const std::uint8_t> b, std::size_t at) {
      return b.size() - at >= 2 && b[at] == 0x1F && b[at + 1] == 0x8B;
    }

    std::size_t read(unsigned char* out, std::size_t n, const std::string& name) {
      if (!gzip) {
        const std::size_t k = std::min(n, in.size() - pos);
        if (k > 0) std::memcpy(out, in.data() + pos, k);
        pos += k;
        return k;
      }
      std::size_t got = 0;
      while (got < n && !done) {
        if (!started) {
          // 15 + 16: a 32 KiB window and a gzip (not zlib) wrapper, as gzread uses.
          if (inflateInit2(&z, 15 + 16) != Z_OK)
            fail("Cannot start decompressing '", name, "': zlib could not allocate its state.");
          started = true;
        } else if (member_end) {
          // Like gzread: another member follows, or the rest is trailing garbage to ignore.
          if (!gzip_at(in, pos)) {
            done = true;
            break;
          }
          inflateReset(&z);
          member_end = false;
        }
        z.next_in = const_cast<Bytef*>(in.data() + pos);
        z.avail_in = static_cast<uInt>(std::min<std::size_t>(in.size() - pos, UINT_MAX));
        z.next_out = out + got;
        z.avail_out = static_cast<uInt>(std::min<std::size_t>(n - got, UINT_MAX));
        const uInt avail_in = z.avail_in, avail_out = z.avail_out;
        const int r = inflate(&z, Z_NO_FLUSH);
        pos += avail_in - z.avail_in;
        got += avail_out - z.avail_out;
        if (r == Z_STREAM_END) {
          member_end = true;
        } else if (r == Z_DATA_ERROR) {
          corrupt(name, z.msg != nullptr ? z.msg : "compressed data error");
        } else if (r == Z_MEM_ERROR) {
          corrupt(name, "out of memory");
        } else if (r != Z_OK && r != Z_BUF_ERROR) {  // Z_NEED_DICT, Z_STREAM_ERROR
          corrupt(name, "internal error: inflate stream corrupt");  // gzread's words
        } else if (avail_in == z.avail_in && avail_out == z.avail_out) {
          // No progress: the input ended inside a member (inflate has flushed all it decoded),
          // a truncation for the caller to word.
          cut = true;
          done = true;
        }
      }
      return got;
    }
  };

  void check_stream() {
    int err = Z_OK;
    std::string msg = gzerror(file_, &err);
    // Z_BUF_ERROR only means the input ended inside a gzip stream: reported as truncation.
    if (err == Z_OK || err == Z_BUF_ERROR) return;
    // zlib prefixes its message with the path, which ours already names. No byte offset either:
    // zlib decompresses ahead of what we asked for, so it would not locate the damage.
    if (msg.starts_with(path_ + ": ")) msg.erase(0, path_.size() + 2);
    corrupt(path_, msg);
  }
  [[noreturn]] static void corrupt(const std::string& path, const std::string& zlib_message) {
    fail("The gzip file '", path, "' is corrupt: zlib says \"", zlib_message, "\".");
  }

  std::string path_;
  std::string kind_;
  gzFile file_ = nullptr;
  std::uint64_t file_size_ = 0;
  std::uint64_t consumed_ = 0;
  std::unique_ptr<Memory> mem_;  // set when reading bytes in memory instead of a file
};

}  // namespace ctnn::data::gzip_detail
