// The error contract of the `lighthouse` binary for command-line parse errors: exit code 1 and
// one line "lighthouse: error: ..." on stderr, with "did you mean" for unknown commands and
// flags (commands.h). Help and --version print to stdout and exit 0.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "train/run_config.h"

namespace lighthouse::cli {
namespace {

std::vector<CLI::App*> children(CLI::App* app) {
  return app->get_subcommands([](CLI::App* s) { return !s->get_name().empty(); });
}

CLI::App* child(CLI::App* app, const std::string& name) {
  for (CLI::App* s : children(app))
    if (s->check_name(name)) return s;
  return nullptr;
}

std::string path_of(const CLI::App* app) {
  std::string p;
  for (; app; app = app->get_parent())
    p = (app->get_parent() ? app->get_name() : std::string("lighthouse")) + (p.empty() ? "" : " ") +
        p;
  return p;
}

std::string suggestion(const std::string& name, const std::vector<std::string>& candidates) {
  const std::string best = train::did_you_mean(name, candidates);
  return best.empty() ? "" : "; did you mean " + best + "?";
}

// The diagnosis of a parse error from the arguments themselves, "" when there is none better
// than CLI11's own message.
std::string diagnose(CLI::App& app, const CLI::ParseError& e,
                     const std::vector<std::string>& args) {
  CLI::App* cur = &app;
  size_t i = 0;
  for (; i < args.size() && !args[i].empty() && args[i][0] != '-'; ++i) {
    CLI::App* sub = child(cur, args[i]);
    if (sub) {
      cur = sub;
      continue;
    }
    std::vector<std::string> names;
    for (CLI::App* s : children(cur)) names.push_back(s->get_name());
    const CLI::App* c = cur;
    if (names.empty() ||
        !c->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty())
      break;
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    return "unknown command \"" + args[i] + "\" for " + path_of(cur) + suggestion(args[i], names) +
           " (commands: " + list + ")";
  }
  const bool extras = dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr;
  for (; extras && i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    char* end = nullptr;
    std::strtod(a.c_str(), &end);
    if (a.size() < 2 || a[0] != '-' || *end == '\0') continue;  // a value, or a negative number
    const std::string flag = a.substr(0, a.find('='));
    if (cur->get_option_no_throw(flag) || flag == "-h" || flag == "--help") continue;
    std::vector<std::string> names;
    for (const CLI::Option* o : static_cast<const CLI::App*>(cur)->get_options())
      for (const auto& l : o->get_lnames()) names.push_back("--" + l);
    return flag + ": unknown flag for " + path_of(cur) + suggestion(flag, names) + " (" +
           path_of(cur) + " --help lists them)";
  }
  if (dynamic_cast<const CLI::RequiredError*>(&e) && cur->get_require_subcommand_min() > 0 &&
      cur->get_subcommands().empty()) {
    std::string list;
    for (CLI::App* s : children(cur)) list += (list.empty() ? "" : ", ") + s->get_name();
    return "a command is required: " + list + " (" + path_of(cur) + " --help describes them)";
  }
  return "";
}

}  // namespace

std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n') {
      out += text[i];
      continue;
    }
    while (i + 1 < text.size() && (text[i + 1] == ' ' || text[i + 1] == '\n')) ++i;
    out += "; ";
  }
  return out;
}

int report_parse_error(CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  if (dynamic_cast<const CLI::CallForHelp*>(&e) || dynamic_cast<const CLI::CallForAllHelp*>(&e) ||
      dynamic_cast<const CLI::CallForVersion*>(&e) || dynamic_cast<const CLI::Success*>(&e))
    return app.exit(e);
  if (dynamic_cast<const CLI::RuntimeError*>(&e))
    return e.get_exit_code();  // the command has reported it already
  const std::vector<std::string> args(argv + 1, argv + argc);
  std::string msg = diagnose(app, e, args);
  if (msg.empty()) msg = e.what();
  std::fprintf(stderr, "lighthouse: error: %s\n", one_line(msg).c_str());
  return 1;
}

}  // namespace lighthouse::cli
