// The `lighthouse` binary: one CLI11 app, one file per subcommand (commands.h).
#include <c10/util/Exception.h>

#include <exception>
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"lighthouse: Lighthouse Attention for long-context pre-training"};
  app.require_subcommand(1);
  lighthouse::cli::add_bench(app);
  lighthouse::cli::add_bench_train(*app.get_subcommand("bench"));
  lighthouse::cli::add_bench_leak(*app.get_subcommand("bench"));
  lighthouse::cli::add_train(app);
  lighthouse::cli::add_export(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const c10::Error& e) {
    std::cerr << "lighthouse: error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "lighthouse: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
