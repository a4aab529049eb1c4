#!/bin/sh
# Turn KAFKA_* variables into server.properties (apache/kafka's convention: one '_'
# is '.', '__' is '_', '___' is '-'), format the log directory once, run the broker.
set -eu
: "${CLUSTER_ID:?set CLUSTER_ID to a 22-character base64url cluster id}"
props=/opt/kafka/server.properties
: >"$props"
env | grep '^KAFKA_' | while IFS='=' read -r name value; do
  case "$name" in
    # The JVM's settings, not the broker's.
    KAFKA_HEAP_OPTS|KAFKA_JVM_PERFORMANCE_OPTS|KAFKA_OPTS|KAFKA_LOG4J_OPTS) continue ;;
  esac
  key=$(printf '%s' "${name#KAFKA_}" | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' \
    -e 's/@/_/g' | tr 'A-Z' 'a-z')
  printf '%s=%s\n' "$key" "$value" >>"$props"
done
# Unquoted on purpose: each *_OPTS holds several JVM arguments.
# shellcheck disable=SC2086
set -- ${KAFKA_HEAP_OPTS:--Xmx512m} -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties ${KAFKA_OPTS:-} -cp '/opt/kafka/lib/*'
java "$@" kafka.tools.StorageTool format --ignore-formatted -t "$CLUSTER_ID" -c "$props" >/dev/null
exec java "$@" kafka.Kafka "$props"
