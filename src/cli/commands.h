// Subcommands of the `lighthouse` binary; each lives in its own file and registers itself
// on the CLI11 app. A command's callback returns through CLI11 with a process exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace lighthouse::cli {

void add_bench(CLI::App& app);

}  // namespace lighthouse::cli
