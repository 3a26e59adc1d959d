#!/usr/bin/env bash
# Installs the Debian 12 packages spark-ls builds and tests with. Idempotent: apt runs only when a package is missing.
set -euo pipefail

packages=(ca-certificates g++ make cmake ninja-build pkg-config
          libboost1.81-dev nlohmann-json3-dev libtbb-dev catch2
          neovim)  # neovim: the editor tests in tests/nvim (Debian 12 ships 0.7.2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[install-deps] all packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "[install-deps] installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
