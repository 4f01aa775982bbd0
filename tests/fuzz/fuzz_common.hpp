// Helpers shared by the fuzz targets and the seed generator.
#pragma once
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <span>
#include <string>
#include <vector>

namespace ctnn_fuzz {

using Bytes = std::vector<std::uint8_t>;

// An expected outcome (a ctnn::Error); printed when CTNN_FUZZ_VERBOSE is set, to see how deep
// the seeds get.
inline void expected(const std::exception& e) {
  static const bool verbose = std::getenv("CTNN_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "ctnn::Error: %s\n", e.what());
}

// A broken invariant (not a ctnn::Error): print why and abort, so libFuzzer saves the input.
[[noreturn]] inline void bug(const char* what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

// `b` compressed as one gzip member (deflate with a gzip wrapper: windowBits 15 + 16).
inline Bytes gzip(std::span<const std::uint8_t> b) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    bug("deflateInit2 failed");
  Bytes out(deflateBound(&z, static_cast<uLong>(b.size())) + 32);
  z.next_in = const_cast<Bytef*>(b.data());
  z.avail_in = static_cast<uInt>(b.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) bug("deflate did not finish");
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

inline std::uint32_t crc32_of(const std::uint8_t* p, std::size_t n) {
  return static_cast<std::uint32_t>(crc32(0L, p, static_cast<uInt>(n)));
}

inline void put_le32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline std::uint64_t get_le64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{p[i]} << (8 * i);
  return v;
}

// Rewrites the CRC-32 of every "CTNNPREP" block in `b` whose declared body fits, so a mutated
// block gets past its checksum and into the parser (a fuzzer cannot forge a CRC by itself).
inline void fix_prep_crcs(Bytes& b) {
  static constexpr char kMagic[] = "CTNNPREP";
  for (std::size_t at = 0; at + 24 <= b.size(); ++at) {
    if (std::memcmp(b.data() + at, kMagic, 8) != 0) continue;
    const std::uint64_t size = get_le64(b.data() + at + 12);
    if (size <= b.size() - at - 24) put_le32(b.data() + at + 20, crc32_of(b.data() + at + 24, size));
  }
}

}  // namespace ctnn_fuzz
