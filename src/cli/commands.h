// Subcommands of the `lighthouse` binary; each lives in its own file and registers itself
// on the CLI11 app. A command's callback returns through CLI11 with a process exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace lighthouse::cli {

void add_bench(CLI::App& app);
void add_bench_train(CLI::App& bench);  // `bench train`, a subcommand of `bench`
void add_train(CLI::App& app);
void add_export(CLI::App& app);
void add_eval(CLI::App& app);     // eval.cpp
void add_compare(CLI::App& app);  // compare.cpp
void add_plot(CLI::App& app);     // plot.cpp

}  // namespace lighthouse::cli
