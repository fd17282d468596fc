// An output folder written as a whole (`lighthouse export --out`): files are written into a
// fresh temporary folder beside or inside the destination, then renamed into place, so a
// failure leaves nothing partial and a link already in the destination is replaced, never
// followed (docs/trust.md). POSIX calls only: libtorch.so exports its own std::filesystem
// symbols, which the dynamic linker may bind in place of ours.
#pragma once

#include <string>

namespace lighthouse::model {

class StagedDir {
 public:
  // `dest` must be a new path or an existing directory, not a symbolic link; `flag` names it in
  // errors (std::runtime_error). Creates the missing parents of dest and the temporary folder.
  StagedDir(const std::string& dest, const std::string& flag);
  ~StagedDir();  // removes the temporary folder and its files unless committed
  StagedDir(const StagedDir&) = delete;
  StagedDir& operator=(const StagedDir&) = delete;

  const std::string& path() const { return tmp_; }  // where to write the files
  // Publishes the files: a new dest is the temporary folder renamed; into an existing one
  // each file is renamed (replacing a file or link of its name; a directory of its name is an
  // error naming it).
  void commit();

 private:
  std::string dest_, flag_, tmp_;
  bool dest_exists_ = false, committed_ = false;
};

}  // namespace lighthouse::model
