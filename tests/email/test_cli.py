"""``inbox parse-email``: the summary, the JSON contract, JSON Lines and exit statuses."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from connectors.email.cli import parse_email_command
from connectors.email.parsing import JSON_KEYS
from tests.email.corpus import CORPUS

CONTRACT_KEYS = {
    "message_id",
    "in_reply_to",
    "references",
    "from",
    "to",
    "cc",
    "reply_to",
    "subject",
    "date",
    "text",
    "reply_text",
    "html",
    "attachments",
    "auto_reply",
    "bulk",
    "bounce",
    "defects",
}


def run(files: list[Path], as_json: bool) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = parse_email_command(files, as_json, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_one_file_as_json_prints_exactly_the_contract_keys() -> None:
    status, out, err = run([CORPUS / "attachment_rfc2231.eml"], as_json=True)

    assert (status, err) == (0, "")
    document = json.loads(out)
    assert set(document) == CONTRACT_KEYS == set(JSON_KEYS)
    assert document["from"] == {"name": "Бухгалтерия ООО «Ромашка»", "email": "buh@romashka.example.ru"}
    assert document["attachments"][0] == {
        "filename": "счёт.pdf",
        "content_type": "application/pdf",
        "size": 113,
        "sha256": "849bc3ef2f5d26b4dcf54d5a26ed10771df67dd90ee7e62507c60804c07f026e",
        "inline": False,
        "content_id": None,
    }
    assert out.count("\n") == 1


def test_one_file_without_json_prints_a_readable_summary() -> None:
    status, out, _ = run([CORPUS / "dsn_bounce.eml"], as_json=False)

    assert status == 0
    assert "From:        Mail Delivery System <MAILER-DAEMON@mx.example.com>\n" in out
    assert "Flags:       auto-reply, bounce 5.1.1 of <reply-1077-3@inbox.example.com>\n" in out
    assert "Attachment:  part-2.txt (message/delivery-status" in out
    assert out.rstrip().endswith("virtual mailbox table (in reply to RCPT TO command)")


def test_one_unparseable_file_exits_2_with_a_one_line_reason() -> None:
    status, out, err = run([CORPUS / "garbage.bin"], as_json=True)

    assert (status, out) == (2, "")
    assert err == f"{CORPUS / 'garbage.bin'}: no header block: the input does not start with RFC 5322 header fields\n"


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    status, _, err = run([tmp_path / "absent.eml"], as_json=False)

    assert status == 2
    assert err.startswith(f"{tmp_path / 'absent.eml'}: cannot read:")
    assert err.count("\n") == 1


def test_several_files_print_json_lines_in_order_and_exit_2_when_one_is_bad(tmp_path: Path) -> None:
    files = [CORPUS / "koi8r.eml", CORPUS / "garbage.bin", tmp_path / "empty.eml", CORPUS / "ooo_ru.eml"]
    (tmp_path / "empty.eml").write_bytes(b"")

    status, out, err = run(files, as_json=False)

    assert (status, err) == (2, "")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["file"] for line in lines] == [str(path) for path in files]
    assert set(lines[0]) == CONTRACT_KEYS | {"file"}
    assert next(iter(lines[0])) == "file"
    assert lines[0]["subject"] == "Не приходит письмо с подтверждением"
    no_headers = "no header block: the input does not start with RFC 5322 header fields"
    assert lines[1] == {"file": str(files[1]), "error": no_headers}
    assert lines[2] == {"file": str(files[2]), "error": "empty message"}
    assert lines[3]["auto_reply"] is True


def test_several_good_files_exit_0(tmp_path: Path) -> None:
    copy = tmp_path / "copy.eml"
    shutil.copy(CORPUS / "alternative.eml", copy)

    status, out, _ = run([CORPUS / "alternative.eml", copy], as_json=True)

    assert status == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert {key: value for key, value in first.items() if key != "file"} == {
        key: value for key, value in second.items() if key != "file"
    }
