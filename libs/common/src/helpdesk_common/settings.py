"""Settings base shared by every service.

Every value comes from the environment (12-factor). Service-specific values use the
service's prefix (``TICKET_DATABASE_URL``); values that are the same for the whole
deployment (broker address, internal signing secret) are read without a prefix so one
environment serves all processes.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _shared(name: str) -> AliasChoices:
    return AliasChoices(name)


class ServiceSettings(BaseSettings):
    """Fields every service has. Subclasses set ``env_prefix`` and ``service_name``."""

    model_config = SettingsConfigDict(extra="ignore", env_prefix="SERVICE_")

    service_name: str = "service"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/postgres"
    # a fixed-size pool: overflow connections are closed at check-in, and reconnecting per
    # request (fork + auth + codec setup) cost 5x the request itself under load
    db_pool_size: int = 20
    db_max_overflow: int = 0
    db_pool_timeout_s: float = 10.0
    db_raw_pool_size: int = 20

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:19092", validation_alias=_shared("KAFKA_BOOTSTRAP_SERVERS")
    )
    # None (unset) = decided from the broker (helpdesk_common.kafka.BrokerProfile, docs/kafka.md):
    # on for Apache Kafka, off for the embedded broker, which advertises InitProducerId but
    # rejects it; an explicit true/false wins
    kafka_idempotent_producer: bool | None = Field(
        None, validation_alias=_shared("KAFKA_IDEMPOTENT_PRODUCER")
    )
    # namespacing on a shared cluster (and isolation between test cases)
    kafka_topic_prefix: str = Field("", validation_alias=_shared("KAFKA_TOPIC_PREFIX"))
    #: None: 12 on Apache Kafka, 4 on the embedded tansu (kafka.topic_partition_count)
    kafka_topic_partitions: int | None = Field(None, ge=1, validation_alias=_shared("KAFKA_TOPIC_PARTITIONS"))
    # replication of the topics we create; None (unset) = min(3, brokers in the cluster)
    kafka_replication_factor: int | None = Field(
        None, ge=1, validation_alias=_shared("KAFKA_REPLICATION_FACTOR")
    )
    # min.insync.replicas of the topics we create; None (unset) = replication factor - 1, at
    # least 1 (one broker may be down and acks=all writes still succeed)
    kafka_min_insync_replicas: int | None = Field(
        None, ge=1, validation_alias=_shared("KAFKA_MIN_INSYNC_REPLICAS")
    )
    # the producer's request timeout (and, without idempotence, how long a record may wait for a
    # partition leader); None (unset) = 30 s on Apache Kafka (longer than the ~9 s a cluster needs
    # to fence a dead broker, so the client retries instead of the relay re-sending), 5 s on the
    # embedded broker (one node: nothing to fail over to)
    kafka_request_timeout_ms: int | None = Field(
        None, ge=1000, validation_alias=_shared("KAFKA_REQUEST_TIMEOUT_MS")
    )
    # the outbox relay publishes each pass in one Kafka transaction and consumers read committed
    # records only; None (unset) = on for Apache Kafka, off for the embedded broker (which has no
    # transactions). A pass that timed out or was killed is aborted by the next one, so a row is
    # never on a topic twice (docs/kafka.md "Exactly one record per row")
    kafka_transactional_relay: bool | None = Field(
        None, validation_alias=_shared("KAFKA_TRANSACTIONAL_RELAY")
    )
    # this process's name in the relay's transactional id (<prefix><service>.outbox.<instance>);
    # stable across restarts of the same replica, so a restarted replica fences and aborts what
    # its killed predecessor left open at once. Empty (default): the host name (a pod's name)
    kafka_relay_instance: str = Field("", validation_alias=_shared("KAFKA_RELAY_INSTANCE"))
    # how long the broker lets a relay transaction stay open before aborting it: the longest a
    # killed replica that never comes back holds read_committed consumers behind its open records
    kafka_transaction_timeout_ms: int = Field(
        30_000, ge=1000, validation_alias=_shared("KAFKA_TRANSACTION_TIMEOUT_MS")
    )
    # how long the broker keeps an event topic's records (retention.ms, set when the topic is
    # created): the bound on how long personal data stays in the event log when no erasure purges
    # it sooner (docs/security.md "Erasure"); 0 = the broker's default. DLQs get the same bound.
    kafka_topic_retention_ms: int = Field(
        2_592_000_000, ge=0, validation_alias=_shared("KAFKA_TOPIC_RETENTION_MS")
    )
    # the producer refuses a record above this (aiokafka's default; Kafka's message.max.bytes is
    # about the same); the outbox relay dead-letters such a row instead of retrying it forever
    kafka_max_request_bytes: int = Field(1_048_576, validation_alias=_shared("KAFKA_MAX_REQUEST_BYTES"))
    # hard cap on one encoded event, checked when it is enqueued (docs/security.md "Event size");
    # keep it well below kafka_max_request_bytes and the broker's message.max.bytes
    event_max_bytes: int = Field(262_144, validation_alias=_shared("EVENT_MAX_BYTES"))

    # identities forwarded by the gateway (identity.py): services verify with the public key;
    # only the gateway's deployment is given the private key
    internal_auth_public_key: str = Field("", validation_alias=_shared("INTERNAL_AUTH_PUBLIC_KEY"))
    internal_auth_private_key: SecretStr = Field(SecretStr(""), validation_alias=_shared("INTERNAL_AUTH_PRIVATE_KEY"))
    internal_token_max_lifetime_s: int = Field(600, validation_alias=_shared("INTERNAL_TOKEN_MAX_LIFETIME_S"))
    log_level: str = Field("INFO", validation_alias=_shared("LOG_LEVEL"))
    #: the garbage collector's young-generation threshold once the process has started (Python's
    #: is 700; gc_tuning.py says why it is raised, and the heap built at start-up frozen); 0 leaves
    #: the collector as Python has it (the test suite)
    gc_young_threshold: int = Field(50_000, ge=0, validation_alias=_shared("GC_YOUNG_THRESHOLD"))
    max_body_bytes: int = Field(1_048_576, validation_alias=_shared("MAX_BODY_BYTES"))
    # channel intake (raw e-mail with attachments, multipart web forms) needs more than an API
    # call: applied to /v1/channels/... and to multipart POSTs to /v1/tickets (observability.py)
    max_intake_body_bytes: int = Field(52_428_800, validation_alias=_shared("MAX_INTAKE_BODY_BYTES"))
    # the API document (/openapi.json, and the gateway's /docs page): off unless the deployment asks
    # (the dev stack and the tests do); one switch for every process, because the gateway composes
    # its document from the services' (docs/security.md "Headers and exposure")
    api_docs_enabled: bool = Field(False, validation_alias=_shared("API_DOCS_ENABLED"))
    # Strict-Transport-Security max-age on every answer; 0 (default): none. Set it (e.g. 31536000)
    # only where clients reach the gateway over HTTPS
    hsts_max_age_s: int = Field(0, ge=0, validation_alias=_shared("HSTS_MAX_AGE_S"))
    #: proxies (addresses or CIDR blocks, comma-separated) whose X-Forwarded-For is believed
    #: (clientaddr.py); empty: the peer address is the client (uvicorn runs with
    #: --no-proxy-headers). The gateway sets it to the ingress; services sit behind no proxy
    trusted_proxies: str = ""
    #: who may read /metrics (metrics_access.py): client addresses (after the trusted-proxy rule)
    #: in these blocks, comma-separated; default loopback and the private ranges a cluster's
    #: Prometheus scrapes from; empty: nobody by address (then only with metrics_token)
    metrics_allowed_networks: str = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
    #: a bearer token that opens /metrics from any address (a scraper outside the allow-list);
    #: empty: none
    metrics_token: SecretStr = SecretStr("")
    #: a second listener for /metrics, /healthz and /readyz only (ops_listener.py), what Prometheus
    #: and the kubelet use; 0 (default): none. The gateway never answers /metrics on its main,
    #: public port, so it is scraped here (the manifests set 9180 on every pod)
    ops_port: int = Field(0, ge=0, le=65535)
    #: the ops listener's address: loopback by default; 0.0.0.0 in a pod, where the NetworkPolicy
    #: lets only the monitoring namespace and the kubelet reach the port
    ops_host: str = "127.0.0.1"

    #: OpenTelemetry (tracing.py): spans, traceparent through the outbox and Kafka headers, trace
    #: ids in the logs. None (unset): on exactly when an OTLP endpoint is set. It costs CPU even for
    #: unrecorded traces (measured in make bench: pipeline CPU per ticket 75.1 ms on, 58.3 ms off),
    #: so a deployment that exports nothing pays nothing
    tracing_enabled: bool | None = Field(None, validation_alias=_shared("TRACING_ENABLED"))
    #: an OTLP/HTTP collector (e.g. http://otel-collector:4318); empty (default): nothing exported
    otlp_endpoint: str = Field("", validation_alias=_shared("OTEL_EXPORTER_OTLP_ENDPOINT"))
    #: the share of new traces recorded and exported; unset: all with an endpoint, none without
    trace_sample_ratio: float | None = Field(None, ge=0, le=1, validation_alias=_shared("OTEL_TRACES_SAMPLER_ARG"))
    #: the gateway continues a caller's traceparent (and honours its sampled flag) only when its
    #: callers are a trusted proxy that starts traces; otherwise every request starts a new trace
    trace_trust_incoming: bool = False

    relay_enabled: bool = True
    consumers_enabled: bool = True
    relay_poll_interval_s: float = 1.0
    #: publish attempts of a row that fails while rows around it are acknowledged, before it is
    #: dead-lettered (a failure of every row is a broker outage: retried without limit)
    relay_max_attempts: int = 5
    #: how often the backlog and dead-letter gauges are read from the database (with or without
    #: a working broker), and sent rows past retention are deleted
    relay_gauge_interval_s: float = 5.0
    #: /readyz reports the outbox "stuck" when its oldest unsent row is older than this
    outbox_stuck_after_s: float = 300.0
    #: answer /readyz 503 while the outbox is stuck (default: report it, stay in the load balancer,
    #: because intake still works and the outbox buffers; alert on the gauge instead)
    readyz_fail_on_stuck_outbox: bool = False
    consumer_max_attempts: int = 5
    #: how long the broker may hold a consumer's fetch that finds nothing new. Apache Kafka answers
    #: as soon as a record arrives; tansu (the embedded default) holds an empty fetch for the whole
    #: wait, so there it is both the latency of an event hop and the rate of idle fetches, which
    #: were most of the broker's CPU under intake: 50 → 200 ms halved the broker's CPU per ticket
    #: in ``make bench`` (1.63 → 0.80 ms), the board's freshness p99 unchanged (1.10 → 1.06-1.16 s);
    #: 500 ms cut it to 0.49 ms and raised that p99 to 1.18-1.39 s (docs/performance.md, round 13)
    consumer_fetch_max_wait_ms: int = Field(200, ge=0, le=10_000)
    consumer_retry_base_s: float = 0.2
    #: a consumer with an assigned partition whose fetch position stays unknown this long is
    #: restarted (aiokafka can loop on an offset lookup at a partition's former leader without
    #: refreshing its metadata: seen for 4.5 minutes in the fault suite); 0 turns the check off
    consumer_stall_s: float = 60.0
