#!/bin/sh
# Smoke test run after every deployment (a PostSync hook in Argo CD, a post-upgrade hook in
# Helm). This file is yours: `copier update` never rewrites it. Add the checks that prove this
# environment works end to end; a non-zero exit fails the deployment and stops the promotion.
# SERVICE_URL, READINESS_PATH and METRICS_PATH come from the Job.
set -eu

echo "smoke test: $SERVICE_URL$READINESS_PATH"
curl --silent --show-error --fail --retry 5 --retry-delay 3 --retry-all-errors \
  --max-time 5 "$SERVICE_URL$READINESS_PATH" >/dev/null

echo "smoke test: $SERVICE_URL$METRICS_PATH"
curl --silent --show-error --fail --max-time 5 "$SERVICE_URL$METRICS_PATH" | grep -q '^# HELP '

echo "smoke test: passed"
