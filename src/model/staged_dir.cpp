// StagedDir (staged_dir.h): mkdtemp, rename, and the cleanup of an abandoned folder.
#include "model/staged_dir.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace lighthouse::model {
namespace {

// The plain entries of dir (no "." or "..").
std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  return out;
}

std::string parent_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

StagedDir::StagedDir(const std::string& dest, const std::string& flag) : dest_(dest), flag_(flag) {
  while (dest_.size() > 1 && dest_.back() == '/') dest_.pop_back();
  const auto fail = [&](const std::string& why) {
    throw std::runtime_error(flag_ + ": " + dest_ + ": " + why);
  };
  if (dest_.empty()) throw std::runtime_error(flag_ + ": an output directory is required");
  struct stat st {};
  if (::lstat(dest_.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode))
      fail("is a symbolic link; name the directory itself (links in the output are not followed)");
    if (!S_ISDIR(st.st_mode)) fail("is an existing file, expected a directory (new or existing)");
    dest_exists_ = true;
  } else if (errno != ENOENT) {
    fail(std::strerror(errno));
  } else {
    const std::string parent = parent_of(dest_);
    for (size_t pos = 1; pos <= parent.size(); ++pos) {  // mkdir -p of the parent
      if (pos != parent.size() && parent[pos] != '/') continue;
      const std::string prefix = parent.substr(0, pos);
      if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
        fail("cannot create directory " + prefix + ": " + std::strerror(errno));
    }
  }
  std::string templ = dest_exists_ ? dest_ + "/.staging-XXXXXX" : dest_ + ".staging-XXXXXX";
  if (!::mkdtemp(templ.data()))
    fail("cannot create a temporary folder " + templ + ": " + std::strerror(errno));
  tmp_ = templ;
}

StagedDir::~StagedDir() {
  if (committed_) return;
  for (const auto& name : entries(tmp_)) ::unlink((tmp_ + "/" + name).c_str());
  ::rmdir(tmp_.c_str());
}

void StagedDir::commit() {
  const auto fail = [&](const std::string& why) {
    throw std::runtime_error(flag_ + ": " + dest_ + ": " + why);
  };
  const mode_t mask = ::umask(0);
  ::umask(mask);
  if (!dest_exists_) {
    ::chmod(tmp_.c_str(), 0777 & ~mask);
    if (::rename(tmp_.c_str(), dest_.c_str()) == 0) {
      committed_ = true;
      return;
    }
    if (errno != EEXIST && errno != ENOTEMPTY)
      fail("cannot rename " + tmp_ + ": " + std::strerror(errno));
    fail("was created by someone else while writing; nothing was written");
  }
  const std::vector<std::string> names = entries(tmp_);
  for (const auto& name : names) {  // every conflict before the first rename
    struct stat st {};
    if (::lstat((dest_ + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      fail(name + " is a directory; the export writes a file of that name");
  }
  for (const auto& name : names)
    if (::rename((tmp_ + "/" + name).c_str(), (dest_ + "/" + name).c_str()) != 0)
      fail("cannot rename " + name + " into place: " + std::strerror(errno));
  ::rmdir(tmp_.c_str());
  committed_ = true;
}

}  // namespace lighthouse::model
