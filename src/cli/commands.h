// Subcommands of the `lighthouse` binary; each lives in its own file and registers itself
// on the CLI11 app. A command's callback returns through CLI11 with a process exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace lighthouse::cli {

void add_bench(CLI::App& app);
void add_bench_train(CLI::App& bench);  // `bench train`, a subcommand of `bench`
void add_bench_leak(CLI::App& bench);   // `bench leak`, a subcommand of `bench`
void add_train(CLI::App& app);
void add_export(CLI::App& app);

}  // namespace lighthouse::cli
