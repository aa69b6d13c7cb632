#!/usr/bin/env bash
# Makes sure the real services the tests start are installed: redis-server (Debian's package) and
# moto_server (python3 moto, the S3-compatible server; it comes with this kind of machine).
# Run by `npm test` (pretest). Installs what is missing when it can (root with apt-get); otherwise it
# fails with a clear message, because the tests never skip silently for a missing service.
set -euo pipefail

if ! moto_server --help >/dev/null 2>&1; then
  echo "ensure-test-services: moto_server is missing or broken; install it (pip install 'moto[server]') and run the tests again" >&2
  exit 1
fi
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-services: installing redis-server (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  # The package may start a system service on port 6379; the tests start their own servers on
  # free ports and need none.
  exit 0
fi
echo "ensure-test-services: redis-server is missing; install it (apt-get install redis-server) and run the tests again" >&2
exit 1
