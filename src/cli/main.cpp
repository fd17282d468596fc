// The `lighthouse` binary: one CLI11 app, one file per subcommand (commands.h).
#include <c10/util/Exception.h>

#include <exception>
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"lighthouse: Lighthouse Attention for long-context pre-training"};
  app.require_subcommand(1);
  lighthouse::cli::add_version(app);
  lighthouse::cli::add_bench(app);
  lighthouse::cli::add_bench_train(*app.get_subcommand("bench"));
  lighthouse::cli::add_bench_leak(*app.get_subcommand("bench"));
  lighthouse::cli::add_train(app);
  lighthouse::cli::add_export(app);
  lighthouse::cli::add_eval(app);
  lighthouse::cli::add_compare(app);
  lighthouse::cli::add_plot(app);
  lighthouse::cli::add_data(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return lighthouse::cli::report_parse_error(app, e, argc, argv);
  } catch (const c10::Error& e) {
    std::cerr << "lighthouse: error: " << lighthouse::cli::one_line(e.what_without_backtrace())
              << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "lighthouse: error: " << lighthouse::cli::one_line(e.what()) << "\n";
    return 1;
  }
  return 0;
}
