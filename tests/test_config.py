"""Settings: defaults < config file < environment < flags, and mistakes are caught at start-up."""

import pytest

from server.config import load_settings, parse_args
from tests.support import write_config


def test_precedence(tmp_path, monkeypatch):
    """A flag beats the environment, which beats the file, which beats the default."""
    cfg = write_config(tmp_path / "c.toml", server={"port": 6001, "token": "from-file", "local_workers": 3},
                       splitter={"max_slice_s": 20.0})
    monkeypatch.setenv("SCATTERSCRIBE_TOKEN", "from-env")
    s = parse_args(["--config", str(cfg), "--port", "6002"])
    assert s.server.port == 6002 and s.server.token == "from-env" and s.server.local_workers == 3
    assert s.splitter.max_slice_s == 20.0 and s.server.host == "127.0.0.1"


def test_repository_config_matches_the_defaults(monkeypatch):
    """The shipped config.toml documents every setting with its default value."""
    from server.config import DEFAULT_CONFIG, Settings
    monkeypatch.delenv("SCATTERSCRIBE_TOKEN", raising=False)
    monkeypatch.delenv("SCATTERSCRIBE_ACCESS_TOKEN", raising=False)
    loaded = load_settings(DEFAULT_CONFIG, environ={})
    defaults = Settings()
    assert (loaded.server, loaded.scheduler, loaded.splitter) == (defaults.server, defaults.scheduler,
                                                                  defaults.splitter)


@pytest.mark.parametrize("sections,message", [
    ({"server": {"prot": 1}}, "unknown settings: prot"),
    ({"server": {"port": "5000"}}, "port should be int"),
    ({"serverr": {"port": 1}}, "unknown config sections"),
    ({"splitter": {"max_slice_s": 3.0}}, "twice min_slice_s"),
])
def test_mistakes_are_reported(tmp_path, sections, message):
    """Misspelt keys, wrong types and impossible values stop the start with a message."""
    with pytest.raises(ValueError, match=message):
        load_settings(write_config(tmp_path / "c.toml", **sections), environ={})
