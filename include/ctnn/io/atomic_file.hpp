// ctnn/io/atomic_file.hpp: writing a file so that a crash never leaves a half-written one.
//
// write_atomically(path, writer) has `writer` fill a temporary file beside `path` (same folder,
// so the rename stays on one file system), flushes and fsyncs it, then renames it over `path`.
// Until the rename the previous file is untouched; after it the new one is complete. On any
// error the temporary file is removed and a ctnn::Error names the path and the reason.
#pragma once
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <ostream>
#include <sstream>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctnn/core/error.hpp"

namespace ctnn::io {

inline void write_atomically(const std::string& path, const std::function<void(std::ostream&)>& writer) {
  // The whole content is built in memory first: the files written this way (models, plots) are
  // small next to RAM, and one write() call leaves no partial state to clean up but the temp file.
  std::ostringstream buffer(std::ios::binary);
  writer(buffer);
  if (!buffer) fail("Could not produce the content of \"", path, "\".");
  const std::string data = std::move(buffer).str();

  // A directory at `path` would only be found by the final rename, after all the writing.
  struct ::stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    fail("Cannot save \"", path, "\": it is a directory, not a file.");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    fail("Cannot save \"", path, "\": creating the temporary file \"", tmp, "\" beside it failed: ",
         std::strerror(errno), ". The previous file, if any, is unchanged.");
  const auto give_up = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail("Saving \"", path, "\" failed while ", what, ": ", std::strerror(err),
         ". The previous file, if any, is unchanged.");
  };
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      give_up("writing");
    }
    done += std::size_t(n);
  }
  if (::fsync(fd) != 0) give_up("flushing to disk");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("Saving \"", path, "\" failed while closing: ", std::strerror(err), ".");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("Saving \"", path, "\" failed while renaming the finished file into place: ",
         std::strerror(err), ". The previous file, if any, is unchanged.");
  }
}

}  // namespace ctnn::io
