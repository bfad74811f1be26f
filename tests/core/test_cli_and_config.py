"""The command line's JSON contract and the configuration precedence: file < env < options."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from inbox.cli import main
from inbox.config import ConfigError, load_settings
from storage.sqlite import SqliteStore


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_commands_print_one_json_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, out, _ = _run(
        capsys,
        "operator",
        "add",
        "Anna@Example.com",
        "--name",
        "Анна",
        "--role",
        "supervisor",
        "--max-open",
        "4",
        *data,
        "--json",
    )
    assert code == 0
    operator = json.loads(out)
    assert set(operator) == {"id", "email", "role", "api_token", "password"}
    assert operator["role"] == "supervisor" and operator["api_token"].startswith("op_")

    code, out, _ = _run(capsys, "operator", "add", "bob@example.com", "--password", "s3cret", *data, "--json")
    assert "password" not in json.loads(out)  # only generated passwords are shown

    code, _, err = _run(capsys, "operator", "add", "anna@example.com", *data, "--json")
    assert code == 1 and "exists already" in err

    code, out, _ = _run(capsys, "operator", "add", "c@example.com", "--team", "billing", "--max-open", "3", *data)
    assert code == 0
    assert asyncio.run(_teams(tmp_path)) == [
        {"id": "billing", "name": "billing", "calendar_id": None, "focus_mode": False}
    ]
    code, _, err = _run(capsys, "operator", "add", "d@example.com", "--team", "no spaces", *data)
    assert code == 1 and "team 'no spaces'" in err

    code, out, _ = _run(capsys, "channel", "add", "api", "--name", "Магазин", *data, "--json")
    channel = json.loads(out)
    assert set(channel) == {"id", "kind", "name", "key"} and channel["name"] == "Магазин"

    code, out, _ = _run(capsys, "channel", "list", *data, "--json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [channel["id"]]


async def _teams(data_dir: Path) -> list[dict]:
    store = SqliteStore(data_dir / "inbox.sqlite3")
    await store.open()
    try:
        return await store.list_routing_objects("team")
    finally:
        await store.close()


def test_settings_precedence_file_then_environment_then_options(tmp_path: Path) -> None:
    config = tmp_path / "inbox.toml"
    config.write_text('http_port = 9001\nsmtp_port = 2600\ndata_dir = "/srv/inbox"\n', encoding="utf-8")
    settings = load_settings(config, {"smtp_port": 2700}, environ={"INBOX_HTTP_PORT": "9002"})
    assert (settings.http_port, settings.smtp_port, settings.data_dir) == (9002, 2700, Path("/srv/inbox"))
    assert settings.effective_database_url == "sqlite:////srv/inbox/inbox.sqlite3"
    env_file = load_settings(None, None, environ={"INBOX_CONFIG": str(config)})
    assert env_file.http_port == 9001


def test_bad_configuration_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "inbox.toml"
    config.write_text("htp_port = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="htp_port"):
        load_settings(config, environ={})
    with pytest.raises(ConfigError, match="http_port"):
        load_settings(None, environ={"INBOX_HTTP_PORT": "eighty"})


def test_cli_reports_bad_configuration(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INBOX_HTTP_PORT", "99999")
    code, _, err = _run(capsys, "channel", "list")
    assert code == 2 and "http_port" in err


async def test_sqlite_durability_setting_reaches_the_store(tmp_path: Path) -> None:
    from inbox.app import build

    inbox = build(load_settings(overrides={"data_dir": tmp_path, "sqlite_durability": "full"}, environ={}))
    await inbox.store.open()
    try:
        (synchronous,) = inbox.store._database.connection.execute("PRAGMA synchronous").fetchone()  # type: ignore[attr-defined]
        assert synchronous == 2  # FULL
    finally:
        await inbox.store.close()


def test_parse_email_command_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    corpus = Path(__file__).parents[1] / "data" / "email"
    code, out, _ = _run(capsys, "parse-email", str(corpus / "cp1251.eml"), "--json")
    assert code == 0 and json.loads(out)["from"]["email"]
    code, out, _ = _run(capsys, "parse-email", str(corpus / "cp1251.eml"), str(corpus / "garbage.bin"))
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 2 and [sorted(line)[:1] for line in lines] and "error" in lines[1] and "error" not in lines[0]


def test_common_options_work_before_and_after_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    assert _run(capsys, "--data-dir", str(before), "channel", "add", "api", "--json")[0] == 0
    assert _run(capsys, "channel", "add", "api", "--data-dir", str(after), "--json")[0] == 0
    assert (before / "inbox.sqlite3").exists() and (after / "inbox.sqlite3").exists()


def test_bad_log_level_and_database_url_name_the_key(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setenv("INBOX_LOG_LEVEL", "verbose")
    code, _, err = _run(capsys, "channel", "list")
    assert code == 2 and "log_level" in err
    monkeypatch.setenv("INBOX_LOG_LEVEL", "debug")
    monkeypatch.setenv("INBOX_DATABASE_URL", "postgres://x")
    code, _, err = _run(capsys, "channel", "list")
    assert code == 2 and "database_url" in err
