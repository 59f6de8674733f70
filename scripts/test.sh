#!/usr/bin/env bash
# The test command (`npm test`): the system packages the tests use (installed when missing:
# scripts/ensure-deps.sh, exit 3 when it cannot), typecheck, the build (dist/, so that the
# spawned `jcds` commands run what ships rather than the sources: bin/dist.js), lint, format
# check, then every vitest test. Ends with a plain "N passed, N failed" line that CI reads.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
bash scripts/ensure-deps.sh node test || exit $?
mkdir -p artifacts
npm run --silent typecheck || exit 1
npm run --silent build || exit 1
npm run --silent lint || exit 1
npm run --silent format:check || exit 1
npx vitest run --reporter=default --reporter=json --outputFile.json=artifacts/vitest.json "$@"
status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync("artifacts/vitest.json", "utf8"));
  const failed = r.numFailedTests + (r.numFailedTestSuites || 0) - 0;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' || { echo "0 passed, 1 failed"; exit 1; }
exit $status
