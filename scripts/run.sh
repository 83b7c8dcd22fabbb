#!/usr/bin/env bash
# The README's main command: installs dependencies, builds, brings the
# embedded platform up and runs one secure request end to end.
#
# The platform components (gateway, IAM, KMS, attestation, TEE runtime,
# audit, SDK/CLI) are not built yet: this script says so and exits 3 rather
# than pretend.  What exists today is the foundation library and its tests
# (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
    bash scripts/install-deps.sh
fi
bash scripts/build.sh normal
if [ -x build/cli/lunal ]; then
    exec build/cli/lunal dev up --demo
fi
cat >&2 <<'MSG'

lunal: the embedded platform is not available yet.
  Built: libluna-core (crypto, envelope, mTLS HTTP, JSON, storage, config).
  Missing: the components and `lunal dev up` (see docs/status.md).
  Nothing was started and no request was made.
  Run the test suite with: bash scripts/test.sh
MSG
exit 3
