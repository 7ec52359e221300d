#!/usr/bin/env bash
# The committed OpenAPI document (tests/contract/openapi.json, kept equal to what the
# server serves by the `the_committed_document_is_what_the_binary_prints_and_serves`
# test) compiles into a usable TypeScript client: types are generated with
# openapi-typescript and an example client is type-checked with `tsc --noEmit`.
# Tool versions are pinned in tests/contract/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/../tests/contract"

# Reinstall only when the lock file changed since the last install.
if ! cmp -s package-lock.json node_modules/.installed-lock 2>/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.installed-lock
fi
npx --no-install openapi-typescript openapi.json --output generated/api.d.ts --silent
npx --no-install tsc --noEmit -p .
echo "contract: TypeScript types generated and the example client type-checks"
