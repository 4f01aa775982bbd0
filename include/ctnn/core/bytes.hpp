// ctnn/core/bytes.hpp: the one little-endian byte codec and CRC-32 of ctnn's binary formats (the
// model file, io/model_file.hpp, and the preprocessing block it embeds, data/preprocess.hpp).
//
// ByteWriter appends fields to a byte string; ByteReader reads them back from bytes in memory,
// and running past the end is a ctnn::Error naming what was being read, at which offset, and
// what remained. Integers and doubles are encoded byte by byte, so the format is the same on
// any host.
#pragma once
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <zlib.h>

#include "ctnn/core/error.hpp"

namespace ctnn::detail {

// Appends little-endian fields to a byte string.
class ByteWriter {
 public:
  void u8(std::uint8_t v) { put(v, 1); }
  void u32(std::uint32_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }
  void f64(double v) { put(std::bit_cast<std::uint64_t>(v), 8); }
  // A u32 byte length, then the bytes.
  void str(std::string_view s) {
    if (s.size() > UINT32_MAX)
      fail("Cannot store a text of ", s.size(), " bytes: its length field has 32 bits.");
    u32(static_cast<std::uint32_t>(s.size()));
    bytes_ += s;
  }
  void raw(const void* p, std::size_t n) { bytes_.append(static_cast<const char*>(p), n); }
  const std::string& bytes() const { return bytes_; }

 private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) bytes_.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
  }
  std::string bytes_;
};

// Reads little-endian fields from bytes in memory. `who` starts every message ("The model file
// \"m.ctnn\"", "Preprocessing::load: the block"); `base` is the offset of `bytes` in the whole
// file or block, for messages.
class ByteReader {
 public:
  ByteReader(std::string_view bytes, std::string who, std::size_t base = 0)
      : b_(bytes), who_(std::move(who)), base_(base) {}
  std::uint8_t u8(const char* what) { return static_cast<std::uint8_t>(get(1, what)); }
  std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(get(4, what)); }
  std::uint64_t u64(const char* what) { return get(8, what); }
  double f64(const char* what) { return std::bit_cast<double>(get(8, what)); }
  // A u32 byte length, then the bytes.
  std::string str(const char* what) {
    const std::uint32_t n = u32(what);
    return std::string(take(n, what), n);
  }
  // The next `n` bytes, in place.
  const char* take(std::uint64_t n, const char* what) {
    if (n > remaining())
      fail(who_, " is truncated or corrupt: reading ", what, " needs ", n, " bytes at offset ",
           base_ + pos_, " but only ", remaining(), " remain.");
    const char* p = b_.data() + pos_;
    pos_ += static_cast<std::size_t>(n);
    return p;
  }
  // `n` items of `item_bytes` each must fit in what remains: a corrupt count fails here, before
  // anything is allocated for it.
  std::size_t count(std::uint64_t n, std::size_t item_bytes, const char* what) const {
    if (n > remaining() / item_bytes)
      fail(who_, " declares ", n, " ", what, " of at least ", item_bytes, " bytes each, but only ",
           remaining(), " bytes remain.");
    return static_cast<std::size_t>(n);
  }
  std::size_t remaining() const { return b_.size() - pos_; }

 private:
  std::uint64_t get(std::size_t n, const char* what) {
    const char* p = take(n, what);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i)
      v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
    return v;
  }
  std::string_view b_;
  std::string who_;
  std::size_t pos_ = 0;
  std::size_t base_;
};

// zlib's CRC-32 (as gzip's) of `bytes`.
inline std::uint32_t crc32_of(std::string_view bytes) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  const char* p = bytes.data();
  for (std::size_t n = bytes.size(); n > 0;) {  // zlib takes uInt lengths
    const auto chunk = static_cast<uInt>(n < (std::size_t{1} << 30) ? n : (std::size_t{1} << 30));
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(p), chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

}  // namespace ctnn::detail
