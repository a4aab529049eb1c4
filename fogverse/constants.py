"""Names shared by every process: topics, headers, ports and their defaults.

Kept in one place so a producer in one process and a reader in another can never
disagree on a spelling.
"""

from typing import Final

ENV_BOOTSTRAP: Final = "FOGVERSE_BOOTSTRAP"
"""An existing cluster to use instead of starting the embedded broker."""

ENV_INSTANCE_ID: Final = "FOGVERSE_INSTANCE_ID"
"""Set by a deploy provider on each instance it starts, so heartbeats name it."""

ENV_SERVICE_NAME: Final = "FOGVERSE_SERVICE_NAME"
"""Set by a deploy provider: the declared service an instance belongs to."""

ENV_NODE_ID: Final = "FOGVERSE_NODE_ID"
"""The device an instance or agent runs on, as the scheduler knows it."""

ENV_CONTROL_KEY: Final = "FOGVERSE_CONTROL_KEY"
"""Shared secret that signs control messages and state records (HMAC)."""

ENV_CLIENT: Final = "FOGVERSE_CLIENT"
"""Kafka client backend to use: ``confluent`` (default) or ``aiokafka``."""

CLIENT_CONFLUENT: Final = "confluent"
"""confluent-kafka (librdkafka): the default client backend."""
CLIENT_AIOKAFKA: Final = "aiokafka"
"""aiokafka: pure Python, for devices where librdkafka has no wheel."""
CLIENTS: Final = (CLIENT_CONFLUENT, CLIENT_AIOKAFKA)

# Deploy provider names, as users write them in configs and DeployConfig.
PROVIDER_LOCAL: Final = "LOCAL"
PROVIDER_AGENT: Final = "AGENT"
PROVIDER_DOCKER: Final = "DOCKER"
PROVIDER_KUBERNETES: Final = "KUBERNETES"
DEFAULT_PROVIDER: Final = PROVIDER_LOCAL

SINGLE_NODE_PROVIDERS: Final = frozenset({PROVIDER_LOCAL, PROVIDER_DOCKER, PROVIDER_KUBERNETES})
"""Providers whose instances the master does not place: LOCAL and DOCKER start them where
the master runs, KUBERNETES leaves the choice of node to the cluster's scheduler."""

EXTRA_NODE_ID: Final = "node_id"
"""Key in a DeployConfig's ``extra_configs``: the node the master's scheduler chose."""

EXTRA_VERSION: Final = "fogverse_version"
"""Key in a DeployConfig's ``extra_configs``: the version to start (a ServiceVersion record;
see deploy_scripts.version). Set by the master only, never taken from a request."""

INFO_VERSION: Final = "version"
"""Key in a DeployResult's ``info``: the name of the version the instance runs."""

ENV_VERSION: Final = "FOGVERSE_VERSION"
"""Set on each instance a provider starts: the name of the version it runs."""

# Labels the DOCKER (containers) and KUBERNETES (Deployments, pods) providers set, so a
# restarted master finds its own.
LABEL_SERVICE: Final = "io.fogverse.service"
LABEL_INSTANCE_ID: Final = "io.fogverse.instance-id"
LABEL_MASTER_ID: Final = "io.fogverse.master-id"
LABEL_VERSION: Final = "io.fogverse.version"
"""The version an instance runs (DOCKER); KUBERNETES: the version a Deployment runs, one
Deployment per service and version."""

DEFAULT_CONTROL_TOPIC: Final = "fogverse-control"
"""Heartbeats, auto-scale requests and stop notices travel here."""

NODES_TOPIC: Final = "fogverse-nodes"
"""Agents tell the master here: capacity reports, task outcomes, instance events."""

NODE_ORDERS_TOPIC: Final = "fogverse-node-orders"
"""The master tells agents here, keyed by node id: task assignments, instance orders."""

TASKS_TOPIC: Final = "fogverse-tasks"
"""Any process submits or cancels tasks here; the master reads them."""

TASK_STATUS_TOPIC: Final = "fogverse-task-status"
"""Compacted, keyed by task id: the master's latest word on every task."""

ENV_AGENT_HANDLERS: Final = "FOGVERSE_AGENT_HANDLERS"
"""Comma-separated ``module:object`` task handlers an agent loads besides entry points."""

TASK_HANDLER_GROUP: Final = "fogverse.task_handlers"
"""Entry-point group of task handlers: the name is the task type, the object the callable."""

DEAD_LETTER_PREFIX: Final = "fogverse-dlq-"
"""A stage's dead letters go to ``fogverse-dlq-<consumer topic>`` unless configured."""

MASTER_STATE_TOPIC: Final = "fogverse-master-state"
"""Compacted topic holding the master's state so a restart resumes it."""

DEFAULT_MASTER_HTTP_PORT: Final = 4280
"""The master's /status and /metrics port unless its config says otherwise."""

ENV_MASTER_URL: Final = "FOGVERSE_MASTER_URL"
"""Where ``fogverse status`` finds the master (default ``http://127.0.0.1:4280``)."""

ENV_METRICS_PORT: Final = "FOGVERSE_METRICS_PORT"
"""A stage's Prometheus port (its ``metrics_port`` setting); unset or 0: no metrics."""

DEFAULT_LOCK_PORT: Final = 4242
"""FogVerse's distributed lock port; users' ConsumerStart code expects it."""

# Header names. Kafka header keys are free text; the prefix keeps ours apart
# from whatever the user sets.
H_CONTENT_TYPE: Final = "content-type"
H_CREATED_AT: Final = "fogverse-created-at"
"""Wall-clock epoch nanoseconds when the source created the message (crosses hosts)."""
H_ERROR: Final = "fogverse-error"
H_ERROR_TYPE: Final = "fogverse-error-type"
H_ERROR_STAGE: Final = "fogverse-error-stage"
H_ORIGIN_TOPIC: Final = "fogverse-origin-topic"
H_ORIGIN_PARTITION: Final = "fogverse-origin-partition"
H_ORIGIN_OFFSET: Final = "fogverse-origin-offset"
H_ATTEMPTS: Final = "fogverse-attempts"

CT_MSGPACK: Final = "application/msgpack"
CT_BYTES: Final = "application/octet-stream"
CT_TEXT: Final = "text/plain; charset=utf-8"
CT_JSON: Final = "application/json"
CT_JPEG: Final = "image/jpeg"
CT_PNG: Final = "image/png"
CT_WEBP: Final = "image/webp"
"""Compressed video frames (see fogverse.frames); a receiving stage decodes them itself."""

ENV_DEVICE: Final = "DEVICE"
"""FogVerse's camera index, video file or stream URL for OpenCVConsumer."""
