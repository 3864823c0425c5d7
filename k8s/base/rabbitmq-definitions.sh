#!/bin/sh
# Renders the broker's users and permissions (rabbitmq-definitions.json) for
# RabbitMQ to load at every start (`load_definitions`), into a memory-backed
# volume: the passwords come from the environment (the services' Secrets)
# and the namespace from popug-config. Every service has its own user; each
# may use only its namespace's queues and exchange (and the default exchange,
# which declaring a dead-lettering queue and replaying need), and topic
# permissions let each producer publish only its own routing keys.
set -eu
out=/etc/popug/rabbitmq/definitions.json
case "$POPUG_NAMESPACE" in
  "" | *[!A-Za-z0-9_-]*) echo "POPUG_NAMESPACE must be letters, digits, - or _" >&2; exit 1 ;;
esac
for name in POPUG_PASSWORD AUTH_PASSWORD TRACKER_PASSWORD BILLING_PASSWORD ANALYTICS_PASSWORD; do
  eval "value=\${$name:-}"
  case "$value" in
    "" | *[!A-Za-z0-9._~-]*)
      echo "$name must be non-empty letters, digits, . _ ~ or - (e.g. openssl rand -hex 24)" >&2
      exit 1 ;;
  esac
done
sed -e "s/@NS@/$POPUG_NAMESPACE/g" \
    -e "s/@POPUG_PASSWORD@/$POPUG_PASSWORD/" \
    -e "s/@AUTH_PASSWORD@/$AUTH_PASSWORD/" \
    -e "s/@TRACKER_PASSWORD@/$TRACKER_PASSWORD/" \
    -e "s/@BILLING_PASSWORD@/$BILLING_PASSWORD/" \
    -e "s/@ANALYTICS_PASSWORD@/$ANALYTICS_PASSWORD/" \
    /popug/rabbitmq-definitions.json >"$out"
echo "rendered $out"
