#!/usr/bin/env bash
# Fetch third-party sources that are not vendored in git:
#   third_party/tree-sitter/node_modules  <- pinned `npm ci --ignore-scripts` (C sources of the tree-sitter runtime
#                                            and grammars; CMake compiles them, no native npm build steps run).
#   tools/lsp-client/node_modules         <- pinned `npm ci --ignore-scripts` (vscode-jsonrpc and the LSP protocol
#                                            definitions, pure JavaScript: the node client that tests/lsp, the
#                                            editor tests, demos and benchmarks drive spark-ls with).
#   editors/vscode/node_modules           <- pinned `npm ci --ignore-scripts` (the VS Code extension's
#                                            vscode-languageclient, TypeScript and @vscode/vsce).
# Idempotent: does nothing for a package whose node_modules is present, complete (a stamp written after a successful
# `npm ci`) and newer than its package-lock.json. Works from any cwd.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '[fetch-third-party] %s\n' "$*"; }

ensure_npm() {
  if command -v npm >/dev/null 2>&1; then
    return 0
  fi
  if command -v node >/dev/null 2>&1; then
    # Only Debian's own nodejs may get Debian's npm: over a node from another source (NodeSource's "nodejs"
    # package, nvm, a tarball) Debian's npm would drag Debian's nodejs 18 in, which breaks it. Refuse then.
    local node_path node_pkg="" node_maint=""
    node_path="$(readlink -f "$(command -v node)")"
    if command -v dpkg-query >/dev/null 2>&1; then
      node_pkg="$(dpkg-query -S "$node_path" 2>/dev/null | cut -d: -f1 || true)"
      [ -n "$node_pkg" ] && node_maint="$(dpkg-query -W -f='${Maintainer}' "$node_pkg" 2>/dev/null || true)"
    fi
    if [ "$node_pkg" != "nodejs" ] || ! printf '%s' "$node_maint" | grep -qi 'debian'; then
      log "error: node ($node_path, package '${node_pkg:-none}', maintainer '${node_maint:-?}') is not Debian's" \
          "nodejs, and npm is missing; install the npm that belongs to that node, then run this again" >&2
      exit 1
    fi
    log "Debian's nodejs is installed without npm"
  fi
  log "npm not found: installing Debian's nodejs and npm with apt-get"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      log "error: need root (or sudo) to apt-get install nodejs npm" >&2
      exit 1
    fi
  fi
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm
}

# npm_ci NAME DIR: `npm ci --ignore-scripts` in DIR unless DIR/node_modules is complete and up to date with
# DIR/package-lock.json. NAME prefixes the log lines.
npm_ci() {
  local name="$1" dir="$2"
  local lock="$dir/package-lock.json"
  local modules="$dir/node_modules"
  local stamp="$modules/.spark-fetch-stamp"  # written only after `npm ci` succeeded: a half-done install reruns
  if [ ! -f "$lock" ]; then
    log "error: $lock is missing" >&2
    exit 1
  fi
  if [ -f "$stamp" ] && [ ! "$lock" -nt "$modules" ] && [ ! "$lock" -nt "$stamp" ]; then
    log "$name: $modules is up to date with package-lock.json; nothing to do"
    return 0
  fi
  if [ -f "$stamp" ]; then
    log "$name: package-lock.json is newer than node_modules; reinstalling"
  elif [ -d "$modules" ]; then
    log "$name: node_modules exists but was not completed by this script; reinstalling"
  else
    log "$name: node_modules missing; installing"
  fi
  ensure_npm
  log "$name: running 'npm ci --ignore-scripts' in $dir (node $(node --version 2>/dev/null || echo '?'), npm $(npm --version))"
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund)
  # Mark the install complete and newer than package-lock.json (also what CMake's staleness check looks at).
  touch "$modules" "$stamp"
  log "$name: done"
}

npm_ci tree-sitter "$repo_root/third_party/tree-sitter"
npm_ci lsp-client "$repo_root/tools/lsp-client"
npm_ci vscode-extension "$repo_root/editors/vscode"
