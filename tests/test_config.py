"""Settings: constructor beats environment beats defaults; errors name the setting."""

from __future__ import annotations

import pytest

from fogverse import ConfigError, Consumer, Producer, StageConfig
from fogverse.config import resolve_config


def test_defaults_apply_when_nothing_is_set() -> None:
    config = resolve_config({"consumer_topic": "in"}, env={})
    assert config.consumer_servers == "localhost:9092"
    assert config.error_policy == "dead-letter"
    assert config.read_latest is False
    assert config.effective_dead_letter_topic == "fogverse-dlq-in"


def test_environment_beats_defaults_with_fogverse_names() -> None:
    env = {"CONSUMER_TOPIC": "a,b", "PRODUCER_TOPIC": "out", "CONSUMER_SERVERS": "h1:9092",
           "GROUP_ID": "g", "CLIENT_ID": "c", "PRODUCER_SERVERS": "h2:9093"}
    config = resolve_config({}, env=env)
    assert config.consumer_topic == ("a", "b")
    assert (config.producer_topic, config.group_id, config.client_id) == ("out", "g", "c")
    assert config.effective_producer_servers == "h2:9093"


def test_constructor_beats_environment() -> None:
    env = {"CONSUMER_TOPIC": "from-env", "CONSUMER_SERVERS": "env:1"}
    config = resolve_config({"consumer_topic": ["from-code"]}, env=env)
    assert config.consumer_topic == ("from-code",)
    assert config.consumer_servers == "env:1"


def test_fogverse_bootstrap_is_the_server_fallback() -> None:
    assert resolve_config({}, env={"FOGVERSE_BOOTSTRAP": "b:1"}).consumer_servers == "b:1"


def test_fogverse_style_attributes_count_as_constructor_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSUMER_TOPIC", "env-topic")

    class Stage(Consumer):
        def __init__(self) -> None:
            self.consumer_topic = ["attr-topic"]
            self.producer_topic = "next"
            super().__init__()

    stage = Stage()
    assert stage.config.consumer_topic == ("attr-topic",)
    assert stage.producer_topic == "next"


def test_kafka_client_settings_pass_through_untouched() -> None:
    from fogverse.clients.confluent_conf import consumer_conf, producer_conf

    extra = {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
             "sasl.username": "u", "ssl.ca.location": "/ca.pem"}
    config = StageConfig(consumer_topic=("t",), kafka_extra=extra,
                         producer_extra={"compression.type": "lz4"})
    cons, prod = consumer_conf(config, "g", "c"), producer_conf(config, "c")
    for key, value in extra.items():
        assert cons[key] == value and prod[key] == value
    assert prod["compression.type"] == "lz4"


@pytest.mark.parametrize(("settings", "env", "named"), [
    ({"consumer_topic": "bad topic!"}, {}, "consumer_topic (CONSUMER_TOPIC)"),
    ({"consumer_topic": "t", "producer_topic": "a/b"}, {}, "producer_topic (PRODUCER_TOPIC)"),
    ({"consumer_topic": "t"}, {"CONSUMER_SERVERS": "no port here:x"}, "consumer_servers"),
    ({"consumer_topic": "t", "error_policy": "ignore"}, {}, "error_policy (ERROR_POLICY)"),
    ({"consumer_topic": "t", "batch_size": 0}, {}, "batch_size"),
    ({"consumer_topic": "t", "max_messages": -1}, {}, "max_messages"),
    ({"consumer_topic": "t", "group_protocol": "eager"}, {}, "group_protocol"),
    ({"consumer_topic": "t", "bogus_setting": 1}, {}, "bogus_setting"),
    ({"consumer_topic": "t", "batch_size": 0.5}, {}, "batch_size"),
    ({"consumer_topic": "t", "max_messages": True}, {}, "max_messages"),
    ({"consumer_topic": "t", "connect_backoff": -1}, {}, "connect_backoff"),
    ({"consumer_topic": "t", "dead_letter_topic": "t"}, {}, "dead_letter_topic"),
])
def test_bad_settings_fail_naming_the_setting_and_value(
    settings: dict[str, object], env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(settings, env=env)
    assert named in str(info.value)
    assert info.value.setting.startswith(named.split(" ")[0])


def test_a_consumer_without_a_topic_says_which_setting_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONSUMER_TOPIC", raising=False)
    with pytest.raises(ConfigError, match=r"consumer_topic \(CONSUMER_TOPIC\)"):
        _ = Consumer().config


def test_a_producer_without_a_topic_says_which_setting_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PRODUCER_TOPIC", raising=False)
    with pytest.raises(ConfigError, match=r"producer_topic \(PRODUCER_TOPIC\)"):
        _ = Producer().config


def test_auto_commit_cannot_be_switched_on_through_pass_through_settings() -> None:
    from fogverse.clients.confluent_conf import consumer_conf

    config = StageConfig(consumer_topic=("t",), kafka_extra={"enable.auto.commit": True},
                         consumer_extra={"enable.auto.offset.store": "true"})
    conf = consumer_conf(config, "g", "c")
    assert conf["enable.auto.commit"] is False
    assert conf["enable.auto.offset.store"] is False


def test_a_misspelt_setting_fails_when_the_stage_is_made_naming_the_closest() -> None:
    with pytest.raises(ConfigError) as info:
        Consumer(consumer_topik="in")
    assert info.value.setting == "consumer_topik"
    assert "did you mean 'consumer_topic'" in str(info.value)


def test_a_misspelt_parallel_setting_suggests_the_parallel_name() -> None:
    from fogverse import ParallelConsumer

    with pytest.raises(ConfigError, match="did you mean 'process_number'"):
        ParallelConsumer(consumer_topic="in", proces_number=2)


def test_every_setting_works_as_a_class_attribute_and_the_constructor_beats_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONSUMER_TOPIC", raising=False)

    class Stage(Consumer):
        consumer_topic = "from-class"
        batch_size = 7
        idle_timeout = 2.5
        error_policy = "skip"
        heartbeat = False
        kafka_extra = {"security.protocol": "PLAINTEXT"}

    config = Stage(batch_size=9).config
    assert config.consumer_topic == ("from-class",)
    assert (config.batch_size, config.idle_timeout) == (9, 2.5)
    assert (config.error_policy, config.heartbeat) == ("skip", False)
    assert config.kafka_extra == {"security.protocol": "PLAINTEXT"}


def test_a_bad_class_attribute_setting_names_the_setting() -> None:
    class Stage(Consumer):
        consumer_topic = "in"
        batch_size = "lots"

    with pytest.raises(ConfigError, match="batch_size"):
        _ = Stage().config
