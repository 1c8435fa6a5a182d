"""feeds.yaml checks of http_json feeds: a key must be sent somewhere and exist where one is sent, a
per-feed key wins over the service's, time_unit is one of s/ms/iso; every error at file:line:col."""

from __future__ import annotations

from pathlib import Path

from engine.config._feeds import load_feeds

FEEDS = """\
services:
  http_json: {key: env:SHARED_KEY}
feeds:
  a:
    source: http_json
    url: https://a.example/v1
    time: t
    values: {v: value}
    key: env:A_KEY
  b:
    source: http_json
    url: https://b.example/v1
    time: t
    values: {v: value}
    key_header: X-Key
    time_unit: seconds
"""


def test_key_and_time_unit_errors_point_at_their_line(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text(FEEDS)
    loaded = load_feeds(tmp_path, "feeds.yaml")
    text = "\n".join(sorted(d.headline() for d in loaded.diagnostics))
    assert "feeds.yaml:9:5: error[FEED006]: feed 'a': 'key' is sent nowhere" in text
    assert "feeds.yaml:16:16: error[FEED007]: feed 'b': time_unit 'seconds' is not one of s, ms, iso" in text
    assert len(loaded.diagnostics) == 2


def test_a_feed_key_wins_over_the_service_key_and_a_missing_key_is_named(tmp_path: Path) -> None:
    good = FEEDS.replace("    key: env:A_KEY\n", "    key: env:A_KEY\n    key_param: apikey\n").replace(
        "time_unit: seconds", "time_unit: ms"
    )
    (tmp_path / "feeds.yaml").write_text(good)
    loaded = load_feeds(tmp_path, "feeds.yaml")
    assert loaded.diagnostics == []
    assert loaded.key_of(loaded.feeds["a"], "http_json") == "env:A_KEY"
    assert loaded.key_of(loaded.feeds["b"], "http_json") == "env:SHARED_KEY"
    (tmp_path / "feeds.yaml").write_text(good.split("feeds:\n", 1)[1].join(["feeds:\n", ""]))
    keyless = load_feeds(tmp_path, "feeds.yaml")
    text = "\n".join(d.headline() for d in keyless.diagnostics)
    assert "error[FEED006]: feed 'b': it sends a key but none is set: add key: env:VARIABLE" in text
