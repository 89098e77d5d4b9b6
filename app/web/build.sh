#!/usr/bin/env bash
# Builds the dashboard assets into app/assets/:
#   app.css            Tailwind v4 (input.css; scans ../templates and ../assets/app.js)
#   alpine-csp.min.js  Alpine.js CSP build (no eval / new Function)
# Needs `npm ci` (or `npm install`) in app/web first.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

mkdir -p ../assets ../templates

if [[ ! -d node_modules/@tailwindcss/cli || ! -d node_modules/@alpinejs/csp ]]; then
  echo "build.sh: node_modules missing; run 'npm ci' in app/web first" >&2
  exit 1
fi

npx --no-install @tailwindcss/cli -i input.css -o ../assets/app.css --minify
cp node_modules/@alpinejs/csp/dist/cdn.min.js ../assets/alpine-csp.min.js

ls -l ../assets/app.css ../assets/alpine-csp.min.js
