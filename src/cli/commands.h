// Subcommands of the `lighthouse` binary; each lives in its own file and registers itself
// on the CLI11 app. A command's callback returns through CLI11 with a process exit code.
//
// Error contract (docs/training.md): every error exits with code 1 and prints one line
// "lighthouse: error: ..." on stderr that names the flag, key or file; an interrupted
// `train` exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace lighthouse::cli {

void add_bench(CLI::App& app);
void add_bench_train(CLI::App& bench);  // `bench train`, a subcommand of `bench`
void add_bench_leak(CLI::App& bench);   // `bench leak`, a subcommand of `bench`
void add_train(CLI::App& app);
void add_export(CLI::App& app);
void add_eval(CLI::App& app);     // eval.cpp
void add_compare(CLI::App& app);  // compare.cpp
void add_plot(CLI::App& app);     // plot.cpp
void add_data(CLI::App& app);     // `data tokenize` (data.cpp)
// `lighthouse --version`: version, git commit, torch, CUDA, SDPA backends (version.cpp).
void add_version(CLI::App& app);

// Reports a CLI11 parse error in the one-line format with "did you mean" for unknown commands
// and flags and returns the exit code (help and --version: printed, 0) (errors.cpp).
int report_parse_error(CLI::App& app, const CLI::ParseError& e, int argc, char** argv);
// `text` with its line breaks folded into "; ": error messages are one line.
std::string one_line(std::string text);

}  // namespace lighthouse::cli
