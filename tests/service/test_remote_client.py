"""The remote client's own behaviour, where no server is needed: how it is made, what it
refuses up front, and what an unreachable server looks like."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import aesoperator
from aesoperator import Aesoperator, Task, UserError, ValidationError
from aesoperator._remote import RemoteAesoperator, RemoteMemory, ServiceUnavailable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import free_port

TOKEN = "aesop_" + "a" * 43


def test_a_url_makes_a_remote_client_that_is_an_aesoperator() -> None:
    with Aesoperator(url="http://127.0.0.1:8750/", token=TOKEN) as client:
        assert isinstance(client, Aesoperator) and isinstance(client, RemoteAesoperator)
        assert repr(client) == "Aesoperator(url='http://127.0.0.1:8750')"


def test_the_environment_makes_plain_clients_and_the_module_remote(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AESOP_URL", "http://127.0.0.1:8750")
    monkeypatch.setenv("AESOP_TOKEN", TOKEN)
    with Aesoperator() as client:
        assert isinstance(client, RemoteAesoperator)
    with Aesoperator(data_dir=tmp_path) as local:  # a data dir says: this machine
        assert type(local) is Aesoperator
    with Aesoperator(url="") as forced:
        assert type(forced) is Aesoperator
    monkeypatch.setattr(aesoperator, "_default", None)
    default = aesoperator.default_client()
    try:
        assert isinstance(default, RemoteAesoperator)
        assert isinstance(aesoperator.memory, RemoteMemory)
    finally:
        default.close()


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8750", "ftp://host", "http://", "http://h:99999", "http://h/?x=1"]
)
def test_a_bad_url_is_refused_naming_it(url: str) -> None:
    with pytest.raises(UserError, match=r"url: got .*http://127\.0\.0\.1:8750|url: got"):
        Aesoperator(url=url)


def test_a_malformed_token_is_refused_without_echoing_it() -> None:
    with pytest.raises(UserError, match="aesop token create") as refused:
        Aesoperator(url="http://127.0.0.1:8750", token="secret-value-123")
    assert "secret-value-123" not in str(refused.value)


def test_local_settings_and_a_lone_token_are_refused() -> None:
    with pytest.raises(UserError, match="pool_size: these set up a local client"):
        Aesoperator(url="http://127.0.0.1:8750", pool_size=3)
    with pytest.raises(UserError, match="token: given without a url"):
        Aesoperator(url="", token=TOKEN)


def test_handlers_are_registered_on_the_server() -> None:
    with Aesoperator(url="http://127.0.0.1:8750", token=TOKEN) as client:
        with pytest.raises(UserError, match="aesop serve --import"):
            client.handler("mine")
        with pytest.raises(UserError, match="aesop serve --import"):
            client.function(print)


def test_an_unreachable_server_says_where_and_what_to_check() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with Aesoperator(url=url, token=TOKEN) as client:
        with pytest.raises(ServiceUnavailable, match="aesop serve") as err:
            client.get_task_status("x")
        assert url in str(err.value) and isinstance(err.value, ConnectionError)
        with pytest.raises(ServiceUnavailable):
            client.execute_task(Task(name="echo"))


def test_memory_checks_keys_and_values_here_with_the_local_messages() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # never reached: refused before sending
    with Aesoperator(url=url, token=TOKEN) as client:
        with pytest.raises(TypeError, match="memory keys are non-empty strings"):
            client.memory.set("", 1)
        with pytest.raises(TypeError):
            client.memory.set("k", object())
        with pytest.raises(ValidationError):
            client.memory.set("k", "\ud800")
        with pytest.raises(UserError, match="atomic"):
            client.memory.incr("n")


def test_a_closed_client_says_so() -> None:
    client = Aesoperator(url="http://127.0.0.1:8750", token=TOKEN)
    client.close()
    with pytest.raises(UserError, match="closed"):
        client.execute_task_async(Task(name="echo"))
