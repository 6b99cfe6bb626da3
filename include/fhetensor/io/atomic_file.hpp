#pragma once
// Whole files in and out: a bounded reader for files that may come from strangers, and a
// writer that replaces a file atomically. Key, ciphertext and .npy writers share the
// latter; the .npy and image readers share the former.
//
// write_file_atomically writes a temporary file beside the target, flushes it to disk and
// renames it over the target. rename() is atomic within a file system, so a crash or an
// error at any point leaves either the old file or the new one, never a mix; on an error
// the temporary file is removed.
//
// POSIX only (open, fsync, rename), like the rest of the library's targets.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE
namespace io {

/// What a new file's mode starts from; the process umask then applies, as for any file
/// created with open(). Secret keys pass owner_read | owner_write.
inline constexpr std::filesystem::perms default_file_permissions =
    std::filesystem::perms::owner_read | std::filesystem::perms::owner_write | std::filesystem::perms::group_read |
    std::filesystem::perms::group_write | std::filesystem::perms::others_read | std::filesystem::perms::others_write;

namespace detail {

[[noreturn]] inline void file_fail(const std::string& what, const std::filesystem::path& path, int error) {
  throw std::runtime_error("fhetensor: " + what + " " + path.string() + ": " + std::strerror(error));
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { close_quietly(); }

  int get() const noexcept { return fd_; }
  // close() can report a write error (NFS does): the writer must see it.
  int close() noexcept {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }
  void close_quietly() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

}  // namespace detail

/// The whole content of `path`, which must hold at most `max_bytes` bytes. The bound is
/// checked from the file's size before reading and again while reading, so neither a file
/// that grows nor a pipe or device can make us allocate more than max_bytes + 1 bytes.
inline std::vector<std::uint8_t> read_file_bounded(const std::filesystem::path& path, std::uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) detail::file_fail("cannot open", path, errno);
  detail::FileDescriptor file(fd);
  struct stat info {};
  if (::fstat(fd, &info) != 0) detail::file_fail("cannot read", path, errno);
  if (S_ISDIR(info.st_mode)) detail::file_fail("cannot read", path, EISDIR);
  const std::string limit = "the limit of " + std::to_string(max_bytes) + " bytes";
  if (S_ISREG(info.st_mode) && static_cast<std::uint64_t>(info.st_size) > max_bytes) {
    throw std::runtime_error("fhetensor: " + path.string() + " is " + std::to_string(info.st_size) +
                             " bytes, above " + limit);
  }
  // One byte more than allowed is room enough to notice a file that is too large.
  const std::uint64_t cap = std::min<std::uint64_t>(max_bytes, std::numeric_limits<std::size_t>::max() / 2) + 1;
  const std::uint64_t expected = S_ISREG(info.st_mode) ? static_cast<std::uint64_t>(info.st_size) + 1 : 65536;
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(std::min(cap, expected)));
  std::size_t used = 0;
  for (;;) {
    if (used == bytes.size()) {
      if (bytes.size() >= cap) break;
      bytes.resize(static_cast<std::size_t>(std::min<std::uint64_t>(cap, std::max<std::size_t>(2 * bytes.size(), 65536))));
    }
    const ssize_t got = ::read(fd, bytes.data() + used, bytes.size() - used);
    if (got < 0) {
      if (errno == EINTR) continue;
      detail::file_fail("cannot read", path, errno);
    }
    if (got == 0) break;
    used += static_cast<std::size_t>(got);
  }
  if (used > max_bytes) throw std::runtime_error("fhetensor: " + path.string() + " holds more than " + limit);
  bytes.resize(used);
  return bytes;
}

/// Replaces (or creates) `path` with `bytes`, atomically and durably: the data and the
/// rename are flushed to disk before returning. On failure `path` is untouched and no
/// temporary file is left behind. The new file gets `permissions` (minus the umask), not
/// those of the file it replaces.
inline void write_file_atomically(const std::filesystem::path& path, std::span<const std::uint8_t> bytes,
                                  std::filesystem::perms permissions = default_file_permissions) {
  namespace fs = std::filesystem;
  if (!path.has_filename()) throw std::invalid_argument("fhetensor: cannot write " + path.string() + ": not a file name");
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");

  // A hidden name beside the target (rename works within one file system only), unique
  // thanks to O_EXCL, and recognisable should a crash leave it behind.
  std::random_device entropy;
  fs::path temp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".tmp.%08x", static_cast<unsigned>(entropy()));
    std::string name = ".";
    name += path.filename().string();
    name += suffix;
    temp = dir / name;
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                static_cast<mode_t>(permissions & fs::perms::mask));
    if (fd < 0 && (errno != EEXIST || attempt == 100)) {
      detail::file_fail("cannot create a temporary file to write", path, errno);
    }
  }
  detail::FileDescriptor file(fd);
  struct RemoveUnlessRenamed {
    const fs::path& temp;
    bool renamed = false;
    ~RemoveUnlessRenamed() {
      if (!renamed) ::unlink(temp.c_str());
    }
  } cleanup{temp};

  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t wrote = ::write(fd, bytes.data() + done, std::min<std::size_t>(bytes.size() - done, 1 << 30));
    if (wrote < 0) {
      if (errno == EINTR) continue;
      detail::file_fail("cannot write", path, errno);
    }
    done += static_cast<std::size_t>(wrote);
  }
  // The data must be on disk before the rename makes it visible under the real name:
  // otherwise a crash could leave an empty or partial file there.
  if (::fsync(fd) != 0) detail::file_fail("cannot write", path, errno);
  if (file.close() != 0) detail::file_fail("cannot write", path, errno);
  if (::rename(temp.c_str(), path.c_str()) != 0) detail::file_fail("cannot write", path, errno);
  cleanup.renamed = true;
  // Flushing the directory makes the rename itself durable. Best effort: some file
  // systems refuse fsync on a directory, and the file is already complete.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

inline void write_file_atomically(const std::filesystem::path& path, std::string_view bytes,
                                  std::filesystem::perms permissions = default_file_permissions) {
  write_file_atomically(
      path, std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()),
      permissions);
}

}  // namespace io
FHETENSOR_END_NAMESPACE
