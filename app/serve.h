// The `serve` command: the language server (docs/LSP.md).
#pragma once

namespace spark {

// argv[first..] are serve's options. Returns the process exit code.
int cmd_serve(int argc, char** argv, int first);

}  // namespace spark
