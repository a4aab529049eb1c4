#!/bin/bash
# Readiness probe under the name of Kafka's own tool, so docker-compose.yml's
# healthcheck runs unchanged on this image and on apache/kafka. Kafka opens its
# client port only once the broker is ready, so a connection that opens is the
# answer here (the real tool is not among the broker's jars).
set -eu
server=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --bootstrap-server) server=$2; shift 2 ;;
    *) shift ;;
  esac
done
: "${server:?usage: $0 --bootstrap-server HOST:PORT}"
exec 3<>"/dev/tcp/${server%:*}/${server##*:}"
