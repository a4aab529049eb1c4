# A single-node Kafka (KRaft) built from the Maven jars `fogverse fetch-jars` caches,
# for machines without a registry. It reads its settings the way the apache/kafka
# image does (KAFKA_FOO_BAR=x becomes foo.bar=x; CLUSTER_ID names the cluster), so
# docker-compose.yml runs either image unchanged.
#
# The build context is prepared by `python -m deploy_scripts.docker_images kafka`.
# BASE needs a Java 17+ runtime and a POSIX shell.
ARG BASE=eclipse-temurin:17-jre
FROM ${BASE}
COPY lib /opt/kafka/lib
COPY log4j2.properties kafka-entrypoint.sh /opt/kafka/
COPY kafka-broker-api-versions.sh /opt/kafka/bin/
RUN chmod 0755 /opt/kafka/kafka-entrypoint.sh /opt/kafka/bin/kafka-broker-api-versions.sh
EXPOSE 9092
ENTRYPOINT ["/opt/kafka/kafka-entrypoint.sh"]
